/**
 * Calibration figures against a plain, independent implementation written here with obvious loops (AUROC over every
 * positive-negative pair, the recalibration slope by gradient ascent to a tolerance, ECE by scanning each bin), on
 * generated data, plus the edge cases where a figure is undefined.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CalibrationRow,
  calibrationMetrics,
  clampedLogit,
  type LabelInput,
  type LabelOutcome,
  labelInferences,
} from './calibration.ts';

// --- the plain implementation ------------------------------------------------------------------------------------

function plainAuroc(rows: readonly CalibrationRow[]): number | null {
  let wins = 0;
  let pairs = 0;
  for (const a of rows) {
    if (a.y !== 1) continue;
    for (const b of rows) {
      if (b.y !== 0) continue;
      pairs++;
      if (a.p > b.p) wins += 1;
      else if (a.p === b.p) wins += 0.5;
    }
  }
  return pairs === 0 ? null : wins / pairs;
}

function plainEce(rows: readonly CalibrationRow[]): number {
  let ece = 0;
  for (let k = 0; k < 15; k++) {
    const lo = k / 15;
    const hi = (k + 1) / 15;
    const inBin = rows.filter((r) => r.p >= lo && (k === 14 ? r.p <= 1 : r.p < hi));
    if (inBin.length === 0) continue;
    let sumP = 0;
    let sumY = 0;
    for (const r of inBin) {
      sumP += r.p;
      sumY += r.y;
    }
    ece += (inBin.length / rows.length) * Math.abs(sumY / inBin.length - sumP / inBin.length);
  }
  return ece;
}

function plainBrier(rows: readonly CalibrationRow[]): number {
  let sum = 0;
  for (const r of rows) sum += (r.p - r.y) * (r.p - r.y);
  return sum / rows.length;
}

/** Logistic regression of y on logit(p) by plain gradient ascent on the mean log-likelihood, to a tolerance. */
function plainRecalibration(rows: readonly CalibrationRow[]): { intercept: number; slope: number } {
  const xs = rows.map((r) => {
    const q = Math.min(1 - 1e-6, Math.max(1e-6, r.p));
    return Math.log(q / (1 - q));
  });
  let maxSquare = 0;
  for (const x of xs) maxSquare = Math.max(maxSquare, x * x);
  const step = 1 / (0.25 * (1 + maxSquare)); // 1 / a bound on the gradient's Lipschitz constant: never overshoots
  let a = 0;
  let b = 1;
  for (let iteration = 0; iteration < 2_000_000; iteration++) {
    let ga = 0;
    let gb = 0;
    for (let i = 0; i < rows.length; i++) {
      const mu = 1 / (1 + Math.exp(-(a + b * xs[i]!)));
      ga += (rows[i]!.y - mu) / rows.length;
      gb += ((rows[i]!.y - mu) * xs[i]!) / rows.length;
    }
    if (Math.abs(ga) < 1e-11 && Math.abs(gb) < 1e-11) break;
    a += step * ga;
    b += step * gb;
  }
  return { intercept: a, slope: b };
}

/** A seeded generator (mulberry32): the same data on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n predictions whose true outcome probability is sigmoid(a + b logit(p)): a miscalibrated model when (a, b) != (0, 1). */
function generated(seed: number, n: number, a: number, b: number): CalibrationRow[] {
  const next = random(seed);
  const rows: CalibrationRow[] = [];
  for (let i = 0; i < n; i++) {
    const p = 0.01 + 0.9 * next() ** 2; // skewed towards low risk, as deterioration is rare
    const truth = 1 / (1 + Math.exp(-(a + b * clampedLogit(p))));
    rows.push({ p, y: next() < truth ? 1 : 0 });
  }
  return rows;
}

// --- the tests -----------------------------------------------------------------------------------------------------

describe('calibrationMetrics against the plain implementation', () => {
  it.each([
    { seed: 1, n: 600, a: 0, b: 1 },
    { seed: 2, n: 800, a: 0.4, b: 0.6 },
    { seed: 3, n: 400, a: -0.5, b: 1.5 },
  ])('generated data seed $seed (true intercept $a, slope $b)', ({ seed, n, a, b }) => {
    const rows = generated(seed, n, a, b);
    const m = calibrationMetrics(rows);
    const events = rows.filter((r) => r.y === 1).length;
    const meanP = rows.reduce((s, r) => s + r.p, 0) / n;
    expect(m.n).toBe(n);
    expect(m.events).toBe(events);
    expect(m.mean_predicted).toBeCloseTo(meanP, 12);
    expect(m.observed_rate).toBeCloseTo(events / n, 12);
    expect(m.citl).toBeCloseTo(events / n - meanP, 12);
    expect(m.brier).toBeCloseTo(plainBrier(rows), 12);
    expect(m.ece15).toBeCloseTo(plainEce(rows), 12);
    expect(m.auroc).toBeCloseTo(plainAuroc(rows)!, 12);
    const plain = plainRecalibration(rows);
    expect(m.slope).toBeCloseTo(plain.slope, 6);
    expect(m.intercept).toBeCloseTo(plain.intercept, 6);
    // The bins add up: every row in exactly one, and ECE is their weighted gap.
    expect(m.bins).toHaveLength(15);
    expect(m.bins.reduce((s, bin) => s + bin.n, 0)).toBe(n);
    expect(m.bins.reduce((s, bin) => s + bin.events, 0)).toBe(events);
  });

  it('recovers a known miscalibration on a large sample (slope below 1 for an overconfident model)', () => {
    const m = calibrationMetrics(generated(7, 40_000, 0.3, 0.6));
    expect(m.slope).toBeGreaterThan(0.5);
    expect(m.slope).toBeLessThan(0.7);
    expect(m.intercept).toBeGreaterThan(0.15);
    expect(m.intercept).toBeLessThan(0.45);
    const calibrated = calibrationMetrics(generated(8, 40_000, 0, 1));
    expect(Math.abs(calibrated.slope! - 1)).toBeLessThan(0.08);
    expect(Math.abs(calibrated.citl!)).toBeLessThan(0.01);
    expect(calibrated.ece15).toBeLessThan(0.02);
  });

  it('AUROC, ECE, Brier and citl equal the plain ones on any rows, ties included (property)', () => {
    const row = fc.record({
      // coarse probabilities: many ties, bin edges included
      p: fc.integer({ min: 0, max: 20 }).map((k) => k / 20),
      y: fc.constantFrom<0 | 1>(0, 1),
    });
    fc.assert(
      fc.property(fc.array(row, { minLength: 1, maxLength: 60 }), (rows) => {
        const m = calibrationMetrics(rows);
        const plain = plainAuroc(rows);
        if (plain === null) expect(m.auroc).toBeNull();
        else expect(m.auroc).toBeCloseTo(plain, 12);
        expect(m.brier).toBeCloseTo(plainBrier(rows), 12);
        expect(m.ece15).toBeCloseTo(plainEce(rows), 12);
        const events = rows.filter((r) => r.y === 1).length;
        expect(m.citl).toBeCloseTo(events / rows.length - rows.reduce((s, r) => s + r.p, 0) / rows.length, 12);
      }),
      { numRuns: 200, seed: 12 },
    );
  });
});

describe('calibrationMetrics edge cases', () => {
  it('no rows: counts of zero, every figure null, 15 empty bins', () => {
    const m = calibrationMetrics([]);
    expect(m).toMatchObject({ n: 0, events: 0, citl: null, slope: null, intercept: null, ece15: null, brier: null });
    expect(m.auroc).toBeNull();
    expect(m.bins).toHaveLength(15);
    expect(m.bins.every((b) => b.n === 0 && b.mean_predicted === null && b.observed_rate === null)).toBe(true);
    expect(m.bins[0]).toMatchObject({ lo: 0, hi: 1 / 15 });
    expect(m.bins[14]).toMatchObject({ lo: 14 / 15, hi: 1 });
  });

  it('one class: citl, Brier and ECE defined; slope, intercept and AUROC null', () => {
    const m = calibrationMetrics([
      { p: 0.2, y: 0 },
      { p: 0.4, y: 0 },
    ]);
    expect(m.citl).toBeCloseTo(-0.3, 12);
    expect(m.brier).toBeCloseTo((0.04 + 0.16) / 2, 12);
    expect(m.ece15).toBeCloseTo(0.3, 12);
    expect(m.slope).toBeNull();
    expect(m.intercept).toBeNull();
    expect(m.auroc).toBeNull();
  });

  it('separated classes: AUROC 1 and no finite slope; a constant p: AUROC 1/2 and no slope', () => {
    const separated = calibrationMetrics([
      { p: 0.1, y: 0 },
      { p: 0.3, y: 0 },
      { p: 0.3, y: 1 }, // a tie at the boundary is still separation (quasi-complete)
      { p: 0.9, y: 1 },
    ]);
    expect(separated.slope).toBeNull();
    expect(separated.auroc).toBe(0.875);
    const constant = calibrationMetrics([
      { p: 0.5, y: 0 },
      { p: 0.5, y: 1 },
      { p: 0.5, y: 1 },
    ]);
    expect(constant.slope).toBeNull();
    expect(constant.auroc).toBe(0.5);
    expect(constant.bins[7]).toMatchObject({ n: 3, events: 2, mean_predicted: 0.5 });
  });

  it('p of exactly 0 and 1: binned at the ends, logits clamped so the slope stays finite', () => {
    const rows: CalibrationRow[] = [
      { p: 0, y: 0 },
      { p: 1, y: 1 },
      { p: 1, y: 0 },
      { p: 0, y: 1 },
      { p: 0.5, y: 1 },
    ];
    const m = calibrationMetrics(rows);
    expect(m.bins[0]?.n).toBe(2);
    expect(m.bins[14]?.n).toBe(2);
    expect(Number.isFinite(m.slope)).toBe(true);
    expect(m.slope).toBeCloseTo(plainRecalibration(rows).slope, 6);
  });

  it('refuses scores that are not probabilities (a NEWS2 score of 7)', () => {
    expect(() => calibrationMetrics([{ p: 7, y: 1 }])).toThrow(/outside \[0, 1\]/);
    expect(() => calibrationMetrics([{ p: Number.NaN, y: 1 }])).toThrow(/outside \[0, 1\]/);
  });
});

describe('labelInferences', () => {
  const HOUR = 3_600_000;
  const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
  const inference = (n: number, patient: string, observedAt: number, score = 0.2) => ({
    event_id: `e${n}`,
    patient_ref: patient,
    observed_at: observedAt,
    score,
    site_id: 'site-01',
  });

  it('labels by patient, kind and the window (observed_at, observed_at + horizon]; keeps extra fields', () => {
    const inferences = [
      inference(1, 'pA', T0), // icu at T0 + 5h: positive
      inference(2, 'pA', T0 + 5 * HOUR), // the outcome at the same instant: not after the observation
      inference(3, 'pA', T0 - 19 * HOUR), // outcome exactly at its window's end: positive
      inference(4, 'pA', T0 - 20 * HOUR), // one hour too early
      inference(5, 'pB', T0), // only an escalation, a kind not asked for
      inference(6, 'pC', T0), // nobody's outcome
    ];
    const outcomes: LabelOutcome[] = [
      { patient_ref: 'pA', kind: 'icu_transfer', occurred_at: T0 + 5 * HOUR },
      { patient_ref: 'pB', kind: 'escalation', occurred_at: T0 + HOUR },
    ];
    const rows = labelInferences(inferences, outcomes, 24 * HOUR, ['icu_transfer'], T0 + 100 * HOUR);
    expect(rows.map((r) => [r.event_id, r.y])).toEqual([
      ['e1', 1],
      ['e2', 0],
      ['e3', 1],
      ['e4', 0],
      ['e5', 0],
      ['e6', 0],
    ]);
    expect(rows[0]).toMatchObject({ p: 0.2, site_id: 'site-01' });
    const withEscalation = labelInferences(inferences, outcomes, 24 * HOUR, ['escalation', 'icu_transfer'], T0 + 1e9);
    expect(withEscalation.find((r) => r.event_id === 'e5')?.y).toBe(1);
  });

  it('leaves out inferences whose window has not closed by now, positives included', () => {
    const inferences = [inference(1, 'pA', T0), inference(2, 'pA', T0 + 2 * HOUR)];
    const outcomes = [{ patient_ref: 'pA', kind: 'icu_transfer', occurred_at: T0 + 3 * HOUR }];
    // Now = T0 + 24h: the first window (T0, T0 + 24h] has just closed, the second not yet, though its outcome is in.
    const rows = labelInferences(inferences, outcomes, 24 * HOUR, ['icu_transfer'], T0 + 24 * HOUR);
    expect(rows.map((r) => [r.event_id, r.y])).toEqual([['e1', 1]]);
    expect(() => labelInferences(inferences, outcomes, 0, ['icu_transfer'], T0)).toThrow(/horizon/);
  });

  it('equals a plain scan of every outcome for every inference on generated data', () => {
    const next = random(99);
    const patients = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const kinds = ['escalation', 'icu_transfer', 'confirmed_deterioration'];
    const inferences: LabelInput[] = Array.from({ length: 500 }, (_, i) => ({
      event_id: `e${i}`,
      patient_ref: patients[Math.floor(next() * patients.length)]!,
      observed_at: T0 + Math.floor(next() * 72) * HOUR,
      score: next(),
    }));
    const outcomes: LabelOutcome[] = Array.from({ length: 40 }, () => ({
      patient_ref: patients[Math.floor(next() * patients.length)]!,
      kind: kinds[Math.floor(next() * kinds.length)]!,
      occurred_at: T0 + Math.floor(next() * 96) * HOUR,
    }));
    const horizon = 12 * HOUR;
    const now = T0 + 60 * HOUR;
    const asked = ['icu_transfer', 'confirmed_deterioration'];
    const plain: [string, number][] = [];
    for (const inf of inferences) {
      if (inf.observed_at + horizon > now) continue;
      let y = 0;
      for (const o of outcomes) {
        if (
          o.patient_ref === inf.patient_ref &&
          asked.includes(o.kind) &&
          o.occurred_at > inf.observed_at &&
          o.occurred_at <= inf.observed_at + horizon
        ) {
          y = 1;
        }
      }
      plain.push([inf.event_id, y]);
    }
    const rows = labelInferences(inferences, outcomes, horizon, asked, now);
    expect(rows.map((r) => [r.event_id, r.y])).toEqual(plain);
    expect(plain.filter(([, y]) => y === 1).length).toBeGreaterThan(10); // the data exercise both labels
    expect(plain.length).toBeLessThan(inferences.length); // and the open-window rule
  });
});
