/**
 * What a rejected record claims about itself (event id, device id, firmware, sequence, nonce, key id...), made
 * storable.
 *
 * A dead letter cites the fields its record claimed so it can be found by device or event. But a record is usually
 * rejected *because* it is hostile, and its claims are as hostile as the rest: a sequence of 1e30 that no Int64 column
 * holds, a 5 MB device id, a lone UTF-16 surrogate that no UTF-8 store accepts. A dead letter must always be storable
 * (it is the last place a bad record is recorded), so its claims are cut down to what every column holds. The
 * evidence is elsewhere and untouched: the exact raw bytes and their sha256.
 *
 * Rules: a claimed text is kept when it is a non-empty, well-formed Unicode string without NUL, cut to
 * `MAX_CLAIMED_TEXT` characters (never between the two halves of a surrogate pair); anything else is null. A claimed
 * integer is kept only when it is a safe integer (|n| <= 2^53 - 1, inside Int64 and exact as a JS number); -0 is 0.
 */

/** Longest claimed text a dead letter (or the raw plane) keeps, in UTF-16 code units. */
export const MAX_CLAIMED_TEXT = 256;

const NUL = '\u0000';

/** Well-formed Unicode (no lone surrogate) and free of NUL: text every store can hold as it is. */
export function isCleanText(value: string): boolean {
  return (value as unknown as { isWellFormed(): boolean }).isWellFormed() && !value.includes(NUL);
}

/**
 * A claimed text fit for a dead letter: null unless a non-empty clean string; cut to `max` code units.
 *
 * @example
 * claimedText('dev-1') // 'dev-1'
 * claimedText('\ud800') // null
 * claimedText('x'.repeat(5_000_000)).length // 256
 */
export function claimedText(value: unknown, max = MAX_CLAIMED_TEXT): string | null {
  if (typeof value !== 'string' || value.length === 0) return null;
  // Cut first (bounded work), then judge the part that is kept.
  let text = value;
  if (text.length > max) {
    const last = text.charCodeAt(max - 1);
    text = text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
  }
  return text.length > 0 && isCleanText(text) ? text : null;
}

/**
 * A claimed integer fit for a dead letter (an Int64 column, an Avro long): null unless a safe integer.
 *
 * @example
 * claimedLong(42) // 42
 * claimedLong(1e30) // null
 * claimedLong(1.5) // null
 */
export function claimedLong(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return null;
  return value === 0 ? 0 : value;
}

/** The envelope fields a dead letter, a duplicate or the raw plane cite from a record, in their storable form. */
const CLAIMED_FIELDS = {
  text: ['event_id', 'device_id', 'site_id', 'firmware_version', 'nonce', 'key_id', 'device_cert_fingerprint'],
  long: ['sequence'],
} as const;

/**
 * Only the claimed fields of a parsed (possibly hostile) object, each in its storable form or null. What a source
 * keeps of a record it rejects, instead of the whole parsed value.
 */
export function claimsOf(value: unknown): Record<string, string | number | null> | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) return null;
  const source = value as Record<string, unknown>;
  const out: Record<string, string | number | null> = {};
  for (const name of CLAIMED_FIELDS.text) out[name] = claimedText(Object.hasOwn(source, name) ? source[name] : null);
  for (const name of CLAIMED_FIELDS.long) out[name] = claimedLong(Object.hasOwn(source, name) ? source[name] : null);
  return out;
}
