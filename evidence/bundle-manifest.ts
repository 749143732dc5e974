/**
 * The evidence bundle's manifest: every file's SHA-256 and size (`manifest.json`), and `manifest.note`, a signed note
 * (C2SP, audit/checkpoint.ts signNote) by the audit checkpoint key whose text names the manifest's own SHA-256. An
 * auditor checks the note with the checkpoint verifier key (`checkpoint.pub`), the manifest against the note, and each
 * file against the manifest; a file added, removed or changed by one byte is named.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { z } from 'zod';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_NOTE = 'manifest.note';
export const BUNDLE_FORMAT = 'vigil.evidence/v1';

export const manifestSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  from: z.string(),
  to: z.string(),
  created_at: z.string(),
  exported_by: z.strictObject({ principal: z.string(), role: z.string(), audit_index: z.number().int().min(0) }),
  files: z.array(z.strictObject({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number() })),
});

export type Manifest = z.infer<typeof manifestSchema>;

export const sha256Hex = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/** The text the manifest note signs: the format and the manifest file's SHA-256. */
export const manifestNoteText = (manifestBytes: Buffer | string): string =>
  `${BUNDLE_FORMAT}\nmanifest sha256 ${sha256Hex(manifestBytes)}\n`;

/** Every file under `dir` (POSIX relative paths, sorted), the manifest and its note excepted. */
export function bundleFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.filter((p) => p !== MANIFEST_FILE && p !== MANIFEST_NOTE).sort();
}

/** The manifest's file list for what is under `dir` now. */
export function hashFiles(dir: string): Manifest['files'] {
  return bundleFiles(dir).map((path) => {
    const bytes = readFileSync(join(dir, path));
    return { path, sha256: sha256Hex(bytes), bytes: bytes.length };
  });
}
