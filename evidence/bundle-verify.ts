/**
 * `vigil evidence verify DIR`: re-hashes every file of a bundle against its manifest, checks the manifest against its
 * signed note (the audit checkpoint verifier key), and the inclusion proofs inside against the checkpoints they carry
 * (each checkpoint's signature, then the RFC 9162 path from the entry's leaf to its root). Every problem names the
 * file it is in.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type VerifierKey, verifyCheckpoint, verifyNote } from '../audit/checkpoint.ts';
import { leafHash, verifyInclusion } from '../audit/merkle.ts';
import type { InclusionProof } from '../audit/prove.ts';
import {
  bundleFiles,
  MANIFEST_FILE,
  MANIFEST_NOTE,
  manifestNoteText,
  manifestSchema,
  sha256Hex,
} from './bundle-manifest.ts';

export interface BundleProblem {
  readonly file: string;
  readonly problem: string;
}

export interface BundleVerification {
  readonly ok: boolean;
  readonly files: number;
  readonly proofs: number;
  readonly problems: readonly BundleProblem[];
}

const PROOFS_FILE = 'audit-logging/proofs.json';

function checkProof(proof: InclusionProof, key: VerifierKey): string | null {
  const checkpoint = verifyCheckpoint(proof.checkpoint, key);
  if (!checkpoint.ok) return `entry ${proof.index}: its checkpoint does not verify (${checkpoint.problem})`;
  if (checkpoint.checkpoint.size !== proof.tree_size)
    return `entry ${proof.index}: tree size differs from its checkpoint`;
  const leaf = leafHash(Buffer.from(proof.entry, 'utf8'));
  const path = proof.proof.map((h) => Buffer.from(h, 'base64'));
  if (!verifyInclusion(leaf, proof.index, proof.tree_size, path, checkpoint.checkpoint.root)) {
    return `entry ${proof.index}: the inclusion proof does not lead to the signed root`;
  }
  return null;
}

/**
 * Verifies a bundle directory with the checkpoint verifier key.
 *
 * @example
 * const result = verifyBundle('evidence-2026-11', loadVerifierKey('.vigil/audit/checkpoint.pub'));
 * if (!result.ok) for (const p of result.problems) console.log(`${p.file}: ${p.problem}`);
 */
export function verifyBundle(dir: string, key: VerifierKey): BundleVerification {
  const problems: BundleProblem[] = [];
  const fail = (file: string, problem: string) => problems.push({ file, problem });
  if (!existsSync(join(dir, MANIFEST_FILE)) || !existsSync(join(dir, MANIFEST_NOTE))) {
    fail(MANIFEST_FILE, `no ${MANIFEST_FILE} and ${MANIFEST_NOTE}: not an evidence bundle`);
    return { ok: false, files: 0, proofs: 0, problems };
  }
  const manifestText = readFileSync(join(dir, MANIFEST_FILE));
  const note = verifyNote(readFileSync(join(dir, MANIFEST_NOTE), 'utf8'), key);
  if (!note.ok) fail(MANIFEST_NOTE, `the signature does not verify with ${key.name}: ${note.problem}`);
  else if (note.text !== manifestNoteText(manifestText)) fail(MANIFEST_FILE, 'its SHA-256 is not the one signed');

  let parsed: ReturnType<typeof manifestSchema.safeParse>;
  try {
    parsed = manifestSchema.safeParse(JSON.parse(manifestText.toString('utf8')));
  } catch {
    fail(MANIFEST_FILE, 'not JSON');
    return { ok: false, files: 0, proofs: 0, problems };
  }
  if (!parsed.success) {
    fail(MANIFEST_FILE, 'not a bundle manifest');
    return { ok: false, files: 0, proofs: 0, problems };
  }
  const listed = new Map(parsed.data.files.map((f) => [f.path, f]));
  const present = bundleFiles(dir);
  for (const path of present) {
    const entry = listed.get(path);
    if (!entry) {
      fail(path, 'not in the manifest (added after the export)');
      continue;
    }
    const bytes = readFileSync(join(dir, path));
    if (sha256Hex(bytes) !== entry.sha256 || bytes.length !== entry.bytes)
      fail(path, 'SHA-256 differs from the manifest');
  }
  for (const path of listed.keys()) if (!present.includes(path)) fail(path, 'in the manifest but missing');

  let proofs = 0;
  if (listed.has(PROOFS_FILE) && present.includes(PROOFS_FILE)) {
    try {
      const held = JSON.parse(readFileSync(join(dir, PROOFS_FILE), 'utf8')) as { proofs: InclusionProof[] };
      for (const proof of held.proofs) {
        proofs++;
        const problem = checkProof(proof, key);
        if (problem) fail(PROOFS_FILE, problem);
      }
    } catch {
      fail(PROOFS_FILE, 'not readable JSON');
    }
  }
  return { ok: problems.length === 0, files: present.length, proofs, problems };
}
