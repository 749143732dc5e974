/**
 * Pieces of the model-governance integration test (models.test.ts) that talk to the real Kafka: a follower that reads
 * a topic from its beginning (read_committed) for as long as the test runs, a feeder of simulated records (in
 * batches, or a steady trickle), consumer-group barriers (everything produced so far is committed by a group), and a
 * gauge read from a worker's /metrics.
 */
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { PlainProducer, type ProducerRecord } from '../../adapters/kafka/producer.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { envelopeSchemaId, framedRecords } from '../../simulator/kafka.ts';
import type { SimulateOptions } from '../../simulator/simulate.ts';
import { waitFor } from '../support/process.ts';

const brokers = () => resolveEndpoints().kafkaBrokers;
/** librdkafka's RD_KAFKA_OFFSET_BEGINNING. */
const OFFSET_BEGINNING = -2;

function connected(consumer: Kafka.KafkaConsumer): Promise<void> {
  return new Promise((resolve, reject) => consumer.connect({ timeout: 10_000 }, (e) => (e ? reject(e) : resolve())));
}

function disconnected(consumer: Kafka.KafkaConsumer): Promise<void> {
  return new Promise((resolve) => consumer.disconnect(() => resolve()));
}

async function partitionsOf(consumer: Kafka.KafkaConsumer, topic: string): Promise<number[]> {
  const metadata = await new Promise<Kafka.Metadata>((resolve, reject) =>
    consumer.getMetadata({ topic, timeout: 10_000 }, (e, m) => (e ? reject(e) : resolve(m))),
  );
  const partitions = metadata.topics.find((t) => t.name === topic)?.partitions ?? [];
  if (partitions.length === 0) throw new Error(`topic ${topic} does not exist`);
  return partitions.map((p) => p.id).sort((a, b) => a - b);
}

function highWatermark(consumer: Kafka.KafkaConsumer, topic: string, partition: number): Promise<number> {
  return new Promise((resolve, reject) =>
    consumer.queryWatermarkOffsets(topic, partition, 10_000, (e, w) => (e ? reject(e) : resolve(w.highOffset))),
  );
}

/** One message as the follower kept it. */
export interface Seen {
  readonly partition: number;
  readonly offset: number;
  /** The producer's timestamp (epoch ms). */
  readonly timestamp: number;
  readonly value: Buffer;
}

/** Reads a topic from its beginning, committed records only, in the background, until closed. */
export class TopicFollower {
  readonly topic: string;
  readonly messages: Seen[] = [];
  readonly #consumer: Kafka.KafkaConsumer;
  readonly #partitions: number[];
  readonly #last = new Map<number, number>();
  #closed = false;
  readonly #loop: Promise<void>;

  private constructor(topic: string, consumer: Kafka.KafkaConsumer, partitions: number[]) {
    this.topic = topic;
    this.#consumer = consumer;
    this.#partitions = partitions;
    this.#loop = this.#run();
  }

  static async open(topic: string): Promise<TopicFollower> {
    const consumer = new Kafka.KafkaConsumer(
      {
        'metadata.broker.list': brokers(),
        'group.id': `it-follow-${ulid()}`,
        'enable.auto.commit': false,
        'isolation.level': 'read_committed',
        'fetch.wait.max.ms': 50,
        log_level: 0,
      } as Kafka.ConsumerGlobalConfig,
      { 'auto.offset.reset': 'earliest' },
    );
    await connected(consumer);
    const partitions = await partitionsOf(consumer, topic);
    consumer.assign(partitions.map((partition) => ({ topic, partition, offset: OFFSET_BEGINNING })));
    consumer.setDefaultConsumeTimeout(100);
    return new TopicFollower(topic, consumer, partitions);
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      let batch: Kafka.Message[];
      try {
        batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
          this.#consumer.consume(2_000, (e, m) => (e ? reject(e) : resolve(m))),
        );
      } catch {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const m of batch) {
        this.messages.push({
          partition: m.partition,
          offset: m.offset,
          timestamp: m.timestamp ?? 0,
          value: m.value ?? Buffer.alloc(0),
        });
        this.#last.set(m.partition, m.offset);
      }
    }
  }

  /** The last data offset seen per partition (absent: none yet). */
  lastOffset(partition: number): number | undefined {
    return this.#last.get(partition);
  }

  get partitions(): readonly number[] {
    return this.#partitions;
  }

  /** Resolves once the follower has read everything committed on the topic when called (its position at the ends). */
  async caughtUp(timeoutMs = 60_000): Promise<void> {
    const ends = new Map<number, number>();
    for (const p of this.#partitions) ends.set(p, await highWatermark(this.#consumer, this.topic, p));
    await waitFor(
      `${this.topic} read to its end`,
      () =>
        this.#partitions.every((partition) => {
          const end = ends.get(partition) ?? 0;
          if (end === 0) return true;
          // Transaction markers take offsets too: the position (past them), not the last record seen, says where we are.
          const [position] = this.#consumer.position([{ topic: this.topic, partition }]);
          return (position?.offset ?? -1) >= end;
        }),
      timeoutMs,
      50,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#loop;
    await disconnected(this.#consumer);
  }
}

/** A consumer group's committed offset per partition of `topic` (0 where it has committed none). */
export async function committedOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
  // Same group id, but never subscribed: it reads the group's offsets without joining it.
  const consumer = new Kafka.KafkaConsumer(
    { 'metadata.broker.list': brokers(), 'group.id': groupId, 'enable.auto.commit': false, log_level: 0 },
    {},
  );
  await connected(consumer);
  try {
    const partitions = await partitionsOf(consumer, topic);
    const committed = await new Promise<Kafka.TopicPartitionOffset[]>((resolve, reject) =>
      consumer.committed(
        partitions.map((partition) => ({ topic, partition })),
        10_000,
        (e, tps) => (e ? reject(e) : resolve(tps)),
      ),
    );
    return new Map(committed.map((tp) => [tp.partition, Math.max(0, tp.offset ?? 0)]));
  } finally {
    await disconnected(consumer);
  }
}

/**
 * Waits until `groupId` has committed everything on `topic` up to `ends` (partition -> next offset): the group's
 * outputs for those records are committed too (the workers commit offsets in the outputs' transaction).
 */
export async function groupCommitted(
  groupId: string,
  topic: string,
  ends: ReadonlyMap<number, number>,
  timeoutMs = 120_000,
): Promise<void> {
  await waitFor(
    `group ${groupId} to commit ${topic}`,
    async () => {
      const committed = await committedOffsets(groupId, topic);
      return [...ends].every(([partition, end]) => (committed.get(partition) ?? 0) >= end);
    },
    timeoutMs,
    250,
  );
}

/** Every partition's high watermark (non-transactional topics: the next offset to be written). */
export async function topicEnds(topic: string): Promise<Map<number, number>> {
  const consumer = new Kafka.KafkaConsumer(
    { 'metadata.broker.list': brokers(), 'group.id': `it-ends-${ulid()}`, log_level: 0 },
    {},
  );
  await connected(consumer);
  try {
    const ends = new Map<number, number>();
    for (const p of await partitionsOf(consumer, topic)) ends.set(p, await highWatermark(consumer, topic, p));
    return ends;
  } finally {
    await disconnected(consumer);
  }
}

/** A simulated fleet's records onto the raw topic, a batch at a time or as a steady trickle, each record once. */
export class Feeder {
  readonly #producer: PlainProducer;
  readonly #records: Generator<{ key: string; value: Buffer }>;
  readonly #topic: string;
  produced = 0;

  private constructor(producer: PlainProducer, records: Generator<{ key: string; value: Buffer }>, topic: string) {
    this.#producer = producer;
    this.#records = records;
    this.#topic = topic;
  }

  static async open(simulation: SimulateOptions, topic: string): Promise<Feeder> {
    const endpoints = resolveEndpoints();
    const schemaId = await envelopeSchemaId(endpoints.schemaRegistryUrl);
    const producer = new PlainProducer(endpoints.kafkaBrokers);
    await producer.connect();
    return new Feeder(producer, framedRecords(simulation, schemaId), topic);
  }

  /** Produces the next `n` records (fewer when the simulation ends) and waits for their acknowledgement. */
  async send(n: number): Promise<number> {
    const chunk: ProducerRecord[] = [];
    for (let i = 0; i < n; i++) {
      const next = this.#records.next();
      if (next.done) break;
      chunk.push({ topic: this.#topic, key: next.value.key, value: next.value.value });
    }
    if (chunk.length > 0) await this.#producer.send(chunk);
    this.produced += chunk.length;
    return chunk.length;
  }

  /** `perTick` records every `tickMs` until stopped (stop resolves after the last tick's records are acknowledged). */
  trickle(perTick: number, tickMs: number): { stop(): Promise<void> } {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        const started = Date.now();
        if ((await this.send(perTick)) === 0) return;
        await new Promise((r) => setTimeout(r, Math.max(0, tickMs - (Date.now() - started))));
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }

  async close(): Promise<void> {
    await this.#producer.disconnect();
  }
}

/** A gauge or counter's value on a process's /metrics (the series with exactly these labels; null: not there). */
export async function metricValue(port: number, name: string, labels = ''): Promise<number | null> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const series = labels === '' ? name : `${name}{${labels}}`;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return null;
}
