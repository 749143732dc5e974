/**
 * Heap of the in-memory state backend (embedded dedupe) as a stream runs past its capacity: the evidence behind
 * "the heap settles after the states fill" in bench/README.md. Claims one event id and advances one (device,
 * sequence) per event, in batches of 2,000 like the embedded source, and prints the live heap after a full GC (with the typed arrays' backing stores) every
 * `--step` events. Not a test, and not part of `npm run bench`:
 *
 *   node --expose-gc --import tsx bench/state-heap.ts [--events 3000000] [--step 500000] [--max-entries 1000000]
 *     [--impl flat|map] [--first-offset 0]
 *
 * `--impl map` runs the Map-based backend the flat tables replaced (test/support/map-state-backend.ts), for a
 * before/after on the same machine. Each line also gives V8's committed heap (`heapTotal`) and the RSS. Owner tokens are
 * `<partition>:<offset>` strings that the state keeps: from offset 1,000,000 on they are one digit (8 bytes of heap)
 * longer, which shows as +8 MB between 1M and 2M events; `--first-offset 10000000` keeps their length fixed.
 */
import { parseArgs } from 'node:util';
import { ulid } from 'ulid';
import { ManualClock } from '../runtime/clock.ts';
import { MemoryStateBackend } from '../runtime/state/memory.ts';
import { MapStateBackend } from '../test/support/map-state-backend.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '3000000' },
    step: { type: 'string', default: '500000' },
    'max-entries': { type: 'string', default: '1000000' },
    impl: { type: 'string', default: 'flat' },
    'first-offset': { type: 'string', default: '0' },
  },
});
const events = Number(values.events);
const step = Number(values.step);
const maxEntries = Number(values['max-entries']);
const firstOffset = Number(values['first-offset']);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const DEVICES = 1000;
/**
 * `ulid()` builds its id by concatenation (a chain of V8 cons strings); a decoder hands over flat strings. The id is
 * flattened as Avro decoding would leave it, so the heap is that of a real run.
 */
const flatten = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');
const BATCH = 2000;
const clock = new ManualClock();
const state = values.impl === 'map' ? new MapStateBackend({ clock }) : new MemoryStateBackend({ clock });
await state.open();
// The dedupe operator's two states, with its default TTL (24 h: nothing expires here, capacity evicts).
const eventIds = { name: 'dedupe.event_id', ttlMs: 86_400_000, maxEntries };
const sequences = { name: 'dedupe.sequence', ttlMs: 86_400_000, maxEntries };
const nextSequence = new Array<number>(DEVICES).fill(0);

/** Live heap after a full GC, typed arrays' backing stores (outside V8's heap, `arrayBuffers`) included. */
const heapMb = () => {
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return Math.round((heapUsed + arrayBuffers) / 1e6);
};
const mb = (bytes: number) => Math.round(bytes / 1e6);
console.log(
  `${values.impl}: events, heap + array buffers MB after GC, committed heap MB, RSS MB (maxEntries ${maxEntries} per state; start ${heapMb()} MB)`,
);
let offset = 0;
while (offset < events) {
  const claims = [];
  const advances = [];
  for (let i = 0; i < BATCH; i++, offset++) {
    const owner = `${offset % 6}:${firstOffset + offset}`;
    const device = offset % DEVICES;
    claims.push({ key: flatten(ulid()), owner });
    advances.push({ stream: `dev-${device}`, sequence: ++nextSequence[device]!, owner });
  }
  await state.claim(eventIds, claims);
  await state.advanceSequences(sequences, 128, advances);
  clock.advance(200);
  if (offset % step === 0) {
    const live = heapMb();
    const { heapTotal, rss } = process.memoryUsage();
    console.log(`${offset}, ${live}, ${mb(heapTotal)}, ${mb(rss)}`);
  }
}
