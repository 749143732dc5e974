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

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'vigil-drift-reference-'));
  dir = join(root, 'news2', '1.0.0');
  cpSync(COMMITTED, dir, { recursive: true, filter: (src) => !src.endsWith('reference.json') });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify({ ...manifest, reference: null }, null, 2)}\n`);
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

  it('--check passes on a current reference and fails on a stale one', () => {
    expect(run('--check').status).toBe(0);
    const path = join(dir, 'reference.json');
    writeFileSync(path, readFileSync(path, 'utf8').replace('"n": ', '"n":  '));
    const stale = run('--check');
    expect(stale.status).toBe(1);
    expect(stale.stderr).toMatch(/npm run models:reference/);
  }, 60_000);
});
