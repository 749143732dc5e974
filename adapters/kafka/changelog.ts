/**
 * The Kafka side of state changelogs (runtime/state/changelog.ts): reading one changelog partition back to its end.
 *
 * A restore reads with `isolation.level=read_committed`, so a change of an aborted transaction is never applied, and it
 * must start only once the partition's previous owner has finished: the caller first waits for the group's *stable*
 * committed offsets (the coordinator holds them back while a transaction with offsets is open), after which the only
 * writer of the changelog partition (its input partition's owner) has committed or aborted — or is about to: see
 * below. The end is then the high watermark, queried fresh by a read-uncommitted client (read committed, the broker
 * answers the last stable offset instead); the read is done when the consumer's position (the next offset to read)
 * reaches it.
 * Transaction markers take offsets and are never delivered, so "the last record delivered" is not the test; librdkafka
 * moves the position past them (measured: 3 committed records and a marker read back give position 4 = the high
 * watermark). The fetcher reporting the partition's end at or past that offset ends the read too (records of an aborted
 * transaction are never delivered, so the position may stop short of them).
 *
 * A transaction still open below the end is waited for, never read past: read committed, the partition seems to end at
 * its first record (the last stable offset, where librdkafka reports EOF). A new owner meets one right after a
 * rebalance when the previous owner's last commit has reached the group's offsets (the stable-offset wait is over)
 * but its marker has not yet reached the changelog partition (the coordinator writes markers partition by partition):
 * stopping there lost that batch's claims, and duplicates of its events passed as new (test/integration/
 * changelog-restore.test.ts). A zombie's open transaction is aborted by the coordinator within its
 * transaction.timeout.ms (30 s for workers), well inside the restore's timeout.
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
  // The end, asked read uncommitted: the high watermark. Read committed, the broker answers the last stable offset,
  // which stops short of a transaction still open (see above).
  const probe = await connectedConsumer(source, { 'isolation.level': 'read_uncommitted' });
  let lowOffset: number;
  let highOffset: number;
  try {
    ({ lowOffset, highOffset } = await watermarks(probe, source));
  } finally {
    await disconnect(probe);
  }
  if (highOffset <= lowOffset) return { records: 0, endOffset: highOffset, ms: Date.now() - started };
  const consumer = await connectedConsumer(source, {
    'enable.partition.eof': true,
    'isolation.level': 'read_committed',
    'fetch.wait.max.ms': 20,
    // A restore reads one partition flat out: large fetches, a deep local queue (1 MB per partition per fetch, the
    // default, made it fetch-bound at ~13 s per million changes; see bench/micro/state-restore.bench.ts).
    'max.partition.fetch.bytes': 16_777_216,
    'fetch.max.bytes': 67_108_864,
    'queued.max.messages.kbytes': 262_144,
  });
  let records = 0;
  try {
    consumer.assign([{ topic: source.topic, partition: source.partition, offset: OFFSET_BEGINNING }]);
    consumer.setDefaultConsumeTimeout(100);
    // Where the fetcher last reported the partition's end: the last stable offset, below `highOffset` while a
    // transaction is open there.
    let endReportedAt = -1;
    consumer.on('partition.eof', (eof) => {
      endReportedAt = Math.max(endReportedAt, eof.offset);
    });
    const deadline = started + timeoutMs;
    for (;;) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(CHUNK, (err, messages) => (err ? reject(err) : resolve(messages))),
      );
      for (const m of batch) {
        if (m.offset >= highOffset) break; // written after the restore began (a fenced zombie's, if any): not ours
        records++;
        const key = m.key === null || m.key === undefined ? '' : m.key.toString();
        apply(key, m.value === null || m.value === undefined ? null : m.value.toString('utf8'));
      }
      const [position] = consumer.position([{ topic: source.topic, partition: source.partition }]);
      if ((position?.offset ?? -1) >= highOffset || endReportedAt >= highOffset) break;
      if (Date.now() > deadline) {
        throw new VigilError(
          'KAFKA_UNAVAILABLE',
          `changelog ${source.topic}[${source.partition}]: restore did not reach offset ${highOffset} in ${timeoutMs} ms` +
            (endReportedAt >= 0 && endReportedAt < highOffset
              ? ` (a transaction open at offset ${endReportedAt} was never committed or aborted)`
              : ''),
        );
      }
    }
    return { records, endOffset: highOffset, ms: Date.now() - started };
  } finally {
    await disconnect(consumer);
  }
}

/** A consumer that is assigned, never subscribed and never commits (the group id is required, not used). */
async function connectedConsumer(
  source: RestoreSource,
  settings: Readonly<Record<string, string | number | boolean>>,
): Promise<Kafka.KafkaConsumer> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': source.brokers,
      'group.id': `vigil-restore-${ulid()}`,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      log_level: 0,
      ...settings,
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
  return consumer;
}

function watermarks(consumer: Kafka.KafkaConsumer, source: RestoreSource): Promise<Kafka.WatermarkOffsets> {
  return new Promise((resolve, reject) =>
    consumer.queryWatermarkOffsets(source.topic, source.partition, 15_000, (err, offsets) =>
      err
        ? reject(
            new VigilError(
              'KAFKA_UNAVAILABLE',
              `changelog ${source.topic}[${source.partition}]: watermarks: ${err.message}`,
              {
                cause: err,
              },
            ),
          )
        : resolve(offsets),
    ),
  );
}

function disconnect(consumer: Kafka.KafkaConsumer): Promise<void> {
  return new Promise((resolve) => consumer.disconnect(() => resolve()));
}
