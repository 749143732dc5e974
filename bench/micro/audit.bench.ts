/**
 * Audit log speed (run: `node --import tsx bench/micro/audit.bench.ts [entries]`; registered as `vigil bench micro
 * --only audit` once bench/micro/index.ts lists it). Not a test: the figures depend on the machine.
 *
 * - append: entries/s through `openAuditLog().append` (schema check, keyed digest of the read, canonical JSON, leaf
 *   hash, compact tree, a signed checkpoint every 1,000 entries) on the memory store, one append at a time (the
 *   cost Vigil adds per audited action), and on the file store with 1,000 appends in flight (group commit: one
 *   fdatasync per group, the durable rate).
 * - verify: `audit verify` over `entries` stored entries (default 1,000,000) and their checkpoints: rebuild the
 *   tree, check the prev links, every checkpoint's signature, root and consistency with the one before; reported as
 *   seconds per million entries, with the heap it took.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateNoteKeys, parseSignerKey, parseVerifierKey } from '../../audit/checkpoint.ts';
import { type AuditEntryInput, hashKeyOf } from '../../audit/entry.ts';
import { openAuditLog } from '../../audit/log.ts';
import { readAll } from '../../audit/store.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { MemoryAuditStore } from '../../audit/stores/memory.ts';
import { createVerifier } from '../../audit/verify.ts';
import { ManualClock } from '../../runtime/clock.ts';

const entries = Number(process.argv[2] ?? 1_000_000);
const keys = generateNoteKeys('vigil.bench/audit');
const signer = { key: parseSignerKey(keys.signer), everyEntries: 1000 };
const hashKey = hashKeyOf(Buffer.alloc(32, 1));
const input = (i: number): AuditEntryInput => ({
  actor: `clinician-${i % 50}`,
  role: 'clinician',
  action: 'data.read',
  target: 'site:ward-7',
  purpose: 'treatment',
  read: { event_ids: [`01J${String(i).padStart(23, '0')}`], rows: 1 },
});

function report(name: string, batch: number, records: number, ms: number, cpuMicros: number, extra = {}): void {
  const ns = (ms * 1e6) / records;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'audit',
      case: name,
      batch,
      records,
      records_per_s: Math.round(1e9 / ns),
      ns_per_record: Math.round(ns),
      cpu_ns_per_record: Math.round((cpuMicros * 1e3) / records),
      ...extra,
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

// --- append, memory store, one at a time ------------------------------------------------------------------------
const store = new MemoryAuditStore();
const clock = new ManualClock();
const log = await openAuditLog({ store, clock, hashKey, signer });
for (let i = 0; i < 20_000; i++) await log.append(input(i)); // warm-up
const appendN = Math.min(entries, 200_000);
const trials: { ms: number; cpu: number }[] = [];
for (let t = 0; t < 5; t++) {
  trials.push(
    await timed(async () => {
      for (let i = 0; i < appendN / 5; i++) {
        clock.advance(1);
        await log.append(input(i));
      }
    }),
  );
}
const median = [...trials].sort((a, b) => a.ms - b.ms)[2]!;
report('append (memory store, sequential)', 1, appendN / 5, median.ms, median.cpu);

// --- append, file store, 1,000 in flight (durable: fdatasync per group) ------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-audit-'));
try {
  const fileLog = await openAuditLog({ store: openFileAuditStore(dir), clock, hashKey, signer });
  const fileN = 100_000;
  const file = await timed(async () => {
    for (let g = 0; g < fileN / 1000; g++) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => fileLog.append(input(g * 1000 + i))));
    }
  });
  await fileLog.close();
  report('append (file store, 1,000 in flight, fsync per group)', 1000, fileN, file.ms, file.cpu);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// --- verify per million -------------------------------------------------------------------------------------------
const big = new MemoryAuditStore();
const bigLog = await openAuditLog({ store: big, clock, hashKey, signer });
for (let i = 0; i < entries; i++) await bigLog.append(input(i));
await bigLog.checkpoint();
const records = await readAll(big);
global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
let ok = false;
const verify = await timed(async () => {
  // As `vigil audit verify` does: records stream through, no entry text kept.
  const verifier = createVerifier(parseVerifierKey(keys.verifier));
  for (const record of records) verifier.add(record);
  ok = verifier.finish().report.ok;
});
const heapMb = Math.round((process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024);
if (!ok) throw new Error('the benchmark log does not verify');
report('verify', entries, entries, verify.ms, verify.cpu, {
  seconds_per_million: Number(((verify.ms / 1000) * (1e6 / entries)).toFixed(2)),
  checkpoints: Math.ceil(entries / 1000),
  heap_mb_after: heapMb,
});
