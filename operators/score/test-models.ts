/**
 * Test scaffolding for `score` (used by score.test.ts only; imports no test framework): a model store in a temp folder
 * holding a copy of news2@1.0.0 and tiny logistic "risk" models written as real ONNX files (scripts/onnx-proto.ts,
 * the writer the model build scripts use), each with a format-2 manifest, so the operator is tested against
 * onnxruntime and the real store, never a fake model.
 *
 * A risk model: p = sigmoid(features · weights + bias), contributions = features * weights (per input), over inputs
 * read from the envelope (`vital_signs.*`, an `encode`d boolean, and optionally an `envelope.*` field).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MODELS_ROOT, OnnxModelStore } from '../../adapters/onnx/index.ts';
import type { LoadedModel, ModelInput, ModelManifest, ModelStore } from '../../runtime/models.ts';
import { encodeModel, float32Tensor, IR_VERSION, node, OPSET, sha256Hex, valueInfo } from '../../scripts/onnx-proto.ts';

/** The inputs of the test risk models: respiratory rate, SpO2 and oxygen, each with its allowed range. */
export const RISK_INPUTS: readonly ModelInput[] = [
  { name: 'respiratory_rate', field: 'vital_signs.respiratory_rate', unit: '/min', min: 4, max: 60 },
  { name: 'spo2', field: 'vital_signs.spo2', unit: '%', min: 60, max: 100 },
  { name: 'on_oxygen', field: 'vital_signs.on_oxygen', unit: '1', min: 0, max: 1, encode: { false: 0, true: 1 } },
];

export interface RiskModelSpec {
  readonly version: string;
  readonly weights: readonly number[];
  readonly bias: number;
  readonly inputs?: readonly ModelInput[];
  /** Whether the model returns per-input contributions (default true). */
  readonly contributions?: boolean;
}

export const RISK_THRESHOLDS = { low_medium: 0.05, medium: 0.15, high: 0.3 } as const;

/** p = sigmoid(x · w + b), as the model computes it (in doubles). */
export function riskOf(features: readonly number[], spec: RiskModelSpec): number {
  let z = spec.bias;
  features.forEach((x, k) => {
    z += x * spec.weights[k]!;
  });
  return 1 / (1 + Math.exp(-z));
}

function riskModelBytes(spec: RiskModelSpec, width: number): Uint8Array {
  const contributions = spec.contributions ?? true;
  const graph = {
    name: 'risk',
    input: [valueInfo('features', ['N', width], 'risk inputs')],
    output: [
      valueInfo('probability', ['N', 1], 'p'),
      ...(contributions ? [valueInfo('contributions', ['N', width], 'x * w')] : []),
    ],
    initializer: [
      float32Tensor('w', [width, 1], spec.weights),
      float32Tensor('w_row', [width], spec.weights),
      float32Tensor('b', [1], [spec.bias]),
    ],
    node: [
      node('MatMul', ['features', 'w'], ['z0']),
      node('Add', ['z0', 'b'], ['z']),
      node('Sigmoid', ['z'], ['probability']),
      ...(contributions ? [node('Mul', ['features', 'w_row'], ['contributions'])] : []),
    ],
  };
  return encodeModel({ ir_version: IR_VERSION, opset_import: [{ domain: '', version: OPSET }], graph });
}

function riskManifest(spec: RiskModelSpec, sha256: string): ModelManifest {
  const inputs = spec.inputs ?? RISK_INPUTS;
  return {
    manifest_version: 2,
    name: 'risk',
    version: spec.version,
    description: 'Logistic test model (score.test.ts).',
    artifact: { file: 'model.onnx', sha256 },
    input_tensor: 'features',
    inputs,
    features: inputs.map((i) => i.name),
    output: {
      kind: 'probability',
      score_tensor: 'probability',
      contributions_tensor: (spec.contributions ?? true) ? 'contributions' : null,
      thresholds: RISK_THRESHOLDS,
      outcome: { kinds: ['confirmed_deterioration'], horizon_ms: 86_400_000 },
    },
    intended_use: 'Tests only.',
    population: { description: 'Simulated.', age_bands: ['18-39'], settings: ['ward'] },
    training_data: {
      dataset_id: 'none',
      time_range: { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' },
      sites: [],
      sha256: '0'.repeat(64),
      rows: 0,
    },
    reference: null,
    pccp: { modification_id: 'test', description: 'Tests only.' },
    acceptance_criteria: {
      min_inferences: 1,
      min_agreement_with_live: 0,
      calibration: { min_outcome_events: 1, citl_abs_max: 1, slope_min: 0, slope_max: 2, ece_max: 1 },
      subgroup_brier_margin: 0.1,
    },
    drift: { js_threshold: 0.1, dataset_share: 0.5, auto_rollback: false },
    build: { script: 'operators/score/test-models.ts' },
  };
}

/** A temp model store: news2@1.0.0 copied from the repo, plus risk models written on demand. */
export class TestModelRoot {
  readonly root = mkdtempSync(join(tmpdir(), 'vigil-score-'));

  constructor() {
    cpSync(join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0'), join(this.root, 'news2', '1.0.0'), {
      recursive: true,
      filter: (src) => !src.endsWith('.test.ts'),
    });
  }

  /** Writes risk@<version> (model.onnx + manifest.json). */
  addRisk(spec: RiskModelSpec): void {
    const inputs = spec.inputs ?? RISK_INPUTS;
    const bytes = riskModelBytes(spec, inputs.length);
    const dir = join(this.root, 'risk', spec.version);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.onnx'), bytes);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(riskManifest(spec, sha256Hex(bytes)), null, 2));
  }

  /** Flips one byte of a version's artifact (its sha256 no longer matches the manifest). */
  corrupt(model: string, version: string): void {
    const path = join(this.root, model, version, 'model.onnx');
    const bytes = readFileSync(path);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(path, bytes);
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * The real store over a folder, counting model calls (rows per call, by `<model>@<version>`), loads and closes; every
 * call goes to the real session.
 */
export class CountingStore implements ModelStore {
  readonly runs: string[] = [];
  readonly loads: string[] = [];
  readonly closes: string[] = [];
  readonly inner: OnnxModelStore;
  /** Rows whose outputs are replaced by NaN, by `<model>@<version>` (an untrustworthy model, for failure paths). */
  readonly poisoned = new Set<string>();
  /** Versions whose model call throws, by `<model>@<version>` (a runtime failure at batch time). */
  readonly failing = new Set<string>();

  constructor(readonly root: string) {
    this.inner = new OnnxModelStore({ root });
  }

  async load(name: string, version: string): Promise<LoadedModel> {
    const model = await this.inner.load(name, version);
    const manifest = model.manifest;
    const id = `${name}@${version}`;
    this.loads.push(id);
    const { runs, closes, poisoned, failing } = this;
    return {
      manifest,
      artifactSha256: model.artifactSha256,
      runtime: model.runtime,
      async run(inputs) {
        runs.push(`${id}:${inputs[manifest.input_tensor]!.dims[0]}`);
        if (failing.has(id)) throw new Error(`${id}: the runtime failed`);
        const out = await model.run(inputs);
        if (poisoned.has(id)) {
          for (const tensor of Object.values(out))
            if (tensor.data instanceof Float32Array) tensor.data.fill(Number.NaN);
        }
        return out;
      },
      close() {
        closes.push(id);
        return model.close();
      },
    };
  }

  readVerified(name: string, version: string, entry: 'reference'): Promise<Buffer> {
    return this.inner.readVerified(name, version, entry);
  }

  manifest(name: string, version: string): Promise<ModelManifest> {
    return this.inner.manifest(name, version);
  }
}
