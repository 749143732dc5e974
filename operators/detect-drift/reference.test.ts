import { describe, expect, it } from 'vitest';
import { VigilError } from '../../runtime/errors.ts';
import type { VitalSigns } from '../../schemas/types.ts';
import { referenceSamples, syntheticReadings } from '../../test/fixtures/detect-drift.ts';
import { FEATURES } from './features.ts';
import { PSI_EPSILON } from './metrics.ts';
import {
  binOf,
  buildReference,
  compileReference,
  type DriftReference,
  OTHER_LABEL,
  parseReference,
  type ReferenceSample,
  referenceRows,
  serialiseReference,
} from './reference.ts';

const OPTIONS = {
  model: { name: 'news2', version: '1.0.0' },
  generator: { script: 'test' },
  sample: { seed: 'ref', patients: 400 },
};

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

describe('buildReference', () => {
  const samples = referenceSamples(syntheticReadings({ seed: 'ref', patients: 400, readingsPerPatient: 10 }));
  const reference = buildReference(samples, OPTIONS);

  it('is deterministic: the same sample gives byte-identical JSON', () => {
    const again = buildReference(
      referenceSamples(syntheticReadings({ seed: 'ref', patients: 400, readingsPerPatient: 10 })),
      OPTIONS,
    );
    expect(serialiseReference(again)).toBe(serialiseReference(reference));
    expect(parseReference(serialiseReference(reference))).toEqual(reference);
  });

  it('covers every feature, with the kinds the design calls for', () => {
    expect(reference.features.map((f) => f.name)).toEqual([...FEATURES]);
    const kinds = Object.fromEntries(reference.features.map((f) => [f.name, f.kind]));
    expect(kinds).toEqual({
      respiratory_rate: 'continuous',
      spo2: 'categorical',
      on_oxygen: 'categorical',
      systolic_bp: 'continuous',
      pulse: 'continuous',
      consciousness: 'categorical',
      temperature_c: 'continuous',
      score: 'categorical', // NEWS2 aggregate: few integer values
    });
  });

  it('holds consistent counts and proportions, with empty outer bins for continuous features', () => {
    for (const feature of reference.features) {
      expect(feature.counts.reduce((a, b) => a + b, 0)).toBe(feature.n);
      expect(feature.proportions.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      expect(feature.n + feature.missing).toBe(samples.length);
      if (feature.kind === 'continuous') {
        expect(feature.labels).toHaveLength(feature.edges.length + 1);
        expect(feature.counts[0]).toBe(0); // edges[0] is the reference minimum
        expect(feature.counts.at(-1)).toBe(0); // edges[k] is the maximum
        expect(feature.edges.length).toBeGreaterThanOrEqual(3);
        expect(feature.edges.length).toBeLessThanOrEqual(11); // 10 quantile bins at most
      } else {
        expect(feature.labels).toEqual([...feature.categories, OTHER_LABEL]);
      }
    }
  });

  it('sorts numeric categories numerically and folds rare values into "other"', () => {
    const rare: ReferenceSample[] = [];
    for (let i = 0; i < 1000; i++) rare.push({ vitals: vitals({ spo2: i % 2 === 0 ? 100 : 96 + (i % 3) }), score: 0 });
    rare.push({ vitals: vitals({ spo2: 88 }), score: 0 }); // 1 in 1001: under the 0.1% share
    const built = buildReference(rare, { ...OPTIONS, features: ['spo2'] });
    const spo2 = built.features[0]!;
    expect(spo2.categories).toEqual(['96', '97', '98', '100']);
    expect(spo2.counts.at(-1)).toBe(1);
  });

  it('bins a feature the reference saw at one value only by value', () => {
    const constant = Array.from({ length: 50 }, () => ({ vitals: vitals({ pulse: 70 }), score: 0 }));
    const built = buildReference(constant, { ...OPTIONS, features: ['pulse'] });
    expect(built.features[0]).toMatchObject({ kind: 'categorical', categories: ['70'], counts: [50, 0] });
  });

  it('refuses a feature with no value at all', () => {
    const empty = [{ vitals: vitals({ temperature_c: null }), score: null }];
    expect(() => buildReference(empty, { ...OPTIONS, features: ['temperature_c'] })).toThrow(/no value/);
  });
});

describe('binOf', () => {
  const reference: DriftReference = {
    format: 'vigil-drift-reference/1',
    model: { name: 'news2', version: '1.0.0' },
    generator: {},
    sample: {},
    binning: { continuousBins: 3, minCategoryShare: 0, quantileRule: 'test' },
    features: [
      {
        name: 'pulse',
        kind: 'continuous',
        valueType: 'number',
        edges: [50, 70, 90],
        categories: [],
        labels: ['<50', '[50,70)', '[70,90]', '>90'],
        counts: [0, 1, 1, 0],
        proportions: [0, 0.5, 0.5, 0],
        n: 2,
        missing: 0,
      },
      {
        name: 'on_oxygen',
        kind: 'categorical',
        valueType: 'boolean',
        edges: [],
        categories: ['false', 'true'],
        labels: ['false', 'true', 'other'],
        counts: [1, 1, 0],
        proportions: [0.5, 0.5, 0],
        n: 2,
        missing: 0,
      },
    ],
  };
  const [hr, oxygen] = compileReference(reference, ['pulse', 'on_oxygen']);

  it('puts edges in the bin they open, and the top edge in the last inner bin', () => {
    expect([49.9, 50, 69.9, 70, 89.9, 90, 90.1].map((v) => binOf(hr!, v))).toEqual([0, 1, 1, 2, 2, 2, 3]);
    expect(binOf(hr!, Number.NaN)).toBe(-1);
    expect(binOf(hr!, Number.POSITIVE_INFINITY)).toBe(-1);
  });

  it('looks categories up by typed value', () => {
    expect(binOf(oxygen!, false)).toBe(0);
    expect(binOf(oxygen!, true)).toBe(1);
    expect(binOf(oxygen!, 'true')).toBe(2); // a string is not the boolean: other
  });

  it('fails to compile a feature the reference lacks, naming it', () => {
    expect(() => compileReference(reference, ['spo2'])).toThrow(/no histogram for spo2/);
  });
});

describe('parseReference', () => {
  const good = buildReference(
    referenceSamples(syntheticReadings({ seed: 'p', patients: 50, readingsPerPatient: 4 })),
    OPTIONS,
  );

  it('rejects text that is not JSON, not the format, or inconsistent, with CONFIG_INVALID', () => {
    const codeOf = (text: string) => {
      try {
        parseReference(text);
        return 'parsed';
      } catch (error) {
        return error instanceof VigilError ? error.code : 'other';
      }
    };
    expect(codeOf('{')).toBe('CONFIG_INVALID');
    expect(codeOf(JSON.stringify({ ...good, format: 'something-else' }))).toBe('CONFIG_INVALID');
    const uneven = structuredClone(good);
    uneven.features[0]!.counts.pop();
    expect(codeOf(JSON.stringify(uneven))).toBe('CONFIG_INVALID');
    const unsorted = structuredClone(good);
    const continuous = unsorted.features.find((f) => f.kind === 'continuous')!;
    continuous.edges.reverse();
    expect(codeOf(JSON.stringify(unsorted))).toBe('CONFIG_INVALID');
    expect(codeOf(serialiseReference(good))).toBe('parsed');
  });
});

describe('referenceRows', () => {
  it('gives one drift_reference_bins row per feature with the policy attached', () => {
    const reference = buildReference(
      referenceSamples(
        syntheticReadings({ seed: 'rows', patients: 40, readingsPerPatient: 5, missingTemperature: 0.1 }),
      ),
      OPTIONS,
    );
    const rows = referenceRows(reference, {
      sha256: 'ab'.repeat(32),
      loadedAt: 1234,
      features: ['spo2', 'temperature_c'],
    });
    expect(rows.map((r) => r.feature)).toEqual(['spo2', 'temperature_c']);
    const temperature = reference.features.find((f) => f.name === 'temperature_c')!;
    expect(rows[1]).toEqual({
      model_name: 'news2',
      model_version: '1.0.0',
      reference_sha256: 'ab'.repeat(32),
      feature: 'temperature_c',
      kind: 'continuous',
      bin_labels: temperature.labels,
      bin_edges: temperature.edges,
      ref_counts: temperature.counts,
      ref_proportions: temperature.proportions,
      ref_n: temperature.n,
      ref_missing_rate: temperature.missing / 200,
      epsilon: PSI_EPSILON,
      js_threshold: 0.1,
      psi_warn: 0.1,
      psi_alert: 0.25,
      min_count: 1000,
      noise_z: 3.09,
      dataset_share: 0.5,
      allowed_lateness_ms: 3_600_000,
      loaded_at: 1234,
    });
    expect(temperature.missing).toBeGreaterThan(0);
  });
});
