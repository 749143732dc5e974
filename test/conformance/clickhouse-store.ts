import { appendFile, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkRow, insertIsolating, RowGuard } from '../../adapters/clickhouse/guard.ts';
import { loadMigrations, MIGRATIONS_DIR } from '../../adapters/clickhouse/migrations.ts';
import { batchDedupToken, type ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import {
  deadLetterRow,
  duplicateRow,
  fromDateTime64,
  quarantineRow,
  rawEventRow,
  TABLE_COLUMNS,
  type TableName,
} from '../../adapters/clickhouse/tables.ts';
import { inferenceRow, normalisedEventRow } from '../../pipelines/outputs.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { payloadOf } from '../../schemas/types.ts';
import { insertableColumns } from '../../scripts/check-tables.ts';
import { deadLetter, duplicate, inferenceFor, normalisedEvent, origin, sha256Hex, T0 } from '../fixtures/clickhouse.ts';

/**
 * The behaviour every ClickHouseStore implementation must show, run by each implementation's test file against a
 * real engine: migrations, the row mappers' round trips per table, effectively-once inserts, parameter binding and
 * error mapping. `open` gets a fresh, empty data directory per test (chdb holds one per process, so each test closes
 * its store before the next opens one).
 */
export function describeStoreConformance(label: string, open: (dataDir: string) => ClickHouseStore): void {
  describe(label, () => {
    let dir: string;
    let store: ClickHouseStore;

    beforeEach(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'vigil-store-'));
      store = open(path.join(dir, 'data'));
    });

    afterEach(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });

    async function copyMigrations(): Promise<string> {
      const copy = path.join(dir, 'migrations');
      await rm(copy, { recursive: true, force: true });
      await mkdir(copy, { recursive: true });
      for (const file of await readdir(MIGRATIONS_DIR)) {
        if (file.endsWith('.sql')) await copyFile(path.join(MIGRATIONS_DIR, file), path.join(copy, file));
      }
      return copy;
    }

    async function count(sql: string, params?: Record<string, string | number>): Promise<number> {
      const [row] = await store.query<{ n: number }>(sql, params);
      return Number(row?.n);
    }

    describe('migrations', () => {
      it('apply every NNNN_*.sql in order, and a second run applies nothing', async () => {
        const files = (await loadMigrations()).map((m) => m.name);
        expect(files.slice(0, 2)).toEqual(['0001_planes.sql', '0002_operations.sql']);

        const clock = new ManualClock(T0);
        const first = await store.migrate({ clock });
        expect(first.applied).toEqual(files);
        expect(first.skipped).toEqual([]);

        clock.advance(60_000);
        const second = await store.migrate({ clock });
        expect(second.applied).toEqual([]);
        expect(second.skipped).toEqual(files);

        const tables = await store.query<{ name: string }>(
          'SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)} ORDER BY name',
          {
            names: ['dead_letters', 'duplicates', 'inferences', 'normalised_events', 'raw_events', 'schema_migrations'],
          },
        );
        expect(tables.map((t) => t.name)).toEqual([
          'dead_letters',
          'duplicates',
          'inferences',
          'normalised_events',
          'raw_events',
          'schema_migrations',
        ]);
        const history = await store.query<{ version: number; name: string; checksum: string; statements: number }>(
          'SELECT version, name, checksum, statements FROM schema_migrations FINAL ORDER BY version',
        );
        const expected = await loadMigrations();
        expect(history).toEqual(
          expected.map((m) => ({
            version: m.version,
            name: m.name,
            checksum: m.checksum,
            statements: m.statements.length,
          })),
        );
        expect(await count('SELECT count() AS n FROM schema_migrations')).toBe(files.length);
        const stamps = await store.query<{ ms: number }>(
          'SELECT DISTINCT toUnixTimestamp64Milli(applied_at) AS ms FROM schema_migrations',
        );
        expect(stamps).toEqual([{ ms: T0 }]);
      });

      it('refuse an applied migration whose file changed, before running anything', async () => {
        const migrations = await copyMigrations();
        await store.migrate({ dir: migrations });
        await appendFile(
          path.join(migrations, '0002_operations.sql'),
          '\nCREATE TABLE IF NOT EXISTS sneaky (x UInt8) ENGINE = MergeTree ORDER BY x;\n',
        );
        await writeFile(
          path.join(migrations, '0999_later.sql'),
          'CREATE TABLE IF NOT EXISTS later (x UInt8) ENGINE = MergeTree ORDER BY x;\n',
        );

        const error = await store.migrate({ dir: migrations }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(VigilError);
        expect((error as VigilError).code).toBe('MIGRATION_CONFLICT');
        expect((error as VigilError).retriable).toBe(false);
        expect((error as VigilError).message).toContain('0002_operations.sql was changed after it was applied');
        expect(await count("SELECT count() AS n FROM system.tables WHERE name IN ('sneaky', 'later')")).toBe(0);
      });

      it('refuse two files with one version and a file without a version', async () => {
        const migrations = await copyMigrations();
        await writeFile(path.join(migrations, '0002_again.sql'), 'SELECT 1;');
        await expect(store.migrate({ dir: migrations })).rejects.toMatchObject({
          code: 'MIGRATION_CONFLICT',
          message: expect.stringContaining('share version 0002'),
        });
        await rm(path.join(migrations, '0002_again.sql'));
        await writeFile(path.join(migrations, 'adhoc.sql'), 'SELECT 1;');
        await expect(store.migrate({ dir: migrations })).rejects.toMatchObject({ code: 'MIGRATION_CONFLICT' });
      });

      it('report versions the store has but the folder lacks (a newer Vigil migrated it)', async () => {
        const migrations = await copyMigrations();
        await writeFile(
          path.join(migrations, '0998_newer.sql'),
          'CREATE TABLE IF NOT EXISTS newer (x UInt8) ENGINE = Memory;',
        );
        await store.migrate({ dir: migrations });
        await rm(path.join(migrations, '0998_newer.sql'));
        const report = await store.migrate({ dir: migrations });
        expect(report.applied).toEqual([]);
        expect(report.unknownApplied).toEqual(['0998_newer.sql']);
      });
    });

    describe('tables and mappers', () => {
      beforeEach(async () => {
        await store.migrate();
      });

      it('name exactly the insertable columns of each migrated table', async () => {
        for (const table of Object.keys(TABLE_COLUMNS) as TableName[]) {
          const columns = await insertableColumns(store, table);
          expect(columns.sort(), table).toEqual([...TABLE_COLUMNS[table]].sort());
        }
      });

      it('round-trip normalised events of every payload type', async () => {
        const events = [
          normalisedEvent({ n: 1, vitals: { spo2: 88, on_oxygen: true, consciousness: 'C', temperature_c: 39.4 } }),
          normalisedEvent({ n: 2, vitals: { respiratory_rate: null, spo2: null }, flags: ['news2_incomplete'] }),
          normalisedEvent({ n: 3, type: 'device_status', status: { state: 'degraded', battery_pct: 9 } }),
          normalisedEvent({ n: 4, type: 'alarm', alarm: { alarm_code: 'HR_HIGH', priority: 'medium', active: false } }),
          normalisedEvent({ n: 5, type: 'config_change', deviceBatch: null, patientSubgroup: null }),
        ];
        await store.insert('normalised_events', events.map(normalisedEventRow), { dedupToken: 'round-trip' });

        const rows = await store.query<Record<string, unknown>>(
          'SELECT *, toUnixTimestamp64Milli(observed_at) AS observed_ms FROM normalised_events FINAL ORDER BY source_offset',
        );
        expect(rows).toHaveLength(5);
        for (const [i, event] of events.entries()) {
          const row = rows[i]!;
          expect(row.event_id).toBe(event.event_id);
          expect(row.device_id).toBe(event.device_id);
          expect(row.patient_ref).toBe(event.patient_ref);
          expect(row.site_id).toBe(event.site_id);
          expect(row.event_type).toBe(event.event_type);
          expect(row.observed_ms).toBe(event.observed_at);
          expect(fromDateTime64(row.received_at as string)).toBe(event.received_at);
          expect(fromDateTime64(row.processed_at as string)).toBe(event.processed_at);
          expect(row.firmware_version).toBe(event.firmware_version);
          expect(row.sequence).toBe(event.sequence);
          expect(row.device_batch).toBe(event.device_batch);
          expect(row.patient_subgroup).toBe(event.patient_subgroup);
          expect(row.provenance_flags).toEqual(event.provenance_flags);
          expect(row.parent_event_ids).toEqual(event.parent_event_ids);
          expect(row.source_offset).toBe(event.source_offset);
          expect(row.raw_sha256).toBe(event.raw_sha256);
          expect(row.integrity_hash).toBe(event.integrity_hash);
          expect(row.transformation_version).toBe(event.transformation_version);
        }
        const vitals = payloadOf(events[0]!.payload);
        expect(vitals?.type).toBe('vital_signs');
        expect(rows[0]).toMatchObject({
          respiratory_rate: 16,
          spo2: 88,
          on_oxygen: true,
          systolic_bp: 122,
          pulse: 72,
          consciousness: 'C',
          temperature_c: 39.4,
          device_state: null,
          alarm_code: null,
          config_parameter: null,
        });
        expect(rows[1]).toMatchObject({ respiratory_rate: null, spo2: null, provenance_flags: ['news2_incomplete'] });
        expect(rows[2]).toMatchObject({
          spo2: null,
          device_state: 'degraded',
          battery_pct: 9,
          signal_dbm: -67,
          calibration_state: 'current',
        });
        expect(fromDateTime64(rows[2]!.last_calibrated_at as string)).toBe(T0 - 86_400_000);
        expect(rows[3]).toMatchObject({
          alarm_code: 'HR_HIGH',
          alarm_category: 'physiological',
          alarm_priority: 'medium',
          alarm_active: false,
        });
        expect(rows[4]).toMatchObject({
          config_parameter: 'spo2_alarm_low',
          config_old_value: '90',
          config_new_value: '88',
          config_changed_by: 'clinician',
          device_batch: null,
          patient_subgroup: null,
        });
      });

      it('round-trip an inference, with non-finite features kept as NaN', async () => {
        const event = normalisedEvent({ n: 7 });
        const inference = { ...inferenceFor(event, { score: 6 }), features: [16, Number.NaN, 0, 122, 72, 0, 36.8] };
        await store.insert('inferences', [inferenceRow(inference)], { dedupToken: 'inference' });
        const [row] = await store.query<Record<string, unknown>>(
          `SELECT * EXCEPT (features), arrayMap(x -> if(isNaN(x), 'nan', toString(x)), features) AS features_text,
              toUnixTimestamp64Milli(scored_at) AS scored_ms
       FROM inferences FINAL`,
        );
        expect(row).toMatchObject({
          inference_id: inference.inference_id,
          event_id: event.event_id,
          parent_event_ids: [event.event_id],
          model_name: 'news2',
          model_version: '1.0.0',
          model_artifact_sha256: inference.model_artifact_sha256,
          runtime: 'onnxruntime-node',
          runtime_version: '1.30.0',
          config_hash: inference.config_hash,
          rollout: 'live',
          feature_names: inference.feature_names,
          feature_vector_hash: inference.feature_vector_hash,
          score: 6,
          subscores: inference.subscores,
          risk_band: 'medium',
          device_batch: 'LOT-17',
          scored_ms: inference.scored_at,
        });
        expect(row?.features_text).toEqual(['16', 'nan', '0', '122', '72', '0', '36.8']);
      });

      it('round-trip a dead letter (without its bytes) and a duplicate', async () => {
        const letter = deadLetter(1, { reason_code: 'VALUE_OUT_OF_RANGE', stage: 'validate', sequence: 42 });
        await store.insert('dead_letters', [deadLetterRow(letter)], { dedupToken: 'dl' });
        const [dl] = await store.query<Record<string, unknown>>('SELECT * FROM dead_letters FINAL');
        expect(dl).toEqual({
          ...deadLetterRow(letter),
          raw_size: 4,
        });
        expect(dl).not.toHaveProperty('raw_bytes');

        const dup = duplicate(normalisedEvent({ n: 9 }), { kind: 'sequence', first_seen: null });
        await store.insert('duplicates', [duplicateRow(dup)], { dedupToken: 'dup' });
        const [row] = await store.query<Record<string, unknown>>('SELECT * FROM duplicates FINAL');
        expect(row).toEqual(duplicateRow(dup));
      });

      it('round-trip raw records byte for byte, headers included', async () => {
        const binary = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x07, 0xff, 0x80, 0x0a, 0x00, 0x5c, 0x22]);
        const origins = [
          origin(1, binary),
          origin(2, Buffer.from('{"not":"avro"}'), { headers: [], key: null }),
          origin(3, Buffer.alloc(0)),
        ];
        await store.insert(
          'raw_events',
          origins.map((o, i) => rawEventRow(o, i === 0 ? { eventId: 'E1', deviceId: 'dev-1' } : {})),
          { dedupToken: 'raw' },
        );
        const rows = await store.query<{
          hex: string;
          raw_size: number;
          raw_sha256: string;
          computed_sha: string;
          headers: { key: string; value: string | null }[];
          record_key: string | null;
          event_id: string | null;
          device_id: string | null;
        }>(
          `SELECT hex(raw) AS hex, raw_size, raw_sha256, lower(hex(SHA256(raw))) AS computed_sha, headers, record_key,
              event_id, device_id
       FROM raw_events FINAL ORDER BY source_offset`,
        );
        expect(rows.map((r) => r.hex)).toEqual(origins.map((o) => o.raw.toString('hex').toUpperCase()));
        expect(rows.map((r) => r.raw_size)).toEqual([11, 14, 0]);
        for (const row of rows) expect(row.computed_sha).toBe(row.raw_sha256);
        expect(rows[0]?.headers).toEqual([
          { key: 'traceparent', value: '00-1-01' },
          { key: 'empty', value: null },
        ]);
        expect(rows[1]?.headers).toEqual([]);
        expect(rows.map((r) => [r.record_key, r.event_id, r.device_id])).toEqual([
          ['dev-1', 'E1', 'dev-1'],
          [null, null, null],
          ['dev-3', null, null],
        ]);
      });
    });

    describe('effectively-once inserts', () => {
      beforeEach(async () => {
        await store.migrate();
      });

      it('drop a retried batch carrying the same dedup token, keep one with another token, and FINAL is exact', async () => {
        const events = Array.from({ length: 500 }, (_, n) =>
          normalisedEvent({ n, observedAt: T0 + (n % 2 === 0 ? 0 : 40 * 86_400_000) + n }),
        );
        const rows = events.map(normalisedEventRow);
        const token = batchDedupToken({
          pipeline: 'vitals@1',
          topic: 'vigil.telemetry.raw',
          partition: 0,
          firstOffset: 0,
          lastOffset: 499,
          rawSha256s: events.map((e) => e.raw_sha256),
        });

        await store.insert('normalised_events', rows, { dedupToken: token });
        // The retry after a crash: same batch, same token, but processed again, so processed_at differs and the blocks'
        // data hashes with it. Rows span two months, so two blocks: the token drops both.
        const retried = events.map((e) => normalisedEventRow({ ...e, processed_at: e.processed_at + 5_000 }));
        await store.insert('normalised_events', retried, { dedupToken: token });
        expect(await count('SELECT count() AS n FROM normalised_events')).toBe(500);
        expect(await count('SELECT uniqExact(_partition_id) AS n FROM normalised_events')).toBe(2);

        // The same rows under another token (the dedup window missed it): stored twice, merged away at read time.
        await store.insert('normalised_events', rows, { dedupToken: `${token}-other` });
        expect(await count('SELECT count() AS n FROM normalised_events')).toBe(1000);
        expect(await count('SELECT count() AS n FROM normalised_events FINAL')).toBe(500);
        expect(await count('SELECT count(DISTINCT event_id) AS n FROM normalised_events')).toBe(500);
      });

      it('keep the dedup log across a restart of the engine', async () => {
        const events = [normalisedEvent({ n: 1 }), normalisedEvent({ n: 2 })];
        await store.insert('normalised_events', events.map(normalisedEventRow), { dedupToken: 'restart-token' });
        await store.close();
        store = open(path.join(dir, 'data'));
        const retried = events.map((e) => normalisedEventRow({ ...e, processed_at: e.processed_at + 60_000 }));
        await store.insert('normalised_events', retried, { dedupToken: 'restart-token' });
        expect(await count('SELECT count() AS n FROM normalised_events')).toBe(2);
      });
    });

    describe('rows ClickHouse cannot store', () => {
      beforeEach(async () => {
        await store.migrate();
      });

      const rowsOf = (n: number) =>
        Array.from({ length: n }, (_, i) => normalisedEventRow(normalisedEvent({ n: i, observedAt: T0 + i })));

      it('the checker passes every row the mappers make, for every table', async () => {
        const guard = new RowGuard(store);
        const event = normalisedEvent({ n: 1 });
        const samples: { [T in TableName]: object[] } = {
          raw_events: [rawEventRow(origin(1, Buffer.from([0, 1, 2])), { eventId: 'E', deviceId: 'd' })],
          normalised_events: [
            normalisedEventRow(event),
            normalisedEventRow(normalisedEvent({ n: 2, vitals: { respiratory_rate: null, spo2: null } })),
            normalisedEventRow(normalisedEvent({ n: 3, type: 'device_status' })),
            normalisedEventRow(normalisedEvent({ n: 4, type: 'alarm' })),
            normalisedEventRow(normalisedEvent({ n: 5, type: 'config_change', deviceBatch: null })),
          ],
          inferences: [
            inferenceRow({ ...inferenceFor(event, { score: 3 }), features: [1, Number.NaN, Number.POSITIVE_INFINITY] }),
          ],
          dead_letters: [deadLetterRow(deadLetter(1, { sequence: 7 }))],
          duplicates: [duplicateRow(duplicate(event))],
          quarantine: [
            quarantineRow({
              pipeline: 'vitals@1',
              target_table: 'normalised_events',
              source_topic: 't',
              source_partition: 0,
              source_offset: 1,
              row_ordinal: 0,
              reason_code: 'ROW_TYPE_MISMATCH',
              reason_detail: 'spo2: Int32 out of range',
              clickhouse_code: null,
              clickhouse_name: null,
              record: Buffer.from('x'),
              record_sha256: sha256Hex('x'),
              batch_token: 'b',
              quarantined_at: T0,
            }),
          ],
        };
        for (const table of Object.keys(TABLE_COLUMNS) as TableName[]) {
          const checks = await guard.checks(table);
          for (const row of samples[table]) expect(checkRow(checks, TABLE_COLUMNS[table], row), table).toBeNull();
        }
      });

      it('set aside the rows that do not fit their columns, land the rest, and land a re-formed batch once', async () => {
        const rows = rowsOf(10) as unknown as Record<string, unknown>[];
        // What reached dead_letters in the bug report (a number far outside Int64, code 27), a value ClickHouse would
        // silently wrap (Int32), an impossible date and a NaN it would store as NULL.
        rows[2] = { ...rows[2]!, sequence: 1.5e300 };
        rows[5] = { ...rows[5]!, spo2: 1e10 };
        rows[7] = { ...rows[7]!, received_at: '2026-02-30 08:00:00.000' };
        rows[8] = { ...rows[8]!, temperature_c: Number.NaN };
        const guard = new RowGuard(store);
        const first = await guard.land('normalised_events', rows, { dedupToken: 'guard-batch' });
        expect(first.stored).toBe(6);
        expect(first.refused).toEqual([
          expect.objectContaining({
            index: 2,
            reason: 'ROW_TYPE_MISMATCH',
            detail: 'sequence: Int64 beyond ±2^53 or out of range',
          }),
          expect.objectContaining({ index: 5, reason: 'ROW_TYPE_MISMATCH', detail: 'spo2: Int32 out of range' }),
          expect.objectContaining({
            index: 7,
            reason: 'ROW_TYPE_MISMATCH',
            detail: 'received_at: not a calendar DateTime64',
          }),
          expect.objectContaining({ index: 8, reason: 'ROW_TYPE_MISMATCH', clickhouseCode: null }),
        ]);
        // The same batch re-formed after a crash: processed again (other processed_at), same token.
        const again = rows.map((r) => ({ ...r, processed_at: '2026-03-10 09:00:00.000' }));
        const second = await new RowGuard(store).land('normalised_events', again, { dedupToken: 'guard-batch' });
        expect(second.refused.map((r) => r.index)).toEqual([2, 5, 7, 8]);
        expect(await count('SELECT count() AS n FROM normalised_events')).toBe(6);
      });

      it('isolate the rows the engine refuses by bisection, with deterministic sub-batch tokens', async () => {
        const rows: object[] = rowsOf(9);
        rows[1] = { ...rows[1]!, spo2: 'ninety' };
        rows[6] = { ...rows[6]!, sequence: 1.5 };
        const refused = await insertIsolating(store, 'normalised_events', rows, 'bisect-batch');
        expect(refused.map((r) => r.index)).toEqual([1, 6]);
        for (const r of refused) expect(r.code).toBeGreaterThan(0);
        expect(await count('SELECT count() AS n FROM normalised_events')).toBe(7);
        // A retry splits the same way under the same tokens: every sub-block that landed is dropped.
        const retried = await insertIsolating(store, 'normalised_events', rows, 'bisect-batch');
        expect(retried).toEqual(refused);
        expect(await count('SELECT count() AS n FROM normalised_events')).toBe(7);
      });

      it('fall back for types the checker does not know, and never split a batch for a wrong statement', async () => {
        await store.command(
          `CREATE TABLE IF NOT EXISTS guard_probe (k String, ip IPv4, n Int32)
           ENGINE = ReplacingMergeTree ORDER BY k SETTINGS non_replicated_deduplication_window = 100`,
        );
        const rows = Array.from({ length: 6 }, (_, i) => ({ k: `k${i}`, ip: '10.0.0.1', n: i }));
        rows[1] = { ...rows[1]!, ip: 'not-an-ip' }; // IPv4 is not checked: the engine refuses it
        rows[4] = { ...rows[4]!, n: 2 ** 40 }; // the checker sets it aside
        const landed = await new RowGuard(store).land('guard_probe', rows, { dedupToken: 'probe' });
        expect(landed.stored).toBe(4);
        expect(landed.refused).toEqual([
          expect.objectContaining({ index: 1, reason: 'ROW_REFUSED_BY_STORE', clickhouseCode: 675 }),
          expect.objectContaining({ index: 4, reason: 'ROW_TYPE_MISMATCH', detail: 'n: Int32 out of range' }),
        ]);
        expect(landed.refused[0]?.detail).not.toContain('not-an-ip');
        expect(await count('SELECT count() AS n FROM guard_probe')).toBe(4);

        const missing = await insertIsolating(store, 'no_such_table', rowsOf(4), 't').catch((e: unknown) => e);
        expect(missing).toMatchObject({ code: 'CLICKHOUSE_QUERY_FAILED', clickhouseCode: 60 });
      });
    });

    describe('queries and errors', () => {
      it('bind parameters as values, never as SQL', async () => {
        await store.migrate();
        await store.insert(
          'normalised_events',
          [normalisedEventRow(normalisedEvent({ n: 1, siteId: "site-a' OR 1=1 --" }))],
          {
            dedupToken: 'bind',
          },
        );
        expect(
          await count('SELECT count() AS n FROM normalised_events WHERE site_id = {site:String}', { site: 'site-a' }),
        ).toBe(0);
        expect(
          await count('SELECT count() AS n FROM normalised_events WHERE site_id = {site:String}', {
            site: "site-a' OR 1=1 --",
          }),
        ).toBe(1);
        const [row] = await store.query<{ t: string }>("SELECT toString({t:DateTime64(3, 'UTC')}) AS t", {
          t: new Date(T0 + 5),
        });
        expect(row?.t).toBe('2026-03-10 08:00:00.005');
      });

      it('map a wrong statement to CLICKHOUSE_QUERY_FAILED (not retriable), without the engine text', async () => {
        const syntax = await store.query('SELEC 1').catch((e: unknown) => e);
        expect(syntax).toMatchObject({ code: 'CLICKHOUSE_QUERY_FAILED', retriable: false });
        expect((syntax as Error).message).toContain('code 62 SYNTAX_ERROR');

        await store.migrate();
        const bad = await store
          .insert(
            'normalised_events',
            [{ ...normalisedEventRow(normalisedEvent({ n: 1 })), spo2: 'ninety' as never }],
            {
              dedupToken: 'bad',
            },
          )
          .catch((e: unknown) => e);
        expect(bad).toMatchObject({ code: 'CLICKHOUSE_QUERY_FAILED', retriable: false });
        expect((bad as Error).message).not.toContain('ninety');
        expect((bad as Error).message).toContain('an insert into normalised_events');
      });
    });
  });
}
