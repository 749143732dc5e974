/**
 * ULIDs from a seeded generator: 48-bit millisecond time + 80 random bits, Crockford base32 (26 characters).
 * The `ulid` package draws from crypto randomness; a simulation must not, so the encoding lives here.
 */
import type { Prng } from './prng.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const MAX_TIME = 2 ** 48 - 1;

const CODES = Buffer.from(ALPHABET, 'latin1');
const out = Buffer.alloc(26);

export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** The 10-character time part of a ULID. */
export function ulidTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_TIME) throw new RangeError('ULID time must be 0..2^48-1 ms');
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    const mod = t % 32;
    out = ALPHABET[mod] + out;
    t = (t - mod) / 32;
  }
  return out;
}

/** The 16-character random part, from three 32-bit draws (80 of their 96 bits). */
export function ulidRandom(prng: Prng): string {
  let out = '';
  for (let k = 0; k < 3; k++) {
    let r = prng.u32();
    const n = k === 2 ? 4 : 6;
    for (let i = 0; i < n; i++) {
      out += ALPHABET[r & 31];
      r >>>= 5;
    }
  }
  return out;
}

export function ulid(ms: number, prng: Prng): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_TIME) throw new RangeError('ULID time must be 0..2^48-1 ms');
  let t = ms;
  for (let i = 9; i >= 0; i--) {
    const mod = t % 32;
    out[i] = CODES[mod] as number;
    t = (t - mod) / 32;
  }
  let pos = 10;
  for (let k = 0; k < 3; k++) {
    let r = prng.u32();
    const n = k === 2 ? 4 : 6;
    for (let i = 0; i < n; i++) {
      out[pos++] = CODES[r & 31] as number;
      r >>>= 5;
    }
  }
  return out.toString('latin1', 0, 26);
}

/** The millisecond time a ULID carries. */
export function ulidTimeOf(id: string): number {
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + ALPHABET.indexOf(id[i] as string);
  return t;
}

export function isUlid(value: string): boolean {
  return ULID_PATTERN.test(value);
}
