/**
 * The checkpoint signer as its own process (`vigil audit checkpoint [--every S]`): it reads the stored log, checks
 * it (a signer must never sign over a tampered log), and appends a signed checkpoint of the whole tree when it grew
 * since the last good one. The pipeline that appends entries never holds the signer key.
 */
import type { Clock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import { type SignerKey, signCheckpoint, timeExtension, verifierOf } from './checkpoint.ts';
import type { AuditStore } from './store.ts';
import { createVerifier } from './verify.ts';

/** Returns the note appended, or null when the tree did not grow since the last good checkpoint. */
export async function signStoredLog(store: AuditStore, key: SignerKey, clock: Clock): Promise<string | null> {
  const verifier = createVerifier(verifierOf(key));
  const following = await store.follow((record) => verifier.add(record));
  try {
    await following.caughtUp;
  } finally {
    await following.close();
  }
  const { report, tree } = verifier.finish();
  if (!report.ok) {
    throw new VigilError('CONFIG_INVALID', `refusing to sign: the audit log does not verify (${report.problem})`);
  }
  if (tree.size === report.verified_size) return null;
  const note = signCheckpoint(
    { origin: key.name, size: tree.size, root: tree.root(), extensions: [timeExtension(clock.now())] },
    key,
  );
  await store.append(`checkpoint/${tree.size}`, { kind: 'checkpoint', note });
  return note;
}
