import { describe, expect, it } from 'vitest';
import { coerceTimestamp, formatIsoTimestamp, parseIsoTimestamp } from './timestamps.ts';

describe('parseIsoTimestamp', () => {
  it('reads UTC (Z) and offset date-times to epoch ms', () => {
    const t = Date.UTC(2026, 0, 5, 6, 0, 0, 0);
    expect(parseIsoTimestamp('2026-01-05T06:00:00Z')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05T06:00:00.000Z')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05t06:00:00z')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05 06:00:00Z')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05T06:00Z')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05T08:00:00+02:00')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05T01:00:00-0500')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05T11:30:00+05:30')).toBe(t);
    expect(parseIsoTimestamp('2026-01-05T06:00:00+00:00')).toBe(t);
    expect(parseIsoTimestamp('2026-01-04T23:00:00-07:00')).toBe(t);
    // Fractions: milliseconds kept, finer digits truncated, comma allowed.
    expect(parseIsoTimestamp('2026-01-05T06:00:00.5Z')).toBe(t + 500);
    expect(parseIsoTimestamp('2026-01-05T06:00:00.123456789Z')).toBe(t + 123);
    expect(parseIsoTimestamp('2026-01-05T06:00:00,25Z')).toBe(t + 250);
    // Calendar edges.
    expect(parseIsoTimestamp('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(parseIsoTimestamp('2000-02-29T00:00:00Z')).toBe(Date.UTC(2000, 1, 29));
    expect(parseIsoTimestamp('1969-12-31T23:59:59.999Z')).toBe(-1);
    expect(parseIsoTimestamp('0050-01-01T00:00:00Z')).toBe(new Date('0050-01-01T00:00:00Z').getTime());
    // A leap second reads as the next minute's :00.
    expect(parseIsoTimestamp('2016-12-31T23:59:60Z')).toBe(Date.UTC(2017, 0, 1));
  });

  it('refuses what names no instant: no zone, date only, impossible dates and times, other formats', () => {
    for (const text of [
      '2026-01-05T06:00:00', // local time: ambiguous
      '2026-01-05',
      '2026-02-29T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-00-10T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2026-01-05T24:00:00Z',
      '2026-01-05T06:60:00Z',
      '2026-01-05T06:00:61Z',
      '2026-01-05T06:00:00+24:00',
      '2026-01-05T06:00:00+02:60',
      '2026-1-5T06:00:00Z',
      '20260105T060000Z',
      '1767592800000',
      'Mon, 05 Jan 2026 06:00:00 GMT',
      ' 2026-01-05T06:00:00Z',
      '',
    ]) {
      expect(parseIsoTimestamp(text), text).toBeNull();
    }
  });
});

describe('coerceTimestamp', () => {
  it('takes integer epoch ms or an ISO string, nothing else', () => {
    expect(coerceTimestamp(1_767_592_800_000)).toBe(1_767_592_800_000);
    expect(coerceTimestamp(0)).toBe(0);
    expect(coerceTimestamp('2026-01-05T06:00:00Z')).toBe(1_767_592_800_000);
    expect(coerceTimestamp(1.5)).toBeUndefined();
    expect(coerceTimestamp(2 ** 60)).toBeUndefined();
    expect(coerceTimestamp('1767592800000')).toBeUndefined();
    expect(coerceTimestamp(true)).toBeUndefined();
    expect(coerceTimestamp({})).toBeUndefined();
  });

  it('round-trips what the writer emits', () => {
    for (const ms of [0, 1, 1_767_592_800_123, Date.UTC(2099, 11, 31, 23, 59, 59, 999)]) {
      expect(parseIsoTimestamp(formatIsoTimestamp(ms))).toBe(ms);
    }
  });
});
