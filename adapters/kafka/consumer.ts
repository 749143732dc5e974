/**
 * A node-rdkafka consumer in a consumer group, promisified and shaped for micro-batching.
 *
 * Offsets are never committed automatically: the worker commits them inside its Kafka transaction
 * (`sendOffsetsToTransaction`), the ClickHouse sink after its inserts. A revocation waits for the batch in flight
 * (the `onRevoke` hook) before the partitions are released, so a rebalance hands over a committed position instead of
 * forcing the next owner to redo work.
 */
import Kafka from 'node-rdkafka';
import { VigilError } from '../../runtime/errors.ts';
import type { Header } from '../../runtime/record.ts';

export interface ConsumedMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer;
  readonly headers: readonly Header[];
  readonly timestamp: number;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface ConsumerOptions {
  readonly brokers: string;
  readonly groupId: string;
  readonly clientId: string;
  readonly topics: readonly string[];
  /** Called before assigned partitions start fetching (e.g. to align batches with pending intents). */
  readonly onAssign?: (partitions: readonly TopicPartition[]) => Promise<void> | void;
  /** Called before partitions are released; the release waits for the returned promise. */
  readonly onRevoke?: (partitions: readonly TopicPartition[]) => Promise<void> | void;
  /** Extra librdkafka settings (e.g. `isolation.level`). */
  readonly config?: Readonly<Record<string, string | number | boolean>>;
  /** How long one `consume` call waits for records (the micro-batch linger). */
  readonly lingerMs?: number;
}

const ERR_ASSIGN = -175;
const ERR_REVOKE = -174;

export class KafkaConsumerClient {
  readonly consumer: Kafka.KafkaConsumer;
  readonly #options: ConsumerOptions;
  #assignment: TopicPartition[] = [];
  #revoking: Promise<void> = Promise.resolve();
  #onError: ((error: Error) => void) | null = null;

  constructor(options: ConsumerOptions) {
    this.#options = options;
    const rebalance = (err: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]): void => {
      const partitions = assignment.map((a) => ({ topic: a.topic, partition: a.partition }));
      if (err.code === ERR_ASSIGN) {
        // librdkafka waits for assign(): nothing is fetched until the owner's hook (e.g. the sink loading its batch
        // intents) has finished, so no record can be processed before the state it depends on is known.
        void Promise.resolve(this.#options.onAssign?.(partitions))
          .then(() => {
            if (!this.consumer.isConnected()) return;
            this.consumer.assign(assignment);
            this.#assignment = partitions;
          })
          .catch((e) => this.#fail(e));
      } else if (err.code === ERR_REVOKE) {
        // librdkafka waits for unassign(): finish (and commit) the batch in flight first.
        this.#revoking = Promise.resolve(this.#options.onRevoke?.(partitions))
          .catch((e) => this.#fail(e))
          .finally(() => {
            this.#assignment = [];
            if (this.consumer.isConnected()) this.consumer.unassign();
          });
      } else {
        this.#fail(new VigilError('KAFKA_UNAVAILABLE', `rebalance error ${err.code}: ${err.message}`));
      }
    };
    this.consumer = new Kafka.KafkaConsumer(
      {
        'metadata.broker.list': options.brokers,
        'group.id': options.groupId,
        'client.id': options.clientId,
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        'enable.partition.eof': false,
        'partition.assignment.strategy': 'range',
        'session.timeout.ms': 10_000,
        'heartbeat.interval.ms': 1_000,
        'max.poll.interval.ms': 300_000,
        'fetch.wait.max.ms': 50,
        'fetch.min.bytes': 1,
        'queued.max.messages.kbytes': 65_536,
        rebalance_cb: rebalance,
        ...options.config,
      } as Kafka.ConsumerGlobalConfig,
      { 'auto.offset.reset': 'earliest' },
    );
    this.consumer.setDefaultConsumeTimeout(options.lingerMs ?? 100);
  }

  /** Rejects the next `consume` with this error (a failed rebalance hook must stop the worker, not be lost). */
  #fail(error: unknown): void {
    const e = error instanceof Error ? error : new Error(String(error));
    if (this.#onError) this.#onError(e);
    else this.#pendingError = e;
  }

  #pendingError: Error | null = null;

  async connect(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.consumer.connect({ timeout: 15_000 }, (err) => {
        if (err)
          reject(
            new VigilError('KAFKA_UNAVAILABLE', `cannot reach Kafka at ${this.#options.brokers}: ${err.message}`, {
              cause: err,
            }),
          );
        else resolve();
      });
    });
    this.consumer.subscribe([...this.#options.topics]);
  }

  get assignment(): readonly TopicPartition[] {
    return this.#assignment;
  }

  /** Up to `max` messages from any assigned partitions, waiting at most the linger time. */
  consume(max: number): Promise<ConsumedMessage[]> {
    if (this.#pendingError) {
      const e = this.#pendingError;
      this.#pendingError = null;
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.#onError = reject;
      this.consumer.consume(max, (err, messages) => {
        this.#onError = null;
        if (err) {
          reject(new VigilError('KAFKA_UNAVAILABLE', `consume failed: ${err.message}`, { cause: err }));
          return;
        }
        resolve(messages.map(toConsumed));
      });
    });
  }

  pause(partitions: readonly TopicPartition[]): void {
    if (partitions.length > 0) this.consumer.pause([...partitions]);
  }

  resume(partitions: readonly TopicPartition[]): void {
    if (partitions.length > 0) this.consumer.resume([...partitions]);
  }

  /** Commits `offset` (the next offset to read) per partition, synchronously with the group coordinator. */
  commit(offsets: readonly (TopicPartition & { offset: number })[]): void {
    if (offsets.length > 0) this.consumer.commitSync(offsets.map((o) => ({ ...o })));
  }

  /** The committed positions of the group (what a new owner starts from). */
  committed(
    partitions: readonly TopicPartition[],
    timeoutMs = 10_000,
  ): Promise<(TopicPartition & { offset: number })[]> {
    return new Promise((resolve, reject) => {
      this.consumer.committed(
        partitions.map((p) => ({ ...p })),
        timeoutMs,
        (err, result) => {
          if (err) reject(new VigilError('KAFKA_UNAVAILABLE', `committed() failed: ${err.message}`, { cause: err }));
          else resolve(result.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset ?? -1 })));
        },
      );
    });
  }

  /** Records behind the high watermark per partition, from the client's cached statistics (no round trip). */
  lag(positions: ReadonlyMap<string, number>): { topic: string; partition: number; lag: number }[] {
    const out: { topic: string; partition: number; lag: number }[] = [];
    for (const tp of this.#assignment) {
      try {
        const { highOffset } = this.consumer.getWatermarkOffsets(tp.topic, tp.partition);
        const next = positions.get(`${tp.topic}:${tp.partition}`);
        if (highOffset >= 0 && next !== undefined) out.push({ ...tp, lag: Math.max(0, highOffset - next) });
      } catch {
        // watermarks are not known until the first fetch: no gauge yet
      }
    }
    return out;
  }

  /** Waits for a revocation in progress (so its batch commits) before leaving the group. */
  async disconnect(): Promise<void> {
    await this.#revoking;
    if (!this.consumer.isConnected()) return;
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
  }
}

function toConsumed(m: Kafka.Message): ConsumedMessage {
  const headers: Header[] = [];
  for (const h of m.headers ?? []) {
    for (const [key, value] of Object.entries(h)) {
      headers.push({
        key,
        value:
          value === null || value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(String(value)),
      });
    }
  }
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    key: m.key === null || m.key === undefined ? null : Buffer.isBuffer(m.key) ? m.key.toString('utf8') : String(m.key),
    value: m.value ?? Buffer.alloc(0),
    headers,
    timestamp: m.timestamp ?? 0,
  };
}
