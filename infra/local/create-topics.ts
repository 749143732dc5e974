/**
 * Creates the project's topics (infra/local/topics.ts) through node-rdkafka's AdminClient, idempotently: a topic that
 * exists already is kept (and grown to the declared partition count if it has fewer; Kafka cannot shrink one).
 */
import Kafka from 'node-rdkafka';
import { VigilError } from '../../runtime/errors.ts';
import { kafkaMetadata } from './health.ts';
import { TOPIC_LIST, type TopicSpec } from './topics.ts';

export type TopicOutcome = 'created' | 'exists' | 'grown' | 'more-partitions';

export interface TopicResult {
  readonly name: string;
  readonly partitions: number;
  readonly outcome: TopicOutcome;
}

export interface EnsureTopicsOptions {
  /** 1 on the local single-node broker; -1 lets an external cluster use its default replication factor. */
  readonly replicationFactor: number;
  readonly timeoutMs?: number;
  readonly specs?: readonly TopicSpec[];
  /** librdkafka security settings for a secured broker (infra/local/secure.ts adminKafkaSecurity). */
  readonly security?: Readonly<Record<string, string>>;
}

function adminCall(run: (cb: (error: Kafka.LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}

function kafkaError(message: string, cause: unknown): VigilError {
  return new VigilError('KAFKA_UNAVAILABLE', message, { cause });
}

/**
 * @example
 * await ensureTopics('127.0.0.1:19092', { replicationFactor: 1 });
 */
export async function ensureTopics(brokers: string, options: EnsureTopicsOptions): Promise<TopicResult[]> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const specs = options.specs ?? TOPIC_LIST;
  const admin = Kafka.AdminClient.create({
    ...options.security,
    'metadata.broker.list': brokers,
    'client.id': 'vigil-stack-admin',
    log_level: 0,
  });
  const outcomes = new Map<string, TopicOutcome>();
  try {
    for (const spec of specs) {
      try {
        await adminCall((cb) =>
          admin.createTopic(
            {
              topic: spec.name,
              num_partitions: spec.partitions,
              replication_factor: options.replicationFactor,
              config: { ...spec.config },
            },
            timeoutMs,
            cb,
          ),
        );
        outcomes.set(spec.name, 'created');
      } catch (error) {
        if ((error as Kafka.LibrdKafkaError).code !== Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS) {
          throw kafkaError(`could not create topic ${spec.name}`, error);
        }
        outcomes.set(spec.name, 'exists');
      }
    }
    const existing = await topicPartitions(brokers, timeoutMs, options.security);
    for (const spec of specs) {
      const have = existing.get(spec.name) ?? 0;
      if (outcomes.get(spec.name) !== 'exists' || have === spec.partitions) continue;
      if (have > spec.partitions) {
        outcomes.set(spec.name, 'more-partitions');
        continue;
      }
      try {
        await adminCall((cb) => admin.createPartitions(spec.name, spec.partitions, timeoutMs, cb));
      } catch (error) {
        throw kafkaError(`could not grow topic ${spec.name} to ${spec.partitions} partitions`, error);
      }
      outcomes.set(spec.name, 'grown');
    }
  } finally {
    admin.disconnect();
  }
  return specs.map((spec) => ({ name: spec.name, partitions: spec.partitions, outcome: outcomes.get(spec.name)! }));
}

/** Partition count of every topic the cluster reports. */
export async function topicPartitions(
  brokers: string,
  timeoutMs = 10_000,
  security: Readonly<Record<string, string>> = {},
): Promise<Map<string, number>> {
  try {
    const metadata = await kafkaMetadata(brokers, timeoutMs, security);
    return new Map(metadata.topics.map((topic) => [topic.name, topic.partitions.length]));
  } catch (error) {
    throw kafkaError('could not read topic metadata', error);
  }
}

/**
 * Creates every project topic under `<prefix>.` (plus `extra` specs): an isolated namespace for an integration-test
 * run or a benchmark, matching what a process started with `VIGIL_TOPIC_PREFIX=<prefix>` reads and writes.
 * The names in TOPIC_SPECS must be unprefixed in the calling process.
 *
 * @example
 * const name = await ensureTopicNamespace(brokers, 'it-vitals-01j…'); // name('vigil.telemetry.raw')
 */
export async function ensureTopicNamespace(
  brokers: string,
  prefix: string,
  extra: readonly TopicSpec[] = [],
  security?: Readonly<Record<string, string>>,
): Promise<(base: string) => string> {
  const name = (base: string) => `${prefix}.${base}`;
  const specs = [...TOPIC_LIST.map((s) => ({ ...s, name: name(s.name) })), ...extra];
  await ensureTopics(brokers, { replicationFactor: 1, specs, ...(security ? { security } : {}) });
  return name;
}
