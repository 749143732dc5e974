/**
 * `vigil audit prove`: inclusion and consistency proofs against the latest signed checkpoint, as self-contained JSON
 * an auditor checks elsewhere with tools/audit-verifier/verify.mjs (no Vigil needed): the proof carries the entry's
 * canonical JSON and the checkpoint's signed note; hashes are base64, as in the checkpoint.
 *
 * A proof is only given from a log that verifies up to that checkpoint: proving against a tampered log would lend
 * it credibility.
 */
import { VigilError } from '../runtime/errors.ts';
import type { VerifiedLog } from './verify.ts';

export interface InclusionProof {
  readonly kind: 'inclusion';
  readonly index: number;
  /** The entry's canonical JSON: its leaf hash is SHA-256(0x00 || UTF-8 bytes). */
  readonly entry: string;
  readonly leaf_hash: string;
  readonly tree_size: number;
  readonly proof: readonly string[];
  /** The signed note of the checkpoint the proof leads to. */
  readonly checkpoint: string;
}

export interface ConsistencyProof {
  readonly kind: 'consistency';
  readonly old_size: number;
  readonly old_root: string;
  /** The signed checkpoint of the old size, when one was stored. */
  readonly old_checkpoint: string | null;
  readonly tree_size: number;
  readonly proof: readonly string[];
  readonly checkpoint: string;
}

function latestGood(log: VerifiedLog): VerifiedLog['good'][number] {
  const latest = log.good.at(-1);
  if (!latest)
    throw new VigilError(
      'CONFIG_INVALID',
      'the audit log has no signed checkpoint that verifies: nothing to prove against',
    );
  const bad = log.report.first_bad_index;
  if (bad !== null && bad < latest.checkpoint.size) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the audit log does not verify (first bad index ${bad}): run \`vigil audit verify\``,
    );
  }
  return latest;
}

export function proveInclusion(log: VerifiedLog, index: number): InclusionProof {
  const latest = latestGood(log);
  const size = latest.checkpoint.size;
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new VigilError(
      'CONFIG_INVALID',
      `entry ${index} is not covered by the latest signed checkpoint (size ${size})`,
    );
  }
  const entry = log.entry(index);
  if (entry === undefined) throw new VigilError('INTERNAL', `entry ${index} was not kept by the verifier`);
  return {
    kind: 'inclusion',
    index,
    entry,
    leaf_hash: log.tree.leaf(index).toString('base64'),
    tree_size: size,
    proof: log.tree.inclusionProof(index, size).map((h) => h.toString('base64')),
    checkpoint: latest.note,
  };
}

export function proveConsistency(log: VerifiedLog, oldSize: number): ConsistencyProof {
  const latest = latestGood(log);
  const size = latest.checkpoint.size;
  if (!Number.isInteger(oldSize) || oldSize < 1 || oldSize > size) {
    throw new VigilError('CONFIG_INVALID', `old size ${oldSize} is not in 1..${size} (the latest signed checkpoint)`);
  }
  const old = log.good.find((g) => g.checkpoint.size === oldSize);
  return {
    kind: 'consistency',
    old_size: oldSize,
    old_root: log.tree.root(oldSize).toString('base64'),
    old_checkpoint: old?.note ?? null,
    tree_size: size,
    proof: log.tree.consistencyProof(oldSize, size).map((h) => h.toString('base64')),
    checkpoint: latest.note,
  };
}
