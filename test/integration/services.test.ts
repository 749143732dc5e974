/**
 * The local stack's Redis and Debian ClickHouse server, reached the way Vigil reaches them: ioredis (a SET NX with a
 * TTL, the primitive dedupe builds on) and @clickhouse/client over HTTP (insert JSONEachRow, select back). ClickHouse
 * 18.16 is old: the table uses only DDL it knows (MergeTree with ORDER BY, no TTL, no DateTime64).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ClickHouseClient, createClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveEndpoints } from '../../runtime/endpoints.ts';

const endpoints = resolveEndpoints();
const suffix = randomBytes(6).toString('hex');

describe('Redis (local stack)', () => {
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(endpoints.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });

  afterAll(async () => {
    await redis?.quit();
  });

  it('SET NX with a TTL: the first writer wins, the second is refused, the key expires', async () => {
    const key = `vigil:it:setnx:${suffix}`;
    try {
      expect(await redis.set(key, 'first', 'EX', 60, 'NX')).toBe('OK');
      expect(await redis.set(key, 'second', 'EX', 60, 'NX')).toBeNull();
      expect(await redis.get(key)).toBe('first');
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60);
      const pttl = await redis.pttl(key);
      expect(pttl).toBeGreaterThan(0);
    } finally {
      await redis.del(key);
    }
  });

  it('a key set with a millisecond TTL is gone once it expires', async () => {
    const key = `vigil:it:expiry:${suffix}`;
    expect(await redis.set(key, 'x', 'PX', 50, 'NX')).toBe('OK');
    expect(await redis.set(key, 'y', 'PX', 50, 'NX')).toBeNull();
    // Expiry happens on the server's clock: poll until it has passed (bounded).
    const deadline = Date.now() + 5_000;
    while ((await redis.exists(key)) === 1 && Date.now() < deadline) await sleep(20);
    expect(await redis.exists(key)).toBe(0);
    expect(await redis.set(key, 'again', 'PX', 50, 'NX')).toBe('OK');
    await redis.del(key);
  });
});

describe('ClickHouse server over HTTP (local stack, Debian 18.16)', () => {
  let client: ClickHouseClient;
  const table = `vigil_it_events_${suffix}`;

  beforeAll(async () => {
    client = createClient({ url: endpoints.clickhouseUrl, request_timeout: 30_000 });
    await client.command({
      query: `CREATE TABLE ${table} (
        event_id String,
        device_ref String,
        observed_date Date,
        observed_at DateTime,
        pulse UInt16,
        spo2 Float64
      ) ENGINE = MergeTree() PARTITION BY toYYYYMM(observed_date) ORDER BY (device_ref, observed_at, event_id)`,
    });
  });

  afterAll(async () => {
    await client?.command({ query: `DROP TABLE IF EXISTS ${table}` });
    await client?.close();
  });

  it('answers a version query (the server is the Debian one)', async () => {
    const result = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
    const rows = await result.json<{ v: string }>();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.v).toMatch(/^\d+\.\d+/);
  });

  it('inserts JSONEachRow rows and selects them back unchanged', async () => {
    const rows = Array.from({ length: 25 }, (_, i) => ({
      event_id: `evt-${suffix}-${String(i).padStart(3, '0')}`,
      device_ref: `dev-${i % 3}`,
      observed_date: `2026-03-0${String(1 + (i % 5))}`,
      observed_at: `2026-03-0${1 + (i % 5)} 10:${String(i).padStart(2, '0')}:00`,
      pulse: 60 + i,
      spo2: 0.9 + i / 1000,
    }));
    await client.insert({ table, values: rows, format: 'JSONEachRow' });

    const result = await client.query({
      query: `SELECT event_id, device_ref, toString(observed_date) AS observed_date, toString(observed_at) AS observed_at,
                     pulse, spo2 FROM ${table} ORDER BY event_id`,
      format: 'JSONEachRow',
    });
    const back = await result.json<(typeof rows)[number]>();
    expect(back).toEqual(rows);

    const agg = await client.query({
      query: `SELECT device_ref, count() AS n, max(pulse) AS max_hr FROM ${table} GROUP BY device_ref ORDER BY device_ref`,
      format: 'JSONEachRow',
    });
    // 18.16 returns UInt64 as a string in JSON formats (output_format_json_quote_64bit_integers).
    const groups = (await agg.json<{ device_ref: string; n: string | number; max_hr: number }>()).map((g) => ({
      device_ref: g.device_ref,
      n: Number(g.n),
      max_hr: g.max_hr,
    }));
    const expected = ['dev-0', 'dev-1', 'dev-2'].map((device_ref) => {
      const mine = rows.filter((row) => row.device_ref === device_ref);
      return { device_ref, n: mine.length, max_hr: Math.max(...mine.map((row) => row.pulse)) };
    });
    expect(groups).toEqual(expected);
  });
});
