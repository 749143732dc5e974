import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { deadLetterRow, duplicateRow } from '../adapters/clickhouse/tables.ts';
import { MODEL_CALIBRATION_TABLE, type ModelCalibration, modelCalibrationRow } from '../governance/calibrate.ts';
import { type CalibrationRow, calibrationMetrics } from '../governance/calibration.ts';
import { inferenceRow, normalisedEventRow } from '../pipelines/outputs.ts';
import type { Inference, NormalisedEvent } from '../schemas/types.ts';
import {
  deadLetter,
  duplicate,
  type EventSpec,
  inferenceFor,
  normalisedEvent,
  T0,
} from '../test/fixtures/clickhouse.ts';
import { listSavedQueries, normaliseDateTime, parseSavedQuery, resolveParams, runSavedQuery } from './queries.ts';

/** ClickHouse's quantileExact: the element at floor(level * n) of the sorted values. */
function exactQuantile(values: readonly number[], level: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(level * sorted.length)]!;
}
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
const MARCH = { from: '2026-03-01', to: '2026-04-01' };
const MINUTE = 60_000;

// --- the seeded fleet --------------------------------------------------------------------------------------------
// site-a: firmware 4.1.0, devices d1 and d2 (LOT-1), normal SpO2.
// site-b: firmware 4.2.0, devices d3 (LOT-1) and d4 (LOT-2), SpO2 reading low; d4 on oxygen half the time.
const SPO2: Record<string, (number | null)[]> = {
  d1: [97, 96, 98, 95, 97],
  d2: [96, 97, 98, 99, 96],
  d3: [90, 91, 92, 93, 94],
  d4: [88, 89, 90, 91, null],
};
const DEVICE = {
  d1: { siteId: 'site-a', firmware: '4.1.0', deviceBatch: 'LOT-1', patientSubgroup: 'adult_18_64' },
  d2: { siteId: 'site-a', firmware: '4.1.0', deviceBatch: 'LOT-1', patientSubgroup: 'adult_18_64' },
  d3: { siteId: 'site-b', firmware: '4.2.0', deviceBatch: 'LOT-1', patientSubgroup: 'adult_65_plus' },
  d4: { siteId: 'site-b', firmware: '4.2.0', deviceBatch: 'LOT-2', patientSubgroup: 'adult_18_64' },
} as const;
type Device = keyof typeof DEVICE;
const SCORES: Record<Device, number[]> = {
  d1: [0, 0, 1, 0, 0],
  d2: [1, 0, 0, 2, 0],
  d3: [3, 5, 2, 7, 4],
  d4: [6, 8, 5, 3, 4],
};

let n = 0;
function event(device: Device, spec: Omit<EventSpec, 'n'> = {}): NormalisedEvent {
  n += 1;
  return normalisedEvent({ n, deviceId: device, observedAt: T0 + n * MINUTE, ...DEVICE[device], ...spec });
}

const vitals: NormalisedEvent[] = [];
const others: NormalisedEvent[] = [];
const inferences: Inference[] = [];
for (const device of Object.keys(SPO2) as Device[]) {
  SPO2[device]!.forEach((spo2, i) => {
    const e = event(device, {
      vitals: {
        spo2,
        on_oxygen:
          device === 'd4' && i % 2 === 0 && spo2 !== null ? true : device === 'd4' && spo2 === null ? null : false,
        respiratory_rate: device === 'd3' && i === 0 ? null : 16,
      },
      flags: (device === 'd3' && i === 0) || spo2 === null ? ['news2_incomplete'] : [],
    });
    vitals.push(e);
    const score = SCORES[device][i]!;
    inferences.push(inferenceFor(e, { score, band: score === 3 ? 'low_medium' : undefined }));
    if (DEVICE[device].firmware === '4.2.0') {
      inferences.push(inferenceFor(e, { score: score + 1, modelVersion: '1.1.0', rollout: 'shadow' }));
    }
  });
}
others.push(
  event('d1', { type: 'alarm', alarm: { priority: 'high', category: 'physiological', active: true } }),
  event('d1', { type: 'alarm', alarm: { priority: 'high', category: 'physiological', active: false } }),
  event('d3', { type: 'alarm', alarm: { priority: 'high', category: 'physiological', active: true } }),
  event('d4', { type: 'alarm', alarm: { priority: 'high', category: 'physiological', active: true } }),
  event('d4', { type: 'alarm', alarm: { alarm_code: 'LEAD_OFF', priority: 'medium', category: 'technical' } }),
  event('d3', { type: 'device_status' }),
);
// Outside the March window: must never be counted by a March query.
const april = event('d1', { observedAt: Date.UTC(2026, 3, 2), type: 'alarm', alarm: { active: true } });

const deadLetters = [
  deadLetter(1),
  deadLetter(2),
  deadLetter(3),
  deadLetter(4, {
    stage: 'validate',
    operator: 'validate',
    reason_code: 'VALUE_OUT_OF_RANGE',
    claimed_device_id: 'd3',
  }),
  deadLetter(5, { pipeline: 'other', stage: 'validate', operator: 'validate', reason_code: 'CLOCK_SKEW' }),
];
const duplicates = [
  duplicate(vitals[0]!),
  duplicate(vitals[10]!),
  duplicate(vitals[11]!, { kind: 'sequence' }),
  duplicate(event('d1', { siteId: 'site-c' }), { site_id: 'site-c' }),
];
n -= 1; // the site-c event above only exists as a duplicate: it is never stored

// --- calibrations, as governance/calibrate.ts records them -------------------------------------------------------
// deterioration 1.0.0 live and 1.1.0 shadow on March; 1.0.0's 'all' computed twice (the later one must be read);
// a subgroup cohort of 4 inferences (below the default min_count); a February window (outside a March query).
const MARCH_START = Date.UTC(2026, 2, 1);
const APRIL_START = Date.UTC(2026, 3, 1);
function labelled(pattern: readonly [number, 0 | 1][], times: number): CalibrationRow[] {
  return Array.from({ length: times }, () => pattern.map(([p, y]) => ({ p, y }))).flat();
}
const LIVE_ROWS = labelled(
  [
    [0.05, 0],
    [0.1, 0],
    [0.2, 1],
    [0.3, 0],
    [0.6, 1],
    [0.9, 1],
  ],
  5,
);
const SHADOW_ROWS = labelled(
  [
    [0.02, 0],
    [0.15, 0],
    [0.4, 1],
    [0.45, 0],
    [0.8, 1],
  ],
  4,
);
function calibration(
  version: string,
  rollout: string,
  cohort: string,
  rows: CalibrationRow[],
  spec: Partial<ModelCalibration> = {},
): ModelCalibration {
  return {
    model: 'deterioration',
    version,
    rollout,
    cohort,
    window_start: MARCH_START,
    window_end: APRIL_START,
    horizon_ms: 24 * 3_600_000,
    outcome_kinds: ['icu_transfer', 'confirmed_deterioration'],
    computed_at: APRIL_START + 2 * 86_400_000,
    ...calibrationMetrics(rows),
    ...spec,
  };
}
const calibrations: ModelCalibration[] = [
  // computed first, a day earlier, on fewer outcomes: superseded by the next row
  calibration('1.0.0', 'live', 'all', LIVE_ROWS.slice(0, 12), { computed_at: APRIL_START + 86_400_000 }),
  calibration('1.0.0', 'live', 'all', LIVE_ROWS),
  calibration('1.0.0', 'live', 'site:site-a', LIVE_ROWS.slice(0, 18)),
  calibration('1.0.0', 'live', 'subgroup:age:80+', LIVE_ROWS.slice(0, 4)),
  calibration('1.1.0', 'shadow', 'all', SHADOW_ROWS),
  calibration('1.0.0', 'live', 'all', LIVE_ROWS, {
    window_start: Date.UTC(2026, 1, 1),
    window_end: MARCH_START,
  }),
];

let dir: string;
let store: ClickHouseStore;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-surveillance-'));
  store = openChdbStore({ path: dir });
  await store.migrate();
  const events = [...vitals, ...others, april];
  await store.insert('normalised_events', events.map(normalisedEventRow), { dedupToken: 'events' });
  // A batch stored twice (its retry missed the dedup window): every query must still count it once.
  await store.insert('normalised_events', vitals.slice(0, 3).map(normalisedEventRow), { dedupToken: 'events-again' });
  await store.insert('inferences', inferences.map(inferenceRow), { dedupToken: 'inferences' });
  await store.insert('inferences', inferences.slice(0, 2).map(inferenceRow), { dedupToken: 'inferences-again' });
  await store.insert('dead_letters', deadLetters.map(deadLetterRow), { dedupToken: 'dead-letters' });
  await store.insert('dead_letters', [deadLetterRow(deadLetters[0]!)], { dedupToken: 'dead-letters-again' });
  await store.insert('duplicates', duplicates.map(duplicateRow), { dedupToken: 'duplicates' });
  // Every event and inference derived again by a newer pipeline version an hour later: both derivations stay in the
  // planes (0009_append_only), and every query must still count each event and inference once.
  await store.insert('normalised_events', events.map(rederived).map(normalisedEventRow), { dedupToken: 'events-v2' });
  await store.insert('inferences', inferences.map(rescored).map(inferenceRow), { dedupToken: 'inferences-v2' });
  await store.insert(MODEL_CALIBRATION_TABLE, calibrations.map(modelCalibrationRow), { dedupToken: 'calibration' });
  await store.insert(MODEL_CALIBRATION_TABLE, calibrations.slice(0, 2).map(modelCalibrationRow), {
    dedupToken: 'calibration-again',
  });
});

function rederived(e: NormalisedEvent): NormalisedEvent {
  return { ...e, transformation_version: 'vitals@2/validate/dedupe', processed_at: e.processed_at + 60 * MINUTE };
}

function rescored(i: Inference): Inference {
  return { ...i, transformation_version: 'vitals@2/score/news2', scored_at: i.scored_at + 60 * MINUTE };
}

afterAll(async () => {
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('saved query files', () => {
  it('each has a title, a purpose, documented parameters and an example that names it', async () => {
    const queries = await listSavedQueries();
    expect(queries.map((q) => q.name)).toEqual([
      'alarm-rate-by-firmware',
      'calibration-by-model-version',
      'completeness-by-site',
      'dead-letters-by-reason',
      'duplicates-by-site',
      'news2-by-firmware',
      'reliability-by-model-version',
      'score-by-model-subgroup',
      'spo2-by-firmware-batch',
    ]);
    for (const query of queries) {
      expect(query.title.length, query.name).toBeGreaterThan(10);
      expect(query.description, query.name).toMatch(/Purpose: .{40,}/);
      // Exact: FINAL, or a *_current view (one row per event or inference: its current derivation).
      expect(query.description, query.name).toMatch(/Exactness: .*(FINAL|_current)/);
      expect(query.sql, query.name).toMatch(/ FINAL|FROM (normalised_events|inferences)_current\b/);
      expect(
        query.examples.some((e) => e.startsWith(`vigil query run ${query.name}`)),
        query.name,
      ).toBe(true);
      for (const param of query.params) {
        expect(param.description.length, `${query.name} ${param.name}`).toBeGreaterThan(5);
        expect(query.sql).toContain(`{${param.name}:${param.type}}`);
      }
    }
  });

  it('each runs on empty tables with its defaults and returns no rows', async () => {
    // chdb holds one data directory per process: empty copies of the tables in another database stand in for a fresh
    // store, and the queries' table names are pointed at them.
    const tables = ['normalised_events', 'inferences', 'dead_letters', 'duplicates', 'model_calibration'];
    const views = ['normalised_events_current', 'inferences_current'];
    await store.command('CREATE DATABASE IF NOT EXISTS empty_check');
    for (const table of tables) {
      await store.command(`CREATE TABLE IF NOT EXISTS empty_check.${table} AS ${table}`);
    }
    for (const view of views) {
      const table = view.replace(/_current$/, '');
      await store.command(`CREATE VIEW IF NOT EXISTS empty_check.${view} AS SELECT * FROM empty_check.${table}`);
    }
    for (const query of await listSavedQueries()) {
      const names = [...views, ...tables].join('|');
      const sql = query.sql.replace(new RegExp(`\\b(FROM|JOIN) (${names})\\b`, 'g'), '$1 empty_check.$2');
      expect(sql, query.name).toContain('empty_check.');
      expect(await store.query(sql, resolveParams(query, {})), query.name).toEqual([]);
    }
  });

  it('refuse a header that does not match the placeholders', () => {
    const body = "SELECT 1 WHERE x = {site:String} AND t >= {from:DateTime64(3, 'UTC')}";
    expect(() => parseSavedQuery('q', `-- Title of q\n-- @param site  The site.\n${body}`)).toThrow(
      /from has no @param/,
    );
    expect(() =>
      parseSavedQuery('q', `-- Title of q\n-- @param site  s\n-- @param from  f\n-- @param gone  g\n${body}`),
    ).toThrow(/@param gone is not used/);
    expect(() => parseSavedQuery('q', '-- Title of q\nSELECT 1; DROP TABLE x')).toThrow(/single statement/);
    const parsed = parseSavedQuery('q', `-- Title of q\n-- Purpose: p.\n-- @param site  s\n-- @param from  f\n${body}`);
    expect(parsed.params).toEqual([
      { name: 'site', type: 'String', description: 's' },
      { name: 'from', type: "DateTime64(3, 'UTC')", description: 'f' },
    ]);
  });

  it('resolve parameters: defaults, required, unknown, and date-time forms', async () => {
    const [query] = await listSavedQueries().then((all) => all.filter((q) => q.name === 'dead-letters-by-reason'));
    expect(resolveParams(query!, { from: '2026-03-10', pipeline: 'vitals' })).toEqual({
      pipeline: 'vitals',
      from: '2026-03-10 00:00:00.000',
      to: '2100-01-01 00:00:00.000',
    });
    expect(() => resolveParams(query!, { form: '2026-03-10' })).toThrow(/has no parameter "form"/);
    const required = parseSavedQuery('r', '-- Title of r\n-- @param site  The site.\nSELECT {site:String}');
    expect(() => resolveParams(required, {})).toThrow(/needs --param site=<String>/);
    expect(normaliseDateTime('2026-03-10T08:00:00.5+01:00')).toBe('2026-03-10 07:00:00.500');
    expect(normaliseDateTime('2026-03-10 08:00')).toBe('2026-03-10 08:00:00.000');
    expect(normaliseDateTime(String(T0))).toBe('2026-03-10 08:00:00.000');
    expect(() => normaliseDateTime('last tuesday')).toThrow(/not a date-time/);
  });
});

describe('saved queries on a seeded fleet', () => {
  it('run on planes that hold two derivations of everything, and read one (the current views)', async () => {
    const derivations = async (table: string) => {
      const [row] = await store.query<{ rows: number; v: string[] }>(
        `SELECT count() AS rows, arraySort(groupUniqArray(transformation_version)) AS v FROM ${table} FINAL`,
      );
      return row;
    };
    const events = vitals.length + others.length + 1;
    expect(await derivations('normalised_events')).toEqual({
      rows: 2 * events,
      v: ['vitals@1/validate/dedupe', 'vitals@2/validate/dedupe'],
    });
    expect(await derivations('inferences')).toEqual({
      rows: 2 * inferences.length,
      v: ['vitals@1/validate/dedupe/score', 'vitals@2/score/news2'],
    });
    const current = await store.query<{ n: number; v: string[] }>(
      'SELECT count() AS n, groupUniqArray(transformation_version) AS v FROM normalised_events_current',
    );
    expect(current).toEqual([{ n: events, v: ['vitals@2/validate/dedupe'] }]);
  });

  it('alarm-rate-by-firmware', async () => {
    const rows = await runSavedQuery(store, 'alarm-rate-by-firmware', MARCH);
    expect(rows).toEqual([
      {
        firmware_version: '4.1.0',
        devices: 2,
        device_days: 2,
        vital_signs: 10,
        alarms_raised: 1,
        high_priority_alarms: 1,
        technical_alarms: 0,
        alarms_per_1000_vitals: 100,
        alarms_per_device_day: 0.5,
      },
      {
        firmware_version: '4.2.0',
        devices: 2,
        device_days: 2,
        vital_signs: 10,
        alarms_raised: 3,
        high_priority_alarms: 2,
        technical_alarms: 1,
        alarms_per_1000_vitals: 300,
        alarms_per_device_day: 1.5,
      },
    ]);
    // Without the window the April alarm of 4.1.0 counts too (and on a third device-day).
    const all = await runSavedQuery<{ alarms_raised: number; device_days: number }>(store, 'alarm-rate-by-firmware');
    expect(all[0]).toMatchObject({ alarms_raised: 2, device_days: 3 });
  });

  it('news2-by-firmware', async () => {
    const rows = await runSavedQuery<Record<string, number | string>>(store, 'news2-by-firmware', MARCH);
    const scores = (devices: Device[]) => devices.flatMap((d) => SCORES[d]);
    const expected = (firmware: string, values: number[], bands: Record<string, number>) => ({
      firmware_version: firmware,
      inferences: values.length,
      devices: 2,
      mean_score: round(values.reduce((a, b) => a + b, 0) / values.length, 3),
      p50: exactQuantile(values, 0.5),
      p90: exactQuantile(values, 0.9),
      p99: exactQuantile(values, 0.99),
      share_low: round((bands.low ?? 0) / values.length, 4),
      share_low_medium: round((bands.low_medium ?? 0) / values.length, 4),
      share_medium: round((bands.medium ?? 0) / values.length, 4),
      share_high: round((bands.high ?? 0) / values.length, 4),
    });
    expect(rows).toEqual([
      expected('4.1.0', scores(['d1', 'd2']), { low: 10 }),
      // 4.2.0 scores 3,5,2,7,4,6,8,5,3,4: low 2,4,4; low_medium 3,3; medium 5,6,5; high 7,8
      expected('4.2.0', scores(['d3', 'd4']), { low: 3, low_medium: 2, medium: 3, high: 2 }),
    ]);
    expect(rows[1]).toMatchObject({ p50: 5, mean_score: 4.7 });

    const shadow = await runSavedQuery<Record<string, number | string>>(store, 'news2-by-firmware', {
      ...MARCH,
      rollout: 'shadow',
      model_version: '1.1.0',
    });
    expect(shadow).toHaveLength(1);
    expect(shadow[0]).toMatchObject({ firmware_version: '4.2.0', inferences: 10, mean_score: 5.7 });
    expect(await runSavedQuery(store, 'news2-by-firmware', { ...MARCH, model_version: '9.9.9' })).toEqual([]);
  });

  it('spo2-by-firmware-batch', async () => {
    const rows = await runSavedQuery(store, 'spo2-by-firmware-batch', MARCH);
    const cohort = (firmware: string, batch: string, devices: Device[], onOxygen: number) => {
      const values = devices.flatMap((d) => SPO2[d]!).filter((v): v is number => v !== null);
      return {
        firmware_version: firmware,
        batch,
        devices: devices.length,
        readings: values.length,
        mean_spo2: round(values.reduce((a, b) => a + b, 0) / values.length, 2),
        p05: exactQuantile(values, 0.05),
        p50: exactQuantile(values, 0.5),
        p95: exactQuantile(values, 0.95),
        share_le_91: round(values.filter((v) => v <= 91).length / values.length, 4),
        share_le_93: round(values.filter((v) => v <= 93).length / values.length, 4),
        share_on_oxygen: round(onOxygen / values.length, 4),
      };
    };
    expect(rows).toEqual([
      cohort('4.1.0', 'LOT-1', ['d1', 'd2'], 0),
      cohort('4.2.0', 'LOT-1', ['d3'], 0),
      cohort('4.2.0', 'LOT-2', ['d4'], 2),
    ]);
    expect(rows[2]).toMatchObject({ readings: 4, mean_spo2: 89.5, share_le_91: 1, share_on_oxygen: 0.5 });
  });

  it('completeness-by-site', async () => {
    const rows = await runSavedQuery(store, 'completeness-by-site', MARCH);
    expect(rows).toEqual([
      {
        site_id: 'site-a',
        devices: 2,
        device_hours: 2,
        events: 12,
        vital_signs: 10,
        events_per_device_hour: 6,
        vitals_per_device_hour: 5,
        missing_respiratory_rate: 0,
        missing_spo2: 0,
        missing_on_oxygen: 0,
        missing_systolic_bp: 0,
        missing_pulse: 0,
        missing_consciousness: 0,
        missing_temperature: 0,
        flagged_news2_incomplete: 0,
      },
      {
        site_id: 'site-b',
        devices: 2,
        device_hours: 2,
        events: 14,
        vital_signs: 10,
        events_per_device_hour: 7,
        vitals_per_device_hour: 5,
        missing_respiratory_rate: 0.1,
        missing_spo2: 0.1,
        missing_on_oxygen: 0.1,
        missing_systolic_bp: 0,
        missing_pulse: 0,
        missing_consciousness: 0,
        missing_temperature: 0,
        flagged_news2_incomplete: 0.2,
      },
    ]);
  });

  it('dead-letters-by-reason', async () => {
    const rows = await runSavedQuery(store, 'dead-letters-by-reason', MARCH);
    const at = (i: number) => new Date(deadLetters[i]!.failed_at).toISOString().replace('T', ' ').slice(0, 23);
    expect(rows).toEqual([
      {
        stage: 'decode',
        reason_code: 'BAD_MAGIC_BYTE',
        dead_letters: 3,
        share: 0.6,
        claimed_devices: 1,
        first_failed_at: at(0),
        last_failed_at: at(2),
      },
      {
        stage: 'validate',
        reason_code: 'CLOCK_SKEW',
        dead_letters: 1,
        share: 0.2,
        claimed_devices: 1,
        first_failed_at: at(4),
        last_failed_at: at(4),
      },
      {
        stage: 'validate',
        reason_code: 'VALUE_OUT_OF_RANGE',
        dead_letters: 1,
        share: 0.2,
        claimed_devices: 1,
        first_failed_at: at(3),
        last_failed_at: at(3),
      },
    ]);
    const vitalsOnly = await runSavedQuery<{ reason_code: string; share: number }>(store, 'dead-letters-by-reason', {
      pipeline: 'vitals',
    });
    expect(vitalsOnly.map((r) => [r.reason_code, r.share])).toEqual([
      ['BAD_MAGIC_BYTE', 0.75],
      ['VALUE_OUT_OF_RANGE', 0.25],
    ]);
  });

  it('duplicates-by-site', async () => {
    const rows = await runSavedQuery(store, 'duplicates-by-site', MARCH);
    expect(rows).toEqual([
      { site: 'site-a', events: 12, duplicates: 1, by_event_id: 1, by_sequence: 0, duplicate_rate: round(1 / 13, 4) },
      { site: 'site-b', events: 14, duplicates: 2, by_event_id: 1, by_sequence: 1, duplicate_rate: 0.125 },
      { site: 'site-c', events: 0, duplicates: 1, by_event_id: 1, by_sequence: 0, duplicate_rate: 1 },
    ]);
  });

  it('score-by-model-subgroup, with small groups suppressed', async () => {
    const rows = await runSavedQuery<Record<string, number | string>>(store, 'score-by-model-subgroup', MARCH);
    const adults = [...SCORES.d1, ...SCORES.d2, ...SCORES.d4];
    expect(rows).toEqual([
      {
        model_name: 'news2',
        model_version: '1.0.0',
        rollout: 'live',
        subgroup: 'adult_18_64',
        inferences: 15,
        patients: 3,
        mean_score: round(adults.reduce((a, b) => a + b, 0) / 15, 3),
        p50: exactQuantile(adults, 0.5),
        p90: exactQuantile(adults, 0.9),
        // d4 scores 6, 8, 5, 3, 4: medium, high, medium, low_medium, low; d1 and d2 all low
        share_low: round(11 / 15, 4),
        share_low_medium: round(1 / 15, 4),
        share_medium: round(2 / 15, 4),
        share_high: round(1 / 15, 4),
      },
    ]);
    const all = await runSavedQuery<Record<string, number | string>>(store, 'score-by-model-subgroup', {
      ...MARCH,
      min_count: '1',
    });
    expect(all.map((r) => [r.model_version, r.rollout, r.subgroup, r.inferences])).toEqual([
      ['1.0.0', 'live', 'adult_18_64', 15],
      ['1.0.0', 'live', 'adult_65_plus', 5],
      ['1.1.0', 'shadow', 'adult_18_64', 5],
      ['1.1.0', 'shadow', 'adult_65_plus', 5],
    ]);
  });

  it('calibration-by-model-version: the latest computation per key, small cohorts suppressed', async () => {
    const rows = await runSavedQuery<Record<string, unknown>>(store, 'calibration-by-model-version', {
      ...MARCH,
      model: 'deterioration',
    });
    const figures = (c: ModelCalibration) => ({
      model: 'deterioration',
      version: c.version,
      rollout: c.rollout,
      cohort: c.cohort,
      window_start: '2026-03-01 00:00:00.000',
      window_end: '2026-04-01 00:00:00.000',
      horizon_hours: 24,
      outcome_kinds: ['icu_transfer', 'confirmed_deterioration'],
      n: c.n,
      events: c.events,
      observed: round(c.observed_rate!, 4),
      predicted: round(c.mean_predicted!, 4),
      calibration_in_the_large: round(c.citl!, 4),
      calibration_slope: round(c.slope!, 3),
      calibration_intercept: round(c.intercept!, 3),
      ece_15_bins: round(c.ece15!, 4),
      brier_score: round(c.brier!, 4),
      auroc_value: round(c.auroc!, 4),
      computed_at: '2026-04-03 00:00:00.000',
    });
    // Default cohort 'all': 1.0.0's later computation (30 inferences, not the earlier 12), and the shadow beside it.
    expect(rows).toEqual([figures(calibrations[1]!), figures(calibrations[4]!)]);
    expect(rows[0]).toMatchObject({ n: 30, events: 15 });
    const everyCohort = await runSavedQuery<{ cohort: string; n: number }>(store, 'calibration-by-model-version', {
      ...MARCH,
      cohort: '',
    });
    expect(everyCohort.map((r) => [r.cohort, r.n])).toEqual([
      ['all', 30],
      ['site:site-a', 18],
      ['all', 20],
    ]);
    const small = await runSavedQuery<{ cohort: string }>(store, 'calibration-by-model-version', {
      ...MARCH,
      cohort: 'subgroup:age:80+',
      min_count: '1',
    });
    expect(small.map((r) => r.cohort)).toEqual(['subgroup:age:80+']);
    const february = await runSavedQuery<{ window_start: string }>(store, 'calibration-by-model-version', {
      from: '2026-02-01',
      to: '2026-03-01',
    });
    expect(february.map((r) => r.window_start)).toEqual(['2026-02-01 00:00:00.000']);
  });

  it('reliability-by-model-version: 15 bins per diagram, from the latest computation', async () => {
    const rows = await runSavedQuery<Record<string, unknown>>(store, 'reliability-by-model-version', {
      ...MARCH,
      version: '1.0.0',
    });
    expect(rows).toHaveLength(15);
    const live = calibrations[1]!;
    expect(rows.map((r) => r.bin)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(rows.map((r) => r.inferences)).toEqual(live.bins.map((b) => b.n));
    expect(rows.map((r) => r.events)).toEqual(live.bins.map((b) => b.events));
    expect(rows.map((r) => r.mean_predicted_in_bin)).toEqual(
      live.bins.map((b) => (b.mean_predicted === null ? null : round(b.mean_predicted, 4))),
    );
    expect(rows.map((r) => r.observed_rate_in_bin)).toEqual(
      live.bins.map((b) => (b.observed_rate === null ? null : round(b.observed_rate, 4))),
    );
    // p = 0.9 lands in bin 14 ([13/15, 14/15)): 5 inferences, all events.
    expect(rows[13]).toMatchObject({
      bin_from: round(13 / 15, 4),
      bin_to: round(14 / 15, 4),
      inferences: 5,
      events: 5,
    });
    const both = await runSavedQuery<{ version: string }>(store, 'reliability-by-model-version', MARCH);
    expect(both.map((r) => r.version)).toEqual([...Array(15).fill('1.0.0'), ...Array(15).fill('1.1.0')]);
  });
});
