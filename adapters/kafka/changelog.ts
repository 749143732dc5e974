/**
 * The Kafka side of state changelogs (runtime/state/changelog.ts): reading one changelog partition back to its end.
 *
 * A restore reads with `isolation.level=read_committed`, so a change of an aborted transaction is never applied, and it
 * must start only once the partition's previous owner has finished: the caller first waits for the group's *stable*
 * committed offsets (the coordinator holds them back while a transaction with offsets is open), after which the only
 * writer of the changelog partition (its input partition's owner) has committed or aborted. The end is then the high
 * watermark, queried fresh; the read is done when the consumer's position (the next offset to read) reaches it.
 * Transaction markers take offsets and are never delivered, so "the last record delivered" is not the test; librdkafka
 * moves the position past them (measured: 3 committed records and a marker read back give position 4 = the high
 * watermark). Partition EOF with nothing more delivered ends the read too (the fetcher found nothing below the end).
 */
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { VigilError } from '../../runtime/errors.ts';
import { authenticateKafkaClient } from './oauth.ts';
import { kafkaConnectHint, kafkaSecurityConfig } from './security.ts';

export interface RestoreSource {
  readonly brokers: string;
  readonly topic: string;
  readonly partition: number;
  /** Gives up (KAFKA_UNAVAILABLE, retriable) when the end is not reached in this long. Default 120 s. */
  readonly timeoutMs?: number;
}

export interface RestoreReport {
  /** Records read (applied or skipped by the caller). */
  readonly records: number;
  /** The offset the partition was read up to (exclusive): its end when the restore began. */
  readonly endOffset: number;
  readonly ms: number;
}

const OFFSET_BEGINNING = -2;
const CHUNK = 20_000;

/**
 * Reads changelog partition `source.partition` from its first record to its current end, calling `apply` for each
 * record in offset order (value null: a tombstone).
 *
 * @example
 * const report = await readChangelogPartition({ brokers, topic, partition: 3 }, (key, value) =>
 *   state.restore(3, key, value, counts));
 */
export async function readChangelogPartition(
  source: RestoreSource,
  apply: (key: string, value: string | null) => void,
): Promise<RestoreReport> {
  const started = Date.now();
  const timeoutMs = source.timeoutMs ?? 120_000;
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': source.brokers,
      // Assigned, never subscribed and never committing: the group id is required by the client, not used.
      'group.id': `vigil-restore-${ulid()}`,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      'enable.partition.eof': true,
      'isolation.level': 'read_committed',
      'fetch.wait.max.ms': 20,
      // A restore reads one partition flat out: large fetches, a deep local queue (1 MB per partition per fetch, the
      // default, made it fetch-bound at ~13 s per million changes; see bench/micro/state-restore.bench.ts).
      'max.partition.fetch.bytes': 16_777_216,
      'fetch.max.bytes': 67_108_864,
      'queued.max.messages.kbytes': 262_144,
      log_level: 0,
      ...kafkaSecurityConfig(),
    } as Kafka.ConsumerGlobalConfig,
    {},
  );
  await authenticateKafkaClient(consumer);
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 15_000 }, (err) =>
      err
        ? reject(
            new VigilError(
              'KAFKA_UNAVAILABLE',
              `changelog restore cannot reach Kafka: ${err.message}${kafkaConnectHint()}`,
              { cause: err },
            ),
          )
        : resolve(),
    ),
  );
  let records = 0;
  try {
    const { lowOffset, highOffset } = await new Promise<Kafka.WatermarkOffsets>((resolve, reject) =>
      consumer.queryWatermarkOffsets(source.topic, source.partition, 15_000, (err, offsets) =>
        err
          ? reject(
              new VigilError(
                'KAFKA_UNAVAILABLE',
                `changelog ${source.topic}[${source.partition}]: watermarks: ${err.message}`,
                { cause: err },
              ),
            )
          : resolve(offsets),
      ),
    );
    if (highOffset <= lowOffset) return { records: 0, endOffset: highOffset, ms: Date.now() - started };
    consumer.assign([{ topic: source.topic, partition: source.partition, offset: OFFSET_BEGINNING }]);
    consumer.setDefaultConsumeTimeout(100);
    let atEnd = false;
    consumer.on('partition.eof', () => {
      atEnd = true;
    });
    const deadline = started + timeoutMs;
    for (;;) {
      atEnd = false;
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(CHUNK, (err, messages) => (err ? reject(err) : resolve(messages))),
      );
      for (const m of batch) {
        if (m.offset >= highOffset) break; // written after the restore began: not ours to apply (never happens)
        records++;
        const key = m.key === null || m.key === undefined ? '' : m.key.toString();
        apply(key, m.value === null || m.value === undefined ? null : m.value.toString('utf8'));
      }
      const [position] = consumer.position([{ topic: source.topic, partition: source.partition }]);
      if ((position?.offset ?? -1) >= highOffset || (atEnd && batch.length === 0)) break;
      if (Date.now() > deadline) {
        throw new VigilError(
          'KAFKA_UNAVAILABLE',
          `changelog ${source.topic}[${source.partition}]: restore did not reach offset ${highOffset} in ${timeoutMs} ms`,
        );
      }
    }
    return { records, endOffset: highOffset, ms: Date.now() - started };
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}
