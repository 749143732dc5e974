/**
 * The checked-in NEWS2 model against the chart: the ONNX network (run by onnxruntime through the model store) must
 * agree with the plain-TypeScript reference at both sides of every chart boundary and at random points, and the
 * builder must reproduce the checked-in artifact byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { NEWS2_FEATURES, NEWS2_WIDTH } from '../../operators/score/features.ts';
import { NEWS2_CHART, news2Reference, RISK_BANDS } from '../../operators/score/news2-reference.ts';
import type { LoadedModel } from '../../runtime/models.ts';
import {
  buildNews2Model,
  chartTableSha256,
  DEFAULT_MODELS_ROOT,
  news2Manifest,
  sha256Hex,
  writeNews2Model,
} from '../../scripts/build-news2-model.ts';

/** Every parameter normal: the reference scores it 0. */
const NORMAL = [16, 97, 0, 120, 70, 0, 37];

let model: LoadedModel;

beforeAll(async () => {
  model = await new OnnxModelStore().load('news2', '1.0.0');
});

afterAll(async () => {
  await model?.close();
});

interface Scored {
  subscores: number[];
  score: number;
  band: number;
}

async function runModel(rows: readonly (readonly number[])[]): Promise<Scored[]> {
  const data = new Float32Array(rows.length * NEWS2_WIDTH);
  rows.forEach((row, r) => {
    data.set(row, r * NEWS2_WIDTH);
  });
  const out = await model.run({ features: { data, dims: [rows.length, NEWS2_WIDTH] } });
  expect(out['subscores']!.dims).toEqual([rows.length, NEWS2_WIDTH]);
  expect(out['score']!.dims).toEqual([rows.length, 1]);
  expect(out['band']!.dims).toEqual([rows.length, 1]);
  const subscores = out['subscores']!.data as Float32Array;
  const score = out['score']!.data as Float32Array;
  const band = out['band']!.data as Float32Array;
  return rows.map((_, r) => ({
    subscores: Array.from(subscores.subarray(r * NEWS2_WIDTH, (r + 1) * NEWS2_WIDTH)),
    score: score[r]!,
    band: band[r]!,
  }));
}

function withFeature(index: number, value: number): number[] {
  const row = [...NORMAL];
  row[index] = value;
  return row;
}

/** The chart's resolution per parameter: integers, temperature to one decimal. */
const RESOLUTION: Record<(typeof NEWS2_FEATURES)[number], number> = {
  respiratory_rate: 1,
  spo2: 1,
  on_oxygen: 1,
  systolic_bp: 1,
  pulse: 1,
  consciousness_not_alert: 1,
  temperature_c: 0.1,
};

/** Both ends of every chart cell, one resolution step either side, and the midpoints between cells. */
function boundaryValues(feature: (typeof NEWS2_FEATURES)[number]): number[] {
  const step = RESOLUTION[feature];
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const values = new Set<number>();
  for (const c of NEWS2_CHART[feature]) {
    for (const bound of [c.low, c.high]) {
      if (!Number.isFinite(bound)) continue;
      for (const delta of [-step, -step / 2, 0, step / 2, step]) values.add(round(bound + delta));
    }
  }
  return [...values].sort((a, b) => a - b);
}

describe('NEWS2 model vs the chart', () => {
  it('agrees with the reference on both sides of every boundary of every parameter', async () => {
    const rows: number[][] = [];
    NEWS2_FEATURES.forEach((feature, i) => {
      const values = boundaryValues(feature);
      // Coverage: the values reach every cell of the parameter's chart row.
      const reached = new Set(values.map((v) => news2Reference(withFeature(i, v)).subscores[i]));
      expect([...reached].sort()).toEqual([...new Set(NEWS2_CHART[feature].map((c) => c.points))].sort());
      for (const v of values) rows.push(withFeature(i, v));
    });
    const scored = await runModel(rows);
    rows.forEach((row, r) => {
      const expected = news2Reference(row);
      expect({ row, ...scored[r] }).toEqual({ row, ...expected });
    });
  });

  it('scores the chart cells as RCP 2017 prints them', async () => {
    // Spot values straight from the chart (each alone, the rest normal): [feature index, value, points].
    const cases: [number, number, number][] = [
      [0, 8, 3],
      [0, 9, 1],
      [0, 11, 1],
      [0, 12, 0],
      [0, 20, 0],
      [0, 21, 2],
      [0, 24, 2],
      [0, 25, 3],
      [1, 91, 3],
      [1, 92, 2],
      [1, 93, 2],
      [1, 94, 1],
      [1, 95, 1],
      [1, 96, 0],
      [2, 1, 2],
      [3, 90, 3],
      [3, 91, 2],
      [3, 100, 2],
      [3, 101, 1],
      [3, 110, 1],
      [3, 111, 0],
      [3, 219, 0],
      [3, 220, 3],
      [4, 40, 3],
      [4, 41, 1],
      [4, 50, 1],
      [4, 51, 0],
      [4, 90, 0],
      [4, 91, 1],
      [4, 110, 1],
      [4, 111, 2],
      [4, 130, 2],
      [4, 131, 3],
      [5, 1, 3],
      [6, 35.0, 3],
      [6, 35.1, 1],
      [6, 36.0, 1],
      [6, 36.1, 0],
      [6, 38.0, 0],
      [6, 38.1, 1],
      [6, 39.0, 1],
      [6, 39.1, 2],
      // between cells: the more abnormal neighbour
      [0, 20.5, 2],
      [0, 8.5, 3],
      [6, 35.05, 3],
      [6, 36.05, 1],
      [6, 38.05, 1],
    ];
    const scored = await runModel(cases.map(([i, v]) => withFeature(i, v)));
    cases.forEach(([i, v, points], r) => {
      expect({ feature: NEWS2_FEATURES[i], v, points: scored[r]!.subscores[i] }).toEqual({
        feature: NEWS2_FEATURES[i],
        v,
        points,
      });
      expect(scored[r]!.score).toBe(points);
    });
  });

  it('applies the band rules: a single 3 is low-medium, 5-6 medium, 7 or more high', async () => {
    const rows = [
      NORMAL, // 0: low
      [22, 97, 0, 120, 70, 0, 37], // 2: low
      [25, 97, 0, 120, 70, 0, 37], // a single 3 (RR), total 3: low-medium
      [16, 97, 0, 120, 70, 1, 38.5], // a single 3 (consciousness) + 1, total 4: low-medium
      [22, 94, 0, 120, 95, 0, 37], // 2 + 1 + 1 = 4, no 3: low
      [22, 94, 0, 120, 115, 0, 37], // 2 + 1 + 2 = 5: medium
      [25, 97, 0, 120, 70, 0, 39.5], // 3 + 2 = 5 with a single 3: medium, not low-medium
      [22, 93, 1, 120, 70, 0, 37], // 2 + 2 + 2 = 6: medium
      [25, 93, 1, 120, 70, 0, 37], // 3 + 2 + 2 = 7: high
      [8, 91, 1, 90, 40, 1, 35], // everything at its worst: 20, high
    ];
    const scored = await runModel(rows);
    expect(scored.map((s) => s.score)).toEqual([0, 2, 3, 4, 4, 5, 5, 6, 7, 20]);
    expect(scored.map((s) => RISK_BANDS[s.band])).toEqual([
      'low',
      'low',
      'low_medium',
      'low_medium',
      'low',
      'medium',
      'medium',
      'medium',
      'high',
      'high',
    ]);
    rows.forEach((row, r) => {
      expect(scored[r]!.band).toBe(news2Reference(row).band);
    });
  });

  it('agrees with the reference at random points', async () => {
    const anyValue = fc.tuple(
      fc.oneof(fc.integer({ min: 0, max: 60 }), fc.double({ min: 0, max: 60, noNaN: true })),
      fc.integer({ min: 50, max: 100 }),
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 40, max: 300 }),
      fc.integer({ min: 20, max: 250 }),
      fc.integer({ min: 0, max: 1 }),
      fc.oneof(
        fc.integer({ min: 300, max: 440 }).map((t) => t / 10),
        fc.double({ min: 30, max: 44, noNaN: true }),
      ),
    );
    // One model call per property run, with a whole array of rows: fast-check shrinks to the smallest failing set.
    await fc.assert(
      fc.asyncProperty(fc.array(anyValue, { minLength: 1, maxLength: 200 }), async (rows) => {
        const scored = await runModel(rows);
        rows.forEach((row, r) => {
          const expected = news2Reference(row);
          expect(scored[r]).toEqual(expected);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('makes every output of a row NaN when one of its inputs is not finite, leaving the other rows alone', async () => {
    const rows = [withFeature(0, Number.NaN), withFeature(6, Number.POSITIVE_INFINITY), NORMAL];
    const scored = await runModel(rows);
    for (const s of scored.slice(0, 2)) {
      expect(Number.isNaN(s.score)).toBe(true);
      expect(Number.isNaN(s.band)).toBe(true);
      expect(s.subscores.every(Number.isNaN)).toBe(true);
    }
    expect(scored[2]).toEqual({ subscores: [0, 0, 0, 0, 0, 0, 0], score: 0, band: 0 });
  });
});

describe('NEWS2 model build', () => {
  const checkedIn = join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-news2-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reproduces the checked-in artifact byte for byte, and the manifest names its sha256', () => {
    const artifact = readFileSync(join(checkedIn, 'model.onnx'));
    const manifest = JSON.parse(readFileSync(join(checkedIn, 'manifest.json'), 'utf8'));
    const built = buildNews2Model();
    expect(Buffer.from(built).equals(artifact)).toBe(true);
    expect(buildNews2Model()).toEqual(built);
    expect(manifest.artifact).toEqual({ file: 'model.onnx', sha256: sha256Hex(artifact) });
    expect(manifest.features).toEqual([...NEWS2_FEATURES]);
    expect(manifest.build).toMatchObject({ chart: 'RCP NEWS2 2017', opset: '17' });
  });

  it('writes a v2 manifest: every input read from its envelope field, the chart as its training data', () => {
    const manifest = JSON.parse(readFileSync(join(checkedIn, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual(news2Manifest(manifest.artifact.sha256, manifest.reference));
    expect(manifest.manifest_version).toBe(2);
    expect(manifest.input_tensor).toBe('features');
    expect(manifest.inputs.map((i: { name: string }) => i.name)).toEqual(manifest.features);
    expect(manifest.inputs.map((i: { field: string }) => i.field)).toEqual(
      NEWS2_FEATURES.map((f) => `vital_signs.${f === 'consciousness_not_alert' ? 'consciousness' : f}`),
    );
    expect(manifest.inputs[2].encode).toEqual({ false: 0, true: 1 });
    expect(manifest.inputs[5].encode).toEqual({ A: 0, C: 1, V: 1, P: 1, U: 1 });
    expect(manifest.output).toEqual({
      kind: 'news2',
      score_tensor: 'score',
      subscores_tensor: 'subscores',
      band_tensor: 'band',
    });
    expect(manifest.training_data).toMatchObject({ dataset_id: 'rcp-news2-2017-chart', rows: 0 });
    expect(manifest.training_data.sha256).toBe(chartTableSha256());
    expect(manifest.acceptance_criteria).toMatchObject({ calibration: null, subgroup_brier_margin: null });
    expect(manifest.drift).toEqual({ js_threshold: 0.1, dataset_share: 0.5, auto_rollback: false });
  });

  it('writes the same bytes from the command line, in a fresh process', () => {
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build-news2-model.ts', '--out', dir], {
      cwd: join(DEFAULT_MODELS_ROOT, '..'),
      stdio: 'pipe',
    });
    const fresh = readFileSync(join(dir, 'news2', '1.0.0', 'model.onnx'));
    expect(fresh.equals(readFileSync(join(checkedIn, 'model.onnx')))).toBe(true);
  });

  it('keeps a reference already in the manifest when it rebuilds', () => {
    const root = mkdtempSync(join(tmpdir(), 'vigil-news2-ref-'));
    try {
      const first = writeNews2Model(root);
      expect(first.manifest.reference).toBeNull();
      const path = join(first.dir, 'manifest.json');
      const reference = { file: 'reference.json', sha256: 'a'.repeat(64) };
      const edited = { ...JSON.parse(readFileSync(path, 'utf8')), reference };
      writeFileSync(path, JSON.stringify(edited));
      const second = writeNews2Model(root);
      expect(second.manifest.reference).toEqual(reference);
      expect(JSON.parse(readFileSync(path, 'utf8')).reference).toEqual(reference);
      expect(second.sha256).toBe(first.sha256);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
