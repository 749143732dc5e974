/**
 * The audit log in ClickHouse (infra/clickhouse/migrations/0008_audit.sql): landing stored records into
 * audit_entries / audit_checkpoints, and reading them back as records `verifyRecords` checks like any other store.
 *
 * Landing is a batch copy (`vigil audit land`): the records after the highest entry index already landed, in
 * batches whose insert deduplication token is derived from their content, so a rerun after a crash lands nothing
 * twice. A continuous sink from the topic is not built yet: run `vigil audit land` on a schedule.
 */
import { createHash } from 'node:crypto';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { toDateTime64 } from '../adapters/clickhouse/tables.ts';
import { checkpointTime, parseCheckpointBody } from './checkpoint.ts';
import { type AuditEntry, auditEntrySchema, entryJson } from './entry.ts';
import { leafHash } from './merkle.ts';
import type { AuditRecord } from './store.ts';

const BATCH = 10_000;

function entryRow(entry: AuditEntry) {
  const json = entryJson(entry);
  return {
    entry_index: entry.index,
    at: toDateTime64(entry.at, 'at'),
    actor: entry.actor,
    role: entry.role,
    action: entry.action,
    target: entry.target,
    purpose: entry.purpose,
    details_sha256: entry.details_sha256 ?? null,
    read_sha256: entry.read_sha256 ?? null,
    hash_key: entry.hash_key ?? null,
    prev: entry.prev ?? null,
    leaf_hash: leafHash(Buffer.from(json, 'utf8')).toString('hex'),
    entry_json: json,
  };
}

function checkpointRow(note: string) {
  const body = note.slice(0, note.lastIndexOf('\n\n') + 1);
  const checkpoint = parseCheckpointBody(body);
  const at = checkpointTime(checkpoint);
  return {
    tree_size: checkpoint.size,
    root_hash: checkpoint.root.toString('base64'),
    origin: checkpoint.origin,
    signed_at: at === undefined ? null : toDateTime64(at, 'signed_at'),
    note,
  };
}

const tokenOf = (kind: string, keys: readonly string[]): string =>
  `audit:${kind}:${createHash('sha256').update(keys.join('\n')).digest('hex').slice(0, 32)}`;

/**
 * Lands the records not yet in ClickHouse (entries above the highest landed index, checkpoints above the largest
 * landed size). Records that are not valid entries or checkpoints are skipped (verify the source first).
 *
 * @example
 * await landAuditRecords(clickhouse, await readAll(openKafkaAuditStore({ brokers, topic: TOPICS.auditLog })));
 */
export async function landAuditRecords(
  store: ClickHouseStore,
  records: readonly unknown[],
): Promise<{ entries: number; checkpoints: number }> {
  const [landed] = await store.query<{ entries: string; max_index: string; max_size: string }>(
    `SELECT (SELECT count() FROM audit_entries) AS entries,
            (SELECT max(entry_index) FROM audit_entries) AS max_index,
            (SELECT count() FROM audit_checkpoints) AS checkpoints,
            (SELECT max(tree_size) FROM audit_checkpoints) AS max_size`,
  );
  const fromIndex = Number(landed?.entries) > 0 ? Number(landed?.max_index) + 1 : 0;
  const fromSize = Number(landed?.max_size ?? 0);
  const entries: ReturnType<typeof entryRow>[] = [];
  const checkpoints: ReturnType<typeof checkpointRow>[] = [];
  for (const raw of records) {
    const record = raw as AuditRecord;
    if (record?.kind === 'entry') {
      const parsed = auditEntrySchema.safeParse(record.entry);
      if (parsed.success && parsed.data.index >= fromIndex) entries.push(entryRow(parsed.data));
    } else if (record?.kind === 'checkpoint' && typeof record.note === 'string') {
      try {
        const row = checkpointRow(record.note);
        if (row.tree_size > fromSize) checkpoints.push(row);
      } catch {
        // Not a checkpoint: verify names it; nothing to land.
      }
    }
  }
  for (let i = 0; i < entries.length; i += BATCH) {
    const batch = entries.slice(i, i + BATCH);
    await store.insert('audit_entries', batch, {
      dedupToken: tokenOf(
        'entries',
        batch.map((r) => `${r.entry_index}:${r.leaf_hash}`),
      ),
    });
  }
  if (checkpoints.length > 0) {
    await store.insert('audit_checkpoints', checkpoints, {
      dedupToken: tokenOf(
        'checkpoints',
        checkpoints.map((c) => c.note),
      ),
    });
  }
  return { entries: entries.length, checkpoints: checkpoints.length };
}

/** The landed log as records, in log order: entries by index, each checkpoint after the entries it covers. */
export async function readAuditRecordsFromClickHouse(store: ClickHouseStore): Promise<unknown[]> {
  const entries = await store.query<{ entry_json: string }>(
    'SELECT entry_json FROM audit_entries ORDER BY entry_index, landed_at',
  );
  const checkpoints = await store.query<{ tree_size: string; note: string }>(
    'SELECT tree_size, note FROM audit_checkpoints ORDER BY tree_size, landed_at',
  );
  const records: unknown[] = [];
  let c = 0;
  const flushCheckpoints = (upTo: number) => {
    while (c < checkpoints.length && Number(checkpoints[c]!.tree_size) <= upTo) {
      records.push({ kind: 'checkpoint', note: checkpoints[c]!.note });
      c++;
    }
  };
  entries.forEach((row, i) => {
    flushCheckpoints(i);
    let entry: unknown;
    try {
      entry = JSON.parse(row.entry_json);
    } catch {
      entry = row.entry_json;
    }
    records.push({ kind: 'entry', entry });
  });
  flushCheckpoints(Number.POSITIVE_INFINITY);
  return records;
}
