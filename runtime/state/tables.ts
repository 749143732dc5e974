/**
 * Flat, insertion-ordered hash tables for the in-memory state backend's claims and accepted sequences (./memory.ts).
 *
 * Why not a `Map`: these tables run at their capacity for hours, every insert evicting the oldest entry. A V8 `Map`
 * under that churn fills its backing store with deleted slots and, since they are fewer than half of it, doubles the
 * store instead of rehashing in place: +35% heap from 1M to 10M events for the same 1M live entries
 * (bench/state-heap.ts). These tables never hold a deleted slot, so once they reach their capacity they never grow again.
 *
 * Layout (one table per state descriptor and input partition):
 * - a *ring* of entry slots in insertion order (oldest at `head`): the key (see below), the owner token (as a number,
 *   see `ownerCode`), the key's hash.
 *   The ring's order is eviction order: capacity and TTL both drop entries from its front, exactly as the FIFO of keys
 *   beside a `Map` did.
 * - an *index*: an `Int32Array` of `slot + 1` (0 = empty) addressed by the key's hash, linear probing, at most half
 *   full. Deleting the oldest entry shifts the entries probed after it back (no tombstones), so the index never
 *   degrades under churn.
 * Ring and index grow by doubling while the table fills (memory follows the entries held, a fresh partition costs
 * nothing), and stop at the first power of two above the capacity: at the default 1,000,000 entries a ring of 2^20
 * slots and an index of 2^21 (8 MB).
 *
 * Keys of claims are kept for equality, so a hash collision costs a probe, never a wrong verdict. An event id that is a
 * canonical ULID (26 upper-case Crockford base-32 characters, the first 0-7: 128 bits) is kept as its 128 bits in four
 * int32s instead of as a string: the packing is injective on canonical ULIDs (and no string key is ever compared with a
 * packed one), so equality stays exact and no collision argument is needed; it saves the ~48-byte string per entry.
 * Any other key is kept as its string. Accepted sequences are keyed by (stream, sequence), the stream being an object
 * of the backend's, compared by identity.
 *
 * Owner tokens are unique per record (`partition:offset`), so interning them would save nothing; instead a token in
 * the canonical form `originToken` writes is kept as one exact integer in a Float64Array (8 bytes, where its string
 * took 24-32 plus the reference), and turned back into the very same string only when a verdict needs it (`own`
 * compares it, `taken` / `duplicate` name it). Any other token is kept as its string.
 *
 * Hashes are seeded per table from `Math.random()` so that a device cannot pick event ids that collide on every
 * process (the index's probe length is what an adversary would attack; correctness never depends on the hash).
 */

/** Value of each char code in canonical (upper-case) Crockford base 32, -1 for any other character. */
const CROCKFORD = new Int8Array(128).fill(-1);
{
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  for (let i = 0; i < alphabet.length; i++) CROCKFORD[alphabet.charCodeAt(i)] = i;
}

/** The smallest ring: a table of a few entries (tests, a partition that sees little) stays small. */
const MIN_RING = 16;

/** murmur3's 32-bit finaliser: every input bit moves every output bit, so the index's low bits are well mixed. */
function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

function randomSeed(): number {
  return (Math.random() * 0x1_0000_0000) | 0;
}

/**
 * Packs a canonical ULID into `out[0..3]` (four 30-bit groups of six characters, plus two bits each of the first two
 * characters, which hold 8 bits); false (and `out` meaningless) for any other string.
 */
function packUlid(key: string, out: Int32Array): boolean {
  if (key.length !== 26) return false;
  const c0 = key.charCodeAt(0);
  const c1 = key.charCodeAt(1);
  const v0 = c0 < 128 ? CROCKFORD[c0]! : -1;
  const v1 = c1 < 128 ? CROCKFORD[c1]! : -1;
  if (v0 < 0 || v0 > 7 || v1 < 0) return false;
  const top = (v0 << 5) | v1;
  for (let w = 0, at = 2; w < 4; w++) {
    let word = 0;
    for (const end = at + 6; at < end; at++) {
      const c = key.charCodeAt(at);
      const v = c < 128 ? CROCKFORD[c]! : -1;
      if (v < 0) return false;
      word = (word << 5) | v;
    }
    out[w] = word | (((top >>> (2 * w)) & 3) << 30);
  }
  return true;
}

/** FNV-1a over the key's UTF-16 code units from `seed`, then mixed. */
function hashString(key: string, seed: number): number {
  let h = seed ^ 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

function hashWords(a: number, b: number, c: number, d: number, seed: number): number {
  let h = fmix32(seed ^ a);
  h = fmix32(h ^ Math.imul(b, 0x9e3779b1));
  h = fmix32(h ^ Math.imul(c, 0x85ebca77));
  return fmix32(h ^ Math.imul(d, 0xc2b2ae3d));
}

/**
 * Removes the index entry pointing at `slot` (found from its hash) and shifts back the entries probed after it, so
 * that every remaining entry stays reachable from its home bucket without tombstones.
 */
function unindex(index: Int32Array, hash: number, slot: number, hashes: Int32Array): void {
  const mask = index.length - 1;
  let hole = hash & mask;
  while (index[hole] !== slot + 1) hole = (hole + 1) & mask;
  let probe = hole;
  for (;;) {
    probe = (probe + 1) & mask;
    const entry = index[probe]!;
    if (entry === 0) break;
    const home = hashes[entry - 1]! & mask;
    // The entry at `probe` may move into the hole unless its home lies cyclically in (hole, probe].
    const stays = hole <= probe ? home > hole && home <= probe : home > hole || home <= probe;
    if (stays) continue;
    index[hole] = entry;
    hole = probe;
  }
  index[hole] = 0;
}

/** Adds `slot` to the index at the first free bucket from its hash's home. */
function indexSlot(index: Int32Array, hash: number, slot: number): void {
  const mask = index.length - 1;
  let bucket = hash & mask;
  while (index[bucket] !== 0) bucket = (bucket + 1) & mask;
  index[bucket] = slot + 1;
}

/** An array of `n` empty slots (fast holey elements: `fill` keeps `new Array(n)` beyond 100k out of dictionary mode). */
function emptySlots<T>(n: number): (T | undefined)[] {
  return new Array<T | undefined>(n).fill(undefined);
}

/** A copy of a full ring `factor` times as long, its element `from` first (the oldest entry at 0). */
function unwrap<T extends Int32Array | Float64Array>(ring: T, from: number, factor: number): T {
  const out = new (ring.constructor as new (n: number) => T)(factor * ring.length);
  out.set(ring.subarray(from));
  out.set(ring.subarray(0, from), ring.length - from);
  return out;
}

/** A new index of `length` buckets for slots 0..size-1. */
function reindex(hashes: Int32Array, size: number, length: number): Int32Array {
  const index = new Int32Array(length);
  for (let slot = 0; slot < size; slot++) indexSlot(index, hashes[slot]!, slot);
  return index;
}

/** Owner codes: partition < 2^12, lane < 2^3, offset < 2^38, so that a code stays below 2^53 (an exact double). */
const PARTITIONS = 4096;
const LANES = 8;
const MAX_OFFSET = 2 ** 38;

/**
 * The owner token `<partition>:<offset>` (or `<partition>:<offset>/<lane>`, lane 1-7) as one exact integer, or -1
 * when the token is not in that canonical form (a leading zero, a lane 0, a number out of range, anything else): such a
 * token is kept as its string. Canonical tokens are what `originToken` writes, so the code is injective on them and
 * `ownerOf(code)` gives the very string back.
 */
export function ownerCode(owner: string): number {
  const length = owner.length;
  let at = 0;
  let partition = 0;
  let c = owner.charCodeAt(0);
  if (c === 48) {
    at = 1; // "0" alone: no leading zero
  } else {
    for (; at < length && at < 5; at++) {
      c = owner.charCodeAt(at);
      if (c < 48 || c > 57) break;
      partition = partition * 10 + (c - 48);
    }
    if (at === 0) return -1;
  }
  if (partition >= PARTITIONS || owner.charCodeAt(at) !== 58) return -1; // ':'
  const start = ++at;
  let offset = 0;
  if (owner.charCodeAt(at) === 48) at++;
  else {
    for (; at < length && at - start < 12; at++) {
      c = owner.charCodeAt(at);
      if (c < 48 || c > 57) break;
      offset = offset * 10 + (c - 48);
    }
  }
  if (at === start || offset >= MAX_OFFSET) return -1;
  let lane = 0;
  if (at < length) {
    if (owner.charCodeAt(at) !== 47 || at + 2 !== length) return -1; // '/' and one digit
    lane = owner.charCodeAt(at + 1) - 48;
    if (lane < 1 || lane >= LANES) return -1;
  }
  return (offset * PARTITIONS + partition) * LANES + lane;
}

/** The owner token a code stands for (see `ownerCode`). */
export function ownerOf(code: number): string {
  const lane = code % LANES;
  const rest = (code - lane) / LANES;
  const partition = rest % PARTITIONS;
  const offset = (rest - partition) / PARTITIONS;
  return lane === 0 ? `${partition}:${offset}` : `${partition}:${offset}/${lane}`;
}

/**
 * The owners of a ring's slots: a canonical token as its code in a Float64Array (8 bytes, no string kept), any other
 * as its string in an array made the first time one is seen.
 */
class Owners {
  #codes: Float64Array;
  #strings: (string | undefined)[] | undefined;

  constructor(length: number) {
    this.#codes = new Float64Array(length);
  }

  get(slot: number): string {
    const code = this.#codes[slot]!;
    return code >= 0 ? ownerOf(code) : this.#strings![slot]!;
  }

  set(slot: number, owner: string): void {
    const code = ownerCode(owner);
    this.#codes[slot] = code;
    if (code >= 0) {
      if (this.#strings !== undefined) this.#strings[slot] = undefined;
      return;
    }
    this.#strings ??= emptySlots(this.#codes.length);
    this.#strings[slot] = owner;
  }

  clear(slot: number): void {
    if (this.#strings !== undefined) this.#strings[slot] = undefined;
  }

  /** Doubles with the ring (see `unwrap`). */
  grow(head: number): void {
    const old = this.#codes.length;
    this.#codes = unwrap(this.#codes, head, 2);
    if (this.#strings === undefined) return;
    const strings = emptySlots<string>(2 * old);
    for (let i = 0; i < old; i++) strings[i] = this.#strings[(head + i) & (old - 1)];
    this.#strings = strings;
  }
}

/**
 * Claims of one state: key -> owner token, in insertion order.
 *
 * @example
 * const table = new ClaimTable();
 * if (table.get(id) === undefined) table.add(id, '0:42');
 * table.dropOldest(1); // evicts the first key added
 */
export class ClaimTable {
  readonly #seed = randomSeed();
  /** Ring, in insertion order from `#head`: string keys (undefined where the key is packed), owners, hashes. */
  #keys: (string | undefined)[] = emptySlots(MIN_RING);
  #words: Int32Array = new Int32Array(4 * MIN_RING);
  readonly #owners = new Owners(MIN_RING);
  #hashes: Int32Array = new Int32Array(MIN_RING);
  #head = 0;
  #size = 0;
  #index: Int32Array = new Int32Array(2 * MIN_RING);
  /** The last key looked up, its hash and whether (and how) it packed: `add` after `get` does not hash twice. */
  #lastKey: string | undefined;
  #lastHash = 0;
  #lastPacked = false;
  readonly #packed = new Int32Array(4);

  get size(): number {
    return this.#size;
  }

  /** The owner holding `key`, or undefined. */
  get(key: string): string | undefined {
    const slot = this.#find(key);
    return slot < 0 ? undefined : this.#owners.get(slot);
  }

  /** Gives a held key another owner; false when the key is not held. */
  setOwner(key: string, owner: string): boolean {
    const slot = this.#find(key);
    if (slot < 0) return false;
    this.#owners.set(slot, owner);
    return true;
  }

  /** Adds a key the table does not hold, as the newest entry. */
  add(key: string, owner: string): void {
    if (key !== this.#lastKey) this.#prepare(key);
    if (this.#size === this.#hashes.length) this.#grow();
    const mask = this.#hashes.length - 1;
    const slot = (this.#head + this.#size) & mask;
    if (this.#lastPacked) {
      this.#keys[slot] = undefined;
      this.#words.set(this.#packed, 4 * slot);
    } else {
      this.#keys[slot] = key;
    }
    this.#owners.set(slot, owner);
    this.#hashes[slot] = this.#lastHash;
    this.#size++;
    indexSlot(this.#index, this.#lastHash, slot);
  }

  /** Forgets the `n` oldest entries (fewer if the table holds fewer). */
  dropOldest(n: number): void {
    const mask = this.#hashes.length - 1;
    for (let left = Math.min(n, this.#size); left > 0; left--) {
      const slot = this.#head;
      unindex(this.#index, this.#hashes[slot]!, slot, this.#hashes);
      this.#keys[slot] = undefined;
      this.#owners.clear(slot);
      this.#head = (slot + 1) & mask;
      this.#size--;
    }
    this.#lastKey = undefined; // the words of the last lookup are still right, but keep `add`'s contract simple
  }

  #prepare(key: string): void {
    this.#lastKey = key;
    const p = this.#packed;
    this.#lastPacked = packUlid(key, p);
    this.#lastHash = this.#lastPacked ? hashWords(p[0]!, p[1]!, p[2]!, p[3]!, this.#seed) : hashString(key, this.#seed);
  }

  #find(key: string): number {
    this.#prepare(key);
    const index = this.#index;
    const mask = index.length - 1;
    const hash = this.#lastHash;
    const hashes = this.#hashes;
    for (let bucket = hash & mask; ; bucket = (bucket + 1) & mask) {
      const entry = index[bucket]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (hashes[slot] !== hash) continue;
      if (this.#lastPacked) {
        if (this.#keys[slot] !== undefined) continue;
        const w = this.#words;
        const p = this.#packed;
        const at = 4 * slot;
        if (w[at] === p[0] && w[at + 1] === p[1] && w[at + 2] === p[2] && w[at + 3] === p[3]) return slot;
      } else if (this.#keys[slot] === key) {
        return slot;
      }
    }
  }

  /** Doubles the full ring (entries moved to slots 0..size-1, oldest first) and rebuilds the index at twice its size. */
  #grow(): void {
    const old = this.#hashes.length;
    const head = this.#head;
    const length = 2 * old;
    const keys = emptySlots<string>(length);
    for (let i = 0; i < old; i++) keys[i] = this.#keys[(head + i) & (old - 1)];
    this.#keys = keys;
    this.#owners.grow(head);
    this.#words = unwrap(this.#words, 4 * head, 2);
    this.#hashes = unwrap(this.#hashes, head, 2);
    this.#index = reindex(this.#hashes, old, 2 * length);
    this.#head = 0;
  }
}

/** A stream (device) of a sequence state: its highest accepted sequence and how many accepted sequences it holds. */
export class Stream {
  highest: number;
  /** Accepted sequences of this stream the table holds; the stream is forgotten when it reaches 0. */
  held = 0;
  constructor(
    readonly name: string,
    highest: number,
    /** Distinct per table while the stream lives: mixed into the hash of its sequences. */
    readonly id: number,
  ) {
    this.highest = highest;
  }
}

/**
 * Accepted sequences of one state: (stream, sequence) -> owner token, in acceptance order. Dropping a stream's last
 * accepted sequence calls `onEmpty(stream)`.
 *
 * @example
 * const table = new SequenceTable((stream) => streams.delete(stream.name));
 * if (table.get(stream, 7) === undefined) table.add(stream, 7, '0:42');
 */
export class SequenceTable {
  readonly #seed = randomSeed();
  readonly #onEmpty: (stream: Stream) => void;
  #streams: (Stream | undefined)[] = emptySlots(MIN_RING);
  #sequences: Float64Array = new Float64Array(MIN_RING);
  readonly #owners = new Owners(MIN_RING);
  #hashes: Int32Array = new Int32Array(MIN_RING);
  #head = 0;
  #size = 0;
  #index: Int32Array = new Int32Array(2 * MIN_RING);

  constructor(onEmpty: (stream: Stream) => void) {
    this.#onEmpty = onEmpty;
  }

  get size(): number {
    return this.#size;
  }

  /** The owner that had `sequence` of `stream` accepted, or undefined. */
  get(stream: Stream, sequence: number): string | undefined {
    const slot = this.#find(stream, sequence, this.#hash(stream, sequence));
    return slot < 0 ? undefined : this.#owners.get(slot);
  }

  /** Gives a held sequence another owner; false when it is not held. */
  setOwner(stream: Stream, sequence: number, owner: string): boolean {
    const slot = this.#find(stream, sequence, this.#hash(stream, sequence));
    if (slot < 0) return false;
    this.#owners.set(slot, owner);
    return true;
  }

  /** Adds a sequence the table does not hold, as the newest entry. */
  add(stream: Stream, sequence: number, owner: string): void {
    if (this.#size === this.#hashes.length) this.#grow();
    const hash = this.#hash(stream, sequence);
    const slot = (this.#head + this.#size) & (this.#hashes.length - 1);
    this.#streams[slot] = stream;
    this.#sequences[slot] = sequence;
    this.#owners.set(slot, owner);
    this.#hashes[slot] = hash;
    this.#size++;
    stream.held++;
    indexSlot(this.#index, hash, slot);
  }

  /** Forgets the `n` oldest entries (fewer if the table holds fewer). */
  dropOldest(n: number): void {
    const mask = this.#hashes.length - 1;
    for (let left = Math.min(n, this.#size); left > 0; left--) {
      const slot = this.#head;
      unindex(this.#index, this.#hashes[slot]!, slot, this.#hashes);
      const stream = this.#streams[slot]!;
      this.#streams[slot] = undefined;
      this.#owners.clear(slot);
      this.#head = (slot + 1) & mask;
      this.#size--;
      if (--stream.held === 0) this.#onEmpty(stream);
    }
  }

  #hash(stream: Stream, sequence: number): number {
    // Sequences are safe integers: their low and high 32 bits, with the stream's id.
    return hashWords(stream.id, sequence | 0, Math.floor(sequence / 0x1_0000_0000) | 0, 0, this.#seed);
  }

  #find(stream: Stream, sequence: number, hash: number): number {
    const index = this.#index;
    const mask = index.length - 1;
    const hashes = this.#hashes;
    for (let bucket = hash & mask; ; bucket = (bucket + 1) & mask) {
      const entry = index[bucket]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (hashes[slot] === hash && this.#streams[slot] === stream && this.#sequences[slot] === sequence) return slot;
    }
  }

  /** Doubles the full ring (entries moved to slots 0..size-1, oldest first) and rebuilds the index at twice its size. */
  #grow(): void {
    const old = this.#hashes.length;
    const head = this.#head;
    const length = 2 * old;
    const streams = emptySlots<Stream>(length);
    for (let i = 0; i < old; i++) streams[i] = this.#streams[(head + i) & (old - 1)];
    this.#streams = streams;
    this.#owners.grow(head);
    this.#sequences = unwrap(this.#sequences, head, 2);
    this.#hashes = unwrap(this.#hashes, head, 2);
    this.#index = reindex(this.#hashes, old, 2 * length);
    this.#head = 0;
  }
}
