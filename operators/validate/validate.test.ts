import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ulid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { Results } from '../../runtime/operator.ts';
import { type Envelope, wrapPayload } from '../../schemas/types.ts';
import { envelope, inFlight, STATUS, T0, ulidFor, VITALS } from '../../test/fixtures/envelope.ts';
import { gatewayEnvelope, integrityHashOf, signJws } from '../../test/fixtures/gateway-event.ts';
import type { CheckedEvent } from '../types.ts';
import {
  isUlid,
  parseValidateConfig,
  REQUIRED_PROVENANCE,
  ULID_PATTERN,
  VALIDATE_DEFAULTS,
  ValidateOperator,
  validate,
} from './index.ts';

const MINUTE = 60_000;

async function run(envelopes: Envelope[], config = {}): Promise<Results<CheckedEvent>> {
  return validate(config).process(envelopes.map((e, i) => inFlight(e, i)));
}

/** The one verdict for a single envelope: its flags when it passed, else `code: detail`. */
async function verdict(e: Envelope, config = {}): Promise<string | readonly string[]> {
  const results = await run([e], config);
  expect(results.out.length + results.rejected.length).toBe(1);
  expect(results.duplicates).toEqual([]);
  const rejection = results.rejected[0];
  if (rejection) return `${rejection.code}: ${rejection.detail}`;
  return results.out[0]!.value.flags;
}

describe('validate', () => {
  it('passes a well-formed envelope unchanged, with no flags', async () => {
    const e = envelope();
    const results = await run([e]);
    expect(results.rejected).toEqual([]);
    expect(results.out).toHaveLength(1);
    expect(results.out[0]!.value.envelope).toBe(e);
    expect(results.out[0]!.value.flags).toEqual([]);
  });

  it('has a stable name and stage', () => {
    const op = validate();
    expect(op.name).toBe('validate');
    expect(op.stage).toBe('validate');
  });

  describe('provenance', () => {
    for (const field of REQUIRED_PROVENANCE) {
      it(`rejects a blank or missing ${field} as MISSING_PROVENANCE, naming the field`, async () => {
        for (const bad of ['', '   ', '\t', '\u00a0\u2003', '\n', null, undefined, 42]) {
          expect(await verdict(envelope({ [field]: bad }))).toBe(`MISSING_PROVENANCE: ${field} is missing or blank`);
        }
      });
    }

    it('lets a missing sequence pass with the no_sequence flag, or rejects it when required', async () => {
      expect(await verdict(envelope({ sequence: null }))).toEqual(['no_sequence']);
      expect(await verdict(envelope({ sequence: null }), { requireSequence: true })).toBe(
        'MISSING_PROVENANCE: sequence is required (requireSequence)',
      );
      expect(await verdict(envelope({ sequence: 0 }), { requireSequence: true })).toEqual([]);
    });
  });

  describe('event_id', () => {
    it('accepts canonical ULIDs', async () => {
      for (const id of [ulid(), ulid(0), '7ZZZZZZZZZZZZZZZZZZZZZZZZZ', '00000000000000000000000000', ulidFor(12345)]) {
        expect(await verdict(envelope({ event_id: id }))).toEqual([]);
      }
    });

    it('checks exactly the ULID pattern (the fast check agrees with the regex on any string)', () => {
      const unit = fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcé '.split(''));
      // A valid ULID with one character replaced: exercises every position on both sides of the pattern.
      const mutated = fc
        .tuple(fc.integer({ min: 0, max: 25 }), unit)
        .map(([at, c]) => `${ulidFor(at * 7919).slice(0, at)}${c}${ulidFor(at * 7919).slice(at + 1)}`);
      const strings = fc.oneof(fc.string(), fc.string({ unit, minLength: 25, maxLength: 27 }), mutated);
      fc.assert(
        fc.property(strings, (value) => {
          expect(isUlid(value)).toBe(ULID_PATTERN.test(value));
        }),
        { numRuns: 3000 },
      );
      expect(isUlid(ulid())).toBe(true);
    });

    it('rejects anything else as INVALID_EVENT_ID', async () => {
      const valid = '01JGZ5Q8V3K9M2N4P6R8S0T2W4';
      const bad = [
        '',
        valid.toLowerCase(),
        valid.slice(1),
        `${valid}0`,
        `8${valid.slice(1)}`, // beyond the 48-bit time range
        `${valid.slice(0, 25)}U`, // U, I, L, O are not Crockford digits
        `${valid.slice(0, 25)}I`,
        `${valid.slice(0, 25)}L`,
        `${valid.slice(0, 25)}O`,
        ` ${valid.slice(1)}`,
        '6f1c0c1e-8a55-4c4e-9a57-7f3e2d1c0b9a',
      ];
      for (const event_id of bad) {
        expect(await verdict(envelope({ event_id }))).toMatch(/^INVALID_EVENT_ID: /);
      }
    });
  });

  describe('payload type', () => {
    it('rejects a payload that is not the record event_type names', async () => {
      const cases: Partial<Envelope>[] = [
        { event_type: 'device_status', payload: wrapPayload('vital_signs', VITALS) },
        { event_type: 'vital_signs', payload: wrapPayload('device_status', STATUS) },
        { event_type: 'alarm', payload: wrapPayload('vital_signs', VITALS) },
        { payload: {} as Envelope['payload'] },
        { payload: null as unknown as Envelope['payload'] },
      ];
      for (const c of cases) expect(await verdict(envelope(c))).toMatch(/^PAYLOAD_TYPE_MISMATCH: /);
    });

    it('accepts alarms and config changes', async () => {
      const alarm = { alarm_code: 'SPO2_LOW', category: 'physiological', priority: 'high', active: true } as const;
      const change = {
        parameter: 'spo2_low_limit',
        old_value: '90',
        new_value: '88',
        changed_by: 'clinician',
      } as const;
      expect(await verdict(envelope({ event_type: 'alarm', payload: wrapPayload('alarm', alarm) }))).toEqual([]);
      expect(
        await verdict(envelope({ event_type: 'config_change', payload: wrapPayload('config_change', change) })),
      ).toEqual([]);
    });
  });

  describe('value ranges', () => {
    const vitals = Object.entries(VALIDATE_DEFAULTS.vitals);

    for (const [field, { min, max }] of vitals) {
      it(`bounds ${field} to [${min}, ${max}] inclusive; NaN and infinities are out of range`, async () => {
        const detail = `VALUE_OUT_OF_RANGE: vital_signs.${field} must be a finite number in [${min}, ${max}]`;
        for (const ok of [min, max, (min + max) / 2, null]) {
          expect(await verdict(envelope({ vitals: { [field]: ok } }))).toEqual([]);
        }
        for (const bad of [min - 0.5, max + 0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
          expect(await verdict(envelope({ vitals: { [field]: bad } }))).toBe(detail);
        }
      });
    }

    it('never puts the offending value in the detail (property)', async () => {
      const op = new ValidateOperator(parseValidateConfig());
      fc.assert(
        fc.property(fc.double(), (hr) => {
          const result = op.check(envelope({ vitals: { pulse: hr } }));
          const inside = hr >= 20 && hr <= 300;
          if (inside) {
            expect(result).toBe(0);
          } else {
            expect(result).toEqual({
              code: 'VALUE_OUT_OF_RANGE',
              detail: 'vital_signs.pulse must be a finite number in [20, 300]',
            });
          }
        }),
      );
    });

    it('rejects a reading that is not a number at all', async () => {
      expect(await verdict(envelope({ vitals: { spo2: '97' as unknown as number } }))).toMatch(/^VALUE_OUT_OF_RANGE/);
    });

    it('checks vital signs in schema order: the first bad field is named', async () => {
      expect(await verdict(envelope({ vitals: { pulse: 0, respiratory_rate: 0 } }))).toMatch(
        /vital_signs\.respiratory_rate/,
      );
    });

    it('bounds device status readings', async () => {
      expect(await verdict(envelope({ status: { battery_pct: 0 } }))).toEqual([]);
      expect(await verdict(envelope({ status: { battery_pct: 100 } }))).toEqual([]);
      expect(await verdict(envelope({ status: { battery_pct: null } }))).toEqual([]);
      expect(await verdict(envelope({ status: { battery_pct: 101 } }))).toBe(
        'VALUE_OUT_OF_RANGE: device_status.battery_pct must be a finite number in [0, 100]',
      );
      expect(await verdict(envelope({ status: { battery_pct: -1 } }))).toMatch(/battery_pct/);
      expect(await verdict(envelope({ status: { signal_dbm: -500 } }))).toMatch(/signal_dbm/);
    });

    it('takes its bounds from the config, keeping defaults for fields left out', async () => {
      const config = { vitals: { pulse: { min: 30, max: 200 } } };
      expect(await verdict(envelope({ vitals: { pulse: 25 } }), config)).toMatch(/pulse .*\[30, 200\]/);
      expect(await verdict(envelope({ vitals: { spo2: 39 } }), config)).toMatch(/spo2 .*\[40, 100\]/);
    });

    it('requires the sequence to be a non-negative safe integer', async () => {
      for (const sequence of [-1, 1.5, 2 ** 53, Number.NaN]) {
        expect(await verdict(envelope({ sequence }))).toMatch(/^VALUE_OUT_OF_RANGE: sequence/);
      }
      expect(await verdict(envelope({ sequence: 2 ** 53 - 1 }))).toEqual([]);
    });

    it('requires finite timestamps', async () => {
      expect(await verdict(envelope({ observed_at: Number.NaN }))).toMatch(/^VALUE_OUT_OF_RANGE: observed_at/);
      expect(await verdict(envelope({ received_at: Number.POSITIVE_INFINITY }))).toMatch(/^VALUE_OUT_OF_RANGE/);
    });

    it('rejects a received_at decades off (a corrupt gateway stamp that no table could store), observed_at with it', async () => {
      const year3000 = Date.UTC(3000, 0, 1);
      expect(await verdict(envelope({ received_at: year3000, observed_at: year3000 }))).toMatch(
        /^VALUE_OUT_OF_RANGE: received_at must lie in/,
      );
      expect(await verdict(envelope({ received_at: 0, observed_at: 0 }))).toMatch(/^VALUE_OUT_OF_RANGE: received_at/);
      expect(await verdict(envelope({ received_at: Date.UTC(2000, 0, 1), observed_at: Date.UTC(2000, 0, 1) }))).toEqual(
        [],
      );
    });
  });

  describe('device time', () => {
    const at = (offsetFromReceived: number) => envelope({ received_at: T0, observed_at: T0 + offsetFromReceived });

    it('tolerates a small skew, flags a larger one, rejects beyond the hard bound', async () => {
      expect(await verdict(at(2_000))).toEqual([]);
      expect(await verdict(at(2_001))).toEqual(['clock_skew']);
      expect(await verdict(at(5 * MINUTE))).toEqual(['clock_skew']);
      expect(await verdict(at(5 * MINUTE + 1))).toBe(
        'CLOCK_SKEW: observed_at lies more than 300000 ms after received_at',
      );
    });

    it('flags late arrivals and rejects stale events', async () => {
      expect(await verdict(at(-10 * MINUTE))).toEqual([]);
      expect(await verdict(at(-10 * MINUTE - 1))).toEqual(['late_arrival']);
      expect(await verdict(at(-7 * 86_400_000))).toEqual(['late_arrival']);
      expect(await verdict(at(-7 * 86_400_000 - 1))).toBe(
        'STALE_EVENT: observed_at lies more than 604800000 ms before received_at',
      );
    });

    it('combines flags in a fixed order', async () => {
      expect(await verdict(envelope({ sequence: null, observed_at: T0 + 60_000, received_at: T0 }))).toEqual([
        'clock_skew',
        'no_sequence',
      ]);
      expect(await verdict(envelope({ sequence: null, observed_at: T0 - 3_600_000, received_at: T0 }))).toEqual([
        'late_arrival',
        'no_sequence',
      ]);
    });

    it('takes its limits from the config', async () => {
      const config = { toleratedSkewMs: 0, maxFutureSkewMs: 1000, lateAfterMs: 1000, maxAgeMs: 5000 };
      expect(await verdict(at(1), config)).toEqual(['clock_skew']);
      expect(await verdict(at(1001), config)).toMatch(/^CLOCK_SKEW: .*1000 ms/);
      expect(await verdict(at(-1001), config)).toEqual(['late_arrival']);
      expect(await verdict(at(-5001), config)).toMatch(/^STALE_EVENT: .*5000 ms/);
    });
  });

  describe('gateway provenance (requireGateway)', () => {
    const gated = { requireGateway: true };
    const signed = () => gatewayEnvelope({ event_id: ulidFor(9), sequence: 9, nonce: 'nonce-9' });

    it('passes a record as the gateway wrote it, and ignores provenance when not required', async () => {
      expect(await verdict(signed(), gated)).toEqual([]);
      expect(await verdict(envelope(), {})).toEqual([]);
      expect(parseValidateConfig().requireGateway).toBe(false);
    });

    it('rejects a record without signed_event or gateway_id as NOT_FROM_GATEWAY', async () => {
      const want =
        'NOT_FROM_GATEWAY: signed_event and gateway_id are required (requireGateway): the record did not come through a gateway';
      expect(await verdict(envelope(), gated)).toBe(want);
      expect(await verdict({ ...signed(), signed_event: null }, gated)).toBe(want);
      expect(await verdict({ ...signed(), signed_event: '' }, gated)).toBe(want);
      expect(await verdict({ ...signed(), gateway_id: null }, gated)).toBe(want);
    });

    it('rejects a signed_event its integrity_hash does not bind as INTEGRITY_MISMATCH', async () => {
      const e = signed();
      const want = 'INTEGRITY_MISMATCH: integrity_hash is not sha256:<hex> of signed_event';
      // One character of the stored JWS changed (its signature part): the hash no longer matches.
      const tampered = `${e.signed_event!.slice(0, -2)}${e.signed_event!.endsWith('AA') ? 'AB' : 'AA'}`;
      expect(await verdict({ ...e, signed_event: tampered }, gated)).toBe(want);
      expect(await verdict({ ...e, integrity_hash: `sha256:${'0'.repeat(64)}` }, gated)).toBe(want);
      expect(await verdict({ ...e, integrity_hash: e.integrity_hash.toUpperCase() }, gated)).toBe(want);
      expect(await verdict({ ...e, integrity_hash: e.integrity_hash.slice(7) }, gated)).toBe(want);
    });

    it('rejects a re-hashed signed_event whose payload was altered (the hash alone is not the proof)', async () => {
      const e = signed();
      const [header, , signature] = e.signed_event!.split('.');
      const payload = JSON.parse(Buffer.from(e.signed_event!.split('.')[1]!, 'base64url').toString());
      const forged = `${header}.${Buffer.from(JSON.stringify({ ...payload, sequence: 10 })).toString('base64url')}.${signature}`;
      expect(await verdict({ ...e, signed_event: forged, integrity_hash: integrityHashOf(forged) }, gated)).toBe(
        "INTEGRITY_MISMATCH: the signed payload's sequence differs from the envelope's",
      );
    });

    it('rejects an envelope field changed after the gateway as INTEGRITY_MISMATCH, naming the field', async () => {
      const e = signed();
      const cases: [string, Partial<Envelope>][] = [
        ['device_id', { device_id: 'dev-0002' }],
        ['event_id', { event_id: ulidFor(10) }],
        ['sequence', { sequence: 10 }],
        ['sequence', { sequence: null }],
        ['nonce', { nonce: 'nonce-10' }],
        ['nonce', { nonce: null }],
        ['observed_at', { observed_at: e.observed_at + 1 }],
      ];
      for (const [field, change] of cases) {
        expect(await verdict({ ...e, ...change }, gated)).toBe(
          `INTEGRITY_MISMATCH: the signed payload's ${field} differs from the envelope's`,
        );
      }
    });

    it('accepts what the gateway may stamp or derive: its own event_id for an unsigned one, an ISO observed_at', async () => {
      const noEventId = gatewayEnvelope({ event_id: ulidFor(11) }, { signed: { event_id: undefined } });
      expect(await verdict(noEventId, gated)).toEqual([]);
      // A signed event_id that is no ULID is replaced by the gateway's own: it binds nothing.
      const uuid = gatewayEnvelope(
        { event_id: ulidFor(12) },
        { signed: { event_id: 'e856730e-2dbf-4945-87f8-837c2f70abe0' } },
      );
      expect(await verdict(uuid, gated)).toEqual([]);
      const iso = gatewayEnvelope({}, { signed: { observed_at: new Date(T0).toISOString() } });
      expect(await verdict(iso, gated)).toEqual([]);
      // Stamped fields are the gateway's to set: a different patient_ref than any the device named is no mismatch.
      expect(await verdict({ ...signed(), patient_ref: 'pt-v1-other' }, gated)).toEqual([]);
    });

    it('rejects a signed_event that is no JWS or whose payload is not a JSON object', async () => {
      const want = 'INTEGRITY_MISMATCH: signed_event is not a JWS compact serialisation whose payload is a JSON object';
      for (const bad of ['no-dots-at-all', 'one.dot', signJws('[1,2]'), signJws('not json'), signJws('null')]) {
        expect(await verdict({ ...signed(), signed_event: bad, integrity_hash: integrityHashOf(bad) }, gated)).toBe(
          want,
        );
      }
    });

    it('passes the envelope v3 golden fixtures a gateway wrote, and refuses the ungated one', async () => {
      const repo = loadSchemaRepo();
      const read = (name: string) =>
        repo
          .get('envelope')
          .newest.type.fromBuffer(readFileSync(`${repo.dir}/fixtures/envelope/v3/${name}.avro`)) as Envelope;
      expect(await verdict(read('gateway-vital-signs'), gated)).toEqual([]);
      expect(await verdict(read('gateway-alarm'), gated)).toEqual([]);
      expect(await verdict(read('ungated'), gated)).toMatch(/^NOT_FROM_GATEWAY/);
    });

    it('comes first: a record not from a gateway is NOT_FROM_GATEWAY whatever else is wrong with it', async () => {
      expect(await verdict(envelope({ device_id: '', vitals: { spo2: 400 } }), gated)).toMatch(/^NOT_FROM_GATEWAY/);
    });

    it('never puts a value from the record or its payload in a detail', async () => {
      const e = signed();
      for (const bad of [{ ...e, nonce: 'secret-nonce' }, { ...e, device_id: 'dev-secret' }, envelope()]) {
        const v = (await verdict(bad, gated)) as string;
        expect(v).not.toContain('secret');
        expect(v).not.toContain(e.signed_event!.slice(0, 20));
      }
    });
  });

  it('applies the checks in a fixed order: the first failure wins', async () => {
    const everythingWrong = envelope({
      site_id: '',
      event_id: 'nope',
      event_type: 'alarm',
      payload: wrapPayload('vital_signs', { ...VITALS, pulse: 999 }),
      observed_at: T0 + 3_600_000,
      received_at: T0,
    });
    expect(await verdict(everythingWrong)).toMatch(/^MISSING_PROVENANCE: site_id/);
    expect(await verdict({ ...everythingWrong, site_id: 's' })).toMatch(/^INVALID_EVENT_ID/);
    expect(await verdict({ ...everythingWrong, site_id: 's', event_id: ulidFor(1) })).toMatch(/^PAYLOAD_TYPE_MISMATCH/);
    expect(
      await verdict({ ...everythingWrong, site_id: 's', event_id: ulidFor(1), event_type: 'vital_signs' }),
    ).toMatch(/^VALUE_OUT_OF_RANGE/);
    expect(
      await verdict({
        ...everythingWrong,
        site_id: 's',
        event_id: ulidFor(1),
        event_type: 'vital_signs',
        payload: wrapPayload('vital_signs', VITALS),
      }),
    ).toMatch(/^CLOCK_SKEW/);
  });

  it('sends every record of a mixed batch to exactly one output, keeping batch order', async () => {
    const envelopes = Array.from({ length: 200 }, (_, i) =>
      envelope({
        event_id: ulidFor(i),
        sequence: i,
        vitals: { pulse: i % 7 === 0 ? 400 : 60 + (i % 30) },
        device_id: i % 11 === 0 ? '' : `dev-${i % 13}`,
      }),
    );
    const results = await run(envelopes);
    const offsets = [
      ...results.out.map((r) => r.origin.offset),
      ...results.rejected.map((r) => r.record.origin.offset),
    ];
    expect(offsets.sort((a, b) => a - b)).toEqual(envelopes.map((_, i) => i));
    expect(results.out.map((r) => r.origin.offset)).toEqual(
      envelopes.map((_, i) => i).filter((i) => i % 7 !== 0 && i % 11 !== 0),
    );
    expect(results.rejected.filter((r) => r.code === 'MISSING_PROVENANCE')).toHaveLength(
      envelopes.filter((_, i) => i % 11 === 0).length,
    );
  });

  it('never puts a record value in a detail', async () => {
    const secret = envelope({ device_id: 'dev-SECRET', patient_ref: 'pt-SECRET', vitals: { pulse: 987 } });
    const results = await run([secret, { ...secret, event_id: 'SECRET' }, { ...secret, observed_at: T0 + 9e9 }]);
    expect(results.rejected).toHaveLength(3);
    for (const r of results.rejected) {
      expect(r.detail).not.toMatch(/SECRET|987/);
    }
  });

  describe('config', () => {
    it('fills every default', () => {
      const config = parseValidateConfig();
      expect(config).toMatchObject({
        maxFutureSkewMs: 300_000,
        toleratedSkewMs: 2_000,
        maxAgeMs: 604_800_000,
        lateAfterMs: 600_000,
        requireSequence: false,
      });
      expect(config.vitals).toEqual(VALIDATE_DEFAULTS.vitals);
      expect(config.deviceStatus).toEqual(VALIDATE_DEFAULTS.deviceStatus);
    });

    it('fails at start-up with CONFIG_INVALID on unknown keys, bad bounds and inconsistent limits', () => {
      const bad: unknown[] = [
        { maxFutureSkew: 1000 },
        { vitals: { heartRate: { min: 1, max: 2 } } },
        { vitals: { pulse: { min: 300, max: 20 } } },
        { vitals: { pulse: { min: 20, max: 300, unit: 'bpm' } } },
        { toleratedSkewMs: 10_000, maxFutureSkewMs: 5_000 },
        { lateAfterMs: 10, maxAgeMs: 5 },
        { maxAgeMs: -1 },
        { requireSequence: 'yes' },
      ];
      for (const config of bad) {
        expect(() => validate(config as never), JSON.stringify(config)).toThrow(VigilError);
        try {
          validate(config as never);
        } catch (error) {
          expect((error as VigilError).code).toBe('CONFIG_INVALID');
          expect((error as VigilError).message).toMatch(/^validate: invalid configuration/);
        }
      }
    });
  });
});
