/**
 * The transport ceiling: a node-rdkafka pass-through with the SAME delivery guarantee as Vigil's worker. Per poll it
 * consumes a batch from the raw topic, produces every record unchanged (key, value, headers) to another topic and
 * commits the consumed offsets in the same Kafka transaction (`sendOffsetsToTransaction`), exactly once. It uses
 * Vigil's own Kafka adapters (the same librdkafka settings, batch size and linger), and like the worker it polls the
 * next batch while the previous transaction commits. No decoding, no state, no model, no ClickHouse: the most any
 * pipeline with exactly-once on this transport can do on this machine.
 *
 *   VIGIL_TOPIC_PREFIX=... node --import tsx bench/runs/ceiling.ts --group G --out TOPIC --max-records N
 *
 * Prints one JSON line: {consumed, produced, cpu_user_us, cpu_system_us, peak_rss_mb, first_consumed_at,
 * first_commit_at, last_commit_at, end_to_end_ms}.
 */
import { parseArgs } from 'node:util';
import { type ConsumedMessage, KafkaConsumerClient, type TopicPartition } from '../../adapters/kafka/consumer.ts';
import { type ProducerRecord, TransactionalProducer } from '../../adapters/kafka/producer.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { RunStats } from '../../runtime/runners/run-stats.ts';

const { values } = parseArgs({
  options: {
    group: { type: 'string' },
    out: { type: 'string' },
    'max-records': { type: 'string' },
    batch: { type: 'string', default: '2000' },
    'linger-ms': { type: 'string', default: '100' },
    'stop-when-idle': { type: 'string', default: '30000' },
  },
});
const maxRecords = Number(values['max-records']);
const out = values.out as string;
const brokers = resolveEndpoints().kafkaBrokers;
const stats = new RunStats();

const consumer = new KafkaConsumerClient({
  brokers,
  groupId: values.group as string,
  clientId: `bench-ceiling-${process.pid}`,
  topics: [TOPICS.raw],
  lingerMs: Number(values['linger-ms']),
});
const producer = new TransactionalProducer(brokers, `bench-ceiling-${values.group}`);
await producer.connect();
await consumer.connect();

let consumed = 0;
let produced = 0;
let pending: Promise<void> | null = null;
let idleSince = Date.now();

async function commit(messages: readonly ConsumedMessage[]): Promise<void> {
  const records: ProducerRecord[] = new Array(messages.length);
  const next = new Map<string, TopicPartition & { offset: number }>();
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as ConsumedMessage;
    records[i] = { topic: out, key: m.key, value: m.value, headers: m.headers };
    next.set(`${m.topic}:${m.partition}`, { topic: m.topic, partition: m.partition, offset: m.offset + 1 });
  }
  const outcome = await producer.commit(records, [...next.values()], consumer);
  if (outcome !== 'committed') throw new Error('ceiling: transaction aborted');
  const now = Date.now();
  stats.committed(now);
  for (const m of messages) if (m.timestamp > 0) stats.latency.observe(now - m.timestamp);
  produced += records.length;
}

try {
  while (consumed < maxRecords) {
    const messages = await consumer.consume(Number(values.batch));
    if (messages.length === 0) {
      if (Date.now() - idleSince > Number(values['stop-when-idle'])) break;
      continue;
    }
    idleSince = Date.now();
    stats.consumed(idleSince);
    consumed += messages.length;
    if (pending) await pending;
    pending = commit(messages);
  }
  if (pending) await pending;
} finally {
  await consumer.disconnect();
  await producer.disconnect();
}
process.stdout.write(`${JSON.stringify({ consumed, produced, ...stats.json() })}\n`);
process.exit(0);
