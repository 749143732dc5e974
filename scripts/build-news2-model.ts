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
 * The ONNX protobuf is written with protobufjs from the subset of onnx.proto below (field numbers as upstream).
 * The manifest is merged into an existing one: a `reference` already present (the drift baseline) is kept.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import protobuf from 'protobufjs';
import { NEWS2_FEATURES, NEWS2_WIDTH, type News2Feature } from '../operators/score/features.ts';
import type { ModelManifest } from '../runtime/models.ts';

export const MODEL_NAME = 'news2';
export const MODEL_VERSION = '1.0.0';
export const OPSET = 17;
/** IR version 8 goes with opset 17 (ONNX 1.12); onnxruntime-node 1.30 reads it. */
export const IR_VERSION = 8;
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

// The subset of onnx.proto (proto2) this script writes. Field numbers and enum values are those of upstream ONNX.
const ONNX_SUBSET = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional AttributeType type = 20;
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  optional string domain = 7;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
  optional string doc_string = 12;
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;
const ATTR_INTS = 7;

type Dim = number | string;

function float32Tensor(name: string, dims: number[], values: ArrayLike<number>) {
  const data = Float32Array.from(values);
  // raw_data is little-endian by the ONNX spec: write it explicitly, whatever the host's byte order.
  const raw = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) raw.writeFloatLE(data[i]!, i * 4);
  return { name, dims, data_type: FLOAT, raw_data: raw };
}

function int64Tensor(name: string, dims: number[], values: readonly number[]) {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => {
    raw.writeBigInt64LE(BigInt(v), i * 8);
  });
  return { name, dims, data_type: INT64, raw_data: raw };
}

function valueInfo(name: string, dims: Dim[], doc: string) {
  return {
    name,
    doc_string: doc,
    type: {
      tensor_type: {
        elem_type: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function node(op_type: string, input: string[], output: string[], attribute: object[] = []) {
  return { op_type, input, output, name: output[0], attribute };
}

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
  const root = protobuf.parse(ONNX_SUBSET, { keepCase: true }).root;
  const ModelProto = root.lookupType('onnx.ModelProto');
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
  const problem = ModelProto.verify(model);
  if (problem) throw new Error(`onnx model object is invalid: ${problem}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Writes `<root>/news2/1.0.0/model.onnx` and its manifest. An existing manifest is merged, not replaced: a `reference`
 * already there (written by the drift baseline script) is kept.
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
  const manifest: ModelManifest = {
    ...existing,
    name: MODEL_NAME,
    version: MODEL_VERSION,
    description: DESCRIPTION,
    artifact: { file: 'model.onnx', sha256 },
    features: [...NEWS2_FEATURES],
    reference: existing.reference ?? null,
    build: {
      script: SCRIPT,
      builder_version: BUILDER_VERSION,
      chart: 'RCP NEWS2 2017',
      opset: String(OPSET),
      ir_version: String(IR_VERSION),
      writer: 'protobufjs',
    },
  };
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
