/**
 * Where an audit log lives: an append-only `ControlLog` (identity/types.ts) of records, entries and signed
 * checkpoints interleaved in log order (a checkpoint follows the entries it covers). Stores: a JSON-lines file
 * (stores/file.ts: embedded mode, tests), the single-partition Kafka topic TOPICS.auditLog (stores/kafka.ts), memory
 * (stores/memory.ts: unit tests, benchmarks). A reader gets records as stored: the verifier decides what they are.
 */
import type { ControlLog } from '../identity/types.ts';
import type { AuditEntry } from './entry.ts';

export type AuditRecord =
  | { readonly kind: 'entry'; readonly entry: AuditEntry }
  | { readonly kind: 'checkpoint'; readonly note: string };

export type AuditStore = ControlLog<AuditRecord> & {
  /**
   * Makes this store the log's only writer before the writer reads where the log ends (Kafka: a transactional id
   * that fences the previous writer). Stores with one writer by construction (a file, memory) need not have it.
   */
  claimWriter?(): Promise<void>;
  /**
   * Up to the last `n` records, in log order: all a writer without a signer needs to continue (the next index and the
   * last leaf hash), so opening a long log costs the same as opening a short one.
   */
  tail?(n: number): Promise<unknown[]>;
};

/** The key each record is stored under: the entry's index, or `checkpoint/<size>`. */
export function recordKey(record: AuditRecord, size: number): string {
  return record.kind === 'entry' ? String(record.entry.index) : `checkpoint/${size}`;
}

/** Every record stored now, in log order (as stored: possibly malformed, so `unknown`). */
export async function readAll(store: ControlLog<unknown>): Promise<unknown[]> {
  const records: unknown[] = [];
  const following = await store.follow((record) => records.push(record));
  try {
    await following.caughtUp;
  } finally {
    await following.close();
  }
  return records;
}
