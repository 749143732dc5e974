/**
 * The HTTP path of the server store (@clickhouse/client) against the local stack's ClickHouse server.
 *
 * The local server is Debian's 18.16 (2018): far older than the migrations target, so this drives what it can
 * honestly cover: a JSONEachRow insert with an explicit column list through the adapter's own insert function into a
 * table created with 18.16-compatible DDL, read back and checked value by value; the adapter refusing that server
 * version with a message that says why; and a closed port mapped to CLICKHOUSE_UNAVAILABLE (retriable).
 * Needs `node bin/vigil.js stack up` (CLICKHOUSE_URL overrides the address).
 */
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RowGuard } from '../../adapters/clickhouse/guard.ts';
import { insertJsonEachRow, mapServerError, openServerStore, serverVersion } from '../../adapters/clickhouse/server.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';

const url = resolveEndpoints().clickhouseUrl;
const table = `vigil_it_${process.pid}`;
let client: ClickHouseClient;

beforeAll(async () => {
  client = createClient({ url, log: { level: ClickHouseLogLevel.OFF } });
  const ping = await client.ping();
  if (!ping.success) throw new Error(`ClickHouse is not answering at ${url}: run \`node bin/vigil.js stack up\` first`);
  // 18.16-compatible DDL: no DateTime64, no LowCardinality by default, no named tuples.
  await client.command({
    query: `CREATE TABLE ${table} (
      event_id String,
      device_id String,
      site_id String,
      firmware_version String,
      observed_at DateTime,
      spo2 Nullable(Int32),
      score Float64,
      provenance_flags Array(String),
      source_offset Int64
    ) ENGINE = MergeTree ORDER BY (firmware_version, site_id, device_id, observed_at, event_id)`,
  });
});

afterAll(async () => {
  await client?.command({ query: `DROP TABLE IF EXISTS ${table}` });
  await client?.close();
});

describe('ClickHouse server over HTTP', () => {
  it('takes a JSONEachRow batch with a column list and returns the same values', async () => {
    const rows = Array.from({ length: 250 }, (_, i) => ({
      event_id: `01JQ${String(i).padStart(22, '0')}`,
      device_id: `dev-${i % 7}`,
      site_id: i % 2 === 0 ? 'site-a' : 'site-b',
      firmware_version: i % 3 === 0 ? '4.1.0' : '4.2.0',
      observed_at: new Date(Date.UTC(2026, 2, 10, 8, 0, i)).toISOString().slice(0, 19).replace('T', ' '),
      spo2: i % 10 === 0 ? null : 88 + (i % 12),
      score: i / 8,
      provenance_flags: i % 5 === 0 ? ['clock_skew', 'late_arrival'] : [],
      source_offset: 9_007_199_254_000 + i,
    }));
    const columns = Object.keys(rows[0]!);
    await insertJsonEachRow(client, { table, rows, columns });

    const result = await client.query({
      query: `SELECT ${columns.join(', ')} FROM ${table} ORDER BY event_id`,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    const back = await result.json<Record<string, unknown>>();
    expect(back).toHaveLength(250);
    expect(back).toEqual(rows);

    const [summary] = await (
      await client.query({
        query: `SELECT count() AS n, countIf(spo2 IS NULL) AS missing, uniqExact(device_id) AS devices,
                       sum(length(provenance_flags)) AS flags FROM ${table}`,
        format: 'JSONEachRow',
        clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
      })
    ).json<{ n: number; missing: number; devices: number; flags: number }>();
    expect(summary).toEqual({ n: 250, missing: 25, devices: 7, flags: 100 });
  });

  it('maps a refused insert to CLICKHOUSE_QUERY_FAILED, not retriable (this server has no dedup tokens)', async () => {
    const error = await insertJsonEachRow(client, {
      table,
      rows: [{ event_id: 'x' }],
      columns: ['event_id'],
      settings: { insert_deduplication_token: 'batch-1' },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VigilError);
    expect(error).toMatchObject({ code: 'CLICKHOUSE_QUERY_FAILED', retriable: false });
    expect((error as Error).message).toContain('code 115');
  });

  it('the store refuses a server older than it supports, saying which version it needs', async () => {
    expect(await serverVersion(client)).toMatch(/^\d+\.\d+/);
    const store = openServerStore({ url });
    try {
      const error = await store.query('SELECT 1').catch((e: unknown) => e);
      const version = await serverVersion(client);
      if (Number(version.split('.')[0]) < 23) {
        expect(error).toMatchObject({ code: 'CONFIG_INVALID', retriable: false });
        expect((error as Error).message).toContain(`runs ${version}; Vigil needs 23.8 or newer`);
      } else {
        // CLICKHOUSE_URL points at a current server: then the store simply works.
        expect(error).toEqual([{ 1: 1 }]);
      }
    } finally {
      await store.close();
    }
  });

  it('the row guard on this server: the checker and the split isolate unstorable rows, the rest lands', async () => {
    // The store refuses 18.16, and 18.16 knows no insert_deduplication_token: drive the guard through the adapter's
    // own insert function without settings, over a table in 18.16 DDL. Decimal is a type the checker leaves to the
    // engine, so its refusal exercises the split; the Int32 overflow is the checker's.
    const guarded = `vigil_it_guard_${process.pid}`;
    await client.command({
      query: `CREATE TABLE ${guarded} (k String, n Int32, amount Decimal(9, 2), at DateTime) ENGINE = MergeTree ORDER BY k`,
    });
    const shim: Pick<ClickHouseStore, 'insert' | 'query'> = {
      insert: (async (t: string, rows: readonly object[]) => {
        await insertJsonEachRow(client, { table: t, rows, columns: ['k', 'n', 'amount', 'at'] });
        return { rows: rows.length };
      }) as ClickHouseStore['insert'],
      query: async <T>(sql: string) => {
        try {
          return await (await client.query({ query: sql, format: 'JSONEachRow' })).json<T>();
        } catch (error) {
          throw mapServerError('a query', error);
        }
      },
    };
    try {
      const rows = Array.from({ length: 8 }, (_, i) => ({
        k: `k${i}`,
        n: i,
        amount: i + 0.25,
        at: '2026-03-10 08:00:00',
      })) as Record<string, unknown>[];
      rows[2] = { ...rows[2], n: 1e10 };
      rows[5] = { ...rows[5], amount: 'not a number' };
      const landed = await new RowGuard(shim).land(guarded, rows, { dedupToken: 'unused-on-18.16' });
      expect(landed.stored).toBe(6);
      expect(landed.refused).toEqual([
        expect.objectContaining({ index: 2, reason: 'ROW_TYPE_MISMATCH', detail: 'n: Int32 out of range' }),
        expect.objectContaining({ index: 5, reason: 'ROW_REFUSED_BY_STORE', clickhouseCode: expect.any(Number) }),
      ]);
      expect(landed.refused[1]?.detail).not.toContain('not a number');
      const [row] = await (
        await client.query({ query: `SELECT count() AS n FROM ${guarded}`, format: 'JSONEachRow' })
      ).json<{ n: string | number }>();
      expect(Number(row?.n)).toBe(6);
    } finally {
      await client.command({ query: `DROP TABLE IF EXISTS ${guarded}` });
    }
  });

  it('maps a refused connection to CLICKHOUSE_UNAVAILABLE, retriable', async () => {
    const closed = openServerStore({ url: 'http://127.0.0.1:9', requestTimeoutMs: 5_000 });
    try {
      const error = await closed.query('SELECT 1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VigilError);
      expect(error).toMatchObject({ code: 'CLICKHOUSE_UNAVAILABLE', retriable: true });
      expect((error as Error).message).toContain('ECONNREFUSED');
      const insert = await closed
        .insert('normalised_events', [], { dedupToken: 't' })
        .then((r) => r.rows)
        .catch((e: unknown) => e);
      expect(insert).toBe(0); // an empty batch never touches the network
    } finally {
      await closed.close();
    }
  });
});
