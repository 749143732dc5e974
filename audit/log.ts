/**
 * The append API every part of Vigil calls to record a control-plane change or an access:
 *
 *   const log = await openAuditLog({ store, clock, hashKey, signer: { key, everyEntries: 1000, everyMs: 60_000 } });
 *   const { index, leaf_hash } = await log.append({ actor, role, action, target, purpose, read: rows });
 *
 * `append` assigns the next index, digests `details` / `read` under the hashing key (their values are never stored),
 * links the entry to the one before (`prev`), and resolves once the store holds it durably. A log that signs its own
 * checkpoints keeps the tree as its right edge only (CompactTree): memory stays O(log n) however long the log.
 *
 * The checkpoint signer is optional: with it, a checkpoint is appended after every `everyEntries` entries, and when
 * `everyMs` has passed since the last one and the tree grew (checked on each append and on `tick()`, which a timer
 * calls when `timer: true`). Without it, the log holds only entries and a separate signer process (`vigil audit
 * checkpoint`, the production shape: the key never enters the pipeline) signs what is stored.
 *
 * One writer per store, enforced: opening claims the store (`claimWriter`: Kafka fences the previous writer, the file
 * store takes its lock) before reading where it ends, which without a signer is only its last records (`tail`). A
 * store failure leaves the log unusable (every later append rejects): reopen it; `appendOnce` does so for one-shot
 * writers.
 */
import type { Clock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import {
  checkpointTime,
  type SignerKey,
  signCheckpoint,
  timeExtension,
  verifierOf,
  verifyCheckpoint,
} from './checkpoint.ts';
import {
  type AuditEntry,
  type AuditEntryInput,
  auditEntrySchema,
  entryLeafHash,
  type HashKey,
  keyedDigest,
} from './entry.ts';
import { CompactTree } from './merkle.ts';
import { type AuditRecord, type AuditStore, readAll, recordKey } from './store.ts';

export interface CheckpointCadence {
  readonly key: SignerKey;
  /** Sign after this many entries since the last checkpoint. */
  readonly everyEntries?: number;
  /** Sign when this long has passed since the last checkpoint and the tree grew. */
  readonly everyMs?: number;
  /** Run `tick()` on a real timer every `everyMs` (production); tests drive `tick()` with a ManualClock. */
  readonly timer?: boolean;
}

export interface AuditLogOptions {
  readonly store: AuditStore;
  readonly clock: Clock;
  /** Needed to append entries with `details` or `read`. */
  readonly hashKey?: HashKey;
  readonly signer?: CheckpointCadence;
}

export interface AuditLog {
  append(input: AuditEntryInput): Promise<{ readonly index: number; readonly leaf_hash: string }>;
  /** Signs and appends a checkpoint of the tree now (if it grew since the last); returns the note, or null. */
  checkpoint(): Promise<string | null>;
  /** The time cadence: a checkpoint if `everyMs` passed and the tree grew. */
  tick(): Promise<string | null>;
  readonly size: number;
  close(): Promise<void>;
}

interface Recovered {
  /** The next index. */
  readonly next: number;
  readonly last: Buffer | null;
  /** The tree's right edge: only kept when this log signs checkpoints itself. */
  readonly tree: CompactTree | null;
  readonly checkpointSize: number;
  readonly checkpointAt: number | null;
}

const gapError = (at: number) =>
  new VigilError(
    'CONFIG_INVALID',
    `the audit store does not continue gap-free at entry ${at}: run \`vigil audit verify\` before appending`,
  );

/** Re-reads the whole store (a signer needs the tree); refuses a store whose entries are not gap-free. */
async function recoverAll(store: AuditStore, signer: SignerKey | undefined): Promise<Recovered> {
  const tree = new CompactTree();
  let last: Buffer | null = null;
  let checkpointSize = 0;
  let checkpointAt: number | null = null;
  const verifier = signer ? verifierOf(signer) : null;
  for (const raw of await readAll(store)) {
    const record = raw as AuditRecord;
    if (record?.kind === 'entry') {
      const parsed = auditEntrySchema.safeParse(record.entry);
      if (!parsed.success || parsed.data.index !== tree.size) throw gapError(tree.size);
      last = entryLeafHash(parsed.data);
      tree.append(last);
    } else if (record?.kind === 'checkpoint' && verifier) {
      const check = verifyCheckpoint(record.note, verifier);
      if (check.ok) {
        checkpointSize = check.checkpoint.size;
        checkpointAt = checkpointTime(check.checkpoint) ?? null;
      }
    }
  }
  return { next: tree.size, last, tree: signer ? tree : null, checkpointSize, checkpointAt };
}

const TAIL = 64;

/** Without a signer only the last entry matters: read the store's end when it can, else all of it. */
async function recover(store: AuditStore, signer: SignerKey | undefined): Promise<Recovered> {
  if (signer || !store.tail) return recoverAll(store, signer);
  const tail = await store.tail(TAIL);
  for (let i = tail.length - 1; i >= 0; i--) {
    const record = tail[i] as AuditRecord;
    if (record?.kind !== 'entry') continue;
    const parsed = auditEntrySchema.safeParse(record.entry);
    if (!parsed.success) {
      throw new VigilError(
        'CONFIG_INVALID',
        'the audit store ends with an invalid entry: run `vigil audit verify` before appending',
      );
    }
    return {
      next: parsed.data.index + 1,
      last: entryLeafHash(parsed.data),
      tree: null,
      checkpointSize: 0,
      checkpointAt: null,
    };
  }
  // No entry in the tail: an empty log, or a run of checkpoints longer than the tail (read it all then).
  return tail.length < TAIL
    ? { next: 0, last: null, tree: null, checkpointSize: 0, checkpointAt: null }
    : recoverAll(store, signer);
}

/**
 * Opens (or creates) an audit log on a store, continuing after its last entry.
 *
 * @example
 * const log = await openAuditLog({ store: openFileAuditStore('.vigil/audit'), clock: systemClock, hashKey });
 * await log.append({ actor: 'alice', role: 'clinician', action: 'data.read', target: 'site:ward-7', purpose: 'treatment', read: rows });
 */
export async function openAuditLog(options: AuditLogOptions): Promise<AuditLog> {
  const { store, clock, hashKey, signer } = options;
  // Claim first, then read: nothing another writer appends can land between our read and our first append.
  await store.claimWriter?.();
  const recovered = await recover(store, signer?.key);
  const tree = recovered.tree;
  let next = recovered.next;
  let last = recovered.last;
  let checkpointSize = recovered.checkpointSize;
  let checkpointAt = recovered.checkpointAt ?? clock.now();
  let failed: unknown = null;
  let closed = false;

  const write = (record: AuditRecord): Promise<void> =>
    store.append(recordKey(record, next), record).catch((error) => {
      failed ??= error;
      throw error;
    });

  const signNow = (): Promise<string> | null => {
    if (!signer || !tree || tree.size === checkpointSize) return null;
    const at = clock.now();
    const note = signCheckpoint(
      { origin: signer.key.name, size: tree.size, root: tree.root(), extensions: [timeExtension(at)] },
      signer.key,
    );
    checkpointSize = tree.size;
    checkpointAt = at;
    return write({ kind: 'checkpoint', note }).then(() => note);
  };

  const due = (): boolean =>
    signer !== undefined &&
    next > checkpointSize &&
    ((signer.everyEntries !== undefined && next - checkpointSize >= signer.everyEntries) ||
      (signer.everyMs !== undefined && clock.now() - checkpointAt >= signer.everyMs));

  const usable = (): void => {
    if (closed) throw new VigilError('CONFIG_INVALID', 'the audit log is closed');
    if (failed) throw new VigilError('INTERNAL', 'an earlier audit append failed: reopen the log', { cause: failed });
  };

  const timer =
    signer?.timer && signer.everyMs
      ? setInterval(() => {
          if (due()) void signNow()?.catch(() => {});
        }, signer.everyMs).unref()
      : null;

  return {
    get size() {
      return next;
    },

    async append(input) {
      usable();
      if ((input.details !== undefined || input.read !== undefined) && !hashKey) {
        throw new VigilError('CONFIG_INVALID', 'an entry with details or read needs the audit hashing key');
      }
      const candidate: AuditEntry = {
        index: next,
        at: input.at ?? clock.now(),
        actor: input.actor,
        role: input.role,
        action: input.action,
        target: input.target,
        purpose: input.purpose,
        ...(input.details !== undefined ? { details_sha256: keyedDigest(hashKey!, input.details) } : {}),
        ...(input.read !== undefined ? { read_sha256: keyedDigest(hashKey!, input.read) } : {}),
        ...(hashKey && (input.details !== undefined || input.read !== undefined) ? { hash_key: hashKey.id } : {}),
        ...(last ? { prev: last.toString('hex') } : {}),
      };
      const parsed = auditEntrySchema.safeParse(candidate);
      if (!parsed.success) {
        throw new VigilError(
          'CONFIG_INVALID',
          `not a valid audit entry: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      }
      const entry = parsed.data;
      // State moves synchronously, before any await: concurrent appends get consecutive indexes in call order.
      const leaf = entryLeafHash(entry);
      const written = write({ kind: 'entry', entry });
      tree?.append(leaf);
      next++;
      last = leaf;
      const signed = due() ? signNow() : null;
      await written;
      if (signed) await signed;
      return { index: entry.index, leaf_hash: leaf.toString('hex') };
    },

    async checkpoint() {
      usable();
      return (await signNow()) ?? null;
    },

    async tick() {
      usable();
      return due() ? ((await signNow()) ?? null) : null;
    },

    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      await store.close();
    },
  };
}

/**
 * One entry from a short-lived writer (a CLI read): opens the log, appends, closes; when another writer claimed the
 * log in between (KAFKA_FENCED), backs off (random, growing) and retries, up to `attempts` times.
 *
 * @example
 * await appendOnce(() => openAuditLog({ store: openKafkaAuditStore({ brokers, topic }), clock, hashKey }), entry);
 */
export async function appendOnce(
  open: () => Promise<AuditLog>,
  input: AuditEntryInput,
  attempts = 5,
): Promise<{ readonly index: number; readonly leaf_hash: string }> {
  for (let attempt = 1; ; attempt++) {
    const log = await open();
    try {
      return await log.append(input);
    } catch (error) {
      const fenced =
        error instanceof VigilError && (error.code === 'KAFKA_FENCED' || error.code === 'KAFKA_TRANSACTION_ABORTED');
      if (!fenced || attempt >= attempts) throw error;
    } finally {
      await log.close().catch(() => {});
    }
    // Writers that keep claiming the log from each other back off at random, so one of them gets through.
    await new Promise((r) => setTimeout(r, Math.random() * 250 * attempt));
  }
}
