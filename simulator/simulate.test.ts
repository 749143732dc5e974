import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEnvelopeDecoder } from '../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../adapters/avro/schemas.ts';
import { envelopeSchema } from '../adapters/file/envelope-schema.ts';
import { InProcessSchemaRegistry } from '../adapters/registry/in-process.ts';
import { dedupe } from '../operators/dedupe/index.ts';
import type { CheckedEvent } from '../operators/types.ts';
import { validate } from '../operators/validate/index.ts';
import { ManualClock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import { silentLogger } from '../runtime/log.ts';
import type { ModelStore } from '../runtime/models.ts';
import type { OperatorContext } from '../runtime/operator.ts';
import type { InFlight } from '../runtime/record.ts';
import { MemoryStateBackend } from '../runtime/state/memory.ts';
import { type Envelope, payloadOf } from '../schemas/types.ts';
import { FAULT_REASONS } from './faults.ts';
import { news2 } from './news2.ts';
import {
  type EnvelopeRecord,
  fleetFor,
  REPLAY_MAX_AGE_MS,
  REPLAY_MIN_AGE_MS,
  recordBytes,
  type SimulatedRecord,
  type SimulateOptions,
  simulateFleet,
  type TruthSummary,
  TruthTally,
  truthIn,
} from './simulate.ts';
import { isUlid, ulidTimeOf } from './ulid.ts';

/** Runs the generator to the end: its records and the summary it returns. */
function run(options: SimulateOptions): { records: SimulatedRecord[]; summary: TruthSummary } {
  const gen = simulateFleet(options);
  const records: SimulatedRecord[] = [];
  for (;;) {
    const next = gen.next();
    if (next.done) return { records, summary: next.value };
    records.push(next.value);
  }
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

function streamDigest(options: SimulateOptions): string {
  const hash = createHash('sha256');
  for (const record of simulateFleet(options)) {
    hash.update(`${record.index}|${record.key}|${record.truth}|`);
    hash.update(recordBytes(record, 1));
  }
  return hash.digest('hex');
}

const FAULTY: SimulateOptions = {
  devices: 300,
  events: 30_000,
  seed: 11,
  duplicateRate: 0.05,
  replayRate: 0.01,
  malformedRate: 0.03,
};

describe('simulateFleet', () => {
  it('gives byte-identical output for the same seed, and different output for another', () => {
    const options = { devices: 200, events: 5_000, seed: 42, duplicateRate: 0.05, malformedRate: 0.05 };
    const first = streamDigest(options);
    expect(streamDigest(options)).toBe(first);
    expect(streamDigest({ ...options, seed: 43 })).not.toBe(first);
    expect(streamDigest({ ...options, seed: '42' })).toBe(first);
  });

  it('keeps the vitals of a device the same whatever the fault rates', () => {
    const vitalsOf = (options: SimulateOptions) =>
      run(options)
        .records.filter((r): r is EnvelopeRecord => r.kind === 'envelope' && r.truth === 'valid')
        .filter((r) => r.key === 'hah-wbl-000001' || r.key === 'hah-mon-000002')
        .map((r) => `${r.envelope.sequence}:${sha256(JSON.stringify(r.envelope.payload))}`);
    const clean = vitalsOf({ devices: 50, events: 4_000, seed: 5, duplicateRate: 0, replayRate: 0, malformedRate: 0 });
    const faulty = vitalsOf({ devices: 50, events: 4_000, seed: 5, duplicateRate: 0.2, malformedRate: 0 });
    expect(faulty.length).toBeGreaterThan(10);
    // The faulty run emits fewer originals, but those it emits are the clean run's, in order.
    expect(clean.slice(0, faulty.length)).toEqual(faulty);
  });

  it('builds the default fleet: 1,000 devices over 20 sites, several firmware versions and batches', () => {
    const fleet = fleetFor();
    expect(fleet.devices).toHaveLength(1000);
    expect(fleet.sites).toHaveLength(20);
    const sitesUsed = new Set(fleet.devices.map((d) => d.siteId));
    expect(sitesUsed.size).toBe(20);
    const firmware = new Set(fleet.devices.map((d) => d.firmware));
    expect(firmware).toEqual(new Set(['5.11.4', '5.12.0', '5.12.1', '5.13.0-rc2']));
    expect(new Set(fleet.devices.map((d) => d.batch)).size).toBeGreaterThanOrEqual(6);
    expect(new Set(fleet.devices.map((d) => d.subgroup))).toEqual(
      new Set(['age:18-39', 'age:40-64', 'age:65-79', 'age:80+']),
    );
    expect(new Set(fleet.devices.map((d) => d.kind))).toEqual(new Set(['monitor', 'wearable']));
    // Pseudonyms only: psn-v1-<64-bit hex>, unique per patient.
    for (const d of fleet.devices) expect(d.patientRef).toMatch(/^psn-v1-[0-9a-f]{16}$/);
    expect(new Set(fleet.devices.map((d) => d.patientRef)).size).toBe(1000);
    expect(new Set(fleet.devices.map((d) => d.id)).size).toBe(1000);
    expect(new Set(fleet.devices.map((d) => d.certFingerprint)).size).toBe(1000);
    // The candidate firmware: 12% of devices, all at pilot sites, all biased by default.
    const candidate = fleet.devices.filter((d) => d.firmware === '5.13.0-rc2');
    expect(candidate).toHaveLength(120);
    expect(candidate.every((d) => d.biased)).toBe(true);
    const pilots = new Set(fleet.sites.filter((s) => s.pilot).map((s) => s.id));
    expect(candidate.every((d) => pilots.has(d.siteId))).toBe(true);
    expect(fleet.devices.filter((d) => d.biased)).toHaveLength(120);
  });

  it('places the same devices on the candidate firmware with the bias off, none of them biased', () => {
    const biased = fleetFor({ devices: 500 });
    const unbiased = fleetFor({ devices: 500, biasedFirmware: null });
    expect(unbiased.devices.map((d) => `${d.id}/${d.firmware}/${d.patientRef}`)).toEqual(
      biased.devices.map((d) => `${d.id}/${d.firmware}/${d.patientRef}`),
    );
    expect(unbiased.devices.some((d) => d.biased)).toBe(false);
    const named = fleetFor({ devices: 500, biasedFirmware: '6.0.0-beta1' });
    expect(named.devices.filter((d) => d.firmware === '6.0.0-beta1' && d.biased)).toHaveLength(60);
  });

  it('fills every provenance field of every generated envelope', () => {
    const { payloadTypes, type } = envelopeSchema();
    const { records } = run({
      devices: 200,
      events: 6_000,
      seed: 3,
      duplicateRate: 0,
      replayRate: 0,
      malformedRate: 0,
    });
    const types = new Set<string>();
    const problems: string[] = [];
    const check = (ok: boolean, what: string, r: SimulatedRecord) => {
      if (!ok) problems.push(`record ${r.index}: ${what}`);
    };
    for (const r of records) {
      if (r.kind !== 'envelope') {
        problems.push(`record ${r.index} is raw`);
        continue;
      }
      const e = r.envelope;
      check(type.isValid(e, { noUndeclaredFields: true }), 'not a valid envelope', r);
      check(isUlid(e.event_id) && ulidTimeOf(e.event_id) === e.observed_at, 'event_id is not a ULID of observed_at', r);
      for (const field of ['device_id', 'patient_ref', 'site_id', 'firmware_version', 'consent_context'] as const) {
        check(e[field].length > 0, `${field} empty`, r);
      }
      check(e.processing_policy.length > 0, 'processing_policy empty', r);
      check(e.schema_version === 'telemetry-envelope-v3', 'schema_version', r);
      check(/^dk-[0-9a-f]{8}-/.test(e.key_id ?? ''), 'key_id', r);
      check(/^[0-9a-f]{32}$/.test(e.nonce ?? ''), 'nonce', r);
      check(/^sha256:[0-9a-f]{64}$/.test(e.device_cert_fingerprint ?? ''), 'device_cert_fingerprint', r);
      check(/LOT/.test(e.device_batch ?? ''), 'device_batch', r);
      check(/^age:/.test(e.patient_subgroup ?? ''), 'patient_subgroup', r);
      check(Number.isSafeInteger(e.sequence), 'sequence', r);
      check(e.parent_event_ids.length === 0 && e.transformation_version === null, 'derived-record fields set', r);
      check(r.key === e.device_id, 'key is not the device id', r);
      // integrity_hash = sha256 of the payload record's Avro binary.
      const payload = payloadOf(e.payload);
      check(payload?.type === e.event_type, 'payload does not match event_type', r);
      if (!payload) continue;
      types.add(payload.type);
      const expected = `sha256:${sha256(payloadTypes[payload.type].toBuffer(payload.data))}`;
      check(e.integrity_hash === expected, 'integrity_hash', r);
      // Delivery: ms to seconds, up to ~90 min for devices that buffered offline; a device clock is at most 2 s ahead.
      const delay = e.received_at - e.observed_at;
      check(delay >= -2_000 && delay < 91 * 60_000, 'received_at - observed_at out of the simulated bounds', r);
      if (payload.type === 'vital_signs') {
        const v = payload.data;
        for (const n of [v.spo2, v.pulse, v.systolic_bp]) check(n === null || Number.isInteger(n), 'int', r);
        check(Math.round((v.temperature_c ?? 0) * 10) / 10 === v.temperature_c, 'temperature has one decimal', r);
      }
    }
    expect(problems).toEqual([]);
    expect(types).toEqual(new Set(['vital_signs', 'device_status', 'alarm', 'config_change']));
  });

  it('emits originals in received_at order with strictly increasing sequences per device', () => {
    const { records } = run(FAULTY);
    let last = Number.NEGATIVE_INFINITY;
    const lastSeq = new Map<string, number>();
    const outOfOrder: number[] = [];
    let originals = 0;
    for (const r of records) {
      if (r.truth === 'duplicate' || r.truth === 'replay') continue;
      originals++;
      const e = r.kind === 'raw' ? r.source : r.envelope;
      if (e.received_at < last) outOfOrder.push(r.index);
      last = e.received_at;
      const seq = e.sequence as number;
      if (seq <= (lastSeq.get(r.key) ?? Number.NEGATIVE_INFINITY)) outOfOrder.push(r.index);
      lastSeq.set(r.key, seq);
    }
    expect(originals).toBeGreaterThan(25_000);
    expect(outOfOrder).toEqual([]);
  });

  it('labels every record with what it is, and returns a summary equal to the stream', () => {
    const { records, summary } = run(FAULTY);
    expect(records).toHaveLength(FAULTY.events as number);
    const originals = new Map<string, { record: EnvelopeRecord; bytes: Buffer }>();
    const counts = { valid: 0, duplicate: 0, replay: 0, malformed: 0 };
    const dlq: Record<string, number> = {};
    expect(records.every((r, i) => r.index === i)).toBe(true);
    for (const r of records) {
      if (r.truth === 'valid') {
        counts.valid++;
        const e = (r as EnvelopeRecord).envelope;
        expect(originals.has(e.event_id)).toBe(false);
        originals.set(e.event_id, { record: r as EnvelopeRecord, bytes: recordBytes(r, 1) });
      } else if (r.truth === 'duplicate') {
        counts.duplicate++;
        const e = (r as EnvelopeRecord).envelope;
        const first = originals.get(e.event_id);
        expect(first).toBeDefined();
        // Same bytes, re-sent later.
        expect(recordBytes(r, 1).equals(first?.bytes as Buffer)).toBe(true);
        expect(r.index).toBeGreaterThan(first?.record.index as number);
      } else if (r.truth === 'replay') {
        counts.replay++;
        const replay = r as EnvelopeRecord;
        const first = originals.get(replay.envelope.event_id);
        expect(first).toBeDefined();
        const original = first?.record.envelope as Envelope;
        expect({ ...replay.envelope, received_at: original.received_at }).toEqual(original);
        const age = replay.envelope.received_at - original.received_at;
        expect(age).toBeGreaterThanOrEqual(REPLAY_MIN_AGE_MS);
        expect(age).toBeLessThanOrEqual(REPLAY_MAX_AGE_MS);
        expect(replay.replayLag).toBeGreaterThan(0);
      } else {
        counts.malformed++;
        const code = r.truth.slice('malformed:'.length);
        dlq[code] = (dlq[code] ?? 0) + 1;
        expect(r.fault).not.toBeNull();
        expect(FAULT_REASONS[r.fault as keyof typeof FAULT_REASONS]).toBe(code);
      }
    }
    expect(summary.records).toBe(records.length);
    expect(summary.valid).toBe(counts.valid);
    expect(summary.duplicates).toBe(counts.duplicate);
    expect(summary.replays).toBe(counts.replay);
    expect(summary.malformed).toBe(counts.malformed);
    expect(summary.deadLetters).toEqual(dlq);
    expect(summary.valid + summary.duplicates + summary.replays + summary.malformed).toBe(summary.records);
    // Rates land near what was asked (binomial noise on 30k draws).
    expect(counts.duplicate / records.length).toBeCloseTo(0.05, 1);
    expect(counts.malformed / records.length).toBeCloseTo(0.03, 1);
    expect(counts.replay).toBeGreaterThan(100);
    // Every fault kind occurs.
    expect(Object.keys(summary.faults).sort()).toEqual(Object.keys(FAULT_REASONS).sort());
  });

  it('makes each semantic fault break exactly the thing its reason code names', () => {
    const { records } = run(FAULTY);
    for (const r of records) {
      if (r.kind !== 'envelope' || r.fault === null) continue;
      const e = r.envelope;
      const p = payloadOf(e.payload);
      switch (r.fault) {
        case 'spo2_impossible':
          expect(p?.type === 'vital_signs' && (p.data.spo2 ?? 0) > 100).toBe(true);
          break;
        case 'pulse_impossible':
          expect(p?.type === 'vital_signs' && (p.data.pulse ?? 0) >= 400).toBe(true);
          break;
        case 'temperature_impossible':
          expect(p?.type === 'vital_signs' && (p.data.temperature_c ?? 0) >= 50).toBe(true);
          break;
        case 'empty_patient_ref':
          expect(e.patient_ref).toBe('');
          break;
        case 'empty_firmware_version':
          expect(e.firmware_version).toBe('');
          break;
        case 'empty_site_id':
          expect(e.site_id).toBe('');
          break;
        case 'future_observed_at':
          expect(e.observed_at - e.received_at).toBeGreaterThanOrEqual(86_400_000);
          expect(ulidTimeOf(e.event_id)).toBe(e.observed_at);
          break;
        case 'payload_type_mismatch':
          expect(p?.type).not.toBe(e.event_type);
          break;
        case 'non_ulid_event_id':
          expect(isUlid(e.event_id)).toBe(false);
          expect(e.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
          break;
      }
    }
  });

  it('agrees with the real decoder, validate and dedupe on every record', async () => {
    const registry = new InProcessSchemaRegistry();
    const schemaId = registry.idOf('vigil.telemetry.raw-value', loadSchemaRepo().get('envelope').newest.schema);
    expect(schemaId).not.toBeNull();
    const decoder = createEnvelopeDecoder(registry);
    const clock = new ManualClock(Date.UTC(2026, 0, 5));
    const state = new MemoryStateBackend({ clock });
    await state.open();
    const noModel = async (): Promise<never> => {
      throw new VigilError('MODEL_NOT_FOUND', 'validate and dedupe load no model');
    };
    const models: ModelStore = { load: noModel, readVerified: noModel, manifest: noModel };
    const context: OperatorContext = { pipeline: 'simulator-test', clock, state, log: silentLogger, models };
    const validator = validate();
    const deduper = dedupe();
    await validator.open?.(context);
    await deduper.open?.(context);
    const { records } = run({ ...FAULTY, events: 20_000, schemaId: schemaId as number });
    const outcome = new Map<number, string>();
    for (let start = 0; start < records.length; start += 500) {
      const batch = records.slice(start, start + 500);
      const bytes = batch.map((r) => recordBytes(r, schemaId as number));
      const decoded = await decoder.decodeBatch(bytes);
      const inflight: InFlight<Envelope>[] = [];
      decoded.forEach((result, i) => {
        const r = batch[i] as SimulatedRecord;
        if (!result.ok) outcome.set(r.index, `malformed:${result.code}`);
        else {
          const raw = bytes[i] as Buffer;
          inflight.push({
            value: result.value,
            origin: {
              topic: 't',
              partition: 0,
              offset: r.index,
              consumedAt: 0,
              rawSha256: sha256(raw),
              raw,
              headers: [],
              key: r.key,
            },
          });
        }
      });
      const validated = await validator.process(inflight);
      for (const x of validated.rejected) outcome.set(x.record.origin.offset, `malformed:${x.code}`);
      const deduped = await deduper.process(validated.out as InFlight<CheckedEvent>[]);
      for (const x of deduped.rejected) outcome.set(x.record.origin.offset, `malformed:${x.code}`);
      for (const x of deduped.duplicates) outcome.set(x.record.origin.offset, 'duplicate');
      for (const x of deduped.out) outcome.set(x.origin.offset, 'valid');
    }
    const disagreements = records
      .map((r) => ({ truth: r.truth === 'replay' ? 'duplicate' : r.truth, got: outcome.get(r.index), fault: r.fault }))
      .filter((x) => x.truth !== x.got);
    expect(disagreements).toEqual([]);
  });

  it('counts truth per output format: NDJSON breaks raw bytes into JSON, Avro files leave them out', () => {
    const { records } = run(FAULTY);
    const raw = records.find((r) => r.kind === 'raw') as SimulatedRecord;
    const mismatch = records.find((r) => r.fault === 'payload_type_mismatch') as SimulatedRecord;
    const range = records.find((r) => r.fault === 'spo2_impossible') as SimulatedRecord;
    expect(truthIn(raw, 'kafka')).toBe(raw.truth);
    expect(truthIn(raw, 'ndjson')).toBe('malformed:JSON_PARSE_FAILED');
    expect(truthIn(raw, 'avro')).toBeNull();
    expect(truthIn(mismatch, 'kafka')).toBe('malformed:PAYLOAD_TYPE_MISMATCH');
    expect(truthIn(mismatch, 'ndjson')).toBe('malformed:ENVELOPE_INVALID');
    expect(truthIn(mismatch, 'avro')).toBe('malformed:PAYLOAD_TYPE_MISMATCH');
    expect(truthIn(range, 'ndjson')).toBe('malformed:VALUE_OUT_OF_RANGE');
    const avro = new TruthTally('avro');
    for (const r of records) avro.add(r);
    const s = avro.summary();
    const rawCount = records.filter((r) => r.kind === 'raw').length;
    expect(s.omitted).toBe(rawCount);
    expect(s.records).toBe(records.length - rawCount);
  });

  it('reads SpO2 low on the biased firmware, and not when the bias is off', () => {
    const meanSpo2 = (options: SimulateOptions) => {
      const sums = { candidate: { total: 0, n: 0 }, others: { total: 0, n: 0 } };
      const alarms = { candidate: { total: 0, n: 0 }, others: { total: 0, n: 0 } };
      for (const r of simulateFleet({
        devices: 400,
        events: 40_000,
        seed: 9,
        malformedRate: 0,
        duplicateRate: 0,
        replayRate: 0,
        ...options,
      })) {
        if (r.kind !== 'envelope') continue;
        const cohort = r.envelope.firmware_version === '5.13.0-rc2' ? 'candidate' : 'others';
        const p = payloadOf(r.envelope.payload);
        if (p?.type === 'vital_signs' && p.data.spo2 !== null) {
          sums[cohort].total += p.data.spo2;
          sums[cohort].n += 1;
          alarms[cohort].n += 1;
        }
        if (p?.type === 'alarm' && p.data.alarm_code === 'PHY-SPO2-LOW' && p.data.active) alarms[cohort].total += 1;
      }
      const mean = (x: { total: number; n: number }) => x.total / x.n;
      return {
        gap: mean(sums.others) - mean(sums.candidate),
        alarmRatio: mean(alarms.candidate) / mean(alarms.others),
        n: sums.candidate.n,
      };
    };
    const biased = meanSpo2({});
    expect(biased.n).toBeGreaterThan(2_000);
    expect(biased.gap).toBeGreaterThan(2.5);
    expect(biased.gap).toBeLessThan(4.5);
    expect(biased.alarmRatio).toBeGreaterThan(2);
    const unbiased = meanSpo2({ biasedFirmware: null });
    expect(Math.abs(unbiased.gap)).toBeLessThan(0.6);
  });

  it('spreads NEWS2 realistically: mostly low, some low-medium and medium, a few high', () => {
    const bands = { low: 0, 'low-medium': 0, medium: 0, high: 0 };
    let incomplete = 0;
    for (const r of simulateFleet({ devices: 1000, events: 60_000, seed: 2, biasedFirmware: null, malformedRate: 0 })) {
      if (r.kind !== 'envelope' || r.truth !== 'valid') continue;
      const p = payloadOf(r.envelope.payload);
      if (p?.type !== 'vital_signs') continue;
      const score = news2(p.data);
      if (score) bands[score.band]++;
      else incomplete++;
    }
    const total = bands.low + bands['low-medium'] + bands.medium + bands.high;
    expect(bands.low / total).toBeGreaterThan(0.85);
    expect(bands.low / total).toBeLessThan(0.98);
    expect((bands['low-medium'] + bands.medium) / total).toBeGreaterThan(0.02);
    expect(bands.high / total).toBeGreaterThan(0.002);
    expect(bands.high / total).toBeLessThan(0.03);
    // Wearables without a cuff reading leave some sets incomplete (the pipeline flags, not scores, them).
    expect(incomplete / (total + incomplete)).toBeLessThan(0.15);
  });

  it('refuses bad options with CONFIG_INVALID', () => {
    const bad: SimulateOptions[] = [
      { devices: 0 },
      { events: -1 },
      { events: 1.5 },
      { duplicateRate: 1.2 },
      { malformedRate: Number.NaN },
      { duplicateRate: 0.5, malformedRate: 0.5 },
      { schemaId: 5, unknownSchemaId: 5 },
      { biasedFirmware: '' },
      { biasFraction: -0.1 },
      { nonsense: 1 } as unknown as SimulateOptions,
    ];
    for (const options of bad) {
      expect(() => simulateFleet(options).next()).toThrow(VigilError);
      try {
        simulateFleet(options).next();
      } catch (error) {
        expect((error as VigilError).code).toBe('CONFIG_INVALID');
      }
    }
  });

  it('emits exactly the requested number of records, none for zero', () => {
    expect(run({ devices: 10, events: 0 }).records).toEqual([]);
    expect(run({ devices: 1, events: 500 }).records).toHaveLength(500);
  });
});
