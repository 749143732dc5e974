/**
 * A control log on a Kafka topic (the compacted `vigil.control.device-identity`): every gateway and worker reads the
 * whole topic from its first record and keeps following it (Flink's broadcast state), so nothing is committed and no
 * consumer group is joined: partitions are assigned at their beginning.
 *
 * Appends go through an idempotent producer with acks=all and resolve on the record's own delivery report, so a
 * change is on every in-sync replica before `vigil devices` says it is done. `caughtUp` resolves when the follower's
 * position reaches the high watermarks read when it started: everything written before then has been applied.
 */
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import type { ControlLog, FollowOptions } from '../../identity/types.ts';
import { VigilError } from '../../runtime/errors.ts';
import { authenticateKafkaClient } from './oauth.ts';
import { kafkaConnectHint, kafkaSecurityConfig } from './security.ts';

export interface KafkaControlLogOptions<T> {
  readonly brokers: string;
  readonly topic: string;
  /** Turns a record's JSON value into a record; throws when it is not one (skipped and reported). */
  readonly parse: (value: unknown) => T;
  /** Gives up connecting or reading watermarks after this long. Default 15 s. */
  readonly timeoutMs?: number;
}

/** librdkafka's RD_KAFKA_OFFSET_BEGINNING. */
const OFFSET_BEGINNING = -2;
const CONSUME_BATCH = 500;

function unavailable(what: string, error: { message: string }): VigilError {
  return new VigilError('KAFKA_UNAVAILABLE', `${what}: ${error.message}${kafkaConnectHint()}`, { cause: error });
}

export class KafkaControlLog<T> implements ControlLog<T> {
  readonly #options: KafkaControlLogOptions<T>;
  readonly #timeoutMs: number;
  #producer: Promise<Kafka.Producer> | undefined;
  readonly #inFlight = new Map<number, { resolve(): void; reject(error: Error): void }>();
  #nextOpaque = 0;
  readonly #followers = new Set<{ close(): Promise<void> }>();

  /**
   * @example
   * const log = new KafkaControlLog({ brokers, topic: TOPICS.deviceIdentity, parse: parseIdentityChange });
   * await log.append(changeKey(change), change); // on every in-sync replica
   */
  constructor(options: KafkaControlLogOptions<T>) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
  }

  #connectProducer(): Promise<Kafka.Producer> {
    this.#producer ??= new Promise<Kafka.Producer>((resolve, reject) => {
      const producer = new Kafka.Producer({
        'metadata.broker.list': this.#options.brokers,
        'enable.idempotence': true,
        acks: 'all',
        'linger.ms': 0,
        dr_cb: true,
        log_level: 0,
        ...kafkaSecurityConfig(),
      } as Kafka.ProducerGlobalConfig);
      producer.on('delivery-report', (error, report) => {
        const waiter = this.#inFlight.get(report.opaque as number);
        if (!waiter) return;
        this.#inFlight.delete(report.opaque as number);
        if (error) waiter.reject(unavailable(`control record not delivered to ${this.#options.topic}`, error));
        else waiter.resolve();
      });
      const connect = (): void => {
        producer.connect({ timeout: this.#timeoutMs }, (error) => {
          if (error) reject(unavailable(`cannot reach Kafka at ${this.#options.brokers}`, error));
          else {
            producer.setPollInterval(20);
            resolve(producer);
          }
        });
      };
      authenticateKafkaClient(producer).then(connect, reject);
    });
    return this.#producer;
  }

  async append(key: string, record: T): Promise<void> {
    const producer = await this.#connectProducer();
    const opaque = this.#nextOpaque++;
    const delivered = new Promise<void>((resolve, reject) => this.#inFlight.set(opaque, { resolve, reject }));
    try {
      producer.produce(
        this.#options.topic,
        null,
        Buffer.from(JSON.stringify(record)),
        Buffer.from(key),
        Date.now(),
        opaque,
      );
    } catch (error) {
      this.#inFlight.delete(opaque);
      throw unavailable(`cannot produce to ${this.#options.topic}`, error as Error);
    }
    return delivered;
  }

  async follow(
    onRecord: (record: T) => void,
    options: FollowOptions = {},
  ): Promise<{ readonly caughtUp: Promise<void>; close(): Promise<void> }> {
    const { brokers, topic } = this.#options;
    const consumer = new Kafka.KafkaConsumer(
      {
        'metadata.broker.list': brokers,
        // Assigned, never subscribed and never committing: the client requires a group id; nothing uses it.
        'group.id': `vigil-control-${ulid()}`,
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        'fetch.wait.max.ms': 100,
        log_level: 0,
        ...kafkaSecurityConfig(),
      } as Kafka.ConsumerGlobalConfig,
      { 'auto.offset.reset': 'earliest' },
    );
    await authenticateKafkaClient(consumer);
    await new Promise<void>((resolve, reject) =>
      consumer.connect({ timeout: this.#timeoutMs }, (error) =>
        error ? reject(unavailable(`cannot reach Kafka at ${brokers}`, error)) : resolve(),
      ),
    );
    let ends: Map<number, number>;
    try {
      ends = await this.#highWatermarks(consumer);
    } catch (error) {
      await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
      throw error;
    }
    const next = new Map<number, number>([...ends.keys()].map((p) => [p, 0]));
    consumer.assign([...ends.keys()].map((partition) => ({ topic, partition, offset: OFFSET_BEGINNING })));
    consumer.setDefaultConsumeTimeout(100);

    let markCaughtUp: () => void = () => undefined;
    const caughtUp = new Promise<void>((resolve) => {
      markCaughtUp = resolve;
    });
    const reachedEnds = (): boolean => {
      for (const [partition, end] of ends) {
        if ((next.get(partition) ?? 0) >= end) continue;
        // Compaction leaves gaps: the consumer's position, not the last offset seen, says where it stands.
        const [position] = consumer.position([{ topic, partition }]);
        if ((position?.offset ?? -1) < end) return false;
      }
      return true;
    };
    const deliver = (message: Kafka.Message): void => {
      next.set(message.partition, message.offset + 1);
      const key = message.key === null || message.key === undefined ? '' : message.key.toString();
      let record: T;
      try {
        record = this.#options.parse(JSON.parse((message.value ?? Buffer.alloc(0)).toString('utf8')));
      } catch (error) {
        options.onInvalid?.(key, error);
        return;
      }
      onRecord(record);
    };

    let closed = false;
    let caught = false;
    const loop = (async () => {
      while (!closed) {
        let batch: Kafka.Message[];
        try {
          batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
            consumer.consume(CONSUME_BATCH, (error, messages) => (error ? reject(error) : resolve(messages))),
          );
        } catch {
          // A transient broker error: librdkafka reconnects by itself; ask again shortly.
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        for (const message of batch) deliver(message);
        if (!caught && reachedEnds()) {
          caught = true;
          markCaughtUp();
        }
      }
    })();

    const follower = {
      caughtUp,
      close: async (): Promise<void> => {
        if (closed) return;
        closed = true;
        await loop;
        this.#followers.delete(follower);
        await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
      },
    };
    this.#followers.add(follower);
    return follower;
  }

  /** Each partition's high watermark now: the end `caughtUp` waits for. */
  async #highWatermarks(consumer: Kafka.KafkaConsumer): Promise<Map<number, number>> {
    const { topic } = this.#options;
    const metadata = await new Promise<Kafka.Metadata>((resolve, reject) =>
      consumer.getMetadata({ topic, timeout: this.#timeoutMs }, (error, data) =>
        error ? reject(unavailable(`no metadata for ${topic}`, error)) : resolve(data),
      ),
    );
    const partitions = metadata.topics.find((t) => t.name === topic)?.partitions ?? [];
    if (partitions.length === 0) {
      throw new VigilError(
        'CONFIG_INVALID',
        `topic ${topic} does not exist: run vigil stack up (or create it with infra/local/create-topics.ts)`,
      );
    }
    const ends = new Map<number, number>();
    for (const { id } of partitions) {
      const { highOffset } = await new Promise<Kafka.WatermarkOffsets>((resolve, reject) =>
        consumer.queryWatermarkOffsets(topic, id, this.#timeoutMs, (error, offsets) =>
          error ? reject(unavailable(`${topic}[${id}]: watermarks`, error)) : resolve(offsets),
        ),
      );
      ends.set(id, highOffset);
    }
    return ends;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#followers].map((f) => f.close()));
    const producer = this.#producer;
    this.#producer = undefined;
    if (!producer) return;
    const connected = await producer.catch(() => undefined);
    if (!connected) return;
    await new Promise<void>((resolve) => connected.flush(10_000, () => resolve()));
    await new Promise<void>((resolve) => connected.disconnect(() => resolve()));
  }
}
