/**
 * The model store verifies before it runs: a tampered artifact or reference never reaches onnxruntime or a caller.
 * Each test works on a copy of the checked-in NEWS2 version in a temporary store.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VigilError } from '../../runtime/errors.ts';
import type { ModelManifest } from '../../runtime/models.ts';
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

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vigil-models-'));
  versionDir = join(root, 'news2', '1.0.0');
  cpSync(join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0'), versionDir, {
    recursive: true,
    filter: (src) => !src.endsWith('.test.ts'),
  });
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
      expect(model.manifest.name).toBe('news2');
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
