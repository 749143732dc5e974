/**
 * Builds the reference model `models/news2/1.0.0/model.onnx`: the NEWS2 chart (RCP 2017) as a small fixed-weight
 * network, written byte for byte the same on every run (no timestamps, fixed producer info), plus its manifest.
 *
 *   npm run models:build                 # writes models/news2/1.0.0/{model.onnx,manifest.json}
 *   npm run models:build -- --out DIR    # writes DIR/news2/1.0.0/... instead (the reproducibility test uses this)
 *
 * The graph (float32, opset 17):
 *   features [N,7] --MatMul(select [7,E])--> signed [N,E] --Greater(edges [E])--> Cast --> steps [N,E]
 *   steps --MatMul(deltas [E,7])--> + bias [7] + guard --> subscores [N,7]
 *   subscores --ReduceSum--> score [N,1];  ReduceMax, GreaterOrEqual, Where --> band [N,1]
 * Each column of `select` picks one parameter with sign +1 (an edge above the normal range: x > t) or -1 (an edge
 * below it: -x > -t, i.e. x < t), so one Greater covers both directions. `guard` is the row sum of features * 0: zero
 * for finite inputs and NaN otherwise, so a non-finite input makes every output of its row NaN instead of scoring as
 * normal (comparisons with NaN are false).
 *
 * The ONNX protobuf is written with protobufjs by scripts/onnx-proto.ts (shared with the other model builders).
 * The manifest (v2, runtime/models.ts) is written whole, except a `reference` already present (the drift baseline,
 * written by scripts/build-drift-reference.ts), which is kept.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NEWS2_FEATURES, NEWS2_WIDTH, type News2Feature } from '../operators/score/features.ts';
import type { ModelInput, ModelManifest } from '../runtime/models.ts';
import {
  ATTR_INT,
  ATTR_INTS,
  encodeModel,
  FLOAT,
  float32Tensor,
  IR_VERSION,
  int64Tensor,
  node,
  OPSET,
  sha256Hex,
  valueInfo,
} from './onnx-proto.ts';

export { IR_VERSION, OPSET, sha256Hex };

export const MODEL_NAME = 'news2';
export const MODEL_VERSION = '1.0.0';
/** Bump when this script changes what it writes; it is part of the artifact, never a date or a package version. */
const BUILDER_VERSION = '1.0.0';
const SCRIPT = 'scripts/build-news2-model.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_MODELS_ROOT = join(repoRoot, 'models');

export const DESCRIPTION =
  'NEWS2 (Royal College of Physicians, 2017) aggregate score as a fixed-weight ONNX network. ' +
  'Input `features` float32 [N,7]: respiratory_rate (/min), spo2 (%, scale 1 only: scale 2 for confirmed hypercapnic ' +
  'respiratory failure is out of scope), on_oxygen (0 air, 1 supplemental oxygen), systolic_bp (mmHg), pulse ' +
  '(/min), consciousness_not_alert (0 alert, 1 new confusion, V, P or U), temperature_c. ' +
  'Outputs float32: `subscores` [N,7] in feature order, `score` [N,1] (their sum), `band` [N,1] ' +
  '(0 low, 1 low-medium: a single parameter scoring 3 with total < 5, 2 medium: 5-6, 3 high: >= 7). ' +
  'Boundary rule: chart cells are inclusive at the chart resolution (integers; temperature one decimal); a value ' +
  'between two adjacent cells (respiratory rate 20.5, temperature 35.05) scores as the more abnormal of the two; ' +
  'comparisons are made on the float32 value fed to the model. A non-finite input makes every output of its row NaN.';

/**
 * One threshold edge: `below` adds `points` when x < at, `above` adds them when x > at. The edges sit at the chart
 * cells' own bounds, which gives the more-abnormal rule for values between cells.
 */
interface Edge {
  readonly feature: News2Feature;
  readonly side: 'below' | 'above';
  readonly at: number;
  readonly points: number;
}

const below = (feature: News2Feature, at: number, points: number): Edge => ({ feature, side: 'below', at, points });
const above = (feature: News2Feature, at: number, points: number): Edge => ({ feature, side: 'above', at, points });

export const EDGES: readonly Edge[] = [
  // respiratory rate: <=8: 3 | 9-11: 1 | 12-20: 0 | 21-24: 2 | >=25: 3
  below('respiratory_rate', 12, 1),
  below('respiratory_rate', 9, 2),
  above('respiratory_rate', 20, 2),
  above('respiratory_rate', 24, 1),
  // SpO2 scale 1: <=91: 3 | 92-93: 2 | 94-95: 1 | >=96: 0
  below('spo2', 96, 1),
  below('spo2', 94, 1),
  below('spo2', 92, 1),
  // air: 0 | oxygen: 2
  above('on_oxygen', 0, 2),
  // systolic BP: <=90: 3 | 91-100: 2 | 101-110: 1 | 111-219: 0 | >=220: 3
  below('systolic_bp', 111, 1),
  below('systolic_bp', 101, 1),
  below('systolic_bp', 91, 1),
  above('systolic_bp', 219, 3),
  // pulse: <=40: 3 | 41-50: 1 | 51-90: 0 | 91-110: 1 | 111-130: 2 | >=131: 3
  below('pulse', 51, 1),
  below('pulse', 41, 2),
  above('pulse', 90, 1),
  above('pulse', 110, 1),
  above('pulse', 130, 1),
  // alert: 0 | new confusion, V, P or U: 3
  above('consciousness_not_alert', 0, 3),
  // temperature: <=35.0: 3 | 35.1-36.0: 1 | 36.1-38.0: 0 | 38.1-39.0: 1 | >=39.1: 2
  below('temperature_c', 36.1, 1),
  below('temperature_c', 35.1, 2),
  above('temperature_c', 38.0, 1),
  above('temperature_c', 39.0, 1),
];

/** The weights, from EDGES: the selection matrix [7,E], the signed edges [E] and the step deltas [E,7]. */
export function news2Weights(): {
  select: Float32Array;
  edges: Float32Array;
  deltas: Float32Array;
  bias: Float32Array;
} {
  const e = EDGES.length;
  const select = new Float32Array(NEWS2_WIDTH * e);
  const edges = new Float32Array(e);
  const deltas = new Float32Array(e * NEWS2_WIDTH);
  EDGES.forEach((edge, j) => {
    const f = NEWS2_FEATURES.indexOf(edge.feature);
    const sign = edge.side === 'above' ? 1 : -1;
    select[f * e + j] = sign;
    edges[j] = sign * edge.at;
    deltas[j * NEWS2_WIDTH + f] = edge.points;
  });
  // Every parameter scores 0 in its normal range: the bias row is zero, kept so the network reads as a linear layer.
  return { select, edges, deltas, bias: new Float32Array(NEWS2_WIDTH) };
}

/** The model file's bytes: the same on every call and every machine. */
export function buildNews2Model(): Uint8Array {
  const e = EDGES.length;
  const w = news2Weights();
  const scalar = (name: string, v: number) => float32Tensor(name, [], [v]);

  const graph = {
    name: 'news2',
    doc_string: DESCRIPTION,
    input: [valueInfo('features', ['N', NEWS2_WIDTH], `float32 features in order: ${NEWS2_FEATURES.join(', ')}`)],
    output: [
      valueInfo('subscores', ['N', NEWS2_WIDTH], 'NEWS2 points per parameter, in feature order'),
      valueInfo('score', ['N', 1], 'NEWS2 aggregate score'),
      valueInfo('band', ['N', 1], '0 low, 1 low-medium, 2 medium, 3 high'),
    ],
    initializer: [
      float32Tensor('select', [NEWS2_WIDTH, e], w.select),
      float32Tensor('edges', [e], w.edges),
      float32Tensor('deltas', [e, NEWS2_WIDTH], w.deltas),
      float32Tensor('bias', [NEWS2_WIDTH], w.bias),
      scalar('zero', 0),
      scalar('one', 1),
      scalar('two', 2),
      scalar('three', 3),
      scalar('five', 5),
      scalar('seven', 7),
      int64Tensor('axis1', [1], [1]),
    ],
    node: [
      // guard: 0 for a finite row, NaN otherwise
      node('Mul', ['features', 'zero'], ['features_times_zero']),
      node('ReduceSum', ['features_times_zero', 'axis1'], ['guard'], [{ name: 'keepdims', type: ATTR_INT, i: 1 }]),
      // threshold steps
      node('MatMul', ['features', 'select'], ['signed']),
      node('Greater', ['signed', 'edges'], ['crossed']),
      node('Cast', ['crossed'], ['steps'], [{ name: 'to', type: ATTR_INT, i: FLOAT }]),
      node('MatMul', ['steps', 'deltas'], ['points']),
      node('Add', ['points', 'bias'], ['biased']),
      node('Add', ['biased', 'guard'], ['subscores']),
      node('ReduceSum', ['subscores', 'axis1'], ['score'], [{ name: 'keepdims', type: ATTR_INT, i: 1 }]),
      // band: high (>= 7), else medium (>= 5), else low-medium (any single 3), else low
      node(
        'ReduceMax',
        ['subscores'],
        ['max_subscore'],
        [
          { name: 'axes', type: ATTR_INTS, ints: [1] },
          { name: 'keepdims', type: ATTR_INT, i: 1 },
        ],
      ),
      node('GreaterOrEqual', ['score', 'seven'], ['is_high']),
      node('GreaterOrEqual', ['score', 'five'], ['is_medium']),
      node('GreaterOrEqual', ['max_subscore', 'three'], ['has_single_3']),
      node('Where', ['has_single_3', 'one', 'zero'], ['band_low_medium']),
      node('Where', ['is_medium', 'two', 'band_low_medium'], ['band_medium']),
      node('Where', ['is_high', 'three', 'band_medium'], ['band_high']),
      node('Add', ['band_high', 'guard'], ['band']),
    ],
  };

  const model = {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'vigil',
    producer_version: BUILDER_VERSION,
    domain: 'org.vigil.models',
    model_version: 1,
    doc_string: DESCRIPTION,
    graph,
    metadata_props: [
      { key: 'chart', value: 'RCP NEWS2 2017' },
      { key: 'features', value: NEWS2_FEATURES.join(',') },
      { key: 'spo2_scale', value: '1' },
      { key: 'between_cells', value: 'more abnormal' },
      { key: 'build_script', value: SCRIPT },
    ],
  };
  return encodeModel(model);
}

/** How each column of `features` is read from a decoded envelope (the score operator follows this). */
export const NEWS2_INPUTS: readonly ModelInput[] = [
  { name: 'respiratory_rate', field: 'vital_signs.respiratory_rate', unit: '/min', min: 2, max: 80 },
  { name: 'spo2', field: 'vital_signs.spo2', unit: '%', min: 40, max: 100 },
  { name: 'on_oxygen', field: 'vital_signs.on_oxygen', unit: '1', min: 0, max: 1, encode: { false: 0, true: 1 } },
  { name: 'systolic_bp', field: 'vital_signs.systolic_bp', unit: 'mm[Hg]', min: 40, max: 300 },
  { name: 'pulse', field: 'vital_signs.pulse', unit: '/min', min: 20, max: 300 },
  {
    name: 'consciousness_not_alert',
    field: 'vital_signs.consciousness',
    unit: '1',
    min: 0,
    max: 1,
    encode: { A: 0, C: 1, V: 1, P: 1, U: 1 },
  },
  { name: 'temperature_c', field: 'vital_signs.temperature_c', unit: 'Cel', min: 25, max: 45 },
];

/**
 * The chart this network encodes, as the data set it was "trained" on: NEWS2 is not fitted to data, so the
 * training-data record names the chart and hashes the table (every edge) the weights come from.
 */
export function chartTableSha256(): string {
  return sha256Hex(JSON.stringify({ chart: 'RCP NEWS2 2017', features: NEWS2_FEATURES, edges: EDGES }));
}

/** The v2 manifest of news2@1.0.0 for an artifact with this sha256 (`reference` as given). */
export function news2Manifest(sha256: string, reference: ModelManifest['reference'] = null): ModelManifest {
  return {
    manifest_version: 2,
    name: MODEL_NAME,
    version: MODEL_VERSION,
    description: DESCRIPTION,
    artifact: { file: 'model.onnx', sha256 },
    input_tensor: 'features',
    inputs: NEWS2_INPUTS,
    features: NEWS2_INPUTS.map((i) => i.name),
    output: { kind: 'news2', score_tensor: 'score', subscores_tensor: 'subscores', band_tensor: 'band' },
    intended_use:
      'Track-and-trigger early warning for adults monitored at home or on a ward: the NEWS2 aggregate score and ' +
      'clinical risk band of one full set of vital signs, to prompt clinical review. Not a diagnosis; SpO2 scale 2 ' +
      '(confirmed hypercapnic respiratory failure), pregnancy and under-16s are out of scope.',
    population: {
      description:
        'Adults (16 and over) as in the RCP NEWS2 2017 report; not validated for pregnancy or for patients with ' +
        'a target SpO2 of 88-92% (scale 2).',
      age_bands: ['18-39', '40-64', '65-79', '80+'],
      settings: ['hospital_at_home', 'ward'],
    },
    training_data: {
      dataset_id: 'rcp-news2-2017-chart',
      // The chart's publication (RCP, December 2017): a point in time, not a sampling window.
      time_range: { from: '2017-12-19T00:00:00.000Z', to: '2017-12-19T00:00:00.000Z' },
      sites: [],
      sha256: chartTableSha256(),
      rows: 0,
    },
    reference,
    pccp: {
      modification_id: 'news2-chart-encoding',
      description:
        'The RCP NEWS2 2017 chart encoded as a fixed-weight network; any change of chart edges or points is a new ' +
        'version under this modification, verified against the plain-TypeScript chart at every boundary.',
    },
    acceptance_criteria: {
      min_inferences: 1000,
      min_agreement_with_live: 0.99,
      calibration: null,
      subgroup_brier_margin: null,
    },
    drift: { js_threshold: 0.1, dataset_share: 0.5, auto_rollback: false },
    build: {
      script: SCRIPT,
      builder_version: BUILDER_VERSION,
      chart: 'RCP NEWS2 2017',
      opset: String(OPSET),
      ir_version: String(IR_VERSION),
      writer: 'protobufjs (scripts/onnx-proto.ts)',
    },
  };
}

/**
 * Writes `<root>/news2/1.0.0/model.onnx` and its v2 manifest. A `reference` already in an existing manifest
 * (written by the drift baseline script) is kept; everything else is rewritten.
 */
export function writeNews2Model(root = DEFAULT_MODELS_ROOT): { dir: string; sha256: string; manifest: ModelManifest } {
  const dir = join(root, MODEL_NAME, MODEL_VERSION);
  mkdirSync(dir, { recursive: true });
  const bytes = buildNews2Model();
  const sha256 = sha256Hex(bytes);
  writeFileSync(join(dir, 'model.onnx'), bytes);

  const manifestPath = join(dir, 'manifest.json');
  let existing: Partial<ModelManifest> = {};
  try {
    existing = JSON.parse(readFileSync(manifestPath, 'utf8')) as Partial<ModelManifest>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const manifest = news2Manifest(sha256, existing.reference ?? null);
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, sha256, manifest };
}

function main(argv: readonly string[]): void {
  const at = argv.indexOf('--out');
  const root = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && !root) throw new Error('--out needs a directory');
  const { dir, sha256 } = writeNews2Model(root ? resolve(root) : DEFAULT_MODELS_ROOT);
  process.stdout.write(`wrote ${join(dir, 'model.onnx')} sha256 ${sha256}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
