/**
 * The simulated fleet onto a real raw topic, as a gateway would write it: each envelope framed in the Confluent wire
 * format with the id the registry gives the newest envelope schema (registered here, idempotently), keyed by device;
 * raw-byte faults sent as their broken bytes. Acknowledged (acks=all, idempotent) before it returns.
 */
import { loadSchemaRepo } from '../adapters/avro/schemas.ts';
import { PlainProducer, type ProducerRecord } from '../adapters/kafka/producer.ts';
import { createSchemaRegistry } from '../adapters/registry/index.ts';
import { recordBytes, type SimulateOptions, simulateFleet, type TruthSummary, TruthTally } from './simulate.ts';

export interface KafkaTarget {
  readonly brokers: string;
  readonly schemaRegistryUrl: string;
  readonly topic: string;
  /** Extra librdkafka producer settings. */
  readonly producerConfig?: Readonly<Record<string, string | number | boolean>>;
}

/** Registers (idempotently) the newest envelope schema and returns its registry id. */
export async function envelopeSchemaId(schemaRegistryUrl: string): Promise<number> {
  const envelope = loadSchemaRepo().get('envelope');
  return createSchemaRegistry(schemaRegistryUrl).register(envelope.spec.subject, envelope.newest.schema);
}

/** `options.events` framed records for `schemaId`, with their keys (the same seed gives the same bytes). */
export function* framedRecords(
  options: SimulateOptions,
  schemaId: number,
  tally?: TruthTally,
): Generator<{ key: string; value: Buffer }> {
  const type = loadSchemaRepo().get('envelope').newest.type;
  for (const record of simulateFleet({ ...options, schemaId })) {
    tally?.add(record);
    yield { key: record.key, value: recordBytes(record, schemaId, type) };
  }
}

/** Produces the simulation to `target.topic` and returns its ground truth once every record is acknowledged. */
export async function produceSimulation(options: SimulateOptions, target: KafkaTarget): Promise<TruthSummary> {
  const schemaId = await envelopeSchemaId(target.schemaRegistryUrl);
  const tally = new TruthTally('kafka');
  const producer = new PlainProducer(target.brokers, { ...target.producerConfig });
  await producer.connect();
  try {
    let chunk: ProducerRecord[] = [];
    for (const r of framedRecords(options, schemaId, tally)) {
      chunk.push({ topic: target.topic, key: r.key, value: r.value });
      if (chunk.length === 20_000) {
        await producer.send(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) await producer.send(chunk);
  } finally {
    await producer.disconnect();
  }
  return tally.summary();
}
