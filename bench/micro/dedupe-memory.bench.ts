/**
 * Speed of `dedupe` over the in-memory state backend (run: `vigil bench micro --only dedupe-memory`, or
 * `node --expose-gc --import tsx bench/micro/dedupe-memory.bench.ts`). Batches of 1,000 from 1,000 devices with increasing sequences and 5% copies of
 * recent records; prints ns per record (best and median per trial) and the heap one state entry costs. Not a test.
 */
import { performance } from 'node:perf_hooks';
import { dedupe, EVENT_ID_STATE, SEQUENCE_STATE } from '../../operators/dedupe/index.ts';
import type { CheckedEvent } from '../../operators/types.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelStore } from '../../runtime/models.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import { envelope, inFlight, ulidFor } from '../../test/fixtures/envelope.ts';

const BATCH = 1000;
const DEVICES = 1000;
const TRIALS = 10;
const BATCHES_PER_TRIAL = 50;

let offset = 0;
let eventNo = 0;
const recent: CheckedEvent[] = [];

function nextBatch(): InFlight<CheckedEvent>[] {
  const batch: InFlight<CheckedEvent>[] = [];
  for (let i = 0; i < BATCH; i++) {
    let value: CheckedEvent;
    if (i % 20 === 7 && recent.length > 0) {
      value = recent[(offset * 7919) % recent.length]!; // a resent copy (a duplicate by event id)
    } else {
      const n = eventNo++;
      value = {
        envelope: envelope({
          event_id: ulidFor(n),
          device_id: `dev-${n % DEVICES}`,
          sequence: Math.floor(n / DEVICES),
        }),
        flags: [],
      };
      if (recent.length < 5000) recent.push(value);
      else recent[n % 5000] = value;
    }
    batch.push(inFlight(value, offset++));
  }
  return batch;
}

// TTL_MS (simulated; the clock moves 1 s per batch of 1,000): the default 24 h keeps every entry (the state grows to
// ~550k per state in this run); TTL_MS=100000 holds a steady ~100k entries per state.
const ttlMs = Number(process.env.TTL_MS ?? 86_400_000);
const clock = new ManualClock();
const state = new MemoryStateBackend({ clock });
const op = dedupe({ ttlMs });
const noModels = {} as ModelStore; // dedupe never touches models
await op.open!({ pipeline: 'bench', clock, state, log: silentLogger, models: noModels });

// Warm up, then measure (batches are built outside the timed region).
for (let b = 0; b < 50; b++) await op.process(nextBatch());
const trials: number[] = [];
const cpuTrials: number[] = [];
let duplicates = 0;
let records = 0;
for (let t = 0; t < TRIALS; t++) {
  // Each batch is built just before it is processed (as a source would hand it over) and only process() is timed.
  let wall = 0;
  let cpuMicros = 0;
  for (let b = 0; b < BATCHES_PER_TRIAL; b++) {
    const batch = nextBatch();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const results = await op.process(batch);
    wall += performance.now() - started;
    const used = process.cpuUsage(cpu);
    cpuMicros += used.user + used.system;
    duplicates += results.duplicates.length;
    records += batch.length;
    clock.advance(1000);
  }
  trials.push((wall * 1e6) / (BATCHES_PER_TRIAL * BATCH));
  cpuTrials.push((cpuMicros * 1e3) / (BATCHES_PER_TRIAL * BATCH));
}
trials.sort((a, b) => a - b);
cpuTrials.sort((a, b) => a - b);

// Heap per state entry: measure a fresh backend filled with 200k claims and 200k sequence acceptances.
const gc = (globalThis as { gc?: () => void }).gc;
let bytesPerClaim: number | null = null;
let bytesPerSequence: number | null = null;
if (gc) {
  const fresh = new MemoryStateBackend({ clock });
  const N = 200_000;
  const ids = Array.from({ length: N }, (_, i) => ulidFor(i));
  gc();
  let before = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i += 1000) {
    await fresh.claim(
      { name: EVENT_ID_STATE, ttlMs: 86_400_000 },
      ids.slice(i, i + 1000).map((key, j) => ({ key, owner: `3:${10_000_000 + i + j}` })),
    );
  }
  gc();
  bytesPerClaim = Math.round((process.memoryUsage().heapUsed - before) / N);
  before = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i += 1000) {
    await fresh.advanceSequences(
      { name: SEQUENCE_STATE, ttlMs: 86_400_000 },
      64,
      Array.from({ length: 1000 }, (_, j) => ({
        stream: `dev-${(i + j) % DEVICES}`,
        sequence: Math.floor((i + j) / DEVICES),
        owner: `3:${10_000_000 + i + j}`,
      })),
    );
  }
  gc();
  bytesPerSequence = Math.round((process.memoryUsage().heapUsed - before) / N);
}

console.log(
  JSON.stringify({
    bench: 'dedupe',
    case: 'memory state backend, 5% copies',
    ttl_ms: ttlMs,
    batch: BATCH,
    records,
    records_per_s: Math.round(1e9 / trials[Math.floor(TRIALS / 2)]!),
    ns_per_record: Math.round(trials[Math.floor(TRIALS / 2)]!),
    duplicate_fraction: Number((duplicates / records).toFixed(3)),
    ns_per_record_min: Math.round(trials[0]!),
    ns_per_record_median: Math.round(trials[Math.floor(TRIALS / 2)]!),
    cpu_ns_per_record_median: Math.round(cpuTrials[Math.floor(TRIALS / 2)]!),
    heap_bytes_per_event_id_entry: bytesPerClaim,
    heap_bytes_per_sequence_entry: bytesPerSequence,
    state: Object.fromEntries(state.stats()),
  }),
);
