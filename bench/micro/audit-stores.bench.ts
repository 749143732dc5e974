/**
 * The audit log on its real stores, beside audit.bench.ts (which times the log's own work on the memory store, the
 * file store's group commit and verify over records already in memory):
 *
 *   node --import tsx bench/micro/audit-stores.bench.ts [--entries 1000000] [--kafka-entries 20000] [--no-kafka]
 *   npm run bench -- micro --only audit-stores
 *
 * - append on Kafka (the local stack's broker, an isolated topic namespace deleted at the end): entries/s through
 *   `openAuditLog().append` on the Kafka store as the API does it: one append awaited at a time (each its own
 *   transaction: the latency a `vigil query` pays to record its read), and 1,000 in flight (the appends made while a
 *   transaction is in flight go together in the next one);
 * - `audit verify` per million entries from disk: a file log of `--entries` entries with a signed checkpoint every
 *   1,000 (built through the API, 1,000 in flight), then (a) in-process, the store's read (the whole audit.jsonl,
 *   parsed) streamed through createVerifier as `vigil audit verify` does, and (b) one `vigil audit verify --dir
 *   --json` process, the wall time an auditor waits. Reported as seconds per million entries, with the file's size.
 *
 * Not a test: the figures depend on the machine; every line carries the load average it was taken under.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { AuditEntryInput } from '../../audit/entry.ts';
import { generateAuditKeys, KEY_FILES, loadHashKey, loadSignerKey, loadVerifierKey } from '../../audit/keys.ts';
import { openAuditLog } from '../../audit/log.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import { createVerifier } from '../../audit/verify.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { spawnNode, VIGIL } from '../lib/proc.ts';
import { createNamespace, deleteNamespace } from '../lib/stack.ts';

const { values: flags } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    'kafka-entries': { type: 'string', default: '20000' },
    'no-kafka': { type: 'boolean', default: false },
  },
});
const entries = Number(flags.entries);
const kafkaEntries = Number(flags['kafka-entries']);

const work = mkdtempSync(join(tmpdir(), 'vigil-bench-audit-stores-'));
const keyDir = join(work, 'keys');
generateAuditKeys(keyDir, 'vigil.bench/audit-stores');
const hashKey = loadHashKey(join(keyDir, KEY_FILES.hash));
const signer = { key: loadSignerKey(join(keyDir, KEY_FILES.signer)), everyEntries: 1000 };

/** A clinician's read of one event, as `vigil query` records it (the read itself only as a keyed digest). */
const input = (i: number): AuditEntryInput => ({
  actor: `clinician-${i % 50}`,
  role: 'clinician',
  action: 'data.read',
  target: `site:site-${String((i % 20) + 1).padStart(2, '0')}`,
  purpose: 'treatment',
  read: { event_ids: [`01J${String(i).padStart(23, '0')}`], rows: 1 },
});

const load = () => loadavg().map((x) => Number(x.toFixed(2)));

function report(name: string, batch: number, records: number, ms: number, cpuMicros: number, extra = {}): void {
  const ns = (ms * 1e6) / records;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'audit-stores',
      case: name,
      batch,
      records,
      records_per_s: Math.round(1e9 / ns),
      ns_per_record: Math.round(ns),
      cpu_ns_per_record: Math.round((cpuMicros * 1e3) / records),
      ...extra,
      loadavg: load(),
    })}\n`,
  );
}

async function timed(run: () => Promise<void>): Promise<{ ms: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const used = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpu: used.user + used.system };
}

/** `count` appends, `inFlight` at a time, on `log`. */
async function appendAll(
  log: Awaited<ReturnType<typeof openAuditLog>>,
  count: number,
  inFlight: number,
  from = 0,
): Promise<void> {
  for (let g = 0; g < count; g += inFlight) {
    const n = Math.min(inFlight, count - g);
    await Promise.all(Array.from({ length: n }, (_, i) => log.append(input(from + g + i))));
  }
}

/**
 * Opens the log on a topic created a moment ago: on a loaded machine the broker can take seconds before the new
 * topic is in the metadata it serves ("does not exist"), so the open is retried for up to 30 s.
 */
async function opened<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (attempt >= 60 || !/does not exist/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function kafkaAppend(): Promise<void> {
  const ns = await createNamespace('audit');
  try {
    const topic = ns.name(TOPICS.auditLog);
    const log = await opened(() =>
      openAuditLog({
        store: openKafkaAuditStore({ brokers: resolveEndpoints().kafkaBrokers, topic }),
        clock: systemClock,
        hashKey,
        signer,
      }),
    );
    try {
      await appendAll(log, 50, 1); // the writer's claim and first transactions: not part of the rate
      const sequential = Math.max(1, Math.min(500, Math.floor(kafkaEntries / 10)));
      const one = await timed(() => appendAll(log, sequential, 1, 50));
      report('append (Kafka store, one at a time: a transaction each)', 1, sequential, one.ms, one.cpu, {
        ms_per_append: Number((one.ms / sequential).toFixed(2)),
      });
      const many = await timed(() => appendAll(log, kafkaEntries, 1000, 50 + sequential));
      report('append (Kafka store, 1,000 in flight: batched transactions)', 1000, kafkaEntries, many.ms, many.cpu);
    } finally {
      await log.close();
    }
  } finally {
    await deleteNamespace(ns);
  }
}

async function fileVerify(): Promise<void> {
  const dir = join(work, 'log');
  const log = await openAuditLog({ store: openFileAuditStore(dir), clock: systemClock, hashKey, signer });
  const build = await timed(() => appendAll(log, entries, 1000));
  await log.checkpoint();
  await log.close();
  const bytes = statSync(join(dir, 'audit.jsonl')).size;
  report('append (file store, 1,000 in flight: building the verify log)', 1000, entries, build.ms, build.cpu, {
    file_mb: Math.round(bytes / 1e5) / 10,
    bytes_per_entry: Math.round(bytes / entries),
  });

  const perMillion = (ms: number) => Number(((ms / 1000) * (1e6 / entries)).toFixed(2));
  let ok = false;
  global.gc?.();
  const inProcess = await timed(async () => {
    const verifier = createVerifier(loadVerifierKey(join(keyDir, KEY_FILES.verifier)));
    const store = openFileAuditStore(dir);
    const following = await store.follow((record) => verifier.add(record));
    await following.caughtUp;
    await following.close();
    await store.close();
    ok = verifier.finish().report.ok;
  });
  if (!ok) throw new Error('the benchmark log does not verify');
  report('verify (file store read + verify, in-process)', entries, entries, inProcess.ms, inProcess.cpu, {
    seconds_per_million: perMillion(inProcess.ms),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  });

  const t0 = performance.now();
  const done = await spawnNode(
    VIGIL,
    ['audit', 'verify', '--json', '--dir', dir, '--pub', join(keyDir, KEY_FILES.verifier)],
    {},
  ).done;
  const ms = performance.now() - t0;
  const line = done.stdout.trim().split('\n').at(-1) ?? '';
  if (done.code !== 0 || !line.startsWith('{') || (JSON.parse(line) as { ok: boolean }).ok !== true) {
    throw new Error(`vigil audit verify failed (exit ${done.code}):\n${done.stderr.slice(-2000)}\n${line}`);
  }
  process.stdout.write(
    `${JSON.stringify({
      bench: 'audit-stores',
      case: 'verify (one vigil audit verify process, file store)',
      entries,
      wall_ms: Math.round(ms),
      seconds_per_million: perMillion(ms),
      loadavg: load(),
    })}\n`,
  );
}

try {
  if (!flags['no-kafka']) await kafkaAppend();
  await fileVerify();
} finally {
  rmSync(work, { recursive: true, force: true });
}
