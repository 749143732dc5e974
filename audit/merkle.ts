/**
 * RFC 9162 section 2.1 Merkle trees: the hashing, the tree hash (MTH) for any size, inclusion proofs (PATH) and
 * consistency proofs (PROOF / SUBPROOF), and the two verification algorithms of sections 2.1.3.2 and 2.1.4.2.
 *
 * Two tree shapes, for two jobs:
 * - `CompactTree`: the writer's view. Only the right edge (one perfect-subtree root per set bit of the size) is kept,
 *   so appending costs O(log n) memory and amortised O(1) hashing: a million entries is cheap.
 * - `MerkleTree`: the verifier's and prover's view. Every perfect aligned subtree is kept (2n hashes in flat buffers,
 *   no object per node), so any MTH(D[lo:hi]) a proof needs costs O(log n) lookups instead of rehashing its leaves.
 *
 * Sizes and indexes are plain numbers (exact to 2^53); the arithmetic avoids 32-bit bit operators on purpose.
 */
import * as crypto from 'node:crypto';

export const HASH_SIZE = 32;

type OneShot = (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer;
/** One-shot SHA-256 (crypto.hash, Node >= 20.12): about twice as fast as a createHash chain for 65-byte inputs. */
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;
const sha256 = oneShot
  ? (data: Uint8Array): Buffer => oneShot('sha256', data, 'buffer')
  : (data: Uint8Array): Buffer => crypto.createHash('sha256').update(data).digest();

/** SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(entry.length + 1);
  input[0] = 0x00;
  input.set(entry, 1);
  return sha256(input);
}

// Hashing is synchronous: one scratch buffer serves every node hash.
const nodeInput = Buffer.allocUnsafe(1 + 2 * HASH_SIZE);
nodeInput[0] = 0x01;

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    return crypto
      .createHash('sha256')
      .update(Buffer.from([0x01]))
      .update(left)
      .update(right)
      .digest();
  }
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return sha256(nodeInput);
}

/** MTH({}) = SHA-256() of the empty string. */
export const EMPTY_ROOT: Buffer = crypto.createHash('sha256').digest();

const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/** The largest power of two smaller than n (n > 1): where MTH splits a tree of n leaves. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  let x = n;
  while (x > 1) {
    if (isOdd(x)) return false;
    x /= 2;
  }
  return true;
}

/** The root of an append-only tree, keeping only its right edge: O(log n) memory. */
export class CompactTree {
  /** Perfect subtree roots, largest first; `#sizes[i]` leaves under `#hashes[i]`. */
  readonly #hashes: Buffer[] = [];
  readonly #sizes: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  append(leaf: Buffer): void {
    let hash = leaf;
    let size = 1;
    while (this.#sizes.length > 0 && this.#sizes[this.#sizes.length - 1] === size) {
      hash = nodeHash(this.#hashes.pop()!, hash);
      size += this.#sizes.pop()!;
    }
    this.#hashes.push(hash);
    this.#sizes.push(size);
    this.#size++;
  }

  root(): Buffer {
    if (this.#size === 0) return EMPTY_ROOT;
    let root = this.#hashes[this.#hashes.length - 1]!;
    for (let i = this.#hashes.length - 2; i >= 0; i--) root = nodeHash(this.#hashes[i]!, root);
    return root;
  }
}

/** A growable run of 32-byte hashes in one buffer (a million leaves is one 32 MB allocation, not a million objects). */
class HashRun {
  #buffer = Buffer.alloc(HASH_SIZE * 1024);
  length = 0;

  push(hash: Uint8Array): void {
    if ((this.length + 1) * HASH_SIZE > this.#buffer.length) {
      const grown = Buffer.alloc(this.#buffer.length * 2);
      this.#buffer.copy(grown);
      this.#buffer = grown;
    }
    this.#buffer.set(hash, this.length * HASH_SIZE);
    this.length++;
  }

  at(i: number): Buffer {
    return this.#buffer.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }
}

/**
 * Every perfect aligned subtree of an append-only tree: level h holds the roots of leaves [i*2^h, (i+1)*2^h).
 * Roots, inclusion and consistency proofs for any size up to the current one.
 *
 * @example
 * const tree = new MerkleTree();
 * for (const e of entries) tree.append(leafHash(e));
 * const proof = tree.inclusionProof(3, tree.size);
 * verifyInclusion(tree.leaf(3), 3, tree.size, proof, tree.root()); // true
 */
export class MerkleTree {
  readonly #levels: HashRun[] = [new HashRun()];

  get size(): number {
    return this.#levels[0]!.length;
  }

  append(leaf: Uint8Array): void {
    this.#levels[0]!.push(leaf);
    let level = 0;
    // A level whose count became even completed a node one level up.
    while (this.#levels[level]!.length % 2 === 0) {
      const run = this.#levels[level]!;
      const joined = nodeHash(run.at(run.length - 2), run.at(run.length - 1));
      if (this.#levels.length === level + 1) this.#levels.push(new HashRun());
      this.#levels[level + 1]!.push(joined);
      level++;
    }
  }

  leaf(index: number): Buffer {
    if (index < 0 || index >= this.size) throw new RangeError(`leaf ${index} outside a tree of ${this.size}`);
    return Buffer.from(this.#levels[0]!.at(index));
  }

  /** MTH(D[lo:hi]). */
  rangeHash(lo: number, hi: number): Buffer {
    const n = hi - lo;
    if (n === 0) return EMPTY_ROOT;
    if (isPowerOfTwo(n) && lo % n === 0) {
      let level = 0;
      for (let w = n; w > 1; w /= 2) level++;
      return Buffer.from(this.#levels[level]!.at(lo / n));
    }
    const k = splitPoint(n);
    return nodeHash(this.rangeHash(lo, lo + k), this.rangeHash(lo + k, hi));
  }

  root(size = this.size): Buffer {
    this.#checkSize(size);
    return this.rangeHash(0, size);
  }

  /** PATH(m, D[0:size]): the audit path of leaf `index` in the tree of the first `size` leaves. */
  inclusionProof(index: number, size: number): Buffer[] {
    this.#checkSize(size);
    if (index < 0 || index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
    const path: Buffer[] = [];
    const walk = (m: number, lo: number, hi: number): void => {
      const n = hi - lo;
      if (n === 1) return;
      const k = splitPoint(n);
      if (m < k) {
        walk(m, lo, lo + k);
        path.push(this.rangeHash(lo + k, hi));
      } else {
        walk(m - k, lo + k, hi);
        path.push(this.rangeHash(lo, lo + k));
      }
    };
    walk(index, 0, size);
    return path;
  }

  /** PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true); empty when m is 0 or m equals n. */
  consistencyProof(m: number, n: number): Buffer[] {
    this.#checkSize(n);
    if (m < 0 || m > n) throw new RangeError(`no consistency proof from ${m} to ${n}`);
    if (m === 0 || m === n) return [];
    const proof: Buffer[] = [];
    const sub = (m: number, lo: number, hi: number, whole: boolean): void => {
      const n = hi - lo;
      if (m === n) {
        if (!whole) proof.push(this.rangeHash(lo, hi));
        return;
      }
      const k = splitPoint(n);
      if (m <= k) {
        sub(m, lo, lo + k, whole);
        proof.push(this.rangeHash(lo + k, hi));
      } else {
        sub(m - k, lo + k, hi, false);
        proof.push(this.rangeHash(lo, lo + k));
      }
    };
    sub(m, 0, n, true);
    return proof;
  }

  #checkSize(size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > this.size) {
      throw new RangeError(`tree size ${size} outside 0..${this.size}`);
    }
  }
}

/** RFC 9162 2.1.3.2: does `proof` lead from `leaf` at `index` to `root` in a tree of `size` leaves? */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && Buffer.from(r).equals(root);
}

/**
 * RFC 9162 2.1.4.2: is the tree of `second` leaves with `secondRoot` an append-only extension of the tree of `first`
 * leaves with `firstRoot`? Equal sizes need an empty proof and equal roots; an empty first tree is a prefix of any.
 */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isInteger(first) || !Number.isInteger(second) || first < 0 || first > second) return false;
  if (first === second) return proof.length === 0 && Buffer.from(firstRoot).equals(secondRoot);
  if (first === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && Buffer.from(fr).equals(firstRoot) && Buffer.from(sr).equals(secondRoot);
}
