import { readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeStoreConformance } from '../../test/conformance/clickhouse-store.ts';
import { duplicate, normalisedEvent, origin } from '../../test/fixtures/clickhouse.ts';
import { openChdbStore } from './chdb.ts';
import { insertIsolating, isContentRefusal } from './guard.ts';
import { batchDedupToken } from './store.ts';
import { duplicateRow, type RawEventRow, rawEventRow } from './tables.ts';

describeStoreConformance('chdb store', (dataDir) => openChdbStore({ path: dataDir }));

describe('chdb store', () => {
  it('maps a second data directory in one process to CLICKHOUSE_UNAVAILABLE (retriable), saying why', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-chdb-'));
    const store = openChdbStore({ path: path.join(dir, 'one') });
    try {
      let error: unknown = null;
      try {
        openChdbStore({ path: path.join(dir, 'two') });
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'CLICKHOUSE_UNAVAILABLE', retriable: true });
      expect((error as Error).message).toContain('chdb holds one per process');
      // The open store is unharmed.
      expect(await store.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses calls after close', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-chdb-'));
    const store = openChdbStore({ path: dir });
    await store.close();
    await store.close(); // idempotent
    await expect(store.query('SELECT 1')).rejects.toMatchObject({ code: 'INTERNAL' });
    await rm(dir, { recursive: true, force: true });
  });
});

describe('chdb store RowBinary inserts', () => {
  it('drops a retried batch by its token (INSERT ... SELECT FROM file()), also one first sent as JSON', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-chdb-'));
    const store = openChdbStore({ path: dir });
    const json = openChdbStore({ path: dir, binaryInserts: false }); // same directory: a second connection
    try {
      await store.migrate();
      const rows = [0, 1, 2].map((n) => duplicateRow(duplicate(normalisedEvent({ n }))));
      const count = async () => Number((await store.query<{ n: number }>('SELECT count() AS n FROM duplicates'))[0]?.n);
      await store.insert('duplicates', rows, { dedupToken: 'rb-token' });
      await store.insert('duplicates', rows, { dedupToken: 'rb-token' });
      expect(await count()).toBe(3);
      // A batch landed as JSON before an upgrade, retried after it as RowBinary: still dropped.
      const later = rows.map((r) => ({ ...r, source_offset: r.source_offset + 10 }));
      await json.insert('duplicates', later, { dedupToken: 'json-then-rb' });
      await store.insert('duplicates', later, { dedupToken: 'json-then-rb' });
      expect(await count()).toBe(6);
      // Another token lands (the rows are the same: the table, not the insert, collapses them at merge time).
      await store.insert('duplicates', rows, { dedupToken: 'rb-token-2' });
      expect(await count()).toBe(9);
    } finally {
      await json.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('surfaces what the engine refuses in a RowBinary batch as a content refusal the guard isolates', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-chdb-'));
    const store = openChdbStore({ path: dir });
    try {
      await store.migrate();
      // Every row is exactly typed (the encoder writes it); row 2's raw_b64 is not base64, which only the table's
      // DEFAULT base64Decode(raw_b64) finds.
      const rows = [0, 1, 2, 3, 4].map((n) => rawEventRow(origin(n, Buffer.from(`raw-${n}`))));
      rows[2] = { ...(rows[2] as RawEventRow), raw_b64: '%%% not base64 %%%' };
      const refused = await insertIsolating(store, 'raw_events', rows, 'raw-batch');
      expect(refused.map((r) => r.index)).toEqual([2]);
      expect(refused[0]?.code).toBeGreaterThan(0);
      const [row] = await store.query<{ n: number }>('SELECT count() AS n FROM raw_events');
      expect(Number(row?.n)).toBe(4);
      // The refusal names the code, never the value.
      const error = await store.insert('raw_events', [rows[2] as RawEventRow], { dedupToken: 'one' }).catch((e) => e);
      expect(isContentRefusal(error)).toBe(true);
      expect((error as Error).message).not.toContain('not base64');
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes its insert files in a private directory (0700, files removed after each insert), removed on close', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-chdb-'));
    const spoolBase = path.join(dir, 'spool');
    await mkdir(spoolBase);
    const store = openChdbStore({ path: path.join(dir, 'db'), spoolBase });
    try {
      await store.migrate();
      expect(readdirSync(spoolBase)).toEqual([]); // made on first use
      await store.insert('duplicates', [duplicateRow(duplicate(normalisedEvent({ n: 1 })))], { dedupToken: 't' });
      const [spool] = readdirSync(spoolBase);
      expect(spool).toMatch(/^vigil-chdb-/);
      expect(statSync(path.join(spoolBase, spool as string)).mode & 0o777).toBe(0o700);
      expect(readdirSync(path.join(spoolBase, spool as string))).toEqual([]);
      const [row] = await store.query<{ n: number }>('SELECT count() AS n FROM duplicates');
      expect(Number(row?.n)).toBe(1);
    } finally {
      await store.close();
    }
    expect(readdirSync(spoolBase)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('the RowBinary spool cannot be written', () => {
  it('lands the batch as JSON and leaves nothing on disk (no spool directory, or its file cannot be written)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-chdb-'));
    const rows = [1, 2, 3].map((n) => duplicateRow(duplicate(normalisedEvent({ n }))));
    const count = async (store: ReturnType<typeof openChdbStore>) =>
      Number((await store.query<{ n: number }>('SELECT count() AS n FROM duplicates'))[0]?.n);
    try {
      // No spool directory can be made (its base is a file).
      const notADir = path.join(dir, 'file');
      await writeFile(notADir, '');
      const store = openChdbStore({ path: path.join(dir, 'db'), spoolBase: notADir });
      try {
        await store.migrate();
        await store.insert('duplicates', rows, { dedupToken: 'a' });
        expect(await count(store)).toBe(3);
      } finally {
        await store.close();
      }
      // The spool's directory went away under it (a tmpfs cleaned; a full /dev/shm refuses the write the same way).
      const spoolBase = path.join(dir, 'spool');
      await mkdir(spoolBase);
      const other = openChdbStore({ path: path.join(dir, 'db2'), spoolBase });
      try {
        await other.migrate();
        await other.insert('duplicates', rows.slice(0, 1), { dedupToken: 'b' });
        const [spool] = readdirSync(spoolBase);
        await rm(path.join(spoolBase, spool as string), { recursive: true });
        await other.insert('duplicates', rows.slice(1), { dedupToken: 'c' });
        expect(await count(other)).toBe(3);
        expect(readdirSync(spoolBase)).toEqual([]);
      } finally {
        await other.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('batchDedupToken', () => {
  it('derives the token from the batch: position, pipeline version and content', () => {
    const base = {
      pipeline: 'vitals@1',
      topic: 't',
      partition: 2,
      firstOffset: 10,
      lastOffset: 19,
      rawSha256s: ['a', 'b'],
    };
    expect(batchDedupToken(base)).toBe(batchDedupToken({ ...base, rawSha256s: ['a', 'b'] }));
    expect(batchDedupToken(base)).toMatch(/^vitals@1\|t\|2\|10-19\|[0-9a-f]{16}$/);
    expect(batchDedupToken({ ...base, rawSha256s: ['a', 'c'] })).not.toBe(batchDedupToken(base));
    expect(batchDedupToken({ ...base, pipeline: 'vitals@2' })).not.toBe(batchDedupToken(base));
    expect(batchDedupToken({ ...base, partition: 3 })).not.toBe(batchDedupToken(base));
  });
});
