/**
 * Speed of `dedupe` over the in-memory state backend (run: `vigil bench micro --only dedupe-memory`, or
 * `node --expose-gc --import tsx bench/micro/dedupe-memory.bench.ts [--compare]`). Batches of 1,000 from 1,000 devices
 * with increasing sequences and 5% copies of recent records; prints ns per record (best and median per trial) and the
 * heap one state entry costs. `--compare` also runs the Map-based backend the flat tables replaced
 * (test/support/map-state-backend.ts) on its own copy of the same stream, trials alternating, and prints its line too
 * (case "... (Map-based, before)"). Not a test.
 */
import { performance } from 'node:perf_hooks';
import { dedupe, EVENT_ID_STATE, SEQUENCE_STATE } from '../../operators/dedupe/index.ts';
import type { CheckedEvent } from '../../operators/types.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelStore } from '../../runtime/models.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import type { StateBackend } from '../../runtime/state.ts';
import { envelope, inFlight, ulidFor } from '../../test/fixtures/envelope.ts';
import { MapStateBackend } from '../../test/support/map-state-backend.ts';

const BATCH = 1000;
const DEVICES = 1000;
const TRIALS = 10;
const BATCHES_PER_TRIAL = 50;

/** `ulidFor` concatenates (a chain of V8 cons strings); Avro decoding hands over flat strings, as this does. */
const flatten = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');

/** One stream of batches (each implementation measured gets its own copy of the same stream). */
function source(): () => InFlight<CheckedEvent>[] {
  let offset = 0;
  let eventNo = 0;
  const recent: CheckedEvent[] = [];
  return () => {
    const batch: InFlight<CheckedEvent>[] = [];
    for (let i = 0; i < BATCH; i++) {
      let value: CheckedEvent;
      if (i % 20 === 7 && recent.length > 0) {
        value = recent[(offset * 7919) % recent.length]!; // a resent copy (a duplicate by event id)
      } else {
        const n = eventNo++;
        value = {
          envelope: envelope({
            event_id: flatten(ulidFor(n)),
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
  };
}

// TTL_MS (simulated; the clock moves 1 s per batch of 1,000): the default 24 h keeps every entry (the state grows to
// ~550k per state in this run); TTL_MS=100000 holds a steady ~100k entries per state.
const ttlMs = Number(process.env.TTL_MS ?? 86_400_000);
const compare = process.argv.includes('--compare');
type Impl = 'flat' | 'map';
const makeBackend = (impl: Impl, clock: ManualClock): StateBackend & { stats(): ReadonlyMap<string, unknown> } =>
  impl === 'map' ? new MapStateBackend({ clock }) : new MemoryStateBackend({ clock });
const noModels = {} as ModelStore; // dedupe never touches models

interface Run {
  readonly impl: Impl;
  readonly clock: ManualClock;
  readonly state: ReturnType<typeof makeBackend>;
  readonly op: ReturnType<typeof dedupe>;
  readonly next: () => InFlight<CheckedEvent>[];
  readonly trials: number[];
  readonly cpuTrials: number[];
  duplicates: number;
  records: number;
}
const runs: Run[] = [];
for (const impl of compare ? (['flat', 'map'] as const) : (['flat'] as const)) {
  const clock = new ManualClock();
  const state = makeBackend(impl, clock);
  const op = dedupe({ ttlMs });
  await op.open!({ pipeline: 'bench', clock, state, log: silentLogger, models: noModels });
  const run: Run = { impl, clock, state, op, next: source(), trials: [], cpuTrials: [], duplicates: 0, records: 0 };
  // Warm up (batches are built outside the timed region).
  for (let b = 0; b < 50; b++) await op.process(run.next());
  runs.push(run);
}

for (let t = 0; t < TRIALS; t++) {
  // Alternate which implementation goes first, so a change of machine load falls on both.
  for (const run of t % 2 === 0 ? runs : [...runs].reverse()) {
    // Each batch is built just before it is processed (as a source would hand it over) and only process() is timed.
    let wall = 0;
    let cpuMicros = 0;
    for (let b = 0; b < BATCHES_PER_TRIAL; b++) {
      const batch = run.next();
      const cpu = process.cpuUsage();
      const started = performance.now();
      const results = await run.op.process(batch);
      wall += performance.now() - started;
      const used = process.cpuUsage(cpu);
      cpuMicros += used.user + used.system;
      run.duplicates += results.duplicates.length;
      run.records += batch.length;
      run.clock.advance(1000);
    }
    run.trials.push((wall * 1e6) / (BATCHES_PER_TRIAL * BATCH));
    run.cpuTrials.push((cpuMicros * 1e3) / (BATCHES_PER_TRIAL * BATCH));
  }
}

/** V8's heap in use plus typed arrays' backing stores (kept outside it: the flat tables' rings and indexes). */
function heapAndBuffers(): number {
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** Heap per state entry (typed arrays included): a fresh backend filled with 200k claims and 200k sequence acceptances. */
async function bytesPerEntry(impl: Impl): Promise<{ claim: number | null; sequence: number | null }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return { claim: null, sequence: null };
  const clock = new ManualClock();
  const N = 200_000;
  gc();
  const empty = heapAndBuffers();
  const fresh = makeBackend(impl, clock);
  // Event ids and owner tokens are made per batch, as a stream hands them over: what the state keeps of them (the
  // strings, or an id's packed bits) is counted, what it does not keep is garbage.
  for (let i = 0; i < N; i += 1000) {
    await fresh.claim(
      { name: EVENT_ID_STATE, ttlMs: 86_400_000 },
      Array.from({ length: 1000 }, (_, j) => ({ key: flatten(ulidFor(i + j)), owner: `3:${10_000_000 + i + j}` })),
    );
  }
  gc();
  const withClaims = heapAndBuffers();
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
  const withSequences = heapAndBuffers();
  const out = {
    claim: Math.round((withClaims - empty) / N),
    sequence: Math.round((withSequences - withClaims) / N),
  };
  await fresh.close();
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const least = (xs: number[]) => Math.min(...xs);
for (const run of runs) {
  const heap = await bytesPerEntry(run.impl);
  console.log(
    JSON.stringify({
      bench: 'dedupe',
      case: `memory state backend, 5% copies${run.impl === 'map' ? ' (Map-based, before)' : ''}`,
      ttl_ms: ttlMs,
      batch: BATCH,
      records: run.records,
      records_per_s: Math.round(1e9 / median(run.trials)),
      ns_per_record: Math.round(median(run.trials)),
      duplicate_fraction: Number((run.duplicates / run.records).toFixed(3)),
      ns_per_record_min: Math.round(least(run.trials)),
      ns_per_record_median: Math.round(median(run.trials)),
      cpu_ns_per_record_median: Math.round(median(run.cpuTrials)),
      heap_bytes_per_event_id_entry: heap.claim,
      heap_bytes_per_sequence_entry: heap.sequence,
      state: Object.fromEntries(run.state.stats()),
    }),
  );
}
