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
import { authenticateKafkaClient } from './oauth.ts';
import { brokerCause, kafkaConnectHint, kafkaSecurityConfig } from './security.ts';

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
/** Messages asked of librdkafka per native call inside one `consume` (see there). */
const CONSUME_CHUNK = 500;
const ERR_REVOKE = -174;
/** librdkafka's RD_KAFKA_OFFSET_BEGINNING: a partition the group never committed starts at its first record. */
const OFFSET_BEGINNING = -2;

export class KafkaConsumerClient {
  readonly consumer: Kafka.KafkaConsumer;
  readonly #options: ConsumerOptions;
  #assignment: TopicPartition[] = [];
  #assignmentChangedAt = Date.now();
  #epoch = 0;
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
          .then(() => this.committed(partitions, 120_000))
          .then((committed) => {
            if (!this.consumer.isConnected()) return;
            // Every assignment starts exactly at the group's committed offsets (stable ones: a pending transaction's
            // offsets are waited for), never at a position this member read to before a rebalance: a batch it dropped
            // unsent must be read again.
            this.consumer.assign(committed.map((c) => ({ ...c, offset: c.offset >= 0 ? c.offset : OFFSET_BEGINNING })));
            if (this.#paused) this.consumer.pause([...partitions]);
            this.#assignment = partitions;
            this.#assignmentChangedAt = Date.now();
          })
          .catch((e) => this.#fail(e));
      } else if (err.code === ERR_REVOKE) {
        // A new epoch at once, and another when the partitions are gone: a batch read while a revocation is under
        // way must not be committed (the partitions are leaving; their next owner, maybe this member again, starts
        // at the committed offsets).
        this.#epoch++;
        this.#revokingNow = true;
        // librdkafka waits for unassign(): finish (and commit) the batch in flight first.
        this.#revoking = Promise.resolve(this.#options.onRevoke?.(partitions))
          .catch((e) => this.#fail(e))
          .finally(() => {
            this.#assignment = [];
            this.#assignmentChangedAt = Date.now();
            this.#epoch++;
            this.#revokingNow = false;
            if (!this.consumer.isConnected()) return;
            try {
              this.consumer.unassign();
            } catch (e) {
              // The revocation librdkafka raises while `disconnect` closes the consumer can find the native handle
              // already closed (it throws "KafkaConsumer is disconnected"): the close releases the partitions itself.
              // Thrown here, it was an uncaught exception that failed a clean SIGTERM with exit 1.
              if (!this.#closing) this.#fail(e);
            }
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
        ...kafkaSecurityConfig(),
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
    await authenticateKafkaClient(this.consumer);
    await new Promise<void>((resolve, reject) => {
      this.consumer.connect({ timeout: 15_000 }, (err) => {
        if (err)
          reject(
            new VigilError(
              'KAFKA_UNAVAILABLE',
              `cannot reach Kafka at ${this.#options.brokers}: ${err.message}${brokerCause(this.consumer)}${kafkaConnectHint()}`,
              {
                cause: err,
              },
            ),
          );
        else resolve();
      });
    });
    this.consumer.subscribe([...this.#options.topics]);
  }

  get assignment(): readonly TopicPartition[] {
    return this.#assignment;
  }

  /**
   * Changes when a revocation starts and when it ends. A batch may only be committed if the epoch did not move while
   * it was read and processed and no revocation is under way: otherwise it is dropped, and read again from the
   * committed offsets by the partitions' next owner (every assignment starts there, see the rebalance callback).
   * An assignment alone does not move the epoch: records delivered after it come from its own positions.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** True between the start of a revocation and the release of the partitions. */
  get revoking(): boolean {
    return this.#revokingNow;
  }

  #revokingNow = false;

  /**
   * How long this member has held partitions and received nothing from them, given when its last record arrived.
   * Zero while it holds none (a rebalance, or a dead member's partitions awaiting its session timeout, is not
   * idleness): `--stop-when-idle` stops only a member that had work to receive and got none.
   */
  idleFor(lastRecordAt: number, now = Date.now()): number {
    if (this.#assignment.length === 0) return 0;
    return now - Math.max(lastRecordAt, this.#assignmentChangedAt);
  }

  /**
   * Up to `max` messages from any assigned partitions, returning once `max` are in hand or the linger time has passed
   * since the call, whichever comes first.
   *
   * node-rdkafka's `consume(n)` applies its timeout per message, so under a steady stream one call only returns once
   * `n` messages have arrived (at 20k/s, 12,000 take 600 ms: that was the latency floor). Reading in chunks with the
   * remaining linger as each chunk's timeout bounds a call's wait by the linger (plus one chunk) at any rate, while a
   * backlog still fills `max` at once (queued messages come back without waiting).
   */
  consume(max: number): Promise<ConsumedMessage[]> {
    if (this.#pendingError) {
      const e = this.#pendingError;
      this.#pendingError = null;
      return Promise.reject(e);
    }
    const deadline = Date.now() + (this.#options.lingerMs ?? 100);
    const out: ConsumedMessage[] = [];
    return new Promise((resolve, reject) => {
      this.#onError = reject;
      const next = (): void => {
        const want = Math.min(max - out.length, CONSUME_CHUNK);
        this.consumer.setDefaultConsumeTimeout(Math.max(1, deadline - Date.now()));
        this.consumer.consume(want, (err, messages) => {
          if (err) {
            this.#onError = null;
            reject(new VigilError('KAFKA_UNAVAILABLE', `consume failed: ${err.message}`, { cause: err }));
            return;
          }
          for (const m of messages) out.push(toConsumed(m));
          if (out.length >= max || messages.length < want || Date.now() >= deadline) {
            this.#onError = null;
            resolve(out);
            return;
          }
          next();
        });
      };
      next();
    });
  }

  /** Stops fetching on every assigned partition (and on partitions assigned later) until `resumeAll`. */
  pauseAll(): void {
    this.#paused = true;
    if (this.#assignment.length > 0) this.consumer.pause([...this.#assignment]);
  }

  resumeAll(): void {
    this.#paused = false;
    if (this.#assignment.length > 0) this.consumer.resume([...this.#assignment]);
  }

  get paused(): boolean {
    return this.#paused;
  }

  #paused = false;

  /**
   * Moves the still-assigned partitions among `partitions` back to the group's committed offsets: after a batch was
   * dropped (see `epoch`), its records are read again by this member when it kept the partitions (a partition it lost
   * is read from the same offsets by its new owner; one under revocation will be re-assigned from them).
   */
  async rewindToCommitted(partitions: readonly TopicPartition[]): Promise<void> {
    const owned = partitions.filter((p) =>
      this.#assignment.some((a) => a.topic === p.topic && a.partition === p.partition),
    );
    if (owned.length === 0 || this.#revokingNow) return;
    const committed = await this.committed(owned, 120_000);
    for (const c of committed) {
      if (!this.#assignment.some((a) => a.topic === c.topic && a.partition === c.partition)) continue;
      await new Promise<void>((resolve) =>
        this.consumer.seek(
          { topic: c.topic, partition: c.partition, offset: c.offset >= 0 ? c.offset : OFFSET_BEGINNING },
          0,
          () => resolve(),
        ),
      );
    }
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
    this.#closing = true;
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
  }

  /** Set once `disconnect` has begun closing the consumer. */
  #closing = false;
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
