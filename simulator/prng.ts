/**
 * A small, fast, seeded pseudo-random generator (sfc32) with the draws the simulator needs.
 *
 * Determinism is the point: the same seed gives the same sequence on every machine and Node version (only 32-bit
 * integer arithmetic and IEEE doubles, no `Math.random`). Independent streams are derived from a seed and a label
 * (`Prng.derive(seed, 'device/17')`), so changing one part of a simulation (say, the fault rates) never shifts the
 * draws of another (the vitals).
 */
import { createHash } from 'node:crypto';

const TWO_POW_32 = 4294967296;
const scratch = Buffer.alloc(64);

export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spare = 0;
  #hasSpare = false;

  constructor(a: number, b: number, c: number, d: number) {
    this.#a = a >>> 0;
    this.#b = b >>> 0;
    this.#c = c >>> 0;
    this.#d = d >>> 0 || 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A generator whose whole state comes from sha256(`seed/label`): stable, and independent per label. */
  static derive(seed: number | string, label: string): Prng {
    const h = createHash('sha256')
      .update(`vigil-sim/${String(seed)}/${label}`)
      .digest();
    return new Prng(h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12));
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    const a = this.#a;
    const b = this.#b;
    const c = this.#c;
    const d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    const r = (c << 21) | (c >>> 11);
    this.#c = (r + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / TWO_POW_32;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Standard normal (Marsaglia's polar method; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    let x: number;
    let y: number;
    let r: number;
    do {
      x = 2 * this.float() - 1;
      y = 2 * this.float() - 1;
      r = x * x + y * y;
    } while (r >= 1 || r === 0);
    const m = Math.sqrt((-2 * Math.log(r)) / r);
    this.#spare = y * m;
    this.#hasSpare = true;
    return x * m;
  }

  /** Normal with a mean and standard deviation, clamped to [lo, hi]. */
  gauss(mean: number, sd: number, lo = Number.NEGATIVE_INFINITY, hi = Number.POSITIVE_INFINITY): number {
    return Math.min(hi, Math.max(lo, mean + sd * this.normal()));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)] as T;
  }

  /** Picks by relative weight: `weighted([['a', 3], ['b', 1]])` returns 'a' three times as often as 'b'. */
  weighted<T>(table: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of table) total += w;
    let x = this.float() * total;
    for (const [item, w] of table) {
      x -= w;
      if (x < 0) return item;
    }
    return (table[table.length - 1] as readonly [T, number])[0];
  }

  /** `bytes` (a multiple of 4, at most 64) random bytes as lower-case hex. */
  hex(bytes: number): string {
    for (let i = 0; i < bytes; i += 4) scratch.writeUInt32BE(this.u32(), i);
    return scratch.toString('hex', 0, bytes);
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}
