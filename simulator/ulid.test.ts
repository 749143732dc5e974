import { describe, expect, it } from 'vitest';
import { Prng } from './prng.ts';
import { isUlid, ulid, ulidRandom, ulidTime, ulidTimeOf } from './ulid.ts';

describe('ulid', () => {
  it('encodes the time in the first 10 characters (Crockford base32), sortable by time', () => {
    expect(ulidTime(0)).toBe('0000000000');
    expect(ulidTime(2 ** 48 - 1)).toBe('7ZZZZZZZZZ');
    // The ULID spec's example time.
    expect(ulidTime(1469918176385)).toBe('01ARYZ6S41');
    const p = Prng.derive(1, 'ulid');
    const a = ulid(1_700_000_000_000, p);
    const b = ulid(1_700_000_000_001, p);
    expect(a < b).toBe(true);
    expect(ulidTimeOf(a)).toBe(1_700_000_000_000);
    expect(() => ulidTime(-1)).toThrow(RangeError);
    expect(() => ulidTime(2 ** 48)).toThrow(RangeError);
  });

  it('draws 80 random bits from the seeded generator: the same seed gives the same ids', () => {
    const ids = (seed: number) => {
      const p = Prng.derive(seed, 'ulid');
      return Array.from({ length: 100 }, (_, i) => ulid(1_767_600_000_000 + i, p));
    };
    expect(ids(1)).toEqual(ids(1));
    expect(ids(1)).not.toEqual(ids(2));
    for (const id of ids(3)) expect(isUlid(id)).toBe(true);
    expect(new Set(ids(4)).size).toBe(100);
    // ulid() is ulidTime + ulidRandom on the same draws.
    const p = Prng.derive(9, 'x');
    const q = Prng.derive(9, 'x');
    expect(ulid(123_456, p)).toBe(ulidTime(123_456) + ulidRandom(q));
  });

  it('tells ULIDs from other ids', () => {
    expect(isUlid('01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBe(true);
    expect(isUlid('01arz3ndektsv4rrffq69g5fav')).toBe(false);
    expect(isUlid('81ARZ3NDEKTSV4RRFFQ69G5FAV')).toBe(false); // time overflows 48 bits
    expect(isUlid('01ARZ3NDEKTSV4RRFFQ69G5FAI')).toBe(false); // I is not Crockford
    expect(isUlid('6f1c2a9e-4b7d-4c1e-9a2b-3c4d5e6f7a8b')).toBe(false);
  });
});
