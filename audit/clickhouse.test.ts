/**
 * The audit tables on the embedded ClickHouse (chdb): a log landed from its store reads back as records that verify,
 * a rerun lands nothing twice, and a second copy of an entry smuggled into the table is named by verify.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import { loadMigrations } from '../adapters/clickhouse/migrations.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { ManualClock } from '../runtime/clock.ts';
import { generateNoteKeys, parseSignerKey, parseVerifierKey } from './checkpoint.ts';
import { landAuditRecords, readAuditRecordsFromClickHouse } from './clickhouse.ts';
import { hashKeyOf } from './entry.ts';
import { openAuditLog } from './log.ts';
import { MemoryAuditStore } from './stores/memory.ts';
import { verifyRecords } from './verify.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-ch-'));
const keys = generateNoteKeys('vigil.test/audit');
const verifier = parseVerifierKey(keys.verifier);
let store: ClickHouseStore;

beforeAll(async () => {
  store = openChdbStore({ path: dir });
  // Only this migration: the audit tables stand alone.
  const audit = (await loadMigrations()).find((m) => m.name === '0008_audit.sql')!;
  for (const statement of audit.statements) await store.command(statement);
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('audit tables', () => {
  it('land a log that reads back and verifies; a rerun lands nothing twice; a smuggled copy is named', async () => {
    const source = new MemoryAuditStore();
    const clock = new ManualClock();
    const log = await openAuditLog({
      store: source,
      clock,
      hashKey: hashKeyOf(Buffer.alloc(32, 3)),
      signer: { key: parseSignerKey(keys.signer), everyEntries: 25 },
    });
    for (let i = 0; i < 60; i++) {
      clock.advance(500);
      await log.append({
        actor: 'op-1',
        role: 'operator',
        action: 'model.rollout',
        target: 'model:news2@1.0.0',
        purpose: 'change',
        details: { i },
      });
    }
    expect(await landAuditRecords(store, source.records)).toEqual({ entries: 60, checkpoints: 2 });
    expect(await landAuditRecords(store, source.records)).toEqual({ entries: 0, checkpoints: 0 });
    for (let i = 60; i < 80; i++)
      await log.append({
        actor: 'op-1',
        role: 'operator',
        action: 'model.approve',
        target: 'model:news2@1.1.0',
        purpose: 'change',
      });
    await log.checkpoint();
    expect(await landAuditRecords(store, source.records)).toEqual({ entries: 20, checkpoints: 2 });

    const back = await readAuditRecordsFromClickHouse(store);
    expect(verifyRecords(back, verifier).report).toMatchObject({
      ok: true,
      entries: 80,
      checkpoints: 4,
      verified_size: 80,
    });
    const [who] = await store.query<{ n: string }>(
      "SELECT count() AS n FROM audit_entries WHERE action = 'model.rollout'",
    );
    expect(Number(who!.n)).toBe(60);

    await store.command(
      "INSERT INTO audit_entries SELECT * REPLACE (replace(entry_json, 'op-1', 'op-2') AS entry_json) FROM audit_entries WHERE entry_index = 42",
    );
    const tampered = verifyRecords(await readAuditRecordsFromClickHouse(store), verifier).report;
    expect(tampered).toMatchObject({ ok: false, first_bad_index: 42 });
  });
});
