import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REASON_CODES } from '../../runtime/errors.ts';
import { type Envelope, payloadOf } from '../../schemas/types.ts';
import { type EnvelopeRecord, simulateFleet } from '../../simulator/simulate.ts';
import { envelopeToNdjson, envelopeToPlain, parseEnvelopeLine } from './ndjson.ts';

/** Envelopes of every event type, valid and semantically faulty (which the reader must pass on untouched). */
const sample: Envelope[] = [];
for (const r of simulateFleet({ devices: 100, events: 3_000, seed: 21, malformedRate: 0.1, rawFaultShare: 0 })) {
  if (r.kind === 'envelope') sample.push(r.envelope);
}
const of = (type: Envelope['event_type']): Envelope =>
  sample.find((e) => e.event_type === type && payloadOf(e.payload)?.type === type) as Envelope;
const vitals = of('vital_signs');
const status = of('device_status');

type Plain = Record<string, unknown> & { payload: Record<string, unknown> };
const plainOf = (e: Envelope): Plain => envelopeToPlain(e) as Plain;
const parse = (value: unknown) => parseEnvelopeLine(typeof value === 'string' ? value : JSON.stringify(value));

function rejection(value: unknown): { code: string; detail: string } {
  const result = parse(value);
  if (result.ok) throw new Error('expected a rejection');
  return { code: result.code, detail: result.detail };
}

describe('parseEnvelopeLine', () => {
  it('round-trips every envelope whose payload fits its event_type, epoch or ISO timestamps', () => {
    const fitting = sample.filter((e) => payloadOf(e.payload)?.type === e.event_type);
    expect(new Set(fitting.map((e) => e.event_type)).size).toBe(4);
    expect(fitting.length).toBeGreaterThan(2_500);
    for (const timestamps of ['epoch', 'iso'] as const) {
      const back = fitting.map((e) => parse(envelopeToNdjson(e, { timestamps })));
      expect(back.map((r) => (r.ok ? r.envelope : r.detail))).toEqual(fitting);
    }
    // Without union wrapping the payload's record is the one event_type names: a mismatch cannot be expressed.
    const mismatched = sample.filter((e) => payloadOf(e.payload)?.type !== e.event_type);
    expect(mismatched.length).toBeGreaterThan(0);
    for (const e of mismatched) expect(rejection(envelopeToNdjson(e)).code).toBe('ENVELOPE_INVALID');
  });

  it('writes plain payloads without union wrapping, and ISO timestamps when asked', () => {
    const plain = JSON.parse(envelopeToNdjson(status, { timestamps: 'iso' }));
    expect(plain.payload.state).toBeTypeOf('string');
    expect(Object.keys(plain.payload)).not.toContain('vigil.telemetry.payload.DeviceStatus');
    expect(plain.observed_at).toBe(new Date(status.observed_at).toISOString());
    expect(plain.payload.last_calibrated_at).toMatch(/Z$/);
    expect(Object.keys(plain)).toEqual(Object.keys(status));
  });

  it('accepts epoch ms, ISO with Z and with offsets, in the envelope and in the payload', () => {
    const plain = plainOf(status);
    const iso = (ms: number, offsetHours: number) => {
      const local = new Date(ms + offsetHours * 3_600_000).toISOString().slice(0, 23);
      const sign = offsetHours < 0 ? '-' : '+';
      return `${local}${sign}${String(Math.abs(offsetHours)).padStart(2, '0')}:00`;
    };
    const forms = {
      ...plain,
      observed_at: new Date(status.observed_at).toISOString(),
      received_at: iso(status.received_at, 2),
      payload: {
        ...plain.payload,
        last_calibrated_at: iso(
          status.payload['vigil.telemetry.payload.DeviceStatus']?.last_calibrated_at as number,
          -5,
        ),
      },
    };
    const result = parse(forms);
    expect(result.ok && result.envelope).toEqual(status);
  });

  it('applies defaults to absent optional fields', () => {
    const plain = plainOf(status);
    // calibration_state has no field default (its enum's default only serves schema resolution): it stays required.
    expect(rejection({ ...plain, payload: { state: 'ok' } }).detail).toBe(
      'payload.calibration_state: required field missing',
    );
    const minimal: Record<string, unknown> = { ...plain, payload: { state: 'ok', calibration_state: 'current' } };
    for (const field of ['model_version', 'sequence', 'nonce', 'device_cert_fingerprint', 'key_id', 'device_batch']) {
      delete minimal[field];
    }
    for (const field of ['patient_subgroup', 'transformation_version', 'parent_event_ids']) delete minimal[field];
    const result = parse(minimal);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const e = result.envelope;
    expect(e.model_version).toBeNull();
    expect(e.sequence).toBeNull();
    expect(e.nonce).toBeNull();
    expect(e.parent_event_ids).toEqual([]);
    expect(e.payload).toEqual({
      'vigil.telemetry.payload.DeviceStatus': {
        state: 'ok',
        battery_pct: null,
        signal_dbm: null,
        calibration_state: 'current',
        last_calibrated_at: null,
      },
    });
    const bare = parse({ ...plainOf(vitals), payload: {} });
    expect(bare.ok && payloadOf(bare.envelope.payload)?.data).toEqual({
      respiratory_rate: null,
      spo2: null,
      on_oxygen: null,
      systolic_bp: null,
      pulse: null,
      consciousness: null,
      temperature_c: null,
    });
  });

  it('passes absurd but well-typed values on: judging them is validate’s job', () => {
    const plain = plainOf(vitals);
    const result = parse({ ...plain, patient_ref: '', payload: { ...plain.payload, spo2: 140, pulse: 900 } });
    expect(result.ok).toBe(true);
  });

  it('rejects what is not a JSON object as JSON_PARSE_FAILED', () => {
    for (const line of ['{', 'not json', '{"a":1}}', '[1,2]', 'null', '42', '"text"', 'true', "{'a':1}"]) {
      expect(rejection(line).code, line).toBe('JSON_PARSE_FAILED');
    }
    const invalidUtf8 = Buffer.concat([Buffer.from('{"device_id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const result = parseEnvelopeLine(invalidUtf8);
    expect(!result.ok && result.code).toBe('JSON_PARSE_FAILED');
    expect(!result.ok && result.detail).toBe('line is not valid UTF-8');
  });

  it('rejects what does not fit the envelope as ENVELOPE_INVALID, naming the field path', () => {
    const plain = plainOf(vitals);
    const cases: [Record<string, unknown>, string][] = [
      [{ ...plain, site_id: undefined }, 'site_id: required field missing'],
      [{ ...plain, site_id: null }, 'site_id: expected string'],
      [{ ...plain, patient_ref: 123 }, 'patient_ref: expected string'],
      [{ ...plain, sequence: 1.5 }, 'sequence: expected long (integer)'],
      [{ ...plain, model_version: 5 }, 'model_version: expected null or string'],
      [{ ...plain, parent_event_ids: ['a', 7] }, 'parent_event_ids[1]: expected string'],
      [{ ...plain, event_type: 'vitals' }, 'event_type: expected one of the EventType symbols'],
      [{ ...plain, event_type: 'toString' }, 'event_type: expected one of the EventType symbols'],
      [{ ...plain, observed_at: '2026-02-30T00:00:00Z' }, 'observed_at: expected epoch milliseconds'],
      [{ ...plain, received_at: '1767592800000' }, 'received_at: expected epoch milliseconds'],
      [{ ...plain, received_at: 1.5 }, 'received_at: expected epoch milliseconds'],
      [{ ...plain, payload: undefined }, 'payload: required field missing'],
      [{ ...plain, payload: [1] }, 'payload: expected an object'],
      [{ ...plain, payload: { ...plain.payload, spo2: '97' } }, 'payload.spo2: expected null or int'],
      [{ ...plain, payload: { ...plain.payload, spo2: 97.5 } }, 'payload.spo2: expected int (32-bit integer)'],
      [
        { ...plain, payload: { ...plain.payload, consciousness: 'X' } },
        'payload.consciousness: expected one of the Acvpu symbols',
      ],
      [{ ...plain, payload: { ...plain.payload, bp: 120 } }, 'payload.bp: undeclared field'],
      [{ ...plain, extra: 1 }, 'extra: undeclared field'],
      [{ ...plain, 'x y': 1 }, '<non-identifier field name>: undeclared field'],
      // The payload record is the one event_type names: an alarm record under vital_signs does not fit.
      [
        { ...plain, payload: { alarm_code: 'PHY-HR-HIGH', category: 'physiological', priority: 'high', active: true } },
        'payload.alarm_code: undeclared field',
      ],
      [{ ...plain, event_type: 'alarm' }, 'payload.respiratory_rate: undeclared field'],
      [
        { ...plain, event_type: 'alarm', payload: { category: 'technical', priority: 'low', active: true } },
        'payload.alarm_code: required field missing',
      ],
      // Avro's wrapped union form is not NDJSON's.
      [{ ...plain, payload: { 'vigil.telemetry.payload.VitalSigns': plain.payload } }, ': undeclared field'],
    ];
    for (const [value, detail] of cases) {
      const r = rejection(JSON.parse(JSON.stringify(value)));
      expect(r.code, detail).toBe('ENVELOPE_INVALID');
      expect(r.detail, detail).toContain(detail);
    }
  });

  it('never puts a value in a detail', () => {
    const plain = plainOf(vitals);
    const secret = 'psn-SECRET-9f86d081';
    const lines: unknown[] = [
      { ...plain, patient_ref: { secret } },
      { ...plain, sequence: secret },
      { ...plain, observed_at: secret },
      { ...plain, event_type: secret },
      { ...plain, payload: { ...plain.payload, consciousness: secret } },
      { ...plain, parent_event_ids: [secret, 5] },
      { ...plain, [secret]: 1 },
      `{"device_id": "${secret}", oops}`,
    ];
    for (const line of lines) {
      const r = rejection(line);
      expect(r.detail).not.toContain('SECRET');
    }
  });

  it('never throws on arbitrary lines, and every rejection carries a code from the table', () => {
    const arbitraryJson = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));
    const base = plainOf(vitals);
    const mutated = fc
      .tuple(
        fc.constantFrom(...Object.keys(base), 'payload.spo2', 'payload.consciousness', 'payload.extra', 'extra'),
        fc.jsonValue({ maxDepth: 2 }),
      )
      .map(([path, value]) => {
        const copy = structuredClone(base) as Plain;
        if (path.startsWith('payload.')) copy.payload[path.slice(8)] = value;
        else copy[path] = value;
        return JSON.stringify(copy);
      });
    const truncated = fc
      .tuple(fc.constantFrom(...sample.slice(0, 50)), fc.double({ min: 0, max: 1, noNaN: true }))
      .map(([e, f]) => {
        const line = envelopeToNdjson(e);
        return line.slice(0, Math.floor(f * line.length));
      });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), arbitraryJson, mutated, truncated), (line) => {
        const result = parseEnvelopeLine(Buffer.from(line, 'utf8'));
        if (result.ok) {
          expect(result.envelope.payload).toBeTypeOf('object');
          return;
        }
        expect(REASON_CODES).toContain(result.code);
        expect(['JSON_PARSE_FAILED', 'ENVELOPE_INVALID']).toContain(result.code);
        expect(result.detail.length).toBeGreaterThan(0);
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('envelopeToPlain', () => {
  it('keeps schema field order and unwraps whatever record the payload holds', () => {
    const mismatch = sample.find((e) => payloadOf(e.payload)?.type !== e.event_type) as Envelope;
    expect(mismatch).toBeDefined();
    const plain = envelopeToPlain(mismatch) as Plain;
    expect(plain.payload).toEqual(payloadOf(mismatch.payload)?.data);
  });

  it('is what the simulator records carry, byte for byte per seed', () => {
    const lines = (seed: number) =>
      [...simulateFleet({ devices: 20, events: 200, seed })]
        .filter((r): r is EnvelopeRecord => r.kind === 'envelope')
        .map((r) => envelopeToNdjson(r.envelope))
        .join('\n');
    expect(lines(4)).toBe(lines(4));
  });
});
