/**
 * The audit log on Kafka: TOPICS.auditLog (one partition, so one order; unlimited retention, delete policy: no record
 * is ever compacted away). Key = the entry's index, or `checkpoint/<size>`; value = the record as JSON. Appends go
 * through an idempotent acks=all producer; the ones made while a send is in flight are sent and flushed together.
 * A reader assigns partition 0 from offset 0 (no consumer group, nothing committed) and is caught up once it reached
 * the high watermark seen when it started.
 *
 * One writer per topic: the log's indexes are assigned by its one writer (say so in a deployment, or fence it with a
 * transactional id).
 *
 * @example
 * const store = openKafkaAuditStore({ brokers: resolveEndpoints().kafkaBrokers, topic: TOPICS.auditLog });
 */
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { PlainProducer, type ProducerRecord } from '../../adapters/kafka/producer.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { AuditRecord, AuditStore } from '../store.ts';

export interface KafkaAuditStoreOptions {
  readonly brokers: string;
  readonly topic: string;
}

function connectConsumer(brokers: string): Promise<Kafka.KafkaConsumer> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': brokers,
      'group.id': `vigil-audit-reader-${ulid()}`,
      'enable.auto.commit': false,
      'enable.partition.eof': true,
      'isolation.level': 'read_committed',
    },
    { 'auto.offset.reset': 'earliest' },
  );
  return new Promise((resolve, reject) =>
    consumer.connect({ timeout: 15_000 }, (err) =>
      err
        ? reject(
            new VigilError('KAFKA_UNAVAILABLE', `cannot reach Kafka at ${brokers}: ${err.message}`, { cause: err }),
          )
        : resolve(consumer),
    ),
  );
}

export function openKafkaAuditStore(options: KafkaAuditStoreOptions): AuditStore {
  let producer: PlainProducer | null = null;
  let connecting: Promise<PlainProducer> | null = null;
  let pending: { record: ProducerRecord; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let sending: Promise<void> = Promise.resolve();

  const connected = (): Promise<PlainProducer> => {
    connecting ??= (async () => {
      const p = new PlainProducer(options.brokers, { 'linger.ms': 1 });
      await p.connect();
      producer = p;
      return p;
    })();
    return connecting;
  };

  const sendPending = async (): Promise<void> => {
    const group = pending;
    pending = [];
    if (group.length === 0) return;
    try {
      const p = await connected();
      await p.send(group.map((g) => g.record));
      for (const g of group) g.resolve();
    } catch (error) {
      for (const g of group) g.reject(error);
    }
  };

  return {
    append(key: string, record: AuditRecord): Promise<void> {
      return new Promise((resolve, reject) => {
        pending.push({
          record: { topic: options.topic, partition: 0, key, value: Buffer.from(JSON.stringify(record)) },
          resolve,
          reject,
        });
        // Sends are chained, so groups reach the partition in the order their records were appended.
        if (pending.length === 1) sending = sending.then(sendPending);
      });
    },

    async follow(onRecord: (record: AuditRecord) => void) {
      const consumer = await connectConsumer(options.brokers);
      const high = await new Promise<number>((resolve, reject) =>
        consumer.queryWatermarkOffsets(options.topic, 0, 10_000, (e, w) =>
          e
            ? reject(new VigilError('KAFKA_UNAVAILABLE', `watermarks of ${options.topic}: ${e.message}`))
            : resolve(w.highOffset),
        ),
      );
      consumer.assign([{ topic: options.topic, partition: 0, offset: 0 }]);
      consumer.setDefaultConsumeTimeout(200);
      let closed = false;
      let next = 0;
      let markCaughtUp: () => void = () => {};
      let failCaughtUp: (e: unknown) => void = () => {};
      const caughtUp = new Promise<void>((resolve, reject) => {
        markCaughtUp = resolve;
        failCaughtUp = reject;
      });
      if (high === 0) markCaughtUp();
      const loop = (async () => {
        while (!closed) {
          const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
            consumer.consume(5_000, (e, m) => (e ? reject(e) : resolve(m))),
          ).catch((e) => {
            failCaughtUp(e);
            closed = true;
            return [] as Kafka.Message[];
          });
          for (const m of batch) {
            next = m.offset + 1;
            let record: AuditRecord;
            try {
              record = JSON.parse(m.value?.toString('utf8') ?? '') as AuditRecord;
            } catch {
              record = { kind: 'unreadable', offset: m.offset } as unknown as AuditRecord;
            }
            onRecord(record);
          }
          if (next >= high) markCaughtUp();
        }
      })();
      return {
        caughtUp,
        close: async () => {
          closed = true;
          await loop;
          await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
        },
      };
    },

    async close(): Promise<void> {
      if (pending.length > 0) sending = sending.then(sendPending);
      await sending;
      if (producer) await producer.disconnect();
      else if (connecting) await (await connecting).disconnect();
    },
  };
}
