/**
 * 0012_append_only_raw_alerts on the embedded ClickHouse: a store migrated up to 0011 and filled (raw records with a
 * deployment's own TTL on `raw` and the gateway's columns; clinical alerts of one derivation) is rebuilt with raw_sha256
 * in the raw key and the derivation in the alerts key (rows, columns, TTL, indexes kept; a failure after any statement
 * is repaired by running the file again). Then two different records at one log position are two rows, a retried raw
 * record lands once and keeps its first consumed_at, and alerts re-derived under a new rule and pipeline version land
 * beside the old ones, with clinical_alerts_current (and `vigil alerts list`) returning the new derivation.
 */
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { applyMigrations, loadMigrations, MIGRATIONS_DIR } from '../../adapters/clickhouse/migrations.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { rawEventRow } from '../../adapters/clickhouse/tables.ts';
import { listSql } from '../../cli/commands/alerts.ts';
import { raiseAlerts } from '../../operators/raise-alerts/index.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelStore } from '../../runtime/models.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import { origin } from '../../test/fixtures/clickhouse.ts';
import { envelope, VITALS } from '../../test/fixtures/envelope.ts';
import { consumed, inferenceOf } from '../../test/helpers/alerts.ts';

const MIGRATION = '0012_append_only_raw_alerts.sql';
const RAW = 30;
const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 6, 0, 0);
/** A deployment's own retention of the raw bytes (0001's default is 730 days): the rebuild must keep it. */
const TTL_DAYS = 3650;

let dir: string;
let store: ClickHouseStore;

const gatewayKnown = (n: number) => ({
  eventId: `evt-${n}`,
  deviceId: `dev-${n}`,
  signedEvent: `jws-${n}`,
  gatewayId: 'gw-1',
  deviceCertFingerprint: `fp-${n}`,
  keyId: `kid-${n}`,
  integrityHash: `sha256:${n}`,
});
/** When the fixture's raw record n was first consumed. */
const consumedAtOf = (n: number): number => origin(n, Buffer.alloc(0)).consumedAt;
const rawRows = Array.from({ length: RAW }, (_, n) =>
  rawEventRow(origin(n, Buffer.from(`frame-${n}`)), n % 2 === 0 ? gatewayKnown(n) : {}),
);

/**
 * Alerts as raise-alerts raises them under `pipeline` with NEWS2 rule `ruleVersion`: patient a opens at medium and
 * escalates; patient b opens and resolves. `escalateAfterMs` differs between derivations, as new thresholds would.
 */
async function raised(pipeline: string, ruleVersion: string, escalateAfterMs: number): Promise<ClinicalAlert[]> {
  const clock = new ManualClock(T0 + (pipeline.endsWith('@1') ? 0 : 86_400_000));
  const op = raiseAlerts({ rules: { news2: { version: ruleVersion } }, escalateAfterMs: { medium: escalateAfterMs } });
  await op.open?.({
    pipeline,
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: {} as ModelStore,
  });
  const five = { ...VITALS, respiratory_rate: 22, spo2: 94, pulse: 105, temperature_c: 38.5 };
  const rec = (minute: number, patient: string, vitals: typeof VITALS, n: number) => {
    const e = envelope({
      event_id: `01KG${String(n).padStart(22, '0')}`,
      patient_ref: patient,
      device_id: `dev-${patient}`,
      observed_at: T0 + minute * MIN,
      vitals,
    });
    return consumed(inferenceOf(e)!, TOPICS.inferences, n, T0 + minute * MIN + 1000);
  };
  const results = await op.process!([
    rec(0, 'psn-a', five, 0),
    rec(12, 'psn-a', five, 1),
    rec(1, 'psn-b', five, 2),
    rec(6, 'psn-b', VITALS, 3),
  ]);
  return results.out.flatMap((r) => r.value.alerts);
}

async function insertAlerts(alerts: readonly ClinicalAlert[]): Promise<void> {
  await store.command(
    `INSERT INTO clinical_alerts FORMAT JSONEachRow ${alerts.map((a) => JSON.stringify(a)).join('\n')}`,
  );
}

async function count(sql: string): Promise<number> {
  const [row] = await store.query<{ n: number | string }>(sql);
  return Number(row?.n);
}

async function tableShape(table: string) {
  const [keys] = await store.query<{ sorting_key: string; primary_key: string; create_table_query: string }>(
    `SELECT sorting_key, primary_key, create_table_query FROM system.tables
     WHERE database = currentDatabase() AND name = {table:String}`,
    { table },
  );
  const columns = await store.query<{ name: string; type: string; default_kind: string }>(
    `SELECT name, type, default_kind FROM system.columns
     WHERE database = currentDatabase() AND table = {table:String} ORDER BY position`,
    { table },
  );
  const indexes = await store.query<{ name: string; expr: string }>(
    `SELECT name, expr FROM system.data_skipping_indices WHERE database = currentDatabase() AND table = {table:String}`,
    { table },
  );
  return {
    sorting_key: keys?.sorting_key,
    primary_key: keys?.primary_key,
    ddl: keys?.create_table_query ?? '',
    columns,
    indexes,
  };
}

/** Every row of a table (every stored column, NULLs included) as text, sorted. */
async function contentDigest(table: string): Promise<string[]> {
  const rows = await store.query<{ row: string }>(`SELECT toString(tuple(*)) AS row FROM ${table} FINAL`);
  const text = rows.map((r) => r.row).sort();
  expect(text.length).toBeGreaterThan(0);
  return text;
}

let v1: ClinicalAlert[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-append-only-raw-'));
  const before = path.join(dir, 'migrations-before');
  await mkdir(before);
  for (const file of await readdir(MIGRATIONS_DIR)) {
    if (file.endsWith('.sql') && file < MIGRATION)
      await copyFile(path.join(MIGRATIONS_DIR, file), path.join(before, file));
  }
  store = openChdbStore({ path: path.join(dir, 'store') });
  await applyMigrations(store, { dir: before });
  await store.command(
    `ALTER TABLE raw_events MODIFY COLUMN raw String DEFAULT base64Decode(raw_b64) CODEC(ZSTD(3))
       TTL toDateTime(consumed_at) + INTERVAL ${TTL_DAYS} DAY`,
  );
  await store.insert('raw_events', rawRows, { dedupToken: 'before-0012/raw' });
  v1 = await raised('alerts@1', '1', 10 * MIN);
  await insertAlerts(v1);
}, 120_000);

afterAll(async () => {
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('0012_append_only_raw_alerts: the rebuild', () => {
  it('puts raw_sha256 in the raw key and the derivation in the alerts key, keeping rows, columns, TTL and indexes', async () => {
    const rawBefore = await tableShape('raw_events');
    const alertsBefore = await tableShape('clinical_alerts');
    const digests = [await contentDigest('raw_events'), await contentDigest('clinical_alerts')];
    expect(rawBefore.ddl).toContain(`TTL toDateTime(consumed_at) + toIntervalDay(${TTL_DAYS})`);

    const report = await applyMigrations(store);
    expect(report.applied[0]).toBe(MIGRATION);

    const raw = await tableShape('raw_events');
    expect([raw.sorting_key, raw.primary_key]).toEqual([
      'source_topic, source_partition, source_offset, raw_sha256',
      'source_topic, source_partition, source_offset',
    ]);
    expect(raw.ddl).toContain('ENGINE = ReplacingMergeTree(first_copy_wins)');
    expect(raw.ddl).toContain(`TTL toDateTime(consumed_at) + toIntervalDay(${TTL_DAYS})`);
    // Every column kept in order (EPHEMERAL ones, the gateway's of 0007), plus the replacing version.
    expect(raw.columns).toEqual([
      ...rawBefore.columns,
      { name: 'first_copy_wins', type: 'Int64', default_kind: 'MATERIALIZED' },
    ]);
    expect(raw.columns.map((c) => c.name)).toEqual(
      expect.arrayContaining(['signed_event', 'gateway_id', 'device_cert_fingerprint', 'key_id', 'integrity_hash']),
    );
    expect(raw.indexes).toEqual(rawBefore.indexes);
    expect(raw.indexes).toEqual([{ name: 'idx_event_id', expr: 'event_id' }]);

    const alerts = await tableShape('clinical_alerts');
    expect([alerts.sorting_key, alerts.primary_key]).toEqual([
      'site_id, patient_ref, alert_id, record_id, transformation_version, rule_version',
      'site_id, patient_ref, alert_id, record_id',
    ]);
    expect(alerts.columns).toEqual([
      ...alertsBefore.columns,
      { name: 'first_copy_wins', type: 'Int64', default_kind: 'MATERIALIZED' },
    ]);
    expect(alerts.indexes).toEqual(alertsBefore.indexes);

    expect([await contentDigest('raw_events'), await contentDigest('clinical_alerts')]).toEqual(digests);
    expect(await count('SELECT count() AS n FROM raw_events')).toBe(RAW);
    expect(await count("SELECT count() AS n FROM system.tables WHERE name = 'raw_events_rebuild'")).toBe(0);
    // The bytes came through as stored (not re-decoded from an empty EPHEMERAL column).
    expect(await store.query(`SELECT raw, gateway_id, signed_event FROM raw_events WHERE source_offset = 2`)).toEqual([
      { raw: 'frame-2', gateway_id: 'gw-1', signed_event: 'jws-2' },
    ]);
  });

  it('repairs a failure after any of its statements by running the whole file again: same rows, same keys', async () => {
    const [migration] = (await loadMigrations()).filter((m) => m.name === MIGRATION);
    const statements = migration?.statements ?? [];
    expect(statements.length).toBeGreaterThanOrEqual(8);
    const digests = [await contentDigest('raw_events'), await contentDigest('clinical_alerts')];
    const keys = [(await tableShape('raw_events')).sorting_key, (await tableShape('clinical_alerts')).sorting_key];
    for (let failedAfter = 1; failedAfter <= statements.length; failedAfter++) {
      for (const statement of statements.slice(0, failedAfter)) await store.command(statement);
      for (const statement of statements) await store.command(statement);
      expect(
        [await contentDigest('raw_events'), await contentDigest('clinical_alerts')],
        `after ${failedAfter}`,
      ).toEqual(digests);
      expect([(await tableShape('raw_events')).sorting_key, (await tableShape('clinical_alerts')).sorting_key]).toEqual(
        keys,
      );
    }
    expect(await count('SELECT count() AS n FROM raw_events FINAL')).toBe(RAW);
  }, 120_000);
});

describe('0012_append_only_raw_alerts: raw plane', () => {
  it('keeps two different records at one log position (a recreated topic, a second --input file) as two rows', async () => {
    const other = rawEventRow(
      origin(3, Buffer.from('another record at offset 3'), { consumedAt: consumedAtOf(3) + 86_400_000 }),
    );
    await store.insert('raw_events', [other], { dedupToken: 'second-file/raw' });
    await store.command('OPTIMIZE TABLE raw_events FINAL');
    const rows = await store.query<{ raw: string }>(
      `SELECT raw FROM raw_events FINAL WHERE source_topic = {t:String} AND source_partition = 0 AND source_offset = 3
       ORDER BY raw`,
      { t: 'vigil.telemetry.raw' },
    );
    expect(rows).toEqual([{ raw: 'another record at offset 3' }, { raw: 'frame-3' }]);
    expect(await count('SELECT count() AS n FROM raw_events')).toBe(RAW + 1);
  });

  it('lands a retried record once, keeping the consumed_at written first', async () => {
    const again = rawEventRow(origin(5, Buffer.from('frame-5'), { consumedAt: consumedAtOf(5) + 60_000 }));
    await store.insert('raw_events', [again], { dedupToken: 'retry-escaped-window/raw' });
    await store.command('OPTIMIZE TABLE raw_events FINAL');
    const rows = await store.query<{ consumed: number | string }>(
      'SELECT toUnixTimestamp64Milli(consumed_at) AS consumed FROM raw_events WHERE source_offset = 5',
    );
    expect(rows.map((r) => Number(r.consumed))).toEqual([consumedAtOf(5)]);
    expect(await count('SELECT count() AS n FROM raw_events')).toBe(RAW + 1);
  });
});

describe('0012_append_only_raw_alerts: clinical alerts', () => {
  it('keeps alerts re-derived under a new rule and pipeline version beside the old ones; the current view returns the new', async () => {
    const v2 = await raised('alerts@2', '2', 20 * MIN); // the escalation now waits 20 minutes: patient a never escalates
    // The same alerts and transitions (ids from the alert and the triggering record), under another derivation.
    expect(new Set(v2.map((a) => a.record_id)).size).toBeLessThan(new Set(v1.map((a) => a.record_id)).size);
    expect(v2.every((a) => v1.some((b) => b.record_id === a.record_id))).toBe(true);
    await insertAlerts(v2);
    await store.command('OPTIMIZE TABLE clinical_alerts FINAL');

    const stored = await store.query<{ v: string; r: string; n: number | string }>(
      `SELECT transformation_version AS v, rule_version AS r, count() AS n FROM clinical_alerts FINAL
       GROUP BY v, r ORDER BY v`,
    );
    expect(stored.map((s) => ({ ...s, n: Number(s.n) }))).toEqual([
      { v: 'alerts@1/raise-alerts', r: '1', n: v1.length },
      { v: 'alerts@2/raise-alerts', r: '2', n: v2.length },
    ]);

    const current = await store.query<{ record_id: string; transformation_version: string; rule_version: string }>(
      'SELECT record_id, transformation_version, rule_version FROM clinical_alerts_current ORDER BY record_id',
    );
    expect(current.map((c) => c.record_id)).toEqual(v2.map((a) => a.record_id).sort());
    expect(new Set(current.map((c) => `${c.transformation_version} ${c.rule_version}`))).toEqual(
      new Set(['alerts@2/raise-alerts 2']),
    );

    // `vigil alerts list` reads the current view: patient a's alert is open, not escalated, under rule version 2.
    const list = await store.query<{ patient_ref: string; state: string; rule_version: string; escalations: number }>(
      listSql(false),
      { limit: 10 },
    );
    expect(list.map((a) => [a.patient_ref, a.state, a.rule_version, Number(a.escalations)]).sort()).toEqual([
      ['psn-a', 'open', '2', 0],
      ['psn-b', 'resolve', '2', 0],
    ]);
  });

  it('lands a replayed alert batch once, keeping the first raise, and pushes a site filter below the choice', async () => {
    const before = await count('SELECT count() AS n FROM clinical_alerts FINAL');
    const firstRaised = await store.query<{ record_id: string; raised: number | string }>(
      "SELECT record_id, toUnixTimestamp64Milli(raised_at) AS raised FROM clinical_alerts FINAL WHERE transformation_version = 'alerts@1/raise-alerts' ORDER BY record_id",
    );
    await insertAlerts(v1.map((a) => ({ ...a, raised_at: a.raised_at + 60_000 })));
    await store.command('OPTIMIZE TABLE clinical_alerts FINAL');
    expect(await count('SELECT count() AS n FROM clinical_alerts')).toBe(before);
    expect(
      await store.query(
        "SELECT record_id, toUnixTimestamp64Milli(raised_at) AS raised FROM clinical_alerts FINAL WHERE transformation_version = 'alerts@1/raise-alerts' ORDER BY record_id",
      ),
    ).toEqual(firstRaised);

    const explain = await store.query<{ explain: string }>(
      `EXPLAIN indexes = 1 SELECT count() FROM clinical_alerts_current WHERE site_id = 'no-such-site'`,
    );
    expect(explain.map((r) => r.explain).join('\n')).toMatch(/PrimaryKey[\s\S]*site_id[\s\S]*Granules: 0\//);
  });
});
