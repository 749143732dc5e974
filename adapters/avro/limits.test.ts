import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryEnvelope } from '../../test/property/arbitrary.ts';
import { DATETIME64_MAX_MS } from '../clickhouse/tables.ts';
import { createEnvelopeDecoder } from './decoder.ts';
import { encodeFramed } from './framing.ts';
import {
  compileLimits,
  DEFAULT_STRING_LIMIT,
  envelopeLimits,
  MAX_TIMESTAMP_MS,
  MIN_TIMESTAMP_MS,
  STRING_LIMITS,
} from './limits.ts';
import { envelopeReaderType, loadSchemaRepo } from './schemas.ts';

const good = fc.sample(
  arbitraryEnvelope(envelopeReaderType()).filter((e) => envelopeLimits()(e) === null),
  { numRuns: 1, seed: 7 },
)[0] as unknown as Record<string, unknown>;
const vitals = (patch: Record<string, unknown>) => ({
  ...good,
  event_type: 'vital_signs',
  payload: { 'vigil.telemetry.payload.VitalSigns': { ...VITALS, ...patch } },
});
const VITALS = {
  respiratory_rate: 16,
  spo2: 97,
  on_oxygen: false,
  systolic_bp: 120,
  pulse: 70,
  consciousness: 'A',
  temperature_c: 36.8,
};

describe('envelope limits: one check per class of hostile value, for every decoder', () => {
  const check = envelopeLimits();

  it('accepts an ordinary envelope', () => {
    expect(check(vitals({}))).toBeNull();
  });

  it.each([
    ['a string over its field cap', { device_id: 'x'.repeat(DEFAULT_STRING_LIMIT + 1) }, /^device_id: longer than 256/],
    ['a megabyte string', { nonce: 'x'.repeat(1 << 20) }, /^nonce: longer than 256/],
    ['a field with its own cap', { event_id: 'x'.repeat(65) }, /^event_id: longer than 64/],
    ['a lone high surrogate', { site_id: 'a\ud800' }, /^site_id: not clean Unicode/],
    ['a lone low surrogate', { key_id: '\udc00' }, /^key_id: not clean Unicode/],
    ['a NUL', { patient_ref: 'p\u0000' }, /^patient_ref: not clean Unicode/],
    ['a long beyond 2^53', { sequence: 2 ** 60 }, /^sequence: not an integer within the exact long/],
    ['a fractional long', { sequence: 1.5 }, /^sequence: not an integer/],
    ['a time before 1970', { observed_at: -1 }, /^observed_at: outside the storable time range 1970/],
    ['a time past DateTime64', { received_at: MAX_TIMESTAMP_MS + 1 }, /^received_at: outside the storable time/],
    ['an array item', { parent_event_ids: ['ok', 'x'.repeat(65)] }, /^parent_event_ids\[1\]: longer than 64/],
    ['a prototype name as an enum symbol', { event_type: 'constructor' }, /^event_type: not one of the EventType/],
  ])('refuses %s, naming the field and bound, never the value', (_, patch, detail) => {
    const problem = check({ ...vitals({}), ...patch });
    expect(problem).toMatch(detail);
    expect(problem).not.toContain('xxxx');
  });

  it.each([
    ['an int beyond 32 bits', { spo2: 2 ** 40 }, /^payload\.spo2: outside the int range/],
    ['a NaN int', { pulse: Number.NaN }, /^payload\.pulse: outside the int range/],
    [
      'an enum symbol from the prototype',
      { consciousness: 'toString' },
      /^payload\.consciousness: not one of the Acvpu/,
    ],
  ])('refuses %s inside the payload union', (_, patch, detail) => {
    expect(check(vitals(patch))).toMatch(detail);
  });

  it('leaves doubles to validate (Float64 holds NaN and the infinities)', () => {
    expect(check(vitals({ temperature_c: Number.NaN, respiratory_rate: Number.POSITIVE_INFINITY }))).toBeNull();
  });

  it('the time range is the one DateTime64(3) holds, and starts at the epoch', () => {
    expect(MAX_TIMESTAMP_MS).toBe(DATETIME64_MAX_MS);
    expect(MIN_TIMESTAMP_MS).toBe(0);
    expect(check({ ...vitals({}), observed_at: MAX_TIMESTAMP_MS, received_at: 0 })).toBeNull();
  });

  it('every capped field exists in the newest envelope', () => {
    const text = JSON.stringify(loadSchemaRepo().get('envelope').newest.schema);
    for (const name of Object.keys(STRING_LIMITS)) expect(text).toContain(`"name":"${name}"`);
  });

  it('compiles schemas with named references and maps', () => {
    const limits = compileLimits({
      type: 'record',
      name: 'R',
      fields: [
        { name: 'e', type: { type: 'enum', name: 'E', symbols: ['a'] } },
        { name: 'again', type: 'E' },
        { name: 'm', type: { type: 'map', values: 'int' } },
      ],
    } as never);
    expect(limits({ e: 'a', again: 'a', m: { k: 1 } })).toBeNull();
    expect(limits({ e: 'a', again: 'valueOf', m: {} })).toBe('again: not one of the E symbols');
    expect(limits({ e: 'a', again: 'a', m: { k: 2 ** 33 } })).toMatch(/^m\{\}: outside the int range/);
  });

  it('the Kafka decoder refuses a schema-valid frame beyond the limits as ENVELOPE_INVALID', async () => {
    const repo = loadSchemaRepo();
    const newest = repo.get('envelope').newest;
    const registry = {
      location: 'test',
      getWriterType: async () => newest.type,
    } as unknown as Parameters<typeof createEnvelopeDecoder>[0];
    const decoder = createEnvelopeDecoder(registry);
    const bad = { ...vitals({}), device_id: 'd\u0000' };
    const result = await decoder.decode(encodeFramed(1, newest.type, bad));
    expect(result).toEqual({
      ok: false,
      code: 'ENVELOPE_INVALID',
      detail: expect.stringMatching(/^device_id: not clean/),
    });
  });
});
