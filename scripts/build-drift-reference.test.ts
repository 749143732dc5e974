/**
 * `npm run models:reference` is reproducible: run on a copy of the model store whose manifest has no reference yet,
 * it writes the committed reference.json byte for byte, and registers it in the manifest without touching anything
 * else. `--check` tells a current reference from a stale one.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS_ROOT } from '../adapters/onnx/index.ts';
import { parseReference } from '../operators/detect-drift/reference.ts';

const SCRIPT = fileURLToPath(new URL('./build-drift-reference.ts', import.meta.url));
const COMMITTED = join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0');

let root: string;
let dir: string;

function run(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, '--root', root, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
}

/** Copies a committed version into the temp store without its reference (the manifest's `reference` null). */
function copyWithoutReference(model: string, version: string): string {
  const to = join(root, model, version);
  cpSync(join(DEFAULT_MODELS_ROOT, model, version), to, {
    recursive: true,
    filter: (src) => !src.endsWith('reference.json'),
  });
  const manifest = JSON.parse(readFileSync(join(to, 'manifest.json'), 'utf8'));
  writeFileSync(join(to, 'manifest.json'), `${JSON.stringify({ ...manifest, reference: null }, null, 2)}\n`);
  return to;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'vigil-drift-reference-'));
  dir = copyWithoutReference('news2', '1.0.0');
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('scripts/build-drift-reference.ts', () => {
  it('rebuilds the committed reference byte for byte and registers it in the manifest', () => {
    const result = run();
    expect(result.status, result.stderr).toBe(0);
    const built = readFileSync(join(dir, 'reference.json'));
    expect(built.equals(readFileSync(join(COMMITTED, 'reference.json')))).toBe(true);

    const reference = parseReference(built);
    expect(reference.model).toEqual({ name: 'news2', version: '1.0.0' });
    expect(reference.sample).toMatchObject({ biased_firmware: null, devices: 5000, events: 250_000 });
    expect(reference.features.map((f) => f.name)).toEqual([
      'respiratory_rate',
      'spo2',
      'on_oxygen',
      'systolic_bp',
      'pulse',
      'consciousness',
      'temperature_c',
      'score',
    ]);

    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const committed = JSON.parse(readFileSync(join(COMMITTED, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual(committed);
    expect(manifest.reference).toEqual({
      file: 'reference.json',
      sha256: createHash('sha256').update(built).digest('hex'),
    });
  }, 60_000);

  it('builds the reference of a probability model (deterioration@1.1.0): its score binned as continuous', () => {
    const to = copyWithoutReference('deterioration', '1.1.0');
    const result = run('--model', 'deterioration', '--version', '1.1.0');
    expect(result.status, result.stderr).toBe(0);
    const committedDir = join(DEFAULT_MODELS_ROOT, 'deterioration', '1.1.0');
    const built = readFileSync(join(to, 'reference.json'));
    expect(built.equals(readFileSync(join(committedDir, 'reference.json')))).toBe(true);
    const reference = parseReference(built);
    expect(reference.model).toEqual({ name: 'deterioration', version: '1.1.0' });
    const score = reference.features.find((f) => f.name === 'score');
    expect(score?.kind).toBe('continuous');
    expect(score!.edges[0]).toBeGreaterThan(0);
    expect(score!.edges.at(-1)).toBeLessThan(1);
    expect(JSON.parse(readFileSync(join(to, 'manifest.json'), 'utf8'))).toEqual(
      JSON.parse(readFileSync(join(committedDir, 'manifest.json'), 'utf8')),
    );
  }, 60_000);

  it('--check passes on current references (every version under the root) and fails on a stale one', () => {
    expect(run('--check').status).toBe(0);
    const path = join(dir, 'reference.json');
    writeFileSync(path, readFileSync(path, 'utf8').replace('"n": ', '"n":  '));
    const stale = run('--check');
    expect(stale.status).toBe(1);
    expect(stale.stderr).toMatch(/npm run models:reference/);
  }, 60_000);
});
