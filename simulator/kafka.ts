/**
 * The simulated fleet onto a real raw topic, as a gateway would write it: each envelope framed in the Confluent wire
 * format with the id the registry gives the newest envelope schema (registered here, idempotently), keyed by device;
 * raw-byte faults sent as their broken bytes. Acknowledged (acks=all, idempotent) before it returns.
 *
 * With `outcomesTopic`, the fleet's ground-truth clinical outcomes (./outcomes.ts `outcomesFor`: the same seed, fleet
 * and window) follow on that topic (TOPICS.outcomes), as outcome records keyed by patient pseudonym, so the
 * calibration job has something to join inferences to; `vigil sink pipelines/outcomes.ts` lands them.
 */
import { encodeFramed } from '../adapters/avro/framing.ts';
import { loadSchemaRepo } from '../adapters/avro/schemas.ts';
import { PlainProducer, type ProducerRecord } from '../adapters/kafka/producer.ts';
import { createSchemaRegistry } from '../adapters/registry/index.ts';
import { type Outcome, outcomesFor, outcomeWindowFor } from './outcomes.ts';
import {
  fleetFor,
  recordBytes,
  type SimulateOptions,
  simulateFleet,
  type TruthSummary,
  TruthTally,
} from './simulate.ts';

export interface KafkaTarget {
  readonly brokers: string;
  readonly schemaRegistryUrl: string;
  readonly topic: string;
  /** Extra librdkafka producer settings. */
  readonly producerConfig?: Readonly<Record<string, string | number | boolean>>;
  /** Also produce the fleet's ground-truth outcomes to this topic (TOPICS.outcomes); absent: no outcomes. */
  readonly outcomesTopic?: string;
}

/** What `produceOutcomes` sent: the topic, how many outcome records, and how many of each kind. */
export interface OutcomesProduced {
  readonly topic: string;
  readonly records: number;
  readonly byKind: Readonly<Record<string, number>>;
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

/** Registers (idempotently) the newest outcome schema and returns its registry id. */
export async function outcomeSchemaId(schemaRegistryUrl: string): Promise<number> {
  const outcome = loadSchemaRepo().get('outcome');
  return createSchemaRegistry(schemaRegistryUrl).register(outcome.spec.subject, outcome.newest.schema);
}

/** The simulation's ground-truth outcomes (./outcomes.ts), in occurred_at order: the same seed gives the same ones. */
export function simulationOutcomes(options: SimulateOptions): Outcome[] {
  return outcomesFor(fleetFor(options), outcomeWindowFor(options));
}

/** Outcome records framed for `schemaId` (the newest outcome schema's id), keyed by patient pseudonym. */
export function framedOutcomes(outcomes: readonly Outcome[], schemaId: number): { key: string; value: Buffer }[] {
  const type = loadSchemaRepo().get('outcome').newest.type;
  return outcomes.map((o) => ({ key: o.patient_ref, value: encodeFramed(schemaId, type, o) }));
}

/**
 * Produces the simulation's ground-truth outcomes to `target.topic` (TOPICS.outcomes), acknowledged before it
 * returns.
 *
 * @example
 * await produceOutcomes({ devices: 1000, events: 100_000, seed: 7 },
 *   { brokers, schemaRegistryUrl, topic: TOPICS.outcomes });
 */
export async function produceOutcomes(
  options: SimulateOptions,
  target: Omit<KafkaTarget, 'outcomesTopic'>,
): Promise<OutcomesProduced> {
  const outcomes = simulationOutcomes(options);
  const schemaId = await outcomeSchemaId(target.schemaRegistryUrl);
  const producer = new PlainProducer(target.brokers, { ...target.producerConfig });
  await producer.connect();
  try {
    const records = framedOutcomes(outcomes, schemaId).map((r) => ({ topic: target.topic, ...r }));
    if (records.length > 0) await producer.send(records);
  } finally {
    await producer.disconnect();
  }
  const byKind: Record<string, number> = {};
  for (const o of outcomes) byKind[o.kind] = (byKind[o.kind] ?? 0) + 1;
  return { topic: target.topic, records: outcomes.length, byKind };
}

/**
 * Produces the simulation to `target.topic` and returns its ground truth once every record is acknowledged; with
 * `target.outcomesTopic`, the fleet's outcomes too (`outcomes` in the answer).
 */
export async function produceSimulation(
  options: SimulateOptions,
  target: KafkaTarget,
): Promise<TruthSummary & { readonly outcomes?: OutcomesProduced }> {
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
  if (target.outcomesTopic === undefined) return tally.summary();
  const outcomes = await produceOutcomes(options, { ...target, topic: target.outcomesTopic });
  return { ...tally.summary(), outcomes };
}
