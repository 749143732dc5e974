/**
 * Speed and memory of the fleet simulator (run: `vigil bench micro --only simulate`, or
 * `node --expose-gc --import tsx bench/micro/simulate.bench.ts [events]`).
 * Generates `events` records (default 2,000,000) with the default fleet and fault rates, reporting records per second
 * per million and the heap after each million: flat heap = no per-event state kept. Not a test.
 */
import { performance } from 'node:perf_hooks';
import { simulateFleet } from '../../simulator/simulate.ts';

const events = Number(process.argv[2] ?? 2_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
const heapMb = () => {
  gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

const startHeap = heapMb();
const started = performance.now();
let last = started;
let n = 0;
let bytes = 0;
for (const record of simulateFleet({ events })) {
  n++;
  bytes += record.kind === 'raw' ? record.bytes.length : record.envelope.event_id.length;
  if (n % 1_000_000 === 0) {
    const now = performance.now();
    const rate = Math.round(1_000_000 / ((now - last) / 1000));
    last = now;
    console.error(`${n.toLocaleString('en')} records: ${rate.toLocaleString('en')}/s, heap ${heapMb().toFixed(1)} MB`);
  }
}
const seconds = (performance.now() - started) / 1000;
console.error(
  `${n.toLocaleString('en')} records in ${seconds.toFixed(1)} s: ${Math.round(n / seconds).toLocaleString('en')}/s ` +
    `(heap ${startHeap.toFixed(1)} MB at start, ${heapMb().toFixed(1)} MB at end${gc ? '' : '; run with --expose-gc for exact heap'})`,
);
void bytes;
console.log(
  JSON.stringify({
    bench: 'simulate',
    case: 'fleet simulator, default faults',
    batch: 1,
    records: n,
    records_per_s: Math.round(n / seconds),
    ns_per_record: Math.round((seconds * 1e9) / n),
    heap_start_mb: Number(startHeap.toFixed(1)),
    heap_end_mb: Number(heapMb().toFixed(1)),
  }),
);
