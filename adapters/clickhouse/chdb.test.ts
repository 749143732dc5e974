import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeStoreConformance } from '../../test/conformance/clickhouse-store.ts';
import { openChdbStore } from './chdb.ts';
import { batchDedupToken } from './store.ts';

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
