import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateNoteKeys, parseSignerKey, parseVerifierKey, signNote } from '../audit/checkpoint.ts';
import {
  BUNDLE_FORMAT,
  hashFiles,
  MANIFEST_FILE,
  MANIFEST_NOTE,
  type Manifest,
  manifestNoteText,
} from './bundle-manifest.ts';
import { verifyBundle } from './bundle-verify.ts';

const keys = generateNoteKeys('vigil.test/bundle');
const signer = parseSignerKey(keys.signer);
const verifier = parseVerifierKey(keys.verifier);

/** A bundle of two files, its manifest and signed note, as the export writes them. */
function bundle(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bundle-'));
  mkdirSync(join(dir, 'provenance'));
  writeFileSync(join(dir, 'provenance', 'transformations.json'), '{"versions":[]}\n');
  writeFileSync(join(dir, 'summary.json'), '{"changes":0}\n');
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    from: '2026-01-01T00:00:00.000Z',
    to: '2026-02-01T00:00:00.000Z',
    created_at: '2026-02-01T00:00:00.000Z',
    exported_by: { principal: 'auditor-1', role: 'auditor', audit_index: 7 },
    files: hashFiles(dir),
  };
  const text = `${JSON.stringify(manifest)}\n`;
  writeFileSync(join(dir, MANIFEST_FILE), text);
  writeFileSync(join(dir, MANIFEST_NOTE), signNote(manifestNoteText(text), signer));
  return dir;
}

describe('verifyBundle', () => {
  it('accepts the bundle as written', () => {
    expect(verifyBundle(bundle(), verifier)).toEqual({ ok: true, files: 2, proofs: 0, problems: [] });
  });

  it('names a file added, a file removed and a file changed', () => {
    const dir = bundle();
    writeFileSync(join(dir, 'extra.json'), '{}');
    rmSync(join(dir, 'summary.json'));
    writeFileSync(join(dir, 'provenance', 'transformations.json'), '{"versions":[1]}\n');
    expect(verifyBundle(dir, verifier).problems).toEqual([
      { file: 'extra.json', problem: 'not in the manifest (added after the export)' },
      { file: 'provenance/transformations.json', problem: 'SHA-256 differs from the manifest' },
      { file: 'summary.json', problem: 'in the manifest but missing' },
    ]);
  });

  it('refuses a manifest signed by another key', () => {
    const other = parseVerifierKey(generateNoteKeys('vigil.test/bundle').verifier);
    const result = verifyBundle(bundle(), other);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.file)).toEqual([MANIFEST_NOTE]);
  });
});
