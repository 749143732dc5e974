/**
 * The in-memory state backend as it was before its claims and sequences moved to flat tables (runtime/state/tables.ts):
 * one `Map` per state plus FIFOs of keys. Kept verbatim (renamed `MapStateBackend`) as the oracle the flat backend is
 * compared with, verdict for verdict (runtime/state/memory.test.ts), and as the "before" of the benchmarks
 * (bench/micro/dedupe-memory.bench.ts, bench/state-heap.ts --impl map). Not used in production.
 */
import type { Clock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { assertSequence, assertWindow } from '../../runtime/state/args.ts';
import type {
  ClaimRequest,
  ClaimResult,
  SequenceRequest,
  SequenceResult,
  StateBackend,
  StateDescriptor,
  ValueRequest,
  ValueWrite,
} from '../../runtime/state.ts';

/** Capacity per state when a descriptor names none: 1M event ids take about 125 MB of heap. */
const DEFAULT_MAX_ENTRIES = 1_000_000;

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
  readonly owners = new Map<string, string>();
  /** Keys in insertion order, from `#head` on (a key is deleted from `owners` only when it leaves this queue). */
  #fifo: (string | undefined)[] = [];
  #head = 0;
  readonly expiry = new ExpirySegments();
  evictions = 0;
  expirations = 0;

  sweep(now: number): void {
    const expired = this.expiry.popExpired(now);
    if (expired === 0) return;
    this.expirations += expired;
    this.#dropOldest(expired);
  }

  /** Sets the owner of a key the state may already hold (a restore meeting a key twice): no second FIFO entry. */
  restore(key: string, owner: string, expiresAt: number, capacity: number): void {
    if (this.owners.has(key)) this.owners.set(key, owner);
    else this.insert(key, owner, expiresAt, capacity);
  }

  insert(key: string, owner: string, expiresAt: number, capacity: number): void {
    this.owners.set(key, owner);
    this.#fifo.push(key);
    this.expiry.add(expiresAt);
    if (this.owners.size <= capacity) return;
    this.#dropOldest(1);
    this.expiry.dropFront(1);
    this.evictions++;
  }

  #dropOldest(n: number): void {
    const end = Math.min(this.#head + n, this.#fifo.length);
    for (let i = this.#head; i < end; i++) {
      this.owners.delete(this.#fifo[i]!);
      this.#fifo[i] = undefined;
    }
    this.#head = end;
    if (this.#head > 1024 && this.#head * 2 > this.#fifo.length) {
      this.#fifo.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

class Stream {
  highest: number;
  readonly owners = new Map<number, string>();
  constructor(
    readonly name: string,
    highest: number,
  ) {
    this.highest = highest;
  }
}

class SequenceState {
  readonly streams = new Map<string, Stream>();
  /** Accepted (stream, sequence) pairs in acceptance order, from `#head` on. */
  #fifoStreams: (Stream | undefined)[] = [];
  #fifoSequences: number[] = [];
  #head = 0;
  readonly expiry = new ExpirySegments();
  evictions = 0;
  expirations = 0;

  get entries(): number {
    return this.#fifoStreams.length - this.#head;
  }

  sweep(now: number): void {
    const expired = this.expiry.popExpired(now);
    if (expired === 0) return;
    this.expirations += expired;
    this.#dropOldest(expired);
  }

  accept(stream: Stream, sequence: number, owner: string, expiresAt: number, capacity: number): void {
    stream.owners.set(sequence, owner);
    if (sequence > stream.highest) stream.highest = sequence;
    this.#fifoStreams.push(stream);
    this.#fifoSequences.push(sequence);
    this.expiry.add(expiresAt);
    if (this.entries <= capacity) return;
    this.#dropOldest(1);
    this.expiry.dropFront(1);
    this.evictions++;
  }

  #dropOldest(n: number): void {
    const end = Math.min(this.#head + n, this.#fifoStreams.length);
    for (let i = this.#head; i < end; i++) {
      const stream = this.#fifoStreams[i]!;
      this.#fifoStreams[i] = undefined; // release the reference before compaction
      stream.owners.delete(this.#fifoSequences[i]!);
      // A stream without accepted sequences left has also outlived its highest: forget it.
      if (stream.owners.size === 0 && this.streams.get(stream.name) === stream) this.streams.delete(stream.name);
    }
    this.#head = end;
    if (this.#head > 1024 && this.#head * 2 > this.#fifoStreams.length) {
      this.#fifoStreams.splice(0, this.#head);
      this.#fifoSequences.splice(0, this.#head);
      this.#head = 0;
    }
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

interface MemoryStateOptions {
  /** Measures TTLs; inject a ManualClock in tests. */
  readonly clock: Clock;
  /** Capacity of each map whose descriptor sets no `maxEntries`. */
  readonly defaultMaxEntries?: number;
}

/** Counters per state name, for metrics (labels: the descriptor name, a small fixed set). */
interface MemoryStateStats {
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
export class MapStateBackend implements StateBackend {
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
        stream = new Stream(name, sequence);
        streams.set(name, stream);
      } else {
        const held = stream.owners.get(sequence);
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
    if (stream === undefined) {
      stream = new Stream(name, sequence);
      sequences.streams.set(name, stream);
    } else if (stream.owners.has(sequence)) {
      stream.owners.set(sequence, owner);
      return;
    }
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
