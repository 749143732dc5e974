/**
 * Restore time of keyed state from its changelog, per million keys, against the local stack's Kafka (run:
 * `vigil bench micro --only state-restore`, or `node --import tsx bench/micro/state-restore.bench.ts [keys]`).
 *
 * What a worker does when a partition is assigned: read the partition's changelog (read committed) to its end and put
 * every entry back into the in-memory working copy. The changelog here is what `dedupe` writes for `keys / 2` events:
 * one event-id claim and one accepted sequence each (devices cycling over 1,000; a key is one entry, and entries travel
 * in batch records of up to 4,000, as the worker writes them), produced once into a one-partition
 * topic that is deleted afterwards. Reports wall time and CPU of the restore alone, and the heap the restored state
 * holds (V8's heap; typed arrays' backing stores apart, as they also hold the consumer's buffers). Not a test: numbers depend on the machine.
 */
import { performance } from 'node:perf_hooks';
import Kafka from 'node-rdkafka';
import { ensureOwnTopic } from '../../adapters/kafka/admin.ts';
import { readChangelogPartition } from '../../adapters/kafka/changelog.ts';
import { PlainProducer } from '../../adapters/kafka/producer.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { ChangelogStateBackend, type RestoreCounts } from '../../runtime/state/changelog.ts';

const keys = Number(process.argv[2] ?? 1_000_000);
/** V8's heap in use and, apart, typed arrays' backing stores (the state's flat tables, but also Kafka's buffers). */
const memory = () => {
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return { heapUsed, arrayBuffers };
};
const brokers = resolveEndpoints().kafkaBrokers;
const topic = `bench-state-restore-${process.pid}-${Date.now()}`;
const STATES = [
  { name: 'dedupe.event_id', ttlMs: 86_400_000 },
  { name: 'dedupe.sequence', ttlMs: 86_400_000 },
];

await ensureOwnTopic(brokers, { name: topic, partitions: 1, config: { 'cleanup.policy': 'compact,delete' } });
try {
  // The changelog a run of keys/2 events leaves, made by the backend itself (the same keys and values a worker writes).
  const writer = new ChangelogStateBackend({ clock: systemClock, states: STATES });
  const producer = new PlainProducer(brokers);
  await producer.connect();
  const events = Math.floor(keys / 2);
  const CHUNK = 10_000;
  for (let from = 0; from < events; from += CHUNK) {
    const n = Math.min(CHUNK, events - from);
    const claims = Array.from({ length: n }, (_, i) => ({
      key: `01JGZ5Q8V3${String(from + i).padStart(16, '0')}`,
      owner: `0:${from + i}`,
      partition: 0,
    }));
    const sequences = claims.map((c, i) => ({
      stream: `hah-dev-${String((from + i) % 1000).padStart(6, '0')}`,
      sequence: Math.floor((from + i) / 1000),
      owner: c.owner,
      partition: 0,
    }));
    await writer.claim(STATES[0]!, claims);
    await writer.advanceSequences(STATES[1]!, 64, sequences);
    await producer.send(
      writer.takeChanges().map((c) => ({
        topic,
        partition: 0,
        key: Buffer.from(c.key),
        value: c.value === null ? null : Buffer.from(c.value),
      })),
    );
  }
  await producer.disconnect();
  await writer.close();

  globalThis.gc?.();
  const before = memory();
  const reader = new ChangelogStateBackend({ clock: systemClock, states: STATES });
  const counts: RestoreCounts = { applied: 0, skipped: 0 };
  const cpu = process.cpuUsage();
  const started = performance.now();
  const report = await readChangelogPartition({ brokers, topic, partition: 0 }, (key, value) =>
    reader.restore(0, key, value, counts),
  );
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  globalThis.gc?.();
  const after = memory();
  // Claims and sequences travel in batch records (runtime/state/changelog.ts): records read < entries applied.
  if (counts.applied !== events * 2 || counts.skipped !== 0) {
    throw new Error(`restore applied ${counts.applied} entries (${counts.skipped} skipped), expected ${events * 2}`);
  }
  const round = (x: number) => Math.round(x * 10) / 10;
  console.log(
    JSON.stringify({
      bench: 'state restore',
      case: `changelog of ${events.toLocaleString('en-GB')} events (claim + sequence each), one partition`,
      batch: counts.applied,
      records: counts.applied,
      changelog_records: report.records,
      records_per_s: Math.round(counts.applied / (ms / 1000)),
      ns_per_record: Math.round((ms * 1e6) / counts.applied),
      cpu_ns_per_record: Math.round(((used.user + used.system) * 1e3) / counts.applied),
      restore_ms: round(ms),
      restore_s_per_million_keys: round(ms / 1000 / (counts.applied / 1e6)),
      heap_mb_restored: round((after.heapUsed - before.heapUsed) / 1e6),
      array_buffers_mb_restored: round((after.arrayBuffers - before.arrayBuffers) / 1e6),
    }),
  );
  await reader.close();
} finally {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': brokers, log_level: 0 });
  await new Promise<void>((resolve) => admin.deleteTopic(topic, 30_000, () => resolve()));
  admin.disconnect();
}
