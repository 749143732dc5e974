/**
 * A third pipeline, defined in the test tree (test/third-pipeline: its own schemas, one operator, its own table and
 * migration), runs embedded and distributed on the real stack with no change in runtime/ or adapters/: the runners,
 * the worker, the sink and the summary read its sources, schemas, outputs and tables from its definition.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeFramed } from '../../adapters/avro/framing.ts';
import { DEFAULT_SCHEMA_DIR, loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { loadMigrations } from '../../adapters/clickhouse/migrations.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { ensureOwnTopic } from '../../adapters/kafka/admin.ts';
import { PlainProducer } from '../../adapters/kafka/producer.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { runJson } from '../../cli/summary.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { silentLogger } from '../../runtime/log.ts';
import { runEmbeddedSession, withEmbeddedStore } from '../../runtime/runners/embedded-session.ts';
import { framedSource, type SourceInput } from '../../runtime/runners/embedded-sources.ts';
import { checkDeclaredTables, migratedStore } from '../../scripts/check-tables.ts';
import third, {
  MIGRATIONS_DIR,
  RANGE_C,
  type Reading,
  SCHEMA_DIR,
  TABLE,
  thirdTopics,
} from '../third-pipeline/pipeline.ts';
import { isolatedTopics, lastJsonLine, spawnVigil } from './helpers.ts';

const N = 600;
/** Every 10th reading is out of range (a dead letter, VALUE_OUT_OF_RANGE); every 50th is not Avro at all. */
function readings(topic: string): SourceInput[] {
  return Array.from({ length: N }, (_, i): SourceInput => {
    const key = `dev-${i % 17}`;
    if (i % 50 === 49) return { topic, key, value: Buffer.from('not an avro record') };
    const reading: Reading = { reading_id: `r-${i}`, device_id: key, celsius: i % 10 === 9 ? 500 : (i % 40) - 5 };
    return { topic, key, value: reading as unknown as Record<string, unknown> };
  });
}
const broken = readings('t').filter((r) => Buffer.isBuffer(r.value)).length;
const outOfRange = readings('t').filter(
  (r) => !Buffer.isBuffer(r.value) && Number(r.value.celsius) > RANGE_C.max,
).length;
const valid = N - broken - outOfRange;

/** The test's own migration, applied beside the project's (its own folder, so its own history is not mixed in). */
async function applyThirdMigration(store: ClickHouseStore): Promise<void> {
  for (const migration of await loadMigrations(MIGRATIONS_DIR)) {
    for (const statement of migration.statements) await store.command(statement);
  }
}

const dirs: string[] = [];
const tempDir = (label: string) => {
  const dir = mkdtempSync(join(tmpdir(), `vigil-it-third-${label}-`));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('a third pipeline defined in the test tree', () => {
  it('the definition brings its own schemas and table; the declared columns match its migration', async () => {
    const store = await migratedStore(tempDir('check'), [MIGRATIONS_DIR]);
    try {
      expect(await checkDeclaredTables(store, [third])).toEqual({ problems: [], undeclared: [], checked: 1 });
    } finally {
      await store.close();
    }
    expect(third.sources.map((s) => s.schema)).toEqual(['third-reading']);
    expect(third.schemaDirs).toEqual([SCHEMA_DIR]);
    expect(loadSchemaRepo([DEFAULT_SCHEMA_DIR, SCHEMA_DIR]).get('third-converted').newest.version).toBe(1);
    expect(valid).toBeGreaterThan(400);
  });

  it('runs embedded: every record accounted for, its table and the raw plane filled, the JSON keys kept', async () => {
    await withEmbeddedStore({ dataDir: tempDir('embedded'), log: silentLogger }, async (store) => {
      await applyThirdMigration(store);
      const source = framedSource(third, readings(third.source.topic), { clock: systemClock, batchSize: 100 });
      const result = await runEmbeddedSession(third, source, store, silentLogger);
      expect(result.accounting).toEqual({
        consumed: N,
        emitted: valid,
        deadLettered: broken + outOfRange,
        duplicates: 0,
      });
      expect(result.deadLetters).toEqual({ BAD_MAGIC_BYTE: broken, VALUE_OUT_OF_RANGE: outOfRange });
      expect(result.stored).toEqual({
        raw_events: N,
        [TABLE]: valid,
        dead_letters: broken + outOfRange,
        duplicates: 0,
        quarantine: 0,
      });
      const [row] = await store.query<{ f: number }>(
        `SELECT fahrenheit AS f FROM ${TABLE} FINAL WHERE reading_id = 'r-0'`,
      );
      expect(Number(row?.f)).toBe(23); // -5 °C, through the declared row mapping
      const [odd] = await store.query<{ f: number }>(
        `SELECT fahrenheit AS f FROM ${TABLE} FINAL WHERE reading_id = 'r-1'`,
      );
      expect(Number(odd?.f)).toBe(25); // -4 °C = 24.8 °F, rounded by the declared row
      const json = runJson(third, result, store.location);
      for (const key of [
        'consumed',
        'emitted',
        'dead_lettered',
        'duplicates',
        'balanced',
        'dlq',
        'stored',
        'quarantined',
      ]) {
        expect(json).toHaveProperty(key);
      }
      expect(json.balanced).toBe(true);
    });
  });

  it('runs distributed on the real stack: a worker (vigil run) and the sink (vigil sink) land it in ClickHouse', async () => {
    const endpoints = resolveEndpoints();
    const isolated = await isolatedTopics('third');
    const topics = thirdTopics(isolated.prefix);
    for (const name of [topics.readings, topics.converted]) {
      await ensureOwnTopic(endpoints.kafkaBrokers, { name, partitions: 3, config: {} });
    }
    // A producer of the third pipeline's input: framed with the registry's id of its schema.
    const repo = loadSchemaRepo([DEFAULT_SCHEMA_DIR, SCHEMA_DIR]);
    const reading = repo.get('third-reading');
    const id = await createSchemaRegistry(endpoints.schemaRegistryUrl).register(
      reading.spec.subject,
      reading.newest.schema,
    );
    const producer = new PlainProducer(endpoints.kafkaBrokers);
    await producer.connect();
    try {
      await producer.send(
        readings(topics.readings).map((r) => ({
          topic: r.topic,
          key: r.key,
          value: Buffer.isBuffer(r.value) ? r.value : encodeFramed(id, reading.newest.type, r.value),
        })),
      );
    } finally {
      await producer.disconnect();
    }

    const env = { VIGIL_TOPIC_PREFIX: isolated.prefix };
    const pipeline = 'test/third-pipeline/pipeline.ts';
    const worker = await spawnVigil(
      [
        'run',
        pipeline,
        '--group',
        `${isolated.prefix}-workers`,
        '--metrics-port',
        '0',
        '--stop-when-idle',
        '8000',
        '--json',
      ],
      env,
    ).done;
    expect(worker.code, worker.stderr).toBe(0);
    const account = lastJsonLine<{ consumed: number; emitted: number; dead_lettered: number; duplicates: number }>(
      worker.stdout,
    );
    expect(account).toMatchObject({ consumed: N, emitted: valid, dead_lettered: broken + outOfRange, duplicates: 0 });

    const sinkDir = tempDir('sink');
    const store = openChdbStore({ path: sinkDir });
    try {
      await store.migrate();
      await applyThirdMigration(store);
    } finally {
      await store.close();
    }
    const sink = await spawnVigil(
      [
        'sink',
        pipeline,
        '--data-dir',
        sinkDir,
        '--group',
        `${isolated.prefix}-sink`,
        '--metrics-port',
        '0',
        '--stop-when-idle',
        '8000',
        '--json',
      ],
      env,
    ).done;
    expect(sink.code, sink.stderr).toBe(0);
    const landed = lastJsonLine<{ stored: Record<string, number>; tables: number }>(sink.stdout);
    const check = openChdbStore({ path: sinkDir });
    try {
      const [row] = await check.query<{ f: number }>(
        `SELECT fahrenheit AS f FROM ${TABLE} FINAL WHERE reading_id = 'r-1'`,
      );
      expect(Number(row?.f)).toBe(25); // the sink applies the declared row too
    } finally {
      await check.close();
    }
    expect(landed.stored).toEqual({
      raw_events: N,
      [TABLE]: valid,
      dead_letters: broken + outOfRange,
      duplicates: 0,
      quarantine: 0,
    });
  }, 180_000);
});
