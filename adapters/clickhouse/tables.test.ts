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
