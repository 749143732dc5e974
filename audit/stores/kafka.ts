/**
 * The audit log on Kafka: TOPICS.auditLog (one partition, so one order; unlimited retention, delete policy: no record
 * is ever compacted away). Key = the entry's index, or `checkpoint/<size>`; value = the record as JSON.
 *
 * One writer at a time, enforced: a writer claims the log with a transactional producer whose id is fixed per topic
 * (`vigil-audit-writer.<topic>`). Claiming fences any earlier writer (its open transaction is aborted, its next commit
 * fails with KAFKA_FENCED) before the new writer reads the log to learn the next index, so two processes (two `vigil
 * query` runs at once) can never write the same index: the fenced one reopens and tries again (`appendOnce`). Appends
 * made while a transaction is in flight go together in the next one.
 *
 * The checkpoint signer process opens the store with `writer: false` and never claims it.
 *
 * Reading goes through the shared control-log follower (adapters/kafka/control-log.ts: partition 0 from its start,
 * read_committed, caught up at the high watermark seen when it started); a value that is not JSON is delivered as
 * `{kind:'unreadable'}` so verify names it.
 *
 * @example
 * const store = openKafkaAuditStore({ brokers: resolveEndpoints().kafkaBrokers, topic: TOPICS.auditLog });
 */

import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import type { KafkaConsumerClient } from '../../adapters/kafka/consumer.ts';
import { KafkaControlLog } from '../../adapters/kafka/control-log.ts';
import { authenticateKafkaClient } from '../../adapters/kafka/oauth.ts';
import { PlainProducer, type ProducerRecord, TransactionalProducer } from '../../adapters/kafka/producer.ts';
import { kafkaSecurityConfig } from '../../adapters/kafka/security.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { AuditRecord, AuditStore } from '../store.ts';

export interface KafkaAuditStoreOptions {
  readonly brokers: string;
  readonly topic: string;
  /** Writers of one log share it, so each claim fences the one before. Default `vigil-audit-writer.<topic>`. */
  readonly transactionalId?: string;
  /**
   * false for the checkpoint signer: it appends checkpoints only (they take no index, and land after the entries
   * they cover because it read those first), through a plain idempotent producer, so it never fences the writer.
   */
  readonly writer?: boolean;
}

/** Up to the last `n` records of partition 0, read committed; waits at most `timeoutMs` to reach the end. */
async function readTail(brokers: string, topic: string, n: number, timeoutMs = 30_000): Promise<unknown[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': brokers,
      'group.id': `vigil-audit-tail-${ulid()}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
      log_level: 0,
      ...kafkaSecurityConfig(),
    } as Kafka.ConsumerGlobalConfig,
    { 'auto.offset.reset': 'earliest' },
  );
  await authenticateKafkaClient(consumer);
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 15_000 }, (e) =>
      e
        ? reject(new VigilError('KAFKA_UNAVAILABLE', `cannot reach Kafka at ${brokers}: ${e.message}`, { cause: e }))
        : resolve(),
    ),
  );
  try {
    const { lowOffset, highOffset } = await new Promise<Kafka.WatermarkOffsets>((resolve, reject) =>
      consumer.queryWatermarkOffsets(topic, 0, 15_000, (e, w) =>
        e
          ? reject(new VigilError('KAFKA_UNAVAILABLE', `${topic}[0]: watermarks: ${e.message}`, { cause: e }))
          : resolve(w),
      ),
    );
    if (highOffset <= lowOffset) return [];
    // n records need at most 2n offsets back: each transaction adds one commit marker.
    consumer.assign([{ topic, partition: 0, offset: Math.max(lowOffset, highOffset - 2 * n) }]);
    consumer.setDefaultConsumeTimeout(100);
    const records: unknown[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(500, (e, m) => (e ? reject(e) : resolve(m))),
      );
      for (const m of batch) {
        try {
          records.push(JSON.parse(m.value?.toString('utf8') ?? ''));
        } catch {
          records.push({ kind: 'unreadable' });
        }
      }
      const [position] = consumer.position([{ topic, partition: 0 }]);
      if ((position?.offset ?? -1) >= highOffset) return records.slice(-n);
      if (Date.now() > deadline) {
        throw new VigilError('KAFKA_UNAVAILABLE', `could not read the end of ${topic} within ${timeoutMs} ms`);
      }
    }
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

export function openKafkaAuditStore(options: KafkaAuditStoreOptions): AuditStore {
  const reader = new KafkaControlLog<AuditRecord>({
    brokers: options.brokers,
    topic: options.topic,
    parse: (value) => value as AuditRecord,
  });
  let producer: Promise<TransactionalProducer> | null = null;
  let pending: { record: ProducerRecord; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let sending: Promise<void> = Promise.resolve();

  const claim = (): Promise<TransactionalProducer> => {
    producer ??= (async () => {
      const p = new TransactionalProducer(
        options.brokers,
        options.transactionalId ?? `vigil-audit-writer.${options.topic}`,
        {
          'linger.ms': 1,
        },
      );
      await p.connect();
      return p;
    })();
    return producer;
  };

  let plain: Promise<PlainProducer> | null = null;
  const sendPlain = async (records: ProducerRecord[]): Promise<void> => {
    plain ??= (async () => {
      const p = new PlainProducer(options.brokers, { 'linger.ms': 1 });
      await p.connect();
      return p;
    })();
    await (await plain).send(records);
  };

  const sendPending = async (): Promise<void> => {
    const group = pending;
    pending = [];
    if (group.length === 0) return;
    if (options.writer === false) {
      try {
        await sendPlain(group.map((g) => g.record));
        for (const g of group) g.resolve();
      } catch (error) {
        for (const g of group) g.reject(error);
      }
      return;
    }
    try {
      const p = await claim();
      // No consumed offsets ride along: the consumer argument is only read when offsets are given.
      const outcome = await p.commit(
        group.map((g) => g.record),
        [],
        undefined as unknown as KafkaConsumerClient,
      );
      if (outcome === 'aborted') {
        throw new VigilError(
          'KAFKA_TRANSACTION_ABORTED',
          `an audit append to ${options.topic} was aborted: reopen the log`,
        );
      }
      for (const g of group) g.resolve();
    } catch (error) {
      const fenced = error instanceof VigilError && error.code === 'KAFKA_FENCED';
      const e = fenced
        ? new VigilError(
            'KAFKA_FENCED',
            `another audit writer claimed ${options.topic}: reopen the log and append again`,
            {
              cause: error,
            },
          )
        : error;
      for (const g of group) g.reject(e);
    }
  };

  return {
    ...(options.writer === false ? {} : { claimWriter: async () => void (await claim()) }),

    append(key: string, record: AuditRecord): Promise<void> {
      return new Promise((resolve, reject) => {
        pending.push({
          record: { topic: options.topic, partition: 0, key, value: Buffer.from(JSON.stringify(record)) },
          resolve,
          reject,
        });
        // Transactions are chained, so groups reach the partition in the order their records were appended.
        if (pending.length === 1) sending = sending.then(sendPending);
      });
    },

    tail: (n: number) => readTail(options.brokers, options.topic, n),

    follow(onRecord: (record: AuditRecord) => void) {
      return reader.follow(onRecord, {
        onInvalid: () => onRecord({ kind: 'unreadable' } as unknown as AuditRecord),
      });
    },

    async close(): Promise<void> {
      if (pending.length > 0) sending = sending.then(sendPending);
      await sending;
      await reader.close();
      const p = await producer?.catch(() => null);
      await p?.disconnect();
      const q = await plain?.catch(() => null);
      await q?.disconnect();
    },
  };
}
