/**
 * node-rdkafka producers.
 *
 * `TransactionalProducer` gives the worker exactly-once Kafka-to-Kafka delivery: a batch's outputs and the consumed
 * offsets commit in one transaction (KIP-447: `sendOffsetsToTransaction` with the consumer's group metadata, so a
 * zombie from an older group generation is fenced). `PlainProducer` (idempotent, acks=all) is for loaders, the fleet
 * simulator and tests.
 */
import Kafka from 'node-rdkafka';
import { VigilError } from '../../runtime/errors.ts';
import type { Header } from '../../runtime/record.ts';
import type { KafkaConsumerClient, TopicPartition } from './consumer.ts';
import { authenticateKafkaClient } from './oauth.ts';
import { brokerCause, kafkaConnectHint, kafkaSecurityConfig } from './security.ts';

export interface ProducerRecord {
  readonly topic: string;
  /** An explicit partition (a state changelog follows its input partition); else the key's hash decides. */
  readonly partition?: number;
  /** A string key is sent as a C string (cut at its first NUL): keys that may hold one travel as bytes. */
  readonly key: string | Buffer | null;
  /** Null: a tombstone (a compacted topic forgets the key). */
  readonly value: Buffer | null;
  readonly headers?: readonly Header[];
  readonly timestamp?: number;
}

const BASE_CONFIG = {
  'enable.idempotence': true,
  acks: 'all',
  'linger.ms': 5,
  'batch.num.messages': 10_000,
  'queue.buffering.max.messages': 1_000_000,
  'queue.buffering.max.kbytes': 1_048_576,
  'compression.codec': 'lz4',
  dr_cb: false,
} as const;

function call(fn: (cb: (err: Kafka.LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

function kafkaHeaders(headers: readonly Header[] | undefined): Kafka.MessageHeader[] | undefined {
  if (!headers || headers.length === 0) return undefined;
  return headers.map((h) => ({ [h.key]: h.value ?? Buffer.alloc(0) }));
}

abstract class BaseProducer {
  readonly producer: Kafka.Producer;
  protected readonly brokers: string;

  constructor(brokers: string, config: Record<string, string | number | boolean>) {
    this.brokers = brokers;
    this.producer = new Kafka.Producer({
      'metadata.broker.list': brokers,
      ...BASE_CONFIG,
      ...config,
      ...kafkaSecurityConfig(),
    } as Kafka.ProducerGlobalConfig);
  }

  async connect(): Promise<void> {
    await authenticateKafkaClient(this.producer);
    await new Promise<void>((resolve, reject) => {
      this.producer.connect({ timeout: 15_000 }, (err) => {
        if (err)
          reject(
            new VigilError(
              'KAFKA_UNAVAILABLE',
              `cannot reach Kafka at ${this.brokers}: ${err.message}${brokerCause(this.producer)}${kafkaConnectHint()}`,
              {
                cause: err,
              },
            ),
          );
        else resolve();
      });
    });
    this.producer.setPollInterval(50);
  }

  /** Enqueues one record, waiting for room when librdkafka's local queue is full (backpressure, never a drop). */
  protected async enqueue(record: ProducerRecord): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 10_000) return this.#produce(record); // still full: librdkafka's QUEUE_FULL error is thrown
      if (this.#tryProduce(record)) return;
      this.producer.poll();
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * Enqueues `records` in order; synchronous while librdkafka's queue has room (one N-API call per record and no
   * promise per record: the worker produces ~3 records per event), waiting only when the queue is full.
   */
  protected async enqueueAll(records: readonly ProducerRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (!this.#tryProduce(record)) await this.enqueue(record);
    }
  }

  /** False when the local queue is full (nothing enqueued); any other failure throws. */
  #tryProduce(record: ProducerRecord): boolean {
    try {
      this.#produce(record);
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === Kafka.CODES.ERRORS.ERR__QUEUE_FULL) return false;
      throw error;
    }
  }

  #produce(record: ProducerRecord): void {
    this.producer.produce(
      record.topic,
      record.partition ?? null,
      record.value,
      record.key,
      record.timestamp ?? Date.now(),
      undefined,
      record.headers === undefined || record.headers.length === 0 ? undefined : kafkaHeaders(record.headers),
    );
  }

  async disconnect(): Promise<void> {
    if (!this.producer.isConnected()) return;
    await call((cb) => this.producer.flush(10_000, (err) => cb(err)));
    await new Promise<void>((resolve) => this.producer.disconnect(() => resolve()));
  }
}

export class PlainProducer extends BaseProducer {
  constructor(brokers: string, config: Record<string, string | number | boolean> = {}) {
    super(brokers, config);
  }

  /** Sends records and resolves once every one is acknowledged by the broker. */
  async send(records: Iterable<ProducerRecord>): Promise<number> {
    let n = 0;
    for (const record of records) {
      await this.enqueue(record);
      n++;
    }
    await call((cb) => this.producer.flush(60_000, (err) => cb(err)));
    return n;
  }
}

export type TransactionOutcome = 'committed' | 'aborted';

export class TransactionalProducer extends BaseProducer {
  constructor(brokers: string, transactionalId: string, config: Record<string, string | number | boolean> = {}) {
    // A crashed worker's open transaction (and the offsets it holds back) is aborted by the coordinator after this
    // long unless a restart with the same transactional.id fences it sooner (give workers stable --worker-id).
    super(brokers, { 'transactional.id': transactionalId, 'transaction.timeout.ms': 30_000, ...config });
  }

  override async connect(): Promise<void> {
    await super.connect();
    try {
      await call((cb) => this.producer.initTransactions(30_000, cb));
    } catch (error) {
      throw new VigilError('KAFKA_UNAVAILABLE', `initTransactions failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * Produces `records` and commits `offsets` (next offsets to read) for `consumer`'s group, atomically. Returns
   * `aborted` when the transaction had to be aborted (the caller re-reads from the last committed offsets); throws
   * KAFKA_FENCED when this producer lost its identity (the worker must stop).
   */
  async commit(
    records: readonly ProducerRecord[],
    offsets: readonly (TopicPartition & { offset: number })[],
    consumer: KafkaConsumerClient,
  ): Promise<TransactionOutcome> {
    try {
      await call((cb) => this.producer.beginTransaction(cb));
      await this.enqueueAll(records);
      if (offsets.length > 0) {
        await call((cb) =>
          this.producer.sendOffsetsToTransaction(
            offsets.map((o) => ({ ...o })),
            consumer.consumer,
            30_000,
            cb,
          ),
        );
      }
      await call((cb) => this.producer.commitTransaction(60_000, cb));
      return 'committed';
    } catch (error) {
      const e = error as Kafka.LibrdKafkaError & {
        isFatal?: boolean;
        isTxnRequiresAbort?: boolean;
        isRetriable?: boolean;
      };
      if (e.isFatal)
        throw new VigilError('KAFKA_FENCED', `transactional producer is fenced or fatal: ${e.message}`, { cause: e });
      try {
        await call((cb) => this.producer.abortTransaction(30_000, cb));
      } catch (abortError) {
        throw new VigilError(
          'KAFKA_TRANSACTION_ABORTED',
          `abort failed after ${e.message}: ${(abortError as Error).message}`,
          {
            cause: abortError,
            retriable: false,
          },
        );
      }
      return 'aborted';
    }
  }
}
