import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import vitals from '../pipelines/vitals.ts';
import type { PipelineDefinition } from '../runtime/pipeline.ts';
import { checkDeclaredTables, migratedStore } from './check-tables.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-check-tables-test-'));
let store: ClickHouseStore;
beforeAll(async () => {
  store = await migratedStore(dir, []);
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const declaring = (table: string, columns: string[]) =>
  ({
    name: 'probe',
    outputs: {
      records: [{ name: 'o', topic: 't', schema: 's', table, rows: { columns }, select: () => null }],
      side: {},
    },
  }) as unknown as Pick<PipelineDefinition, 'name' | 'outputs'>;

describe('check-tables', () => {
  it('finds the vitals declarations equal to the migrated tables', async () => {
    const report = await checkDeclaredTables(store, [vitals]);
    expect(report).toEqual({ problems: [], undeclared: [], checked: 3 });
  });

  it('names the columns a declaration lacks or invents, and a table no migration creates', async () => {
    const report = await checkDeclaredTables(store, [
      declaring('duplicates', ['pipeline', 'event_id', 'nonsense']),
      declaring('no_such_table', ['a']),
    ]);
    expect(report.problems).toHaveLength(2);
    expect(report.problems[0]).toMatch(/migrated but not declared: .*device_id.*; declared but not migrated: nonsense/);
    expect(report.problems[1]).toMatch(/no_such_table is declared but no migration creates it/);
  });
});
