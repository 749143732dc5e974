/**
 * The audit key files, apart from the pipeline's configuration (default `.vigil/audit/`):
 * - `checkpoint.key`: the Ed25519 note signer key (mode 0600). Only the checkpoint signer reads it.
 * - `checkpoint.pub`: its verifier key, the one thing an auditor needs.
 * - `hash.key`: the 32-byte secret the entries' digests are keyed with (mode 0600). Destroying it makes every digest
 *   unlinkable (crypto-shredding) without breaking the tree.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VigilError } from '../runtime/errors.ts';
import { generateNoteKeys, parseSignerKey, parseVerifierKey, type SignerKey, type VerifierKey } from './checkpoint.ts';
import { type HashKey, hashKeyOf } from './entry.ts';

export const DEFAULT_KEY_DIR = '.vigil/audit';
export const DEFAULT_ORIGIN = 'vigil.local/audit';
export const KEY_FILES = { signer: 'checkpoint.key', verifier: 'checkpoint.pub', hash: 'hash.key' } as const;

/** Creates the key files that do not exist yet; returns the verifier key text. */
export function generateAuditKeys(dir: string, origin: string, force = false): { verifier: string; created: string[] } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const created: string[] = [];
  const signerPath = join(dir, KEY_FILES.signer);
  if (force || !existsSync(signerPath)) {
    const keys = generateNoteKeys(origin);
    writeFileSync(signerPath, `${keys.signer}\n`, { mode: 0o600 });
    writeFileSync(join(dir, KEY_FILES.verifier), `${keys.verifier}\n`, { mode: 0o644 });
    created.push(KEY_FILES.signer, KEY_FILES.verifier);
  }
  const hashPath = join(dir, KEY_FILES.hash);
  if (force || !existsSync(hashPath)) {
    writeFileSync(hashPath, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    created.push(KEY_FILES.hash);
  }
  return { verifier: readFileSync(join(dir, KEY_FILES.verifier), 'utf8').trim(), created };
}

function readKeyFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    throw new VigilError('CONFIG_INVALID', `no ${what} at ${path}: run \`vigil audit keygen\` (or pass its path)`);
  }
}

export const loadSignerKey = (path: string): SignerKey => parseSignerKey(readKeyFile(path, 'checkpoint signer key'));
export const loadVerifierKey = (path: string): VerifierKey =>
  parseVerifierKey(readKeyFile(path, 'checkpoint verifier key'));
export const loadHashKey = (path: string): HashKey =>
  hashKeyOf(Buffer.from(readKeyFile(path, 'audit hashing key'), 'base64'));
