/**
 * The benchmark's input: envelopes from the fleet simulator, framed in the Confluent wire format with the id the real
 * registry gives the newest envelope schema, keyed by device. The same seed gives the same records for every run.
 *
 * - `preload`: N records onto the raw topic before any run starts (acks=all, idempotent: `PlainProducer`).
 * - `pacedProduce`: a steady rate, each record's Kafka timestamp stamped when it is handed to the producer, so the
 *   consumers can measure producer -> durable acknowledgement per record.
 */
import { PlainProducer, type ProducerRecord } from '../../adapters/kafka/producer.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import {
  produceSimulation,
  envelopeSchemaId as registerEnvelope,
  framedRecords as simulatedFrames,
} from '../../simulator/kafka.ts';
import type { SimulateOptions } from '../../simulator/simulate.ts';

export interface Framed {
  readonly key: string;
  readonly value: Buffer;
}

/** The simulator's default fleet and fault mix (3% duplicates, 0.5% replays, 1% malformed), seed `bench`. */
export const BENCH_SIMULATION: SimulateOptions = { devices: 1000, seed: 'bench' };

/**
 * The raw topic is written uncompressed: KafkaJS (the naive peer) cannot read lz4 without a codec plugin, and every
 * run reads the same bytes. (Vigil's own producers keep their lz4.)
 */
const PRODUCER_CONFIG = { 'compression.codec': 'none' } as const;

/** Registers (idempotently) the newest envelope schema with the real registry and returns its id. */
export function envelopeSchemaId(): Promise<number> {
  return registerEnvelope(resolveEndpoints().schemaRegistryUrl);
}

/** `events` framed records from the simulator. */
export function framedRecords(events: number, schemaId: number, seed = BENCH_SIMULATION.seed): Generator<Framed> {
  return simulatedFrames({ ...BENCH_SIMULATION, seed, events }, schemaId);
}

/** Produces `events` records to `topic`; resolves once every one is acknowledged. */
export async function preload(topic: string, events: number): Promise<number> {
  const endpoints = resolveEndpoints();
  const truth = await produceSimulation(
    { ...BENCH_SIMULATION, events },
    {
      brokers: endpoints.kafkaBrokers,
      schemaRegistryUrl: endpoints.schemaRegistryUrl,
      topic,
      producerConfig: PRODUCER_CONFIG,
    },
  );
  return truth.records;
}

/** A PlainProducer that enqueues without flushing (the paced loop flushes once at the end). */
class StreamingProducer extends PlainProducer {
  put(record: ProducerRecord): Promise<void> {
    return this.enqueue(record);
  }
}

export interface PacedResult {
  readonly sent: number;
  /** Achieved rate over the producing span (records/s). */
  readonly rate: number;
  readonly seconds: number;
}

/**
 * Produces `records` at `rate` per second: every millisecond tick it enqueues what is due, stamping each record's
 * timestamp with the wall clock at that moment (the "observed at the producer" of the latency figures).
 */
export async function pacedProduce(topic: string, records: readonly Framed[], rate: number): Promise<PacedResult> {
  const producer = new StreamingProducer(resolveEndpoints().kafkaBrokers, { ...PRODUCER_CONFIG, 'linger.ms': 1 });
  await producer.connect();
  const started = Date.now();
  let sent = 0;
  try {
    while (sent < records.length) {
      const due = Math.min(records.length, Math.floor(((Date.now() - started) * rate) / 1000) + 1);
      while (sent < due) {
        const r = records[sent] as Framed;
        await producer.put({ topic, key: r.key, value: r.value, timestamp: Date.now() });
        sent++;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } finally {
    await producer.disconnect();
  }
  const seconds = (Date.now() - started) / 1000;
  return { sent, rate: Math.round(sent / seconds), seconds };
}
