/**
 * End to end, statistically: a cohort whose SpO2 sensor reads 3-4 points low is flagged as drifted on SpO2, and a
 * same-size unbiased cohort is not, through the operator's partial histograms summed into a window report.
 *
 * Sizes and margins (every draw is seeded; the margins are what keeps other seeds from failing too):
 * - reference: 4,000 patients × 15 readings from the unbiased population.
 * - each cohort: 300 patients × 20 readings (6,000 records) in one 1-hour window, cut into 500-record batches.
 * - unbiased: readings of one patient are correlated, so the cohort carries about as much information as its 300
 *   patients. Treating each patient as one draw gives a typical (χ² median) JS distance of
 *   sqrt(11.3 / (8 · 300 · ln 2)) ≈ 0.083 for SpO2's 12 degrees of freedom, a pessimistic figure: measured over 60
 *   cohort seeds it averages about 0.05 and peaked at 0.081 (SpO2; every other feature stayed under 0.08), against
 *   the 0.1 threshold. The chance gate for 300 devices (1 in 1,000) is 0.141.
 * - biased: the population-level JS distance of the shifted SpO2 distribution (computed below from a large sample)
 *   is about 0.7, seven times the threshold.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.ts';
import { silentLogger } from '../../runtime/log.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import {
  batches,
  modelStoreWith,
  referenceSamples,
  scoredRecords,
  syntheticReadings,
  T0,
} from '../../test/fixtures/detect-drift.ts';
import { type DetectDriftOperator, detectDrift } from './index.ts';
import { chanceJsDistance, jsDistance, proportions, referenceDegreesOfFreedom } from './metrics.ts';
import { binOf, buildReference, compileReference, type DriftReference, serialiseReference } from './reference.ts';
import { type DriftReportRow, driftReports } from './report.ts';

const PATIENTS = 300;
const READINGS = 20;
const SEEDS = [1, 2, 3, 4, 5];

let reference: DriftReference;
let operator: DetectDriftOperator;

beforeAll(async () => {
  reference = buildReference(
    referenceSamples(syntheticReadings({ seed: 'stat-ref', patients: 4000, readingsPerPatient: 15 })),
    { model: { name: 'news2', version: '1.0.0' }, generator: { script: 'test' }, sample: { seed: 'stat-ref' } },
  );
  const models = await modelStoreWith(serialiseReference(reference));
  operator = detectDrift({ model: 'news2', version: '1.0.0' });
  const clock = new ManualClock(T0);
  await operator.open({
    pipeline: 'vitals@1',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: models.store,
  });
  await models.cleanup();
});

/** Runs a cohort through the operator in batches and sums the partials into its window report. */
function report(seed: number, spo2Bias: number | readonly [number, number]): Map<string, DriftReportRow> {
  const readings = syntheticReadings({
    seed: `cohort-${seed}`,
    patients: PATIENTS,
    readingsPerPatient: READINGS,
    spo2Bias,
  });
  const records = scoredRecords(readings, { firmware: spo2Bias === 0 ? '5.12.1' : '5.13.0-rc2' });
  const partials = batches(records, 500).flatMap((batch) => operator.measure(batch).side.driftHistograms ?? []);
  const rows = driftReports(partials, operator.referenceRows(T0));
  expect(rows).toHaveLength(8); // one window, eight features
  expect(rows.every((r) => r.n + r.missing === PATIENTS * READINGS)).toBe(true);
  return new Map(rows.map((r) => [r.feature, r]));
}

describe('drift on a biased SpO2 cohort', () => {
  it('has the expected separation before any sampling noise', () => {
    const [spo2] = compileReference(reference, ['spo2']);
    const df = referenceDegreesOfFreedom(spo2!.proportions);
    expect(df).toBe(12);
    // Chance, counting each patient once: typically (χ² median) 0.083; the 1-in-1,000 gate is 0.141.
    const typical = chanceJsDistance(df, PATIENTS, 0);
    expect(typical).toBeGreaterThan(0.08);
    expect(typical).toBeLessThan(0.09);
    expect(chanceJsDistance(df, PATIENTS, 3.09)).toBeLessThan(0.15);
    // The biased population, from a sample large enough that its own noise is negligible (≈ 0.02).
    const counts = new Array<number>(spo2!.bins).fill(0);
    for (const r of syntheticReadings({
      seed: 'population',
      patients: 5000,
      readingsPerPatient: 4,
      spo2Bias: [3, 4],
    })) {
      counts[binOf(spo2!, r.vitals.spo2!)]!++;
    }
    const population = jsDistance(proportions(counts), spo2!.proportions);
    expect(population).toBeGreaterThan(0.6);
  });

  it.each(SEEDS)(
    'flags SpO2 on the biased cohort and nothing on an unbiased one of the same size (seed %i)',
    (seed) => {
      const biased = report(seed, [3, 4]);
      const unbiased = report(seed, 0);

      const spo2 = biased.get('spo2')!;
      expect(spo2.sufficient).toBe(true);
      expect(spo2.js_distance!).toBeGreaterThan(0.5);
      expect(spo2.drifted).toBe(true);
      expect(spo2.psi_level).toBe('alert');
      // The score follows SpO2 (more readings fall in NEWS2's SpO2 bands), the other inputs do not move.
      expect(biased.get('score')!.drifted).toBe(true);
      for (const feature of [
        'respiratory_rate',
        'on_oxygen',
        'systolic_bp',
        'pulse',
        'consciousness',
        'temperature_c',
      ]) {
        expect(biased.get(feature)!.drifted, feature).toBe(false);
      }
      // Two of eight features drift: not a dataset-level drift.
      expect(spo2.features_drifted).toBe(2);
      expect(spo2.dataset_drifted).toBe(false);

      for (const row of unbiased.values()) {
        expect(row.sufficient, row.feature).toBe(true);
        expect(row.js_distance!, row.feature).toBeLessThan(0.1);
        expect(row.drifted, row.feature).toBe(false);
      }
      expect(unbiased.get('spo2')!.features_drifted).toBe(0);
    },
  );
});

describe('drift on a small cohort', () => {
  // 40 devices × 60 readings: 2,400 records, plenty for minCount, but only 40 patients. Their mix alone moves some
  // feature's JS distance past 0.1; the chance gate for 40 devices (about 0.39 for SpO2) holds those back and still
  // lets a 3-4 point SpO2 bias through (about 0.7).
  function small(seed: number, spo2Bias: number | readonly [number, number]): DriftReportRow[] {
    const readings = syntheticReadings({ seed: `small-${seed}`, patients: 40, readingsPerPatient: 60, spo2Bias });
    const records = scoredRecords(readings, { firmware: '5.13.0-rc2' });
    const partials = batches(records, 500).flatMap((batch) => operator.measure(batch).side.driftHistograms ?? []);
    return driftReports(partials, operator.referenceRows(T0));
  }

  it('reports no drift from patient mix alone, and still the bias', () => {
    const unbiased = SEEDS.flatMap((seed) => small(seed, 0));
    expect(unbiased.every((r) => r.sufficient)).toBe(true);
    expect(unbiased.some((r) => r.js_distance! >= 0.1)).toBe(true); // what a plain 0.1 rule would have flagged
    expect(unbiased.filter((r) => r.drifted)).toEqual([]);
    for (const seed of SEEDS) {
      const spo2 = small(seed, [3, 4]).find((r) => r.feature === 'spo2')!;
      expect(spo2.js_distance!).toBeGreaterThan(spo2.chance_js!);
      expect(spo2.drifted).toBe(true);
    }
  });
});
