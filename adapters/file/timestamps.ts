/**
 * Timestamps in NDJSON envelopes: epoch milliseconds (a JSON integer) or an ISO-8601 / RFC 3339 date-time with a
 * zone: `Z` or an offset (`+02:00`, `-0500`). Anything else is not a timestamp: no date-only strings, no local times,
 * no numeric strings. Fractions beyond milliseconds are truncated.
 */

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS[month - 1] as number;
}

/** Epoch ms of an ISO-8601 date-time with a zone, or null when the string is not one (or names no real instant). */
export function parseIsoTimestamp(text: string): number | null {
  const m = ISO.exec(text);
  if (!m) return null;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  // Second 60 is a leap second (RFC 3339); epoch time has none, so it reads as the next minute's :00.
  if (hour > 23 || minute > 59 || second > 60) return null;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime() - offsetMinutes * 60_000;
}

/**
 * A timestamp-millis value from JSON: an integer number of epoch ms, or an ISO string. Returns undefined when the
 * value is neither (the caller names the field).
 */
export function coerceTimestamp(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string') return parseIsoTimestamp(value) ?? undefined;
  return undefined;
}

/** ISO-8601 UTC with milliseconds, as the NDJSON writer emits. */
export function formatIsoTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}
