/**
 * The checkpoint signer as its own process (`vigil audit checkpoint [--every S]`): it reads the stored log, checks
 * it (a signer must never sign over a tampered log), and appends a signed checkpoint of the whole tree when it grew
 * since the last good one. The pipeline that appends entries never holds the signer key.
 *
 * With a cadence it follows the log live (one pass over the history, then only what is appended), so each round
 * costs what arrived since the last one plus a check of the checkpoints, not a re-read of the whole log.
 */
import type { Clock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import { type SignerKey, signCheckpoint, timeExtension, verifierOf } from './checkpoint.ts';
import type { AuditStore } from './store.ts';
import { createVerifier, type VerifiedLog } from './verify.ts';

/** Signs the verified tree if it grew past `signedSize`; returns the note appended, or null. */
async function signIfGrown(
  verified: VerifiedLog,
  store: AuditStore,
  key: SignerKey,
  clock: Clock,
  signedSize: number,
): Promise<string | null> {
  const { report, tree } = verified;
  if (!report.ok) {
    throw new VigilError('CONFIG_INVALID', `refusing to sign: the audit log does not verify (${report.problem})`);
  }
  if (tree.size <= Math.max(report.verified_size, signedSize)) return null;
  const note = signCheckpoint(
    { origin: key.name, size: tree.size, root: tree.root(), extensions: [timeExtension(clock.now())] },
    key,
  );
  await store.append(`checkpoint/${tree.size}`, { kind: 'checkpoint', note });
  return note;
}

/** One round: read the log, check it, sign it if it grew. Returns the note appended, or null. */
export async function signStoredLog(store: AuditStore, key: SignerKey, clock: Clock): Promise<string | null> {
  const verifier = createVerifier(verifierOf(key));
  const following = await store.follow((record) => verifier.add(record));
  try {
    await following.caughtUp;
  } finally {
    await following.close();
  }
  return signIfGrown(verifier.finish(), store, key, clock, 0);
}

/**
 * Signs at a fixed cadence until `stop` resolves: follows the log live, and every `everyMs` checks what it holds and
 * signs if the tree grew. Throws (and stops signing) as soon as the log does not verify.
 *
 * @example
 * await runSigner(store, loadSignerKey('.vigil/audit/checkpoint.key'), systemClock, 60_000, stopped, (note) => log(note));
 */
export async function runSigner(
  store: AuditStore,
  key: SignerKey,
  clock: Clock,
  everyMs: number,
  stop: Promise<void>,
  onSigned: (note: string | null) => void = () => {},
): Promise<void> {
  const verifier = createVerifier(verifierOf(key));
  const following = await store.follow((record) => verifier.add(record));
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  let signedSize = 0;
  try {
    await following.caughtUp;
    while (!stopped) {
      const verified = verifier.finish();
      const note = await signIfGrown(verified, store, key, clock, signedSize);
      if (note) signedSize = verified.tree.size;
      onSigned(note);
      await Promise.race([stop, new Promise((r) => setTimeout(r, everyMs).unref())]);
    }
  } finally {
    await following.close();
  }
}
