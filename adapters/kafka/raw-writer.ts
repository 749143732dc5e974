/**
 * The gateway's durable sinks: accepted events to the raw topics (lane `raw` -> TOPICS.raw, `priority` ->
 * TOPICS.rawPriority, key = device id) and rejection records to TOPICS.gatewayRejections, both Avro in the Confluent
 * wire format with the registry's ids (runtime/runners/encoder.ts).
 *
 * `write` resolves only once every record of the call has its delivery report from an idempotent, acks=all producer
 * (the gateway answers 202 after that), and rejects with KAFKA_UNAVAILABLE when any one failed (the gateway answers
 * 503 and releases the request's claims). Many requests write at once over one producer: each call waits only for its
 * own records' reports (an opaque per call), never for a global flush.
 */
import Kafka from 'node-rdkafka';
import type { AcceptedEvent, GatewayRejection, RawEventSink, RejectionSink } from '../../gateway/index.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { RegistryValueEncoder } from '../../runtime/runners/encoder.ts';
import { loadSchemaRepo, type SchemaRepo } from '../avro/schemas.ts';
import type { SchemaRegistry } from '../registry/types.ts';
import { authenticateKafkaClient } from './oauth.ts';
import { kafkaSecurityConfig } from './security.ts';

export interface DurableRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: Buffer;
}

interface Pending {
  left: number;
  resolve(): void;
  reject(error: Error): void;
}

/** An idempotent acks=all producer whose `send` resolves when the broker has acknowledged every record it was given. */
export class DurableProducer {
  readonly #producer: Kafka.Producer;
  readonly #brokers: string;
  readonly #pending = new Map<number, Pending>();
  #next = 0;

  constructor(brokers: string, config: Record<string, string | number | boolean> = {}) {
    this.#brokers = brokers;
    this.#producer = new Kafka.Producer({
      'metadata.broker.list': brokers,
      'enable.idempotence': true,
      acks: 'all',
      'linger.ms': 2,
      'compression.codec': 'lz4',
      // A broker that cannot take a record within this long fails the request (503) instead of holding it.
      'message.timeout.ms': 15_000,
      dr_cb: true,
      log_level: 0,
      ...config,
      ...kafkaSecurityConfig(),
    } as Kafka.ProducerGlobalConfig);
    this.#producer.on('delivery-report', (error, report) => {
      const id = report.opaque as number;
      const pending = this.#pending.get(id);
      if (!pending) return;
      if (error) {
        this.#pending.delete(id);
        pending.reject(new VigilError('KAFKA_UNAVAILABLE', `record not delivered: ${error.message}`, { cause: error }));
      } else if (--pending.left === 0) {
        this.#pending.delete(id);
        pending.resolve();
      }
    });
  }

  async connect(): Promise<void> {
    await authenticateKafkaClient(this.#producer);
    await new Promise<void>((resolve, reject) =>
      this.#producer.connect({ timeout: 15_000 }, (error) =>
        error
          ? reject(new VigilError('KAFKA_UNAVAILABLE', `cannot reach Kafka at ${this.#brokers}: ${error.message}`))
          : resolve(),
      ),
    );
    this.#producer.setPollInterval(5);
  }

  async send(records: readonly DurableRecord[]): Promise<void> {
    if (records.length === 0) return;
    const id = this.#next++;
    const delivered = new Promise<void>((resolve, reject) =>
      this.#pending.set(id, { left: records.length, resolve, reject }),
    );
    try {
      for (const record of records) await this.#produce(record, id);
    } catch (error) {
      this.#pending.delete(id);
      throw new VigilError('KAFKA_UNAVAILABLE', `cannot produce: ${(error as Error).message}`, { cause: error });
    }
    return delivered;
  }

  async #produce(record: DurableRecord, id: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#producer.produce(record.topic, null, record.value, Buffer.from(record.key), Date.now(), id);
        return;
      } catch (error) {
        // librdkafka's local queue is full: wait for room (backpressure), never drop.
        if ((error as { code?: number }).code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL || attempt > 2_000) throw error;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  async close(): Promise<void> {
    if (!this.#producer.isConnected()) return;
    await new Promise<void>((resolve) => this.#producer.flush(10_000, () => resolve()));
    await new Promise<void>((resolve) => this.#producer.disconnect(() => resolve()));
  }
}

export interface GatewaySinkOptions {
  readonly brokers: string;
  readonly registry: SchemaRegistry;
  readonly repo?: SchemaRepo;
  /** Defaults: TOPICS.raw, TOPICS.rawPriority, TOPICS.gatewayRejections (prefixed by VIGIL_TOPIC_PREFIX). */
  readonly topics?: { readonly raw?: string; readonly priority?: string; readonly rejections?: string };
}

export interface GatewaySinks {
  readonly raw: RawEventSink;
  readonly rejections: RejectionSink;
  close(): Promise<void>;
}

/**
 * Opens both gateway sinks over one producer, registering the envelope and gateway-rejection schemas (the registry
 * checks compatibility) so encoding is a Map lookup afterwards.
 *
 * @example
 * const sinks = await openGatewaySinks({ brokers: endpoints.kafkaBrokers, registry: createSchemaRegistry() });
 * await startGateway({ ..., raw: sinks.raw, rejections: sinks.rejections });
 */
export async function openGatewaySinks(options: GatewaySinkOptions): Promise<GatewaySinks> {
  const repo = options.repo ?? loadSchemaRepo();
  if (!repo.subjects.some((s) => s.spec.name === 'gateway-rejection')) {
    throw new VigilError(
      'CONFIG_INVALID',
      'the schema repo has no gateway-rejection subject (schemas/avro/subjects.json)',
    );
  }
  const encoder = await RegistryValueEncoder.create(options.registry, repo, ['envelope', 'gateway-rejection']);
  const topics = {
    raw: options.topics?.raw ?? TOPICS.raw,
    priority: options.topics?.priority ?? TOPICS.rawPriority,
    rejections: options.topics?.rejections ?? TOPICS.gatewayRejections,
  };
  const producer = new DurableProducer(options.brokers);
  await producer.connect();
  return {
    raw: {
      write: (events: readonly AcceptedEvent[]) =>
        producer.send(
          events.map((e) => ({
            topic: e.lane === 'priority' ? topics.priority : topics.raw,
            key: e.key,
            value: encoder.encode('envelope', e.envelope),
          })),
        ),
    },
    rejections: {
      write: (rejections: readonly GatewayRejection[]) =>
        producer.send(
          rejections.map((r) => ({
            topic: topics.rejections,
            key: r.claimed_device_id ?? r.device_cert_fingerprint ?? r.rejection_id,
            value: encoder.encode('gateway-rejection', r),
          })),
        ),
    },
    close: () => producer.close(),
  };
}
