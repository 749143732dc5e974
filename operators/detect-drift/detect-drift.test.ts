import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelStore } from '../../runtime/models.ts';
import type { OperatorContext } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import { type Envelope, type VitalSigns, wrapPayload } from '../../schemas/types.ts';
import {
  batches,
  envelopeFor,
  HOUR,
  inferenceFor,
  modelStoreWith,
  originFor,
  type Reading,
  referenceSamples,
  scoredRecords,
  syntheticReadings,
  T0,
} from '../../test/fixtures/detect-drift.ts';
import type { ScoredEvent } from '../types.ts';
import { type DetectDriftOperator, type DriftHistogramRow, detectDrift, parseDetectDriftConfig } from './index.ts';
import { DEVICE_SKETCH_BUCKETS, DEVICE_SKETCH_FEATURE, deviceBucket, estimateDevices } from './metrics.ts';
import { buildReference, type DriftReference, referenceRows, serialiseReference } from './reference.ts';
import { driftReports } from './report.ts';

/** A hand-made reference: small bins whose counts a reader can check by eye. */
const HAND: DriftReference = {
  format: 'vigil-drift-reference/1',
  model: { name: 'news2', version: '1.0.0' },
  generator: { script: 'hand' },
  sample: {},
  binning: { continuousBins: 2, minCategoryShare: 0, quantileRule: 'hand' },
  features: [
    {
      name: 'pulse',
      kind: 'continuous',
      valueType: 'number',
      edges: [50, 70, 90],
      categories: [],
      labels: ['<50', '[50,70)', '[70,90]', '>90'],
      counts: [0, 5, 5, 0],
      proportions: [0, 0.5, 0.5, 0],
      n: 10,
      missing: 0,
    },
    {
      name: 'spo2',
      kind: 'categorical',
      valueType: 'number',
      edges: [],
      categories: ['95', '96', '97', '98'],
      labels: ['95', '96', '97', '98', 'other'],
      counts: [1, 2, 4, 3, 0],
      proportions: [0.1, 0.2, 0.4, 0.3, 0],
      n: 10,
      missing: 0,
    },
    {
      name: 'consciousness',
      kind: 'categorical',
      valueType: 'string',
      edges: [],
      categories: ['A'],
      labels: ['A', 'other'],
      counts: [10, 0],
      proportions: [1, 0],
      n: 10,
      missing: 0,
    },
    {
      name: 'score',
      kind: 'categorical',
      valueType: 'number',
      edges: [],
      categories: ['0', '1', '2'],
      labels: ['0', '1', '2', 'other'],
      counts: [6, 3, 1, 0],
      proportions: [0.6, 0.3, 0.1, 0],
      n: 10,
      missing: 0,
    },
  ],
};
const HAND_FEATURES = ['pulse', 'spo2', 'consciousness', 'score'] as const;

function vitals(overrides: Partial<VitalSigns>): VitalSigns {
  return {
    respiratory_rate: 16,
    spo2: 97,
    on_oxygen: false,
    systolic_bp: 120,
    pulse: 70,
    consciousness: 'A',
    temperature_c: 37,
    ...overrides,
  };
}

interface Spec {
  readonly at: number;
  readonly firmware: string;
  readonly vitals: Partial<VitalSigns>;
  /** null: no inference; a number: an inference of news2@1.0.0; { score, version }: of another version. */
  readonly score: number | null | { readonly score: number; readonly version: string };
}

function record(spec: Spec, offset: number, partition = 3): InFlight<ScoredEvent> {
  const reading: Reading = { deviceId: `dev-${offset}`, observedAt: spec.at, vitals: vitals(spec.vitals), score: null };
  const envelope = envelopeFor(reading, offset, { firmware: spec.firmware, site: 'site-1' });
  const inference =
    spec.score === null
      ? null
      : typeof spec.score === 'number'
        ? inferenceFor(envelope, spec.score)
        : inferenceFor(envelope, spec.score.score, { version: spec.score.version });
  return {
    value: { envelope, flags: [], inferences: inference ? [inference] : [] },
    origin: originFor(offset, { partition }),
  };
}

function statusRecord(offset: number): InFlight<ScoredEvent> {
  const base = record({ at: T0, firmware: 'A', vitals: {}, score: null }, offset);
  const envelope: Envelope = {
    ...base.value.envelope,
    event_type: 'device_status',
    payload: wrapPayload('device_status', {
      state: 'ok',
      battery_pct: 80,
      signal_dbm: -60,
      calibration_state: 'current',
      last_calibrated_at: null,
    }),
  };
  return { value: { ...base.value, envelope }, origin: base.origin };
}

let store: ModelStore;
let cleanup: () => Promise<void>;

function context(models: ModelStore = store): OperatorContext {
  const clock = new ManualClock(T0);
  return { pipeline: 'vitals@1', clock, state: new MemoryStateBackend({ clock }), log: silentLogger, models };
}

async function opened(config: Partial<Parameters<typeof detectDrift>[0]> = {}): Promise<DetectDriftOperator> {
  const operator = detectDrift({ model: 'news2', version: '1.0.0', features: [...HAND_FEATURES], ...config });
  await operator.open(context());
  return operator;
}

function rowsOf(operator: DetectDriftOperator, batch: readonly InFlight<ScoredEvent>[]): DriftHistogramRow[] {
  return operator.measure(batch).side.driftHistograms ?? [];
}

beforeAll(async () => {
  ({ store, cleanup } = await modelStoreWith(serialiseReference(HAND)));
});
afterAll(async () => {
  await cleanup();
});

describe('detect-drift: one batch', () => {
  // Offsets 100..105 of partition 3. Windows are 1 h from T0 (midnight UTC).
  const specs: Spec[] = [
    { at: T0 + 10 * 60_000, firmware: 'A', vitals: { pulse: 49, spo2: 97 }, score: 1 },
    { at: T0 + 20 * 60_000, firmware: 'A', vitals: { pulse: 70, spo2: 93, consciousness: 'V' }, score: null },
    {
      at: T0 + 30 * 60_000,
      firmware: 'A',
      vitals: { pulse: null, spo2: 95 },
      score: { score: 2, version: '2.0.0' },
    },
    { at: T0 + 40 * 60_000, firmware: 'B', vitals: { pulse: 90, spo2: 98 }, score: 0 },
    { at: T0 + 70 * 60_000, firmware: 'A', vitals: { pulse: 91, spo2: null, consciousness: null }, score: 7 },
  ];
  const batch = [...specs.map((s, i) => record(s, 100 + i)), statusRecord(105)];

  it('passes every record through unchanged and in order, rejecting nothing', async () => {
    const operator = await opened();
    const results = operator.measure(batch);
    expect(results.out).toHaveLength(batch.length);
    results.out.forEach((out, i) => {
      expect(out).toBe(batch[i]);
    });
    expect(results.rejected).toEqual([]);
    expect(results.duplicates).toEqual([]);
  });

  it('emits exact partial histograms per (firmware, site, window) and feature, with the batch identity', async () => {
    const all = rowsOf(await opened(), batch);
    const rows = all.filter((r) => r.feature !== DEVICE_SKETCH_FEATURE);
    const identity = {
      pipeline: 'vitals@1',
      model_name: 'news2',
      model_version: '1.0.0',
      site_id: 'site-1',
      source_topic: 'vigil.telemetry.raw',
      source_partition: 3,
      first_offset: 100,
      last_offset: 105,
    };
    const w0 = { window_start: T0, window_end: T0 + HOUR };
    const w1 = { window_start: T0 + HOUR, window_end: T0 + 2 * HOUR };
    expect(rows).toEqual([
      // firmware A, first hour: records 100, 101, 102
      // heart rate 49 (underflow), 70 ([70,90]), missing
      {
        ...identity,
        ...w0,
        firmware_version: 'A',
        feature: 'pulse',
        bin_counts: [1, 0, 1, 0],
        n: 2,
        missing: 1,
        out_of_range: 1,
      },
      // SpO2 97, 93 (other), 95
      {
        ...identity,
        ...w0,
        firmware_version: 'A',
        feature: 'spo2',
        bin_counts: [1, 0, 1, 0, 1],
        n: 3,
        missing: 0,
        out_of_range: 1,
      },
      // A, V (other), A
      {
        ...identity,
        ...w0,
        firmware_version: 'A',
        feature: 'consciousness',
        bin_counts: [2, 1],
        n: 3,
        missing: 0,
        out_of_range: 1,
      },
      // score 1; no inference: missing; another model version: missing
      {
        ...identity,
        ...w0,
        firmware_version: 'A',
        feature: 'score',
        bin_counts: [0, 1, 0, 0],
        n: 1,
        missing: 2,
        out_of_range: 0,
      },
      // firmware B, first hour: record 103
      {
        ...identity,
        ...w0,
        firmware_version: 'B',
        feature: 'pulse',
        bin_counts: [0, 0, 1, 0],
        n: 1,
        missing: 0,
        out_of_range: 0,
      },
      {
        ...identity,
        ...w0,
        firmware_version: 'B',
        feature: 'spo2',
        bin_counts: [0, 0, 0, 1, 0],
        n: 1,
        missing: 0,
        out_of_range: 0,
      },
      {
        ...identity,
        ...w0,
        firmware_version: 'B',
        feature: 'consciousness',
        bin_counts: [1, 0],
        n: 1,
        missing: 0,
        out_of_range: 0,
      },
      {
        ...identity,
        ...w0,
        firmware_version: 'B',
        feature: 'score',
        bin_counts: [1, 0, 0, 0],
        n: 1,
        missing: 0,
        out_of_range: 0,
      },
      // firmware A, second hour: record 104 (heart rate 91: overflow; score 7: other)
      {
        ...identity,
        ...w1,
        firmware_version: 'A',
        feature: 'pulse',
        bin_counts: [0, 0, 0, 1],
        n: 1,
        missing: 0,
        out_of_range: 1,
      },
      {
        ...identity,
        ...w1,
        firmware_version: 'A',
        feature: 'spo2',
        bin_counts: [0, 0, 0, 0, 0],
        n: 0,
        missing: 1,
        out_of_range: 0,
      },
      {
        ...identity,
        ...w1,
        firmware_version: 'A',
        feature: 'consciousness',
        bin_counts: [0, 0],
        n: 0,
        missing: 1,
        out_of_range: 0,
      },
      {
        ...identity,
        ...w1,
        firmware_version: 'A',
        feature: 'score',
        bin_counts: [0, 0, 0, 1],
        n: 1,
        missing: 0,
        out_of_range: 1,
      },
    ]);

    // After each group's feature rows, its device sketch: one count per record, in its device's bucket.
    expect(all.map((r) => r.feature).filter((_, i) => i % 5 === 4)).toEqual([
      DEVICE_SKETCH_FEATURE,
      DEVICE_SKETCH_FEATURE,
      DEVICE_SKETCH_FEATURE,
    ]);
    const sketch = (offsets: number[]) => {
      const counts = new Array<number>(DEVICE_SKETCH_BUCKETS).fill(0);
      for (const offset of offsets) counts[deviceBucket(`dev-${offset}`)]!++;
      return counts;
    };
    const devices = { feature: DEVICE_SKETCH_FEATURE, missing: 0, out_of_range: 0 };
    expect(all.filter((r) => r.feature === DEVICE_SKETCH_FEATURE)).toEqual([
      { ...identity, ...w0, ...devices, firmware_version: 'A', bin_counts: sketch([100, 101, 102]), n: 3 },
      { ...identity, ...w0, ...devices, firmware_version: 'B', bin_counts: sketch([103]), n: 1 },
      { ...identity, ...w1, ...devices, firmware_version: 'A', bin_counts: sketch([104]), n: 1 },
    ]);
  });

  it('emits rows the drift-histogram Avro schema accepts, sketch rows included', async () => {
    const schema = JSON.parse(
      readFileSync(new URL('../../schemas/avro/drift-histogram/v1.avsc', import.meta.url), 'utf8'),
    );
    const type = avro.Type.forSchema(schema);
    const rows = rowsOf(await opened(), batch);
    expect(rows).toHaveLength(15);
    for (const row of rows) {
      expect(type.isValid(row, { errorHook: (path) => expect.fail(`invalid at ${path.join('.')}`) })).toBe(true);
      expect(type.fromBuffer(type.toBuffer(row))).toEqual(row);
    }
  });

  it('gives identical rows when the same batch is processed again (a retry)', async () => {
    const operator = await opened();
    expect(rowsOf(operator, batch)).toEqual(rowsOf(operator, batch));
    expect(rowsOf(await opened(), batch)).toEqual(rowsOf(operator, batch));
  });

  it('adds a late event to its own (old) window, under the batch that carried it', async () => {
    const late = record({ at: T0 - 30 * HOUR, firmware: 'A', vitals: { pulse: 60 }, score: 0 }, 900);
    const rows = rowsOf(await opened({ features: ['pulse'] }), [late]).filter((r) => r.feature === 'pulse');
    expect(rows).toEqual([
      expect.objectContaining({
        window_start: T0 - 30 * HOUR,
        window_end: T0 - 29 * HOUR,
        bin_counts: [0, 1, 0, 0],
        first_offset: 900,
        last_offset: 900,
      }),
    ]);
  });

  it('windows by the configured length, aligned to the epoch', async () => {
    const rows = rowsOf(await opened({ features: ['pulse'], windowMs: 24 * HOUR }), batch).filter(
      (r) => r.feature === 'pulse',
    );
    expect(rows.map((r) => [r.firmware_version, r.window_start, r.window_end, r.n, r.missing])).toEqual([
      ['A', T0, T0 + 24 * HOUR, 3, 1],
      ['B', T0, T0 + 24 * HOUR, 1, 0],
    ]);
  });

  it('keeps each partition of a mixed batch under its own identity', async () => {
    const mixed = [
      record(specs[0]!, 10, 0),
      record(specs[1]!, 500, 1),
      record(specs[3]!, 11, 0),
      record(specs[0]!, 501, 1),
    ];
    const rows = rowsOf(await opened({ features: ['pulse'] }), mixed).filter((r) => r.feature === 'pulse');
    expect(rows.map((r) => [r.source_partition, r.first_offset, r.last_offset, r.firmware_version, r.n])).toEqual([
      [0, 10, 11, 'A', 1],
      [0, 10, 11, 'B', 1],
      [1, 500, 501, 'A', 2],
    ]);
  });

  it('emits nothing for an empty batch or one without vital signs', async () => {
    const operator = await opened();
    expect(operator.measure([]).side).toEqual({});
    expect(operator.measure([statusRecord(1)]).side).toEqual({});
  });
});

describe('detect-drift: bounded output', () => {
  it('emits groups × (features + sketch) rows whatever the batch size', async () => {
    const operator = await opened();
    // Two firmware cohorts of 500 devices, 20 readings each, within one hour.
    const cohort = (seed: string, firmware: string, firstOffset: number) =>
      scoredRecords(syntheticReadings({ seed, patients: 500, readingsPerPatient: 20, intervalMs: 1000 }), {
        firmware,
        site: 'site-1',
        firstOffset,
      });
    const records = [...cohort('bounded-a', 'A', 0), ...cohort('bounded-b', 'B', 10_000)];
    const small = rowsOf(operator, [...records.slice(0, 100), ...records.slice(10_000, 10_100)]);
    const large = rowsOf(operator, records);
    expect(records).toHaveLength(20_000);
    expect(small).toHaveLength(2 * (HAND_FEATURES.length + 1));
    expect(large).toHaveLength(2 * (HAND_FEATURES.length + 1));
    const features = large.filter((row) => row.feature !== DEVICE_SKETCH_FEATURE);
    expect(features.reduce((sum, row) => sum + row.n + row.missing, 0)).toBe(20_000 * HAND_FEATURES.length);
    // The sketches count the 500 devices of each firmware.
    for (const sketch of large.filter((row) => row.feature === DEVICE_SKETCH_FEATURE)) {
      expect(sketch.bin_counts).toHaveLength(DEVICE_SKETCH_BUCKETS);
      expect(sketch.n).toBe(10_000);
      expect(Math.abs(estimateDevices(sketch.bin_counts) - 500) / 500).toBeLessThan(0.15);
    }
    // Counters are per group, not per record: bins sum to n.
    for (const row of large) expect(row.bin_counts.reduce((a, b) => a + b, 0)).toBe(row.n);
  });
});

describe('detect-drift: partials add up', () => {
  it('gives the same window report however the stream is cut into batches', async () => {
    const reference = buildReference(
      referenceSamples(syntheticReadings({ seed: 'sum-ref', patients: 200, readingsPerPatient: 10 })),
      { model: { name: 'news2', version: '1.0.0' }, generator: {}, sample: {} },
    );
    const models = await modelStoreWith(serialiseReference(reference));
    try {
      const operator = detectDrift({ model: 'news2', version: '1.0.0' });
      await operator.open(context(models.store));
      // 30 readings 5 minutes apart from midnight: three 1-hour windows.
      const readings = syntheticReadings({
        seed: 'sum',
        patients: 300,
        readingsPerPatient: 30,
        intervalMs: 5 * 60_000,
        missingTemperature: 0.05,
      });
      const records = scoredRecords(readings, { firmware: '5.12.1' });
      const refs = operator.referenceRows(T0);
      const strip = (rows: ReturnType<typeof driftReports>) =>
        rows.map(({ bin_counts, n, missing, out_of_range, js_distance, psi, window_start, feature }) => ({
          bin_counts,
          n,
          missing,
          out_of_range,
          js_distance,
          psi,
          window_start,
          feature,
        }));
      const whole = strip(driftReports(rowsOf(operator, records), refs));
      for (const size of [1, 97, 500]) {
        const partials = batches(records, size).flatMap((batch) => rowsOf(operator, batch));
        const summed = strip(driftReports(partials, refs));
        expect(summed.map(({ js_distance, psi, ...counts }) => counts)).toEqual(
          whole.map(({ js_distance, psi, ...counts }) => counts),
        );
        summed.forEach((row, i) => {
          expect(row.js_distance).toBeCloseTo(whole[i]!.js_distance!, 12);
          expect(row.psi).toBeCloseTo(whole[i]!.psi!, 12);
        });
      }
      expect(whole).toHaveLength(3 * 8);
      expect(whole.reduce((sum, row) => sum + row.n + row.missing, 0)).toBe(records.length * 8);
    } finally {
      await models.cleanup();
    }
  });
});

describe('detect-drift: start-up', () => {
  it('fails with a message saying how to build the reference when the manifest has none', async () => {
    const empty = await modelStoreWith(null);
    try {
      const operator = detectDrift({ model: 'news2', version: '1.0.0' });
      const error = await operator.open(context(empty.store)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VigilError);
      expect((error as VigilError).code).toBe('MODEL_NOT_FOUND');
      expect((error as VigilError).message).toMatch(/news2@1\.0\.0.*npm run models:reference/s);
    } finally {
      await empty.cleanup();
    }
  });

  it('fails when the model is not in the store at all', async () => {
    const operator = detectDrift({ model: 'nosuch', version: '9.9.9' });
    await expect(operator.open(context())).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
  });

  it('fails when the reference lacks a configured feature, or belongs to another model', async () => {
    await expect(opened({ features: ['temperature_c'] })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/no histogram for temperature_c/),
    });
    const other = await modelStoreWith(serialiseReference({ ...HAND, model: { name: 'news2', version: '0.9.0' } }));
    try {
      const operator = detectDrift({ model: 'news2', version: '1.0.0', features: ['spo2'] });
      await expect(operator.open(context(other.store))).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/reference of news2@0\.9\.0, not news2@1\.0\.0/),
      });
    } finally {
      await other.cleanup();
    }
  });

  it('refuses to process before open', () => {
    const operator = detectDrift({ model: 'news2', version: '1.0.0' });
    expect(() => operator.measure([])).toThrow(/before open/);
  });

  it('hands the runtime its reference table, opening itself if need be', async () => {
    const operator = detectDrift({ model: 'news2', version: '1.0.0', features: [...HAND_FEATURES] });
    const ctx = context();
    const tables = await operator.referenceTables(ctx);
    expect(tables).toHaveLength(1);
    expect(tables[0]!.table).toBe('drift_reference_bins');
    expect(tables[0]!.rows).toEqual(operator.referenceRows(ctx.clock.now()));
    expect(operator.measure([]).out).toEqual([]); // it is open now
  });

  it('offers the reference rows with its own policy for drift_reference_bins', async () => {
    const operator = await opened({ thresholds: { js: 0.2, minCount: 50 }, allowedLatenessMs: 0 });
    const rows = operator.referenceRows(T0);
    expect(rows.map((r) => r.feature)).toEqual([...HAND_FEATURES]);
    expect(rows[0]).toMatchObject({ js_threshold: 0.2, min_count: 50, psi_alert: 0.25, allowed_lateness_ms: 0 });
    expect(rows[0]!.reference_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(rows).toEqual(
      referenceRows(HAND, {
        sha256: rows[0]!.reference_sha256,
        thresholds: { js: 0.2, psiWarn: 0.1, psiAlert: 0.25, datasetShare: 0.5, minCount: 50, noiseZ: 3.09 },
        allowedLatenessMs: 0,
        loadedAt: T0,
      }),
    );
  });
});

describe('detect-drift: configuration', () => {
  it('fills the documented defaults', () => {
    expect(parseDetectDriftConfig({ model: 'news2', version: '1.0.0' })).toEqual({
      models: [{ model: 'news2', version: '1.0.0' }],
      model: 'news2',
      version: '1.0.0',
      windowMs: 3_600_000,
      allowedLatenessMs: 3_600_000,
      thresholds: { js: 0.1, psiWarn: 0.1, psiAlert: 0.25, datasetShare: 0.5, minCount: 1000, noiseZ: 3.09 },
    });
  });

  it('takes several models, each with its default version (the shorthand is one of them)', () => {
    const models = [
      { model: 'news2', version: '1.0.0' },
      { model: 'deterioration', version: '1.0.0' },
    ];
    expect(parseDetectDriftConfig({ models, features: ['spo2', 'score'] })).toMatchObject({
      models,
      features: ['spo2', 'score'],
    });
  });

  it.each([
    [{ model: 'news2', version: '1.0.0', windowMinutes: 60 }, /windowMinutes/],
    [{ model: 'news2', version: '1.0.0', thresholds: { jsd: 0.1 } }, /jsd/],
    [{ model: 'news2', version: '1.0.0', thresholds: { psiWarn: 0.3 } }, /psiWarn must not exceed psiAlert/],
    [{ model: 'news2', version: '1.0.0', features: ['spo2', 'spo2'] }, /must not repeat/],
    [{ model: 'news2', version: '1.0.0', features: ['heart_rate'] }, /features/],
    [{ model: 'news2', version: '1.0.0', windowMs: 1000 }, /windowMs/],
    [{ model: '../etc', version: '1.0.0' }, /model/],
    [{ model: 'news2' }, /version/],
    [{ windowMs: 3_600_000 }, /models is required/],
    [{ model: 'news2', version: '1.0.0', models: [{ model: 'news2', version: '1.0.0' }] }, /not both/],
    [
      {
        models: [
          { model: 'news2', version: '1.0.0' },
          { model: 'news2', version: '1.1.0' },
        ],
      },
      /twice/,
    ],
    [{ models: [] }, /models/],
  ])('rejects %j with CONFIG_INVALID', (input, message) => {
    expect(() => parseDetectDriftConfig(input)).toThrow(message);
    try {
      parseDetectDriftConfig(input);
    } catch (error) {
      expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    }
  });
});

describe('detect-drift: rows exactly as before the emission was rewritten', () => {
  it('gives byte-identical rows (keys, order, counts) on a mixed batch: firmware, sites, windows, event types', async () => {
    const operator = await opened();
    const cohort = (seed: string, firmware: string, site: string, firstOffset: number, intervalMs: number) =>
      scoredRecords(syntheticReadings({ seed, patients: 40, readingsPerPatient: 15, intervalMs }), {
        firmware,
        site,
        firstOffset,
      });
    const a = cohort('golden-a', 'A', 'site-1', 0, 60_000);
    const b = cohort('golden-b', 'B', 'site-2', 1_000, 600_000);
    const c = cohort('golden-c', 'A', 'site-2', 2_000, 1_000);
    // Interleaved, with device-status records between (not measured, but offsets count).
    const batch: InFlight<ScoredEvent>[] = [];
    for (let i = 0; i < 600; i++) {
      batch.push(a[i]!, b[i]!, c[i]!);
      if (i % 50 === 0) batch.push(statusRecord(5_000 + i));
    }
    const rows = rowsOf(operator, batch);
    expect(rows.length).toBeGreaterThan(20);
    // sha256 of the rows as JSON, from the emission before the rewrite (commit e7d61d6) on the same batch.
    expect(createHash('sha256').update(JSON.stringify(rows)).digest('hex')).toBe(
      'cb13ff47df42fb620c368a6762a0995cf0c212ffc779a85a9dddb4e69d3377d7',
    );
  });
});
