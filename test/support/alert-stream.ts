/**
 * The alerts pipeline's input on a real broker: the simulator's scripted ward (simulator/alert-inputs.ts) as the vitals
 * pipeline would write it — a normalised record per device event onto the normalised topic, and an inference per
 * scoring rollout (live, and shadow for the cohorts a candidate model scores) onto the clinical inference topic —
 * framed with the registry's ids, keyed by device (so both topics, co-partitioned, put a patient on one partition
 * number). Used by the alerts integration test and the alert benchmark run.
 *
 * `restamp`: the benchmark's stream is "live": each record's observed_at (and received_at) is the wall clock when it
 * is handed to the producer, so latency from observed_at is meaningful. The scenario's order, and so its per-patient
 * event-time order, is kept; its scripted minutes are compressed into the run's seconds.
 */
import { encodeFramed } from '../../adapters/avro/framing.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { PlainProducer, type ProducerRecord } from '../../adapters/kafka/producer.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import type { Inference, NormalisedEvent } from '../../schemas/types.ts';
import { alertScenarioInputs, SCENARIO_MODEL } from '../../simulator/alert-inputs.ts';
import { type AlertCohort, type AlertScenarioOptions, simulateAlertScenario } from '../../simulator/alerts.ts';

/** The model version of the scenario's shadow inferences (a candidate: they must never raise an alert). */
export const SHADOW_VERSION = SCENARIO_MODEL.shadow;

export interface AlertInput {
  readonly kind: 'inference' | 'normalised';
  readonly key: string;
  readonly value: Inference | NormalisedEvent;
  readonly cohort: AlertCohort;
  /** Minutes from the scenario's start (its script's clock). */
  readonly minute: number;
}

/**
 * The scenario's inputs (simulator/alert-inputs.ts: each device event's normalised record, then its inferences) in
 * observed_at order, with each patient's cohort and the script's minute.
 */
export function alertInputs(options: AlertScenarioOptions = {}): AlertInput[] {
  const cohorts = new Map<string, AlertCohort>();
  for (const r of simulateAlertScenario(options)) cohorts.set(r.envelope.patient_ref, r.cohort);
  const out: AlertInput[] = [];
  let start: number | null = null;
  for (const input of alertScenarioInputs(options)) {
    start ??= input.value.observed_at;
    out.push({
      ...input,
      cohort: cohorts.get(input.value.patient_ref) ?? 'stable',
      minute: (input.value.observed_at - start) / 60_000,
    });
  }
  return out;
}

/** A producer of alert inputs onto `topics`, framed with the registry ids of the inference and normalised schemas. */
export class AlertInputProducer {
  readonly #producer: StreamingProducer;
  readonly #topics: { readonly inference: string; readonly normalised: string };
  readonly #frame: Record<AlertInput['kind'], (value: unknown) => Buffer>;

  private constructor(
    producer: StreamingProducer,
    topics: { inference: string; normalised: string },
    frame: Record<AlertInput['kind'], (value: unknown) => Buffer>,
  ) {
    this.#producer = producer;
    this.#topics = topics;
    this.#frame = frame;
  }

  /** Registers (idempotently) the two schemas and connects a producer (`linger.ms` 1, as the bench's paced runs). */
  static async create(topics: { inference: string; normalised: string }): Promise<AlertInputProducer> {
    const endpoints = resolveEndpoints();
    const registry = createSchemaRegistry(endpoints.schemaRegistryUrl);
    const repo = loadSchemaRepo();
    const framer = async (name: string) => {
      const subject = repo.get(name);
      const id = await registry.register(subject.spec.subject, subject.newest.schema);
      const type = subject.newest.type;
      return (value: unknown) => encodeFramed(id, type, value);
    };
    const frame = { inference: await framer('inference'), normalised: await framer('normalised') };
    const producer = new StreamingProducer(endpoints.kafkaBrokers, { 'linger.ms': 1 });
    await producer.connect();
    return new AlertInputProducer(producer, topics, frame);
  }

  #record(input: AlertInput, restampAt: number | null): ProducerRecord {
    const value = restampAt === null ? input.value : { ...input.value, observed_at: restampAt, received_at: restampAt };
    return {
      topic: input.kind === 'inference' ? this.#topics.inference : this.#topics.normalised,
      key: input.key,
      value: this.#frame[input.kind](value),
      timestamp: restampAt ?? Date.now(),
    };
  }

  /** Produces `inputs` as fast as the producer takes them; resolves once every one is acknowledged. */
  async send(inputs: readonly AlertInput[]): Promise<void> {
    for (const input of inputs) await this.#producer.put(this.#record(input, null));
    await this.#producer.flushAll();
  }

  /**
   * Produces `inputs` at `rate` per second (every millisecond tick, what is due), each stamped when handed over:
   * its Kafka timestamp, and with `restamp` its observed_at and received_at. Resolves once all are acknowledged.
   */
  async paced(
    inputs: readonly AlertInput[],
    rate: number,
    restamp: boolean,
  ): Promise<{ sent: number; rate: number; seconds: number }> {
    const started = Date.now();
    let sent = 0;
    while (sent < inputs.length) {
      const due = Math.min(inputs.length, Math.floor(((Date.now() - started) * rate) / 1000) + 1);
      while (sent < due) {
        const now = Date.now();
        await this.#producer.put(this.#record(inputs[sent] as AlertInput, restamp ? now : null));
        sent++;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await this.#producer.flushAll();
    const seconds = (Date.now() - started) / 1000;
    return { sent, rate: Math.round(sent / seconds), seconds };
  }

  async close(): Promise<void> {
    await this.#producer.disconnect();
  }
}

/** A PlainProducer that enqueues without flushing, and flushes on demand. */
class StreamingProducer extends PlainProducer {
  put(record: ProducerRecord): Promise<void> {
    return this.enqueue(record);
  }

  async flushAll(): Promise<void> {
    await this.send([]);
  }
}
