import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claimedLong, claimedText, claimsOf, isCleanText, MAX_CLAIMED_TEXT } from './claims.ts';

describe('claims: what a rejected record claims, made storable', () => {
  it('keeps clean text, cuts long text, refuses dirty text', () => {
    expect(claimedText('dev-1')).toBe('dev-1');
    expect(claimedText('')).toBeNull();
    expect(claimedText(7)).toBeNull();
    expect(claimedText('a\ud800b')).toBeNull();
    expect(claimedText('a\u0000')).toBeNull();
    expect(claimedText('y'.repeat(5 * 1024 * 1024))).toBe('y'.repeat(MAX_CLAIMED_TEXT));
    // Never cut between the halves of a surrogate pair.
    const pairs = `${'x'.repeat(MAX_CLAIMED_TEXT - 1)}😀😀`;
    expect(claimedText(pairs)).toBe('x'.repeat(MAX_CLAIMED_TEXT - 1));
  });

  it('keeps safe integers only; -0 is 0', () => {
    expect(claimedLong(42)).toBe(42);
    expect(claimedLong(-5)).toBe(-5);
    expect(Object.is(claimedLong(-0), 0)).toBe(true);
    for (const v of [1e30, -1e30, 2 ** 53, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '5', null]) {
      expect(claimedLong(v)).toBeNull();
    }
  });

  it('any value becomes claims that are clean, bounded, and safe', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('device_id', 'event_id', 'sequence', 'nonce', 'other'), fc.anything()),
        (value) => {
          const claims = claimsOf(value);
          for (const v of Object.values(claims ?? {})) {
            if (typeof v === 'string') {
              expect(v.length).toBeLessThanOrEqual(MAX_CLAIMED_TEXT);
              expect(isCleanText(v)).toBe(true);
            } else if (v !== null) expect(Number.isSafeInteger(v)).toBe(true);
          }
        },
      ),
    );
    expect(claimsOf(null)).toBeNull();
    expect(claimsOf([1])).toBeNull();
  });
});
