/**
 * The in-memory StateBackend (embedded mode): the same replay-safe semantics as the Redis backend, in one process.
 *
 * Layout, per state descriptor:
 * - claims: a flat table (./tables.ts) of key -> owner token, in insertion order, sized by doubling up to the first power
 *   of two above its capacity and never beyond: under churn at capacity it holds no deleted slots and never grows (a
 *   `Map` did: +35% heap from 1M to 10M events). Entries of one descriptor share a TTL and are never rewritten, so
 *   insertion order is expiry order. Expiry times are kept per *call*, not per entry (every entry a call inserts
 *   expires at the same `now + ttl`): a FIFO of (expiresAt, count) segments. Each call first pops expired segments and
 *   drops that many entries from the front of the table: O(1) amortised, no timers, no scans, no object per entry.
 * - sequence windows: per stream (device) the highest accepted sequence and how many of its accepted sequences are
 *   held, and one flat table of the accepted (stream, sequence) -> owner token in acceptance order (needed so a replay
 *   of a record is recognised as `own` even after the window moved past it), with the same expiry segments. A stream
 *   lives exactly as long as its newest accepted sequence, as on Redis (where the high key's TTL is refreshed on every
 *   acceptance).
 *
 * - keyed values (operator state such as an alert's state machine): one `Map<key, {value, expiresAt}>` per state,
 *   in write order (a write moves its key to the back), so with one TTL per state its front holds the first to expire.
 *
 * Memory is bounded twice: by the TTL (measured on the injected Clock) and by a capacity per state
 * (`descriptor.maxEntries`, else the backend's `defaultMaxEntries`). Beyond the capacity the oldest entries are evicted
 * first and counted (`evictions()`), so a 10M-event run holds at most `maxEntries` event ids and `maxEntries` accepted
 * sequences (with at most as many streams) per descriptor, whatever its length: about 57 bytes per event id and 48 per
 * accepted sequence, typed arrays included (a ULID's 128 bits and the owner token's code are kept, not their strings:
 * bench/micro/dedupe-memory.bench.ts measures it; 127 and 89 with the `Map`s before), and past the capacity the heap
 * stays flat (bench/state-heap.ts). An eviction weakens protection (an evicted event id is no longer recognised as a
 * duplicate), which is why it is counted and exported as a metric.
 *
 * TTLs: an entry lives exactly its TTL while a descriptor's TTL stays the same (the normal case: operators declare it
 * once). If a later call uses a shorter TTL, its entries wait behind the older, longer-lived ones: they live at least
 * their TTL, never less.
 */
import type { Clock } from '../clock.ts';
import { VigilError } from '../errors.ts';
import type {
  ClaimRequest,
  ClaimResult,
  SequenceRequest,
  SequenceResult,
  StateBackend,
  StateDescriptor,
  ValueRequest,
  ValueWrite,
} from '../state.ts';
import { assertSequence, assertWindow } from './args.ts';
import { ClaimTable, SequenceTable, Stream } from './tables.ts';

/** Capacity per state when a descriptor names none: 1M event ids take about 57 MB of memory. */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

const CLAIMED: ClaimResult = Object.freeze({ status: 'claimed' });
const OWN: ClaimResult = Object.freeze({ status: 'own' });
const NEW: SequenceResult = Object.freeze({ status: 'new' });

/** Expiry times of entries in insertion order, one (expiresAt, count) segment per run of equal times. */
class ExpirySegments {
  #expires: number[] = [];
  #counts: number[] = [];
  #head = 0;

  /** One more entry, expiring at `expiresAt`, at the back. */
  add(expiresAt: number): void {
    const last = this.#expires.length - 1;
    if (last >= this.#head && this.#expires[last] === expiresAt) this.#counts[last]!++;
    else {
      this.#expires.push(expiresAt);
      this.#counts.push(1);
    }
  }

  /** Removes the segments expired by `now` from the front; returns how many entries they held. */
  popExpired(now: number): number {
    let entries = 0;
    while (this.#head < this.#expires.length && this.#expires[this.#head]! <= now) {
      entries += this.#counts[this.#head]!;
      this.#head++;
    }
    this.#compact();
    return entries;
  }

  /** Forgets the `n` oldest entries (evicted for capacity). */
  dropFront(n: number): void {
    let left = n;
    while (left > 0 && this.#head < this.#expires.length) {
      const count = this.#counts[this.#head]!;
      if (count > left) {
        this.#counts[this.#head] = count - left;
        return;
      }
      left -= count;
      this.#head++;
    }
    this.#compact();
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#expires.length) {
      this.#expires.splice(0, this.#head);
      this.#counts.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

class ClaimState {
  readonly owners = new ClaimTable();
  readonly expiry = new ExpirySegments();
  evictions = 0;
  expirations = 0;

  sweep(now: number): void {
    const expired = this.expiry.popExpired(now);
    if (expired === 0) return;
    this.expirations += expired;
    this.owners.dropOldest(expired);
  }

  /** Sets the owner of a key the state may already hold (a restore meeting a key twice): no second entry. */
  restore(key: string, owner: string, expiresAt: number, capacity: number): void {
    if (!this.owners.setOwner(key, owner)) this.insert(key, owner, expiresAt, capacity);
  }

  insert(key: string, owner: string, expiresAt: number, capacity: number): void {
    // At capacity the oldest goes first (the same outcome as inserting then evicting, since the new key is never the
    // oldest), so a table never holds capacity + 1 entries: a power-of-two capacity does not double its ring.
    const full = this.owners.size >= capacity && this.owners.size > 0;
    if (full) this.#evictOldest();
    this.owners.add(key, owner);
    this.expiry.add(expiresAt);
    if (!full && this.owners.size > capacity) this.#evictOldest();
  }

  #evictOldest(): void {
    this.owners.dropOldest(1);
    this.expiry.dropFront(1);
    this.evictions++;
  }
}

class SequenceState {
  readonly streams = new Map<string, Stream>();
  /** Accepted (stream, sequence) pairs in acceptance order; a stream left without any is forgotten. */
  readonly accepted = new SequenceTable((stream) => {
    // A stream without accepted sequences left has also outlived its highest: forget it.
    if (this.streams.get(stream.name) === stream) this.streams.delete(stream.name);
  });
  readonly expiry = new ExpirySegments();
  evictions = 0;
  expirations = 0;
  #nextStreamId = 0;

  get entries(): number {
    return this.accepted.size;
  }

  /** A new stream (not yet in `streams`), its highest sequence so far `highest`. */
  open(name: string, highest: number): Stream {
    const stream = new Stream(name, highest, this.#nextStreamId++);
    this.streams.set(name, stream);
    return stream;
  }

  sweep(now: number): void {
    const expired = this.expiry.popExpired(now);
    if (expired === 0) return;
    this.expirations += expired;
    this.accepted.dropOldest(expired);
  }

  accept(stream: Stream, sequence: number, owner: string, expiresAt: number, capacity: number): void {
    // As for claims: at capacity the oldest goes first. If that was this stream's only accepted sequence, the stream
    // was just forgotten: put it back (inserting first, it would never have left), its highest kept.
    const full = this.accepted.size >= capacity && this.accepted.size > 0;
    if (full) this.#evictOldest();
    if (stream.held === 0) this.streams.set(stream.name, stream);
    this.accepted.add(stream, sequence, owner);
    if (sequence > stream.highest) stream.highest = sequence;
    this.expiry.add(expiresAt);
    if (!full && this.accepted.size > capacity) this.#evictOldest();
  }

  #evictOldest(): void {
    this.accepted.dropOldest(1);
    this.expiry.dropFront(1);
    this.evictions++;
  }
}

/**
 * Keyed values of one state. A write moves its key to the back of the Map, so with one TTL per state (the normal
 * case) the Map's order is expiry order: expired entries are swept from the front, the oldest evicted for capacity.
 */
class ValueState {
  readonly values = new Map<string, { value: string; expiresAt: number }>();
  evictions = 0;
  expirations = 0;

  sweep(now: number): void {
    for (const [key, entry] of this.values) {
      if (entry.expiresAt > now) return;
      this.values.delete(key);
      this.expirations++;
    }
  }

  set(key: string, value: string | null, expiresAt: number, capacity: number): void {
    this.values.delete(key);
    if (value === null) return;
    this.values.set(key, { value, expiresAt });
    if (this.values.size <= capacity) return;
    const oldest = this.values.keys().next().value as string;
    this.values.delete(oldest);
    this.evictions++;
  }
}

export interface MemoryStateOptions {
  /** Measures TTLs; inject a ManualClock in tests. */
  readonly clock: Clock;
  /** Capacity of each map whose descriptor sets no `maxEntries`. */
  readonly defaultMaxEntries?: number;
}

/** Counters per state name, for metrics (labels: the descriptor name, a small fixed set). */
export interface MemoryStateStats {
  /** Entries held: event ids (claims), or accepted sequences (windows; their streams are not counted). */
  readonly entries: number;
  /** Entries dropped because the capacity was reached (protection weakened: export and alert on it). */
  readonly evictions: number;
  /** Entries dropped because their TTL passed (normal). */
  readonly expirations: number;
}

/**
 * In-memory state with TTLs on an injected Clock.
 *
 * @example
 * const state = new MemoryStateBackend({ clock: systemClock });
 * await state.open();
 * const [verdict] = await state.claim({ name: 'dedupe.event_id', ttlMs: 86_400_000 }, [{ key: id, owner: '0:42' }]);
 */
export class MemoryStateBackend implements StateBackend {
  readonly kind = 'memory' as const;
  readonly #clock: Clock;
  readonly #defaultMaxEntries: number;
  readonly #claims = new Map<string, ClaimState>();
  readonly #sequences = new Map<string, SequenceState>();
  readonly #values = new Map<string, ValueState>();
  #closed = false;

  constructor(options: MemoryStateOptions) {
    const max = options.defaultMaxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new VigilError('CONFIG_INVALID', `memory state: defaultMaxEntries must be a positive integer`);
    }
    this.#clock = options.clock;
    this.#defaultMaxEntries = max;
  }

  async open(): Promise<void> {
    this.#closed = false;
  }

  async claim(state: StateDescriptor, requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    this.#assertOpen();
    const now = this.#clock.now();
    const capacity = this.#capacity(state);
    const claims = this.#claimState(state.name);
    claims.sweep(now);
    const owners = claims.owners;
    const expiresAt = now + state.ttlMs;
    const results: ClaimResult[] = new Array(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const { key, owner } = requests[i]!;
      const held = owners.get(key);
      if (held === undefined) {
        claims.insert(key, owner, expiresAt, capacity);
        results[i] = CLAIMED;
      } else if (held === owner) {
        results[i] = OWN;
      } else {
        results[i] = { status: 'taken', heldBy: held };
      }
    }
    return results;
  }

  async advanceSequences(
    state: StateDescriptor,
    window: number,
    requests: readonly SequenceRequest[],
  ): Promise<SequenceResult[]> {
    this.#assertOpen();
    assertWindow(window);
    const now = this.#clock.now();
    const capacity = this.#capacity(state);
    const sequences = this.#sequenceState(state.name);
    sequences.sweep(now);
    const streams = sequences.streams;
    const expiresAt = now + state.ttlMs;
    const results: SequenceResult[] = new Array(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const { stream: name, sequence, owner } = requests[i]!;
      assertSequence(sequence);
      let stream = streams.get(name);
      if (stream === undefined) {
        stream = sequences.open(name, sequence);
      } else {
        const held = sequences.accepted.get(stream, sequence);
        if (held !== undefined) {
          results[i] = held === owner ? NEW : { status: 'duplicate', heldBy: held };
          continue;
        }
        if (sequence < stream.highest - window) {
          results[i] = { status: 'too_old', highest: stream.highest };
          continue;
        }
      }
      sequences.accept(stream, sequence, owner, expiresAt, capacity);
      results[i] = NEW;
    }
    return results;
  }

  /**
   * Puts back one claim read from a changelog (see ./changelog.ts): no classification, the log already decided.
   * An entry whose `expiresAt` has passed is skipped.
   */
  restoreClaim(state: StateDescriptor, key: string, owner: string, expiresAt: number): void {
    this.#assertOpen();
    if (expiresAt <= this.#clock.now()) return;
    this.#claimState(state.name).restore(key, owner, expiresAt, this.#capacity(state));
  }

  /** Puts back one accepted sequence read from a changelog, whatever the window (the log already decided). */
  restoreSequence(state: StateDescriptor, name: string, sequence: number, owner: string, expiresAt: number): void {
    this.#assertOpen();
    assertSequence(sequence);
    if (expiresAt <= this.#clock.now()) return;
    const sequences = this.#sequenceState(state.name);
    let stream = sequences.streams.get(name);
    if (stream === undefined) stream = sequences.open(name, sequence);
    else if (sequences.accepted.setOwner(stream, sequence, owner)) return;
    sequences.accept(stream, sequence, owner, expiresAt, this.#capacity(state));
  }

  async get(state: StateDescriptor, requests: readonly ValueRequest[]): Promise<(string | null)[]> {
    this.#assertOpen();
    const now = this.#clock.now();
    const values = this.#values.get(state.name);
    if (values === undefined) return requests.map(() => null);
    values.sweep(now);
    return requests.map(({ key }) => {
      const entry = values.values.get(key);
      return entry !== undefined && entry.expiresAt > now ? entry.value : null;
    });
  }

  async put(state: StateDescriptor, writes: readonly ValueWrite[]): Promise<void> {
    this.#assertOpen();
    const now = this.#clock.now();
    const values = this.#valueState(state.name);
    values.sweep(now);
    const capacity = this.#capacity(state);
    for (const { key, value } of writes) values.set(key, value, now + state.ttlMs, capacity);
  }

  /** Puts back one keyed value read from a changelog (null: its deletion). An expired one is skipped. */
  restoreValue(state: StateDescriptor, key: string, value: string | null, expiresAt: number): void {
    this.#assertOpen();
    if (value !== null && expiresAt <= this.#clock.now()) return;
    this.#valueState(state.name).set(key, value, expiresAt, this.#capacity(state));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#claims.clear();
    this.#sequences.clear();
    this.#values.clear();
  }

  /** Counters per state name (event ids held; or accepted sequences held, streams aside). */
  stats(): ReadonlyMap<string, MemoryStateStats> {
    const out = new Map<string, MemoryStateStats>();
    const add = (name: string, entries: number, evictions: number, expirations: number): void => {
      const prev = out.get(name) ?? { entries: 0, evictions: 0, expirations: 0 };
      out.set(name, {
        entries: prev.entries + entries,
        evictions: prev.evictions + evictions,
        expirations: prev.expirations + expirations,
      });
    };
    for (const [name, c] of this.#claims) add(name, c.owners.size, c.evictions, c.expirations);
    for (const [name, q] of this.#sequences) add(name, q.entries, q.evictions, q.expirations);
    for (const [name, v] of this.#values) add(name, v.values.size, v.evictions, v.expirations);
    return out;
  }

  /** Streams (devices) whose replay window is held, per sequence state: at most its accepted-sequence entries. */
  streams(name: string): number {
    return this.#sequences.get(name)?.streams.size ?? 0;
  }

  /** Capacity evictions so far: of one state name, or of all states. */
  evictions(name?: string): number {
    let total = 0;
    for (const [stateName, stats] of this.stats())
      if (name === undefined || stateName === name) total += stats.evictions;
    return total;
  }

  #claimState(name: string): ClaimState {
    let claims = this.#claims.get(name);
    if (claims === undefined) {
      claims = new ClaimState();
      this.#claims.set(name, claims);
    }
    return claims;
  }

  #valueState(name: string): ValueState {
    let values = this.#values.get(name);
    if (values === undefined) {
      values = new ValueState();
      this.#values.set(name, values);
    }
    return values;
  }

  #sequenceState(name: string): SequenceState {
    let sequences = this.#sequences.get(name);
    if (sequences === undefined) {
      sequences = new SequenceState();
      this.#sequences.set(name, sequences);
    }
    return sequences;
  }

  #capacity(state: StateDescriptor): number {
    return state.maxEntries ?? this.#defaultMaxEntries;
  }

  #assertOpen(): void {
    if (this.#closed) throw new VigilError('INTERNAL', 'memory state backend used after close()');
  }
}
