import { describe, expect, it } from 'vitest';
import { normalisedEventRow } from '../../pipelines/outputs.ts';
import { deadLetter, duplicate, normalisedEvent, origin, T0 } from '../../test/fixtures/clickhouse.ts';
import {
  DATETIME64_MAX_MS,
  DATETIME64_MIN_MS,
  deadLetterRow,
  duplicateRow,
  fromDateTime64,
  rawEventRow,
  TABLE_COLUMNS,
  toDateTime64,
  toFloat,
  toRows,
} from './tables.ts';

describe('value conversions', () => {
  it('writes epoch ms as DateTime64(3) UTC text and reads it back', () => {
    expect(toDateTime64(T0 + 7)).toBe('2026-03-10 08:00:00.007');
    expect(toDateTime64(0)).toBe('1970-01-01 00:00:00.000');
    expect(fromDateTime64('2026-03-10 08:00:00.007')).toBe(T0 + 7);
    expect(toDateTime64(DATETIME64_MIN_MS)).toBe('1900-01-01 00:00:00.000');
    expect(toDateTime64(DATETIME64_MAX_MS)).toBe('2299-12-31 23:59:59.999');
  });

  it("gives Date's UTC text for any time in range, in any order (the day and second caches never leak)", () => {
    const iso = (ms: number) => {
      const text = new Date(ms).toISOString();
      return `${text.slice(0, 10)} ${text.slice(11, 23)}`;
    };
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const span = DATETIME64_MAX_MS - DATETIME64_MIN_MS;
    const times: number[] = [DATETIME64_MIN_MS, DATETIME64_MAX_MS, 0, -1, -0.5, 999.9, 1000, -1000, -1001];
    for (let i = 0; i < 20_000; i++) {
      const base = DATETIME64_MIN_MS + random() * span;
      // Neighbours within the same second, across a second, a day, and fractional ms, as a batch's rows give them.
      times.push(base, base + 1, base + 999, base + 1000, base - 1, base + 86_400_000, Math.floor(base) + 0.75);
    }
    for (const ms of times) {
      if (ms < DATETIME64_MIN_MS || ms > DATETIME64_MAX_MS) continue;
      expect(toDateTime64(ms)).toBe(iso(ms));
    }
  });

  it('refuses a time DateTime64 cannot hold, naming the column but not the value', () => {
    expect(() => toDateTime64(DATETIME64_MAX_MS + 1, 'observed_at')).toThrow(
      'observed_at is outside the DateTime64 range 1900..2299 and cannot be stored',
    );
    expect(() => toDateTime64(Number.NaN)).toThrow(/outside the DateTime64 range/);
  });

  it('keeps non-finite floats as ClickHouse spells them', () => {
    expect([1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(toFloat)).toEqual([
      1.5,
      'nan',
      'inf',
      '-inf',
    ]);
  });
});

describe('mappers', () => {
  it('flatten the payload union into its own columns and leave the others NULL', () => {
    const row = normalisedEventRow(normalisedEvent({ n: 1, type: 'alarm', alarm: { alarm_code: 'HR_HIGH' } }));
    expect(row).toMatchObject({ event_type: 'alarm', alarm_code: 'HR_HIGH', alarm_active: true, spo2: null });
    expect(Object.keys(row)).toEqual([...TABLE_COLUMNS.normalised_events]);
  });

  it('store a device-reported calibration time DateTime64 cannot hold as NULL instead of failing the batch', () => {
    const event = normalisedEvent({ n: 1, type: 'device_status', status: { last_calibrated_at: 1e16 } });
    expect(normalisedEventRow(event).last_calibrated_at).toBeNull();
  });

  it('encode raw bytes and header values as base64 for the EPHEMERAL columns', () => {
    const raw = Buffer.from([0, 1, 2, 255]);
    const row = rawEventRow(origin(4, raw), { eventId: 'E', deviceId: null });
    expect(row).toMatchObject({
      raw_b64: 'AAEC/w==',
      raw_size: 4,
      headers_b64: [
        { key: 'traceparent', value_b64: Buffer.from('00-4-01').toString('base64') },
        { key: 'empty', value_b64: null },
      ],
      event_id: 'E',
      device_id: null,
    });
    expect(Object.keys(row)).toEqual([...TABLE_COLUMNS.raw_events]);
  });

  it('leave the bytes of a dead letter out, keeping their size', () => {
    const row = deadLetterRow(deadLetter(1));
    expect(row).not.toHaveProperty('raw_bytes');
    expect(row).not.toHaveProperty('original_headers');
    expect(row.raw_size).toBe(4);
    expect(Object.keys(row)).toEqual([...TABLE_COLUMNS.dead_letters]);
  });

  it('map batches by table name', () => {
    const event = normalisedEvent({ n: 2 });
    expect(toRows('duplicates', [duplicate(event)])).toEqual([duplicateRow(duplicate(event))]);
    expect(toRows('normalised_events', [event])[0]?.event_id).toBe(event.event_id);
  });
});
