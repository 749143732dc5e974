/**
 * 0009_append_only on the embedded ClickHouse: a store migrated up to 0008 and filled is rebuilt with the derivation
 * in every key (rows, columns, index and primary key kept; running the file again changes nothing), then
 * re-derivations land beside the rows they would have replaced, retried inserts still land once, and the
 * `*_current` views choose one derivation per event and per inference.
 */
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { applyMigrations, loadMigrations, MIGRATIONS_DIR } from '../../adapters/clickhouse/migrations.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { inferenceRow, normalisedEventRow } from '../../pipelines/outputs.ts';
import type { Inference, NormalisedEvent } from '../../schemas/types.ts';
import { inferenceFor, normalisedEvent } from '../../test/fixtures/clickhouse.ts';

const APPEND_ONLY = '0009_append_only.sql';
/** The first migration after 0009 that adds a column to a table 0009 rebuilds (0009 would then no longer re-run). */
const INFERENCE_ROUTING = '0013_inference_routing.sql';
const EVENTS = 40;

let dir: string;
let store: ClickHouseStore;

const v1: NormalisedEvent[] = Array.from({ length: EVENTS }, (_, n) =>
  normalisedEvent({ n, firmware: n % 2 === 0 ? '4.2.0' : '4.3.0', siteId: n % 4 < 2 ? 'site-a' : 'site-b' }),
);
const v1Inferences: Inference[] = v1.map((event, n) => inferenceFor(event, { score: n % 8 }));

/** The same events derived again by a newer pipeline version, later. */
function rederived(event: NormalisedEvent, version: string): NormalisedEvent {
  return {
    ...event,
    transformation_version: `vitals@${version}/validate/dedupe`,
    processed_at: event.processed_at + 3_600_000,
  };
}

async function count(sql: string): Promise<number> {
  const [row] = await store.query<{ n: number | string }>(sql);
  return Number(row?.n);
}

async function tableShape(table: string) {
  const [keys] = await store.query<{ sorting_key: string; primary_key: string }>(
    `SELECT sorting_key, primary_key FROM system.tables WHERE database = currentDatabase() AND name = {table:String}`,
    { table },
  );
  const columns = await store.query<{ name: string; type: string }>(
    `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String} ORDER BY position`,
    { table },
  );
  const indexes = await store.query<{ name: string; expr: string }>(
    `SELECT name, expr FROM system.data_skipping_indices WHERE database = currentDatabase() AND table = {table:String}`,
    { table },
  );
  return { keys, columns, indexes };
}

/** Every row of a table (every column, NULLs included) as text, sorted: to show a rebuild kept the content. */
async function contentDigest(table: string): Promise<string[]> {
  const rows = await store.query<{ row: string }>(`SELECT toString(tuple(*)) AS row FROM ${table} FINAL`);
  const text = rows.map((r) => r.row).sort();
  expect(text.length).toBeGreaterThan(0);
  expect(text.every((r) => typeof r === 'string' && r.startsWith('('))).toBe(true);
  return text;
}

/** A folder holding the migrations named before `limit`. */
async function migrationsBefore(limit: string): Promise<string> {
  const folder = path.join(dir, `migrations-before-${limit}`);
  await mkdir(folder);
  for (const file of await readdir(MIGRATIONS_DIR)) {
    if (file.endsWith('.sql') && file < limit) await copyFile(path.join(MIGRATIONS_DIR, file), path.join(folder, file));
  }
  return folder;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-append-only-'));
  // A store as it was before 0009: every earlier migration, from a folder without it.
  store = openChdbStore({ path: path.join(dir, 'store') });
  await applyMigrations(store, { dir: await migrationsBefore(APPEND_ONLY) });
  await store.insert('normalised_events', v1.map(normalisedEventRow), { dedupToken: 'before-0009/normalised' });
  // The table as it was then has no routing columns (0013): rows of its own shape, by a name the adapter does not map
  // (JSONEachRow with the rows' keys) rather than today's registered mapping.
  const beforeRouting = v1Inferences.map((i) => {
    const { rollout_id, routing_source, cohort_bucket, in_canary, clinical, ...row } = inferenceRow(i);
    return row;
  });
  await store.insert('default.inferences', beforeRouting, { dedupToken: 'before-0009/inferences' });
});

afterAll(async () => {
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('0009_append_only', () => {
  it('rebuilds both planes with the derivation in the key, keeping rows, columns, index and primary key', async () => {
    const normalisedBefore = await tableShape('normalised_events');
    const inferencesBefore = await tableShape('inferences');
    const digests = [await contentDigest('normalised_events'), await contentDigest('inferences')];
    expect(normalisedBefore.keys?.sorting_key).toBe('firmware_version, site_id, device_id, observed_at, event_id');

    // 0009 and the migrations after it up to the next one that changes these tables' columns (0013, applied below).
    const report = await applyMigrations(store, { dir: await migrationsBefore(INFERENCE_ROUTING) });
    expect(report.applied[0]).toBe(APPEND_ONLY);

    const normalised = await tableShape('normalised_events');
    expect(normalised.keys).toEqual({
      sorting_key:
        'firmware_version, site_id, device_id, observed_at, event_id, transformation_version, source_topic, ' +
        'source_partition, source_offset, raw_sha256',
      primary_key: 'firmware_version, site_id, device_id, observed_at, event_id',
    });
    const inferences = await tableShape('inferences');
    expect(inferences.keys).toEqual({
      sorting_key:
        'model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id, rollout, ' +
        'transformation_version, config_hash, feature_vector_hash',
      primary_key: 'model_name, model_version, firmware_version, site_id, device_id, observed_at, inference_id',
    });
    // Every column kept, in order, plus the replacing version (MATERIALIZED: no insert names it).
    const replacing = { name: 'first_copy_wins', type: 'Int64' };
    expect(normalised.columns).toEqual([...normalisedBefore.columns, replacing]);
    expect(inferences.columns).toEqual([...inferencesBefore.columns, replacing]);
    expect(normalised.indexes).toEqual([{ name: 'idx_event_id', expr: 'event_id' }]);
    expect(inferences.indexes).toEqual([{ name: 'idx_event_id', expr: 'event_id' }]);
    expect([await contentDigest('normalised_events'), await contentDigest('inferences')]).toEqual(digests);
    expect(await count('SELECT count() AS n FROM normalised_events')).toBe(EVENTS);
    expect(await count('SELECT count() AS n FROM inferences')).toBe(EVENTS);
  });

  it('can run again from the top (a failed attempt is re-applied whole): same rows, same keys', async () => {
    const [migration] = (await loadMigrations()).filter((m) => m.name === APPEND_ONLY);
    const digests = [await contentDigest('normalised_events'), await contentDigest('inferences')];
    const keys = [(await tableShape('normalised_events')).keys, (await tableShape('inferences')).keys];
    for (const statement of migration?.statements ?? []) await store.command(statement);
    expect([await contentDigest('normalised_events'), await contentDigest('inferences')]).toEqual(digests);
    expect([(await tableShape('normalised_events')).keys, (await tableShape('inferences')).keys]).toEqual(keys);
    expect(await count('SELECT count() AS n FROM normalised_events')).toBe(EVENTS);

    // Then every later migration: 0013 adds the routing columns to inferences and its record to the key.
    const before = await tableShape('inferences');
    const report = await applyMigrations(store);
    expect(report.applied[0]).toBe(INFERENCE_ROUTING);
    const after = await tableShape('inferences');
    expect(after.keys?.sorting_key).toBe(`${before.keys?.sorting_key}, ifNull(rollout_id, ''), in_canary`);
    expect(after.keys?.primary_key).toBe(before.keys?.primary_key);
    expect(after.columns).toEqual([
      ...before.columns,
      { name: 'rollout_id', type: 'Nullable(String)' },
      { name: 'routing_source', type: 'LowCardinality(String)' },
      { name: 'cohort_bucket', type: 'Nullable(UInt16)' },
      { name: 'in_canary', type: 'Bool' },
      { name: 'clinical', type: 'Bool' },
    ]);
    // Rows written before routing read as they ran: by the pipeline's config, clinical unless shadow, no canary.
    expect(
      await store.query(
        'SELECT routing_source, in_canary, clinical, toUInt32(count()) AS n FROM inferences GROUP BY ALL',
      ),
    ).toEqual([{ routing_source: 'pipeline', in_canary: false, clinical: true, n: EVENTS }]);
  });

  it('keeps a re-derivation beside the row it would have replaced; normalised_events_current returns the newest', async () => {
    const v2 = v1.map((e) => rederived(e, '2'));
    await store.insert('normalised_events', v2.map(normalisedEventRow), { dedupToken: 'v2/normalised' });
    expect(await count('SELECT count() AS n FROM normalised_events FINAL')).toBe(2 * EVENTS);
    expect(
      await store.query(
        `SELECT transformation_version AS v, count() AS n FROM normalised_events FINAL GROUP BY v ORDER BY v`,
      ),
    ).toEqual([
      { v: 'vitals@1/validate/dedupe', n: EVENTS },
      { v: 'vitals@2/validate/dedupe', n: EVENTS },
    ]);
    const current = await store.query<{ event_id: string; transformation_version: string }>(
      'SELECT event_id, transformation_version FROM normalised_events_current ORDER BY event_id',
    );
    expect(current).toHaveLength(EVENTS);
    expect(new Set(current.map((r) => r.event_id))).toEqual(new Set(v1.map((e) => e.event_id)));
    expect(new Set(current.map((r) => r.transformation_version))).toEqual(new Set(['vitals@2/validate/dedupe']));
  });

  it('lands a retried insert once: the same token is dropped, and an escaped copy collapses by key', async () => {
    const v2 = v1.map((e) => rederived(e, '2'));
    await store.insert('normalised_events', v2.map(normalisedEventRow), { dedupToken: 'v2/normalised' });
    expect(await count('SELECT count() AS n FROM normalised_events')).toBe(2 * EVENTS);
    // A retry that escaped the dedup window: same derivation, processed again later, another token.
    const retried = v1.map((e) => ({ ...e, processed_at: e.processed_at + 60_000 }));
    await store.insert('normalised_events', retried.map(normalisedEventRow), { dedupToken: 'v1/normalised/retry' });
    expect(await count('SELECT count() AS n FROM normalised_events FINAL')).toBe(2 * EVENTS);
    expect(await count('SELECT count() AS n FROM normalised_events_current')).toBe(EVENTS);
    // The copy written first stays as it was: the retry's later processed_at does not replace it.
    const stored = await store.query<{ event_id: string; processed: number }>(
      `SELECT event_id, toUnixTimestamp64Milli(processed_at) AS processed FROM normalised_events FINAL
       WHERE transformation_version = 'vitals@1/validate/dedupe' ORDER BY event_id`,
    );
    expect(stored.map((r) => Number(r.processed))).toEqual(
      [...v1].sort((a, b) => a.event_id.localeCompare(b.event_id)).map((e) => e.processed_at),
    );
  });

  it('orders versions by their numbers: vitals@10 is newer than vitals@9, whatever was processed last', async () => {
    const [first] = v1;
    if (!first) throw new Error('no fixture');
    const v10 = { ...rederived(first, '10'), processed_at: first.processed_at + 1_000 };
    const v9 = { ...rederived(first, '9'), processed_at: first.processed_at + 7_200_000 };
    await store.insert('normalised_events', [v10, v9].map(normalisedEventRow), { dedupToken: 'v9-v10' });
    const rows = await store.query<{ transformation_version: string }>(
      'SELECT transformation_version FROM normalised_events_current WHERE event_id = {id:String}',
      { id: first.event_id },
    );
    expect(rows).toEqual([{ transformation_version: 'vitals@10/validate/dedupe' }]);
    expect(await count(`SELECT count() AS n FROM normalised_events FINAL WHERE event_id = '${first.event_id}'`)).toBe(
      4,
    );
  });

  it('pushes a window filter on the current view down to the table (partitions and primary key)', async () => {
    const explain = await store.query<{ explain: string }>(
      `EXPLAIN indexes = 1 SELECT count() FROM normalised_events_current
       WHERE observed_at >= '2026-04-01 00:00:00' AND observed_at < '2026-05-01 00:00:00' AND firmware_version = '4.2.0'`,
    );
    const text = explain.map((r) => r.explain).join('\n');
    expect(text).toMatch(/Partition[\s\S]*Parts: 0\/\d+/);
    expect(text).toMatch(/PrimaryKey[\s\S]*firmware_version/);
  });

  it('keeps an inference re-scored after a rollout change or under a new pipeline beside the old one; inferences_current prefers live, then the newest', async () => {
    const [event] = v1;
    if (!event) throw new Error('no fixture');
    const live = v1Inferences[0] as Inference;
    const shadowOnly = inferenceFor(event, { score: 3, modelVersion: '1.1.0', rollout: 'shadow' });
    const promoted = { ...shadowOnly, rollout: 'live' as const, scored_at: shadowOnly.scored_at + 86_400_000 };
    const rescored = {
      ...live,
      transformation_version: 'vitals@2/score/news2@1.0.0',
      scored_at: live.scored_at + 3_600_000,
    };
    await store.insert('inferences', [shadowOnly, promoted, rescored].map(inferenceRow), { dedupToken: 'rollouts' });
    expect(await count(`SELECT count() AS n FROM inferences FINAL WHERE event_id = '${event.event_id}'`)).toBe(4); // the original, the re-scoring, the 1.1.0 shadow output and its live output
    const current = await store.query<{ model_version: string; rollout: string; transformation_version: string }>(
      `SELECT model_version, rollout, transformation_version FROM inferences_current
       WHERE event_id = {id:String} ORDER BY model_version`,
      { id: event.event_id },
    );
    expect(current).toEqual([
      { model_version: '1.0.0', rollout: 'live', transformation_version: 'vitals@2/score/news2@1.0.0' },
      { model_version: '1.1.0', rollout: 'live', transformation_version: live.transformation_version },
    ]);
    // A retried identical inference lands once.
    await store.insert('inferences', [rescored].map(inferenceRow), { dedupToken: 'rollouts/retry' });
    expect(await count(`SELECT count() AS n FROM inferences FINAL WHERE event_id = '${event.event_id}'`)).toBe(4);
    expect(await count('SELECT count() AS n FROM inferences_current')).toBe(EVENTS + 1);
  });
  it('keeps an inference routed by another rollout record beside the old one (0013); the same routing lands once', async () => {
    const [, event] = v1;
    if (!event) throw new Error('no fixture');
    const routing = { source: 'registry' as const, cohort_bucket: 1234, in_canary: false, clinical: true };
    const first = { ...inferenceFor(event, { score: 2 }), rollout_id: 'ro-1', routing };
    // Rolled back and rolled out again in the same mode: the same version, input and options, a new rollout record.
    const again = { ...first, rollout_id: 'ro-2', scored_at: first.scored_at + 60_000 };
    await store.insert('inferences', [first, again].map(inferenceRow), { dedupToken: 'routing' });
    await store.insert('inferences', [{ ...again, scored_at: again.scored_at + 1 }].map(inferenceRow), {
      dedupToken: 'routing/retry',
    });
    const rows = await store.query<{ rollout_id: string; cohort_bucket: number; clinical: boolean }>(
      `SELECT rollout_id, cohort_bucket, clinical FROM inferences FINAL
       WHERE event_id = {id:String} AND rollout_id IS NOT NULL ORDER BY rollout_id`,
      { id: event.event_id },
    );
    expect(rows).toEqual([
      { rollout_id: 'ro-1', cohort_bucket: 1234, clinical: true },
      { rollout_id: 'ro-2', cohort_bucket: 1234, clinical: true },
    ]);
  });
});
