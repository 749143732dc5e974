/**
 * The model store verifies before it runs: a tampered artifact or reference never reaches onnxruntime or a caller, and
 * a manifest must pass the strict format-2 schema. Each test works in a temporary store on a copy of the checked-in
 * NEWS2 network's artifact, under a manifest written here (models/ is another module's to change).
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sampleManifest } from '../../governance/testing.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { ModelInput, ModelManifest } from '../../runtime/models.ts';
import { DEFAULT_MODELS_ROOT, OnnxModelStore } from './index.ts';

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

let root: string;
let versionDir: string;

function readManifest(): ModelManifest {
  return JSON.parse(readFileSync(join(versionDir, 'manifest.json'), 'utf8')) as ModelManifest;
}

function writeManifest(manifest: unknown): void {
  writeFileSync(join(versionDir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VigilError);
    return (error as VigilError).code;
  }
  throw new Error('expected a VigilError, got success');
}

/** A format-2 manifest for the NEWS2 network's artifact (7 float32 columns of `features`). */
function news2Manifest(artifactSha256: string): ModelManifest {
  const input = (name: string, field: string, unit: string, min: number, max: number) => ({
    name,
    field,
    unit,
    min,
    max,
  });
  const inputs: ModelInput[] = [
    input('respiratory_rate', 'vital_signs.respiratory_rate', '/min', 2, 80),
    input('spo2', 'vital_signs.spo2', '%', 40, 100),
    { ...input('on_oxygen', 'vital_signs.on_oxygen', '1', 0, 1), encode: { false: 0, true: 1 } },
    input('systolic_bp', 'vital_signs.systolic_bp', 'mm[Hg]', 40, 300),
    input('pulse', 'vital_signs.pulse', '/min', 20, 300),
    {
      ...input('consciousness_not_alert', 'vital_signs.consciousness', '1', 0, 1),
      encode: { A: 0, C: 1, V: 1, P: 1, U: 1 },
    },
    input('temperature_c', 'vital_signs.temperature_c', 'Cel', 25, 45),
  ];
  return sampleManifest('news2', '1.0.0', {
    artifact: { file: 'model.onnx', sha256: artifactSha256 },
    input_tensor: 'features',
    inputs,
    features: inputs.map((i) => i.name),
    output: { kind: 'news2', score_tensor: 'score', subscores_tensor: 'subscores', band_tensor: 'band' },
    acceptance_criteria: {
      min_inferences: 10,
      min_agreement_with_live: 0.99,
      calibration: null,
      subgroup_brier_margin: null,
    },
  });
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vigil-models-'));
  versionDir = join(root, 'news2', '1.0.0');
  mkdirSync(versionDir, { recursive: true });
  cpSync(join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0', 'model.onnx'), join(versionDir, 'model.onnx'));
  writeManifest(news2Manifest(sha256(readFileSync(join(versionDir, 'model.onnx')))));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('OnnxModelStore', () => {
  it('loads a verified model, runs a batch and reports the onnxruntime version', async () => {
    const model = await new OnnxModelStore({ root }).load('news2', '1.0.0');
    try {
      const artifact = readFileSync(join(versionDir, 'model.onnx'));
      expect(model.artifactSha256).toBe(sha256(artifact));
      expect(model.manifest).toEqual(readManifest());
      const ortVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string })
        .version;
      expect(model.runtime).toEqual({ name: 'onnxruntime-node', version: ortVersion });

      const data = Float32Array.from([16, 97, 0, 120, 70, 0, 37, 25, 93, 1, 120, 70, 0, 37]);
      const out = await model.run({ features: { data, dims: [2, 7] } });
      expect(out['score']!.dims).toEqual([2, 1]);
      expect(Array.from(out['score']!.data as Float32Array)).toEqual([0, 7]);
      expect(Array.from(out['band']!.data as Float32Array)).toEqual([0, 3]);
    } finally {
      await model.close();
    }
  });

  it('refuses a tampered artifact before creating a session: MODEL_INTEGRITY_FAILED', async () => {
    const path = join(versionDir, 'model.onnx');
    const bytes = readFileSync(path);
    // One flipped bit (in the metadata text near the end): the bytes are no longer the ones the manifest vouches for.
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 0x01;
    writeFileSync(path, bytes);
    const store = new OnnxModelStore({ root });
    await expect(store.load('news2', '1.0.0')).rejects.toThrow(/sha256 .* the manifest says/);
    expect(await codeOf(store.load('news2', '1.0.0'))).toBe('MODEL_INTEGRITY_FAILED');
  });

  it('refuses a manifest whose sha256 was edited', async () => {
    writeManifest({ ...readManifest(), artifact: { file: 'model.onnx', sha256: '0'.repeat(64) } });
    expect(await codeOf(new OnnxModelStore({ root }).load('news2', '1.0.0'))).toBe('MODEL_INTEGRITY_FAILED');
  });

  it('says MODEL_NOT_FOUND for an unknown version, a missing artifact, or a path outside the store', async () => {
    const store = new OnnxModelStore({ root });
    expect(await codeOf(store.load('news2', '9.9.9'))).toBe('MODEL_NOT_FOUND');
    expect(await codeOf(store.load('..', '1.0.0'))).toBe('MODEL_NOT_FOUND');
    rmSync(join(versionDir, 'model.onnx'));
    expect(await codeOf(store.load('news2', '1.0.0'))).toBe('MODEL_NOT_FOUND');
  });

  it('refuses a manifest that is malformed, names another model, or points outside its folder', async () => {
    const store = new OnnxModelStore({ root });
    const good = readManifest();
    writeManifest({ ...good, features: 'respiratory_rate' });
    expect(await codeOf(store.load('news2', '1.0.0'))).toBe('MODEL_INTEGRITY_FAILED');
    writeManifest({ ...good, version: '2.0.0' });
    expect(await codeOf(store.load('news2', '1.0.0'))).toBe('MODEL_INTEGRITY_FAILED');
    // Format 1 (no manifest_version, no inputs): refused with the strict schema's words.
    const { manifest_version: _, inputs: __, ...formatOne } = good;
    writeManifest(formatOne);
    await expect(store.manifest('news2', '1.0.0')).rejects.toThrow(
      /not a valid model manifest \(format 2\)[\s\S]*inputs/,
    );
    writeManifest({ ...good, unknown_key: 1 });
    await expect(store.manifest('news2', '1.0.0')).rejects.toThrow(/unknown_key/);
    // A file with the right bytes, but outside the version folder: refused all the same.
    cpSync(join(versionDir, 'model.onnx'), join(root, 'news2', 'elsewhere.onnx'));
    writeManifest({ ...good, artifact: { ...good.artifact, file: '../elsewhere.onnx' } });
    expect(await codeOf(store.load('news2', '1.0.0'))).toBe('MODEL_INTEGRITY_FAILED');
  });

  it('readVerified returns the reference only while it matches its sha256', async () => {
    const store = new OnnxModelStore({ root });
    writeManifest({ ...readManifest(), reference: null });
    expect(await codeOf(store.readVerified('news2', '1.0.0', 'reference'))).toBe('MODEL_NOT_FOUND');

    const body = JSON.stringify({ bins: [1, 2, 3] });
    writeFileSync(join(versionDir, 'reference.json'), body);
    writeManifest({ ...readManifest(), reference: { file: 'reference.json', sha256: sha256(body) } });
    expect((await store.readVerified('news2', '1.0.0', 'reference')).toString('utf8')).toBe(body);

    writeFileSync(join(versionDir, 'reference.json'), body.replace('3', '4'));
    expect(await codeOf(store.readVerified('news2', '1.0.0', 'reference'))).toBe('MODEL_INTEGRITY_FAILED');
  });

  it('fails a run after close instead of touching a released session', async () => {
    const model = await new OnnxModelStore({ root }).load('news2', '1.0.0');
    await model.close();
    await model.close();
    await expect(model.run({ features: { data: new Float32Array(7), dims: [1, 7] } })).rejects.toThrow(/after close/);
  });
});
