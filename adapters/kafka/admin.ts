/**
 * Topics a process creates for itself (Kafka Streams creates its internal changelog topics the same way): created when
 * missing, checked when present. Project-wide topics are created by the stack from infra/local/topics.ts instead.
 */
import Kafka from 'node-rdkafka';
import { VigilError } from '../../runtime/errors.ts';
import { authenticateKafkaClient, kafkaOauthToken } from './oauth.ts';
import { brokerCause, kafkaConnectHint, kafkaSecurityConfig } from './security.ts';

export interface OwnTopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly config: Readonly<Record<string, string>>;
}

/**
 * Creates `spec.name` when it does not exist (the cluster's default replication factor) and returns its partition
 * count, which may differ from `spec.partitions` when the topic existed already: the caller decides what that means.
 * A topic that another process has just created (two workers of a group starting together) reads as absent for a
 * moment in the answering broker's metadata: the count is waited for, never reported as 0, so the second process
 * neither refuses a topic that is fine nor proceeds before its partitions can be used.
 *
 * @example
 * const partitions = await ensureOwnTopic(brokers, { name: 'vigil.state.vitals.changelog', partitions: 6, config });
 */
export async function ensureOwnTopic(brokers: string, spec: OwnTopicSpec, timeoutMs = 30_000): Promise<number> {
  const admin = Kafka.AdminClient.create(
    {
      'metadata.broker.list': brokers,
      'client.id': 'vigil-admin',
      log_level: 0,
      ...kafkaSecurityConfig(),
    },
    await kafkaOauthToken(),
  );
  try {
    await new Promise<void>((resolve, reject) =>
      admin.createTopic(
        { topic: spec.name, num_partitions: spec.partitions, replication_factor: -1, config: { ...spec.config } },
        timeoutMs,
        (error) =>
          !error || error.code === Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS
            ? resolve()
            : reject(
                new VigilError('KAFKA_UNAVAILABLE', `could not create topic ${spec.name}: ${error.message}`, {
                  cause: error,
                }),
              ),
      ),
    );
  } finally {
    admin.disconnect();
  }
  const deadline = Date.now() + timeoutMs;
  for (let delayMs = 50; ; delayMs = Math.min(2 * delayMs, 1_000)) {
    const partitions = await partitionCount(brokers, spec.name, timeoutMs);
    if (partitions > 0) return partitions;
    if (Date.now() >= deadline) {
      throw new VigilError(
        'KAFKA_UNAVAILABLE',
        `topic ${spec.name} exists but none of its partitions is visible after ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** How many partitions `topic` has (KAFKA_UNAVAILABLE when the cluster cannot say; 0 when it does not exist). */
export async function partitionCount(brokers: string, topic: string, timeoutMs = 30_000): Promise<number> {
  return (await partitionCounts(brokers, [topic], timeoutMs)).get(topic) ?? 0;
}

/** How many partitions each of `topics` has, asked over one connection (0 for a topic that does not exist). */
export async function partitionCounts(
  brokers: string,
  topics: readonly string[],
  timeoutMs = 30_000,
): Promise<Map<string, number>> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': brokers,
    // A metadata request never creates the topic it asks about (librdkafka's producer default would, on a broker
    // that allows it): an absent topic must read as absent.
    'allow.auto.create.topics': false,
    log_level: 0,
    ...kafkaSecurityConfig(),
  } as Kafka.ProducerGlobalConfig);
  await authenticateKafkaClient(producer);
  await new Promise<void>((resolve, reject) =>
    producer.connect({ timeout: timeoutMs }, (error) =>
      error
        ? reject(
            new VigilError(
              'KAFKA_UNAVAILABLE',
              `cannot reach Kafka at ${brokers}: ${error.message}${brokerCause(producer)}${kafkaConnectHint()}`,
              { cause: error },
            ),
          )
        : resolve(),
    ),
  );
  try {
    const counts = new Map<string, number>();
    for (const topic of topics) {
      const metadata = await new Promise<Kafka.Metadata>((resolve, reject) =>
        producer.getMetadata({ topic, timeout: timeoutMs }, (error, data) =>
          error
            ? reject(
                new VigilError('KAFKA_UNAVAILABLE', `no metadata for ${topic}: ${error.message}`, { cause: error }),
              )
            : resolve(data),
        ),
      );
      counts.set(topic, metadata.topics.find((t) => t.name === topic)?.partitions.length ?? 0);
    }
    return counts;
  } finally {
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
}
