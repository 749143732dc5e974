import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  chanceJsDistance,
  chiSquareQuantile,
  DEFAULT_THRESHOLDS,
  DEVICE_SKETCH_BUCKETS,
  datasetDrift,
  deviceBucket,
  estimateDevices,
  featureDrift,
  jsDistance,
  PSI_EPSILON,
  proportions,
  psi,
  psiLevel,
  referenceDegreesOfFreedom,
} from './metrics.ts';

describe('jsDistance (base 2)', () => {
  it('matches a hand computation', () => {
    // p = (1/2, 1/2), q = (1/4, 3/4), m = (3/8, 5/8)
    // KL(p||m) = 1/2·log2(4/3) + 1/2·log2(4/5) = 0.0465547...
    // KL(q||m) = 1/4·log2(2/3) + 3/4·log2(6/5) = 0.0510352...
    // JSD = (0.0465547 + 0.0510352) / 2 = 0.0487950, distance = sqrt = 0.2208958
    const byHand = Math.sqrt(
      0.5 * (0.5 * Math.log2(4 / 3) + 0.5 * Math.log2(4 / 5) + 0.25 * Math.log2(2 / 3) + 0.75 * Math.log2(6 / 5)),
    );
    expect(jsDistance([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(byHand, 14);
    expect(jsDistance([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.2208958, 7);
  });

  it('is 0 for identical and 1 for disjoint distributions, with empty bins needing no epsilon', () => {
    expect(jsDistance([0.2, 0.3, 0.5, 0], [0.2, 0.3, 0.5, 0])).toBe(0);
    expect(jsDistance([1, 0, 0], [0, 0.5, 0.5])).toBe(1);
    // One shared bin: p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4)
    // KL(p||m) = log2(4/3); KL(q||m) = 1/2·log2(2/3) + 1/2·log2(2); JSD = half their sum.
    const byHand = Math.sqrt(0.5 * (Math.log2(4 / 3) + 0.5 * Math.log2(2 / 3) + 0.5));
    expect(jsDistance([1, 0], [0.5, 0.5])).toBeCloseTo(byHand, 14);
  });

  it('refuses histograms of different lengths', () => {
    expect(() => jsDistance([1], [0.5, 0.5])).toThrow(/differ in length/);
  });

  it('is symmetric and within [0, 1] for any pair of distributions', () => {
    const distribution = fc
      .array(fc.integer({ min: 0, max: 1000 }), { minLength: 6, maxLength: 6 })
      .filter((c) => c.some((x) => x > 0))
      .map((c) => Array.from(proportions(c)));
    fc.assert(
      fc.property(distribution, distribution, (p, q) => {
        const d = jsDistance(p, q);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(1);
        expect(jsDistance(q, p)).toBeCloseTo(d, 12);
        expect(jsDistance(p, p)).toBe(0);
      }),
    );
  });
});

describe('psi', () => {
  it('matches a hand computation', () => {
    // (1/2 − 1/4)·ln(2) + (1/2 − 3/4)·ln(2/3) = 0.25·0.6931472 + 0.25·0.4054651 = 0.2746531
    expect(psi([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.25 * Math.log(2) - 0.25 * Math.log(2 / 3), 14);
    expect(psi([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.2746531, 7);
  });

  it('floors empty bins at epsilon = 1e-4 on both sides', () => {
    expect(PSI_EPSILON).toBe(1e-4);
    // actual (0.9, 0.1, 0), expected (0.8, 0, 0.2); empty bins become 1e-4:
    //   0.1·ln(0.9/0.8) + (0.1 − 1e-4)·ln(0.1/1e-4) + (1e-4 − 0.2)·ln(1e-4/0.2)
    // = 0.0117783 + 0.6900848 + 1.5194203 = 2.2212834
    const byHand =
      0.1 * Math.log(0.9 / 0.8) + (0.1 - 1e-4) * Math.log(0.1 / 1e-4) + (1e-4 - 0.2) * Math.log(1e-4 / 0.2);
    expect(psi([0.9, 0.1, 0], [0.8, 0, 0.2])).toBeCloseTo(byHand, 14);
    expect(psi([0.9, 0.1, 0], [0.8, 0, 0.2])).toBeCloseTo(2.2212834, 6);
    expect(psi([0.3, 0.7, 0], [0.3, 0.7, 0])).toBe(0);
  });

  it('grades warn at 0.1 and alert at 0.25', () => {
    expect(psiLevel(0.0999, DEFAULT_THRESHOLDS)).toBe('ok');
    expect(psiLevel(0.1, DEFAULT_THRESHOLDS)).toBe('warn');
    expect(psiLevel(0.2499, DEFAULT_THRESHOLDS)).toBe('warn');
    expect(psiLevel(0.25, DEFAULT_THRESHOLDS)).toBe('alert');
    expect(psiLevel(null, DEFAULT_THRESHOLDS)).toBe('ok');
  });
});

describe('featureDrift', () => {
  const reference = [0.25, 0.5, 0.25, 0];

  it('computes rates and statistics from counts', () => {
    const drift = featureDrift({ counts: [300, 600, 300, 0], missing: 300, outOfRange: 0 }, reference, {
      ...DEFAULT_THRESHOLDS,
      minCount: 1000,
    });
    expect(drift).toMatchObject({
      n: 1200,
      missing: 300,
      missingRate: 300 / 1500,
      outOfRangeRate: 0,
      jsDistance: 0,
      psi: 0,
      psiLevel: 'ok',
      sufficient: true,
      drifted: false,
    });
  });

  it('calls drift at JS >= threshold only with enough values', () => {
    // All mass in the last bin: p = (0, 0, 0, 1) against q = (1/4, 1/2, 1/4, 0): disjoint, distance 1.
    const big = featureDrift({ counts: [0, 0, 0, 1000], missing: 0, outOfRange: 1000 }, reference);
    expect(big.jsDistance).toBe(1);
    expect(big.outOfRangeRate).toBe(1);
    expect(big.drifted).toBe(true);
    expect(big.psiLevel).toBe('alert');
    const small = featureDrift({ counts: [0, 0, 0, 999], missing: 0, outOfRange: 999 }, reference);
    expect(small.jsDistance).toBe(1);
    expect(small.sufficient).toBe(false);
    expect(small.drifted).toBe(false);
  });

  it('has no statistics when every value is missing', () => {
    const drift = featureDrift({ counts: [0, 0, 0, 0], missing: 40, outOfRange: 0 }, reference);
    expect(drift).toMatchObject({ n: 0, missingRate: 1, jsDistance: null, psi: null, drifted: false });
  });
});

describe('datasetDrift', () => {
  const flags = (drifted: number, total: number) => Array.from({ length: total }, (_, i) => ({ drifted: i < drifted }));

  it('drifts when at least half of the features drift', () => {
    expect(datasetDrift(flags(4, 8))).toEqual({ featuresDrifted: 4, featuresTotal: 8, drifted: true });
    expect(datasetDrift(flags(3, 8))).toEqual({ featuresDrifted: 3, featuresTotal: 8, drifted: false });
    expect(datasetDrift([])).toEqual({ featuresDrifted: 0, featuresTotal: 0, drifted: false });
    expect(datasetDrift(flags(3, 8), { datasetShare: 0.375 }).drifted).toBe(true);
  });
});

describe('device sketch', () => {
  it('hashes a device id to a fixed bucket (FNV-1a, 32 bit, then the murmur3 finaliser)', () => {
    // FNV-1a of "a": 0x811c9dc5 ^ 0x61 = 0x811c9da4; × 0x01000193 mod 2^32 = 0xe40c292c. Finalised:
    let h = 0xe40c292c;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    expect(deviceBucket('a')).toBe((h >>> 0) % DEVICE_SKETCH_BUCKETS);
    expect(deviceBucket('hah-wbl-000001')).toBe(deviceBucket('hah-wbl-000001'));
    // 256 random devices leave about 256/e = 94 buckets empty; a hash with structure leaves far fewer or far more.
    const buckets = new Set(
      Array.from({ length: 256 }, (_, i) => deviceBucket(`hah-wbl-${String(i).padStart(6, '0')}`)),
    );
    expect(DEVICE_SKETCH_BUCKETS - buckets.size).toBeGreaterThan(70);
    expect(DEVICE_SKETCH_BUCKETS - buckets.size).toBeLessThan(120);
  });

  it('estimates distinct devices by linear counting, however often each device reports', () => {
    // 64 of 256 buckets filled: 256 · ln(256 / 192) = 73.6.
    const sketch = new Array<number>(256).fill(0);
    for (let i = 0; i < 64; i++) sketch[i * 4] = 1 + i;
    expect(estimateDevices(sketch)).toBeCloseTo(256 * Math.log(256 / 192), 12);
    expect(estimateDevices(new Array<number>(256).fill(0))).toBe(0);
    expect(estimateDevices(new Array<number>(256).fill(3))).toBeCloseTo(256 * Math.log(256), 12);
    for (const devices of [30, 120, 400]) {
      const counts = new Array<number>(DEVICE_SKETCH_BUCKETS).fill(0);
      for (let d = 0; d < devices; d++) counts[deviceBucket(`hah-mon-${d}`)]! += 60;
      expect(Math.abs(estimateDevices(counts) - devices) / devices).toBeLessThan(0.15);
    }
  });
});

describe('chance gate', () => {
  it('approximates χ² quantiles (Wilson–Hilferty) within a few percent of the tables', () => {
    // Upper 0.1% points (z = 3.09): 10.828 (1 df), 32.909 (12 df), 59.703 (30 df).
    expect(chiSquareQuantile(1, 3.09) / 10.828).toBeCloseTo(1, 1);
    expect(chiSquareQuantile(12, 3.09) / 32.909).toBeCloseTo(1, 2);
    expect(chiSquareQuantile(30, 3.09) / 59.703).toBeCloseTo(1, 2);
    // By hand, 1 df: (1 − 2/9 + 3.09·sqrt(2/9))³ = 2.234419³ = 11.1556.
    expect(chiSquareQuantile(1, 3.09)).toBeCloseTo(11.1556, 4);
  });

  it('counts degrees of freedom over the non-empty reference bins', () => {
    expect(referenceDegreesOfFreedom([0, 0.2, 0.3, 0.5, 0])).toBe(2);
    expect(referenceDegreesOfFreedom([1, 0])).toBe(1);
  });

  it('gives the JS distance chance rarely exceeds, shrinking with the square root of the devices', () => {
    // 12 df, 300 devices: sqrt(33.0677 / (8 · 300 · ln 2)) = 0.14099
    expect(chanceJsDistance(12, 300, 3.09)).toBeCloseTo(Math.sqrt(chiSquareQuantile(12, 3.09) / (2400 * Math.LN2)), 12);
    expect(chanceJsDistance(12, 300, 3.09)).toBeCloseTo(0.14099, 5);
    expect(chanceJsDistance(12, 1200, 3.09)).toBeCloseTo(chanceJsDistance(12, 300, 3.09) / 2, 12);
  });
});

describe('featureDrift with a device count', () => {
  // Reference (1/4, 1/2, 1/4, 0): 3 non-empty bins, 2 degrees of freedom. Window (0.45, 0.3, 0.25, 0): JS = 0.1978.
  // χ² quantile (2 df, z 3.09) = 14.1312, so the gate is sqrt(14.1312 / (8 · D · ln 2)).
  const reference = [0.25, 0.5, 0.25, 0];
  const window = { counts: [450, 300, 250, 0], missing: 0, outOfRange: 0 };

  it('calls drift only when the distance also clears the chance gate for that many devices', () => {
    expect(jsDistance([0.45, 0.3, 0.25, 0], reference)).toBeCloseTo(0.1978, 4);
    // 1000 devices: gate 0.0505 < 0.1978: drifted.
    const many = featureDrift(window, reference, DEFAULT_THRESHOLDS, 1000);
    expect(many.chanceJs).toBeCloseTo(Math.sqrt(14.1312 / (8000 * Math.LN2)), 4);
    expect(many.drifted).toBe(true);
    // 20 devices: gate 0.357 > 0.1978: patient mix could explain it.
    const few = featureDrift(window, reference, DEFAULT_THRESHOLDS, 20);
    expect(few.chanceJs).toBeCloseTo(Math.sqrt(14.1312 / (160 * Math.LN2)), 4);
    expect(few.drifted).toBe(false);
    // The gate is off without a device count, or with noiseZ 0.
    expect(featureDrift(window, reference, DEFAULT_THRESHOLDS, 0)).toMatchObject({ chanceJs: null, drifted: true });
    expect(featureDrift(window, reference, { ...DEFAULT_THRESHOLDS, noiseZ: 0 }, 20)).toMatchObject({
      chanceJs: null,
      drifted: true,
    });
  });
});
