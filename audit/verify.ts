/**
 * `vigil audit verify`: rebuild the tree from the stored entries and check everything a stored log can be checked
 * against, reporting every problem found and the first bad index:
 *
 * - each entry is a valid entry and sits at its own index (a deleted, reordered or inserted entry breaks this where
 *   it happened);
 * - each entry's `prev` is the leaf hash of the entry before (an edited entry is named by its successor's record);
 * - each checkpoint's signature verifies under the verifier key, its size does not exceed the entries stored, its
 *   root equals the rebuilt tree's root at its size (an edit the chain cannot show, e.g. to the last entry or with
 *   the chain rewritten after it, is caught here, within the range since the previous good checkpoint), and it is
 *   consistent with the previous checkpoint (RFC 9162 consistency proof from the rebuilt tree, checked against the
 *   two signed roots; it never grows smaller).
 *
 * Entries after the last checkpoint are reported (`unsigned_tail`), not failed: the signer covers them next.
 */
import { type Checkpoint, type VerifierKey, verifyCheckpoint } from './checkpoint.ts';
import { auditEntrySchema, entryJson } from './entry.ts';
import { leafHash, MerkleTree, verifyConsistency } from './merkle.ts';

export interface VerifyProblem {
  /** The first entry index the problem points at, when it points at one. */
  readonly index?: number;
  /** The checkpoint's ordinal (0 = the first stored), when it is about one. */
  readonly checkpoint?: number;
  readonly problem: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly entries: number;
  readonly checkpoints: number;
  readonly first_bad_index: number | null;
  readonly first_bad_checkpoint: number | null;
  /** The first problem (by index, then checkpoint), or null. */
  readonly problem: string | null;
  readonly problems: readonly VerifyProblem[];
  /** Size of the latest checkpoint that verified and matches the entries (0 if none). */
  readonly verified_size: number;
  readonly unsigned_tail: number;
  /** Root of the rebuilt tree over every stored entry, base64. */
  readonly root: string;
}

/** What verification rebuilt: the tree and the checkpoints that verified, for the prover. */
export interface VerifiedLog {
  readonly report: VerifyReport;
  readonly tree: MerkleTree;
  /** Canonical JSON of a stored entry kept for proofs (`keep`), by position. */
  entry(index: number): string | undefined;
  /** Checkpoints whose signature verified and whose root matches the tree, in log order, with their notes. */
  readonly good: readonly { readonly ordinal: number; readonly checkpoint: Checkpoint; readonly note: string }[];
}

const MAX_PROBLEMS = 100;

export interface VerifyOptions {
  /**
   * Signed checkpoints kept outside the log (by an auditor, a witness, an earlier `prove`): the one defence against a
   * log cut short together with its last checkpoints. Each must verify, cover no more entries than are stored, and
   * match the rebuilt root at its size.
   */
  readonly held?: readonly string[];
  /** Entry texts to keep for proofs (by index), or all of them; none by default, so a long log streams through. */
  readonly keep?: readonly number[] | 'all';
}

export function createVerifier(
  key: VerifierKey,
  options: VerifyOptions = {},
): { add(record: unknown): void; finish(): VerifiedLog } {
  const tree = new MerkleTree();
  const entries = new Map<number, string>();
  const keep = (i: number): boolean => options.keep === 'all' || (options.keep?.includes(i) ?? false);
  const entryProblems: VerifyProblem[] = [];
  const indexBroken = new Set<number>();
  const signed: { ordinal: number; checkpoint: Checkpoint; note: string; after: number }[] = [];
  let ordinal = 0;
  let previousIndex = -1;

  const add = (raw: unknown): void => {
    const record = raw as { kind?: unknown; entry?: unknown; note?: unknown } | null;
    if (record?.kind === 'checkpoint' && typeof record.note === 'string') {
      const check = verifyCheckpoint(record.note, key);
      if (check.ok) signed.push({ ordinal, checkpoint: check.checkpoint, note: record.note, after: tree.size });
      else
        entryProblems.push({
          checkpoint: ordinal,
          problem: `checkpoint ${ordinal} (after entry ${tree.size - 1}): ${check.problem}`,
        });
      ordinal++;
      return;
    }
    const p = tree.size;
    if (record?.kind !== 'entry') {
      entryProblems.push({ index: p, problem: `record at entry position ${p} is neither an entry nor a checkpoint` });
      indexBroken.add(p);
      previousIndex = p;
      const bytes = Buffer.from(JSON.stringify(raw ?? null));
      if (keep(p)) entries.set(p, bytes.toString('utf8'));
      tree.append(leafHash(bytes));
      return;
    }
    const parsed = auditEntrySchema.safeParse(record.entry);
    if (!parsed.success) {
      entryProblems.push({
        index: p,
        problem: `entry ${p} is not a valid audit entry (${parsed.error.issues[0]?.message})`,
      });
      indexBroken.add(p);
      previousIndex = p;
      const text = JSON.stringify(record.entry ?? null);
      if (keep(p)) entries.set(p, text);
      tree.append(leafHash(Buffer.from(text)));
      return;
    }
    const entry = parsed.data;
    // Each entry must follow the one before: a break is reported where it happens, once (a deletion shifts every
    // later position, but each later entry still follows its stored predecessor).
    const expected = p === 0 ? 0 : previousIndex + 1;
    previousIndex = entry.index;
    if (entry.index !== expected) {
      // A repeat of an earlier index means something foreign came in at or after that index.
      entryProblems.push({
        index: Math.min(p, entry.index),
        problem:
          entry.index > expected
            ? `entry ${expected} is missing: position ${p} holds entry ${entry.index} (deleted or reordered)`
            : `position ${p} holds entry ${entry.index} after entry ${expected - 1}: an entry was inserted, duplicated or reordered at or after ${entry.index}`,
      });
      indexBroken.add(p);
    } else if (p === 0 && entry.prev !== undefined) {
      entryProblems.push({ index: 0, problem: 'entry 0 records a predecessor (inserted before the start?)' });
    } else if (p > 0 && entry.prev !== tree.leaf(p - 1).toString('hex') && !indexBroken.has(p - 1)) {
      entryProblems.push({
        index: p - 1,
        problem: `entry ${p - 1} was edited: entry ${p} records a different hash for it`,
      });
    }
    const json = entryJson(entry);
    if (keep(p)) entries.set(p, json);
    tree.append(leafHash(Buffer.from(json, 'utf8')));
  };

  // finish() leaves the state of add() untouched: a live follower (the signer) may call it after every round.
  const finish = (): VerifiedLog => {
    const problems = [...entryProblems];
    const precise = problems.filter((x) => x.index !== undefined).map((x) => x.index!);
    const good: VerifiedLog['good'][number][] = [];
    let previous: (typeof signed)[number] | null = null;
    let previousGoodSize = 0;
    for (const c of signed) {
      const { size, root } = c.checkpoint;
      if (size > tree.size) {
        problems.push({
          checkpoint: c.ordinal,
          index: tree.size,
          problem: `checkpoint ${c.ordinal} covers ${size} entries but the store holds ${tree.size}: entries ${tree.size}..${size - 1} deleted`,
        });
        continue;
      }
      if (size > c.after) {
        problems.push({
          checkpoint: c.ordinal,
          problem: `checkpoint ${c.ordinal} (size ${size}) precedes entries it covers (only ${c.after} entries before it: reordered)`,
        });
      }
      if (!tree.root(size).equals(root)) {
        // The chain may already name the entry; if not, the edit lies somewhere after the last good checkpoint.
        const named = precise.some((i) => i >= previousGoodSize && i < size);
        problems.push({
          checkpoint: c.ordinal,
          ...(named ? {} : { index: previousGoodSize }),
          problem:
            `checkpoint ${c.ordinal} (size ${size}) does not match the stored entries: an entry in ` +
            `${previousGoodSize}..${size - 1} was edited, deleted, reordered or inserted`,
        });
        // Consistency is checked from the last good checkpoint, not from one already found wrong.
        continue;
      }
      if (previous) {
        const from = previous.checkpoint;
        if (size < from.size) {
          problems.push({
            checkpoint: c.ordinal,
            problem: `checkpoint ${c.ordinal} (size ${size}) is smaller than checkpoint ${previous.ordinal} (size ${from.size})`,
          });
        } else if (from.size <= tree.size) {
          const proof = tree.consistencyProof(from.size, size);
          if (!verifyConsistency(from.size, size, from.root, root, proof)) {
            problems.push({
              checkpoint: c.ordinal,
              problem: `checkpoint ${c.ordinal} is not consistent with checkpoint ${previous.ordinal}`,
            });
          }
        }
      }
      good.push({ ordinal: c.ordinal, checkpoint: c.checkpoint, note: c.note });
      previous = c;
      previousGoodSize = Math.max(previousGoodSize, size);
    }

    for (const [i, note] of (options.held ?? []).entries()) {
      const check = verifyCheckpoint(note, key);
      if (!check.ok) {
        problems.push({ problem: `held checkpoint ${i}: ${check.problem}` });
        continue;
      }
      const { size, root } = check.checkpoint;
      if (size > tree.size) {
        problems.push({
          index: tree.size,
          problem: `held checkpoint ${i} covers ${size} entries but the store holds ${tree.size}: the log was cut short (entries ${tree.size}..${size - 1} gone)`,
        });
      } else if (!tree.root(size).equals(root)) {
        problems.push({
          problem: `held checkpoint ${i} (size ${size}) does not match the stored entries: the log was rewritten before ${size}`,
        });
      }
    }

    problems.sort(
      (a, b) =>
        (a.index ?? Number.POSITIVE_INFINITY) - (b.index ?? Number.POSITIVE_INFINITY) ||
        (a.checkpoint ?? Number.POSITIVE_INFINITY) - (b.checkpoint ?? Number.POSITIVE_INFINITY),
    );
    const indexes = problems.filter((x) => x.index !== undefined).map((x) => x.index!);
    const checkpoints = problems.filter((x) => x.checkpoint !== undefined).map((x) => x.checkpoint!);
    const verifiedSize = good.at(-1)?.checkpoint.size ?? 0;
    const report: VerifyReport = {
      ok: problems.length === 0,
      entries: tree.size,
      checkpoints: ordinal,
      first_bad_index: indexes.length > 0 ? Math.min(...indexes) : null,
      first_bad_checkpoint: checkpoints.length > 0 ? Math.min(...checkpoints) : null,
      problem: problems[0]?.problem ?? null,
      problems: problems.slice(0, MAX_PROBLEMS),
      verified_size: verifiedSize,
      unsigned_tail: tree.size - verifiedSize,
      root: tree.root().toString('base64'),
    };
    return { report, tree, entry: (i: number) => entries.get(i), good };
  };
  return { add, finish };
}

/** Verifies records already in memory (keeps every entry's text for proofs). */
export function verifyRecords(records: readonly unknown[], key: VerifierKey, options: VerifyOptions = {}): VerifiedLog {
  const verifier = createVerifier(key, { keep: 'all', ...options });
  for (const record of records) verifier.add(record);
  return verifier.finish();
}
