/**
 * Checks every pipeline's declared tables against its migrations (`npm run check`): applies the migrations to a fresh
 * embedded ClickHouse and compares each output's declared columns (`rows.columns`, runtime/pipeline.ts `TableRows`)
 * with the migrated table's insertable columns in system.columns. A migration stays a reviewed SQL file; this says
 * when the declaration beside the output and the file disagree.
 *
 *   tsx scripts/check-tables.ts                                  every pipelines/*.ts against infra/clickhouse/migrations
 *   tsx scripts/check-tables.ts test/third-pipeline/pipeline.ts=test/third-pipeline/migrations
 *                                                                a pipeline with migrations of its own (applied after)
 *
 * Exit 1 with one line per difference; outputs that declare no columns are listed, not failed.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import { loadMigrations } from '../adapters/clickhouse/migrations.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import type { PipelineDefinition } from '../runtime/pipeline.ts';
import { loadPipeline } from '../runtime/runners/load.ts';

export interface TableCheck {
  /** One line per declared table whose columns differ from the migrated table's. */
  readonly problems: string[];
  /** Outputs whose table has no declared columns (`pipeline: table`). */
  readonly undeclared: string[];
  readonly checked: number;
}

/** The columns an insert may name: not MATERIALIZED or ALIAS, and not a DEFAULT filled from an EPHEMERAL `*_b64`. */
export async function insertableColumns(store: ClickHouseStore, table: string): Promise<string[]> {
  const rows = await store.query<{ name: string }>(
    `SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String}
       AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')
       AND NOT (default_kind = 'DEFAULT' AND name || '_b64' IN
                (SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String}))
     ORDER BY position`,
    { table },
  );
  return rows.map((r) => r.name);
}

/** Compares the declared tables of `definitions` with a store the migrations were applied to. */
export async function checkDeclaredTables(
  store: ClickHouseStore,
  definitions: readonly (Pick<PipelineDefinition, 'name' | 'outputs'> & {
    readonly sources?: PipelineDefinition['sources'];
  })[],
): Promise<TableCheck> {
  const problems: string[] = [];
  const undeclared: string[] = [];
  let checked = 0;
  for (const definition of definitions) {
    const landing = (definition.sources ?? []).flatMap((s) => (s.lands ? [s.lands] : []));
    for (const output of [...definition.outputs.records, ...Object.values(definition.outputs.side), ...landing]) {
      if (!output.rows) {
        undeclared.push(`${definition.name}: ${output.table}`);
        continue;
      }
      checked++;
      const migrated = await insertableColumns(store, output.table);
      if (migrated.length === 0) {
        problems.push(`${definition.name}: table ${output.table} is declared but no migration creates it`);
        continue;
      }
      const declared = new Set(output.rows.columns);
      const missing = migrated.filter((c) => !declared.has(c));
      const extra = [...declared].filter((c) => !migrated.includes(c));
      if (missing.length > 0 || extra.length > 0) {
        problems.push(
          `${definition.name}: ${output.table} ` +
            [
              missing.length > 0 ? `migrated but not declared: ${missing.join(', ')}` : '',
              extra.length > 0 ? `declared but not migrated: ${extra.join(', ')}` : '',
            ]
              .filter(Boolean)
              .join('; '),
        );
      }
    }
  }
  return { problems, undeclared, checked };
}

/** Applies the project's migrations, then each extra folder's statements (their own history, not the project's). */
export async function migratedStore(dir: string, extraMigrationDirs: readonly string[]): Promise<ClickHouseStore> {
  const store = openChdbStore({ path: dir });
  await store.migrate();
  for (const extra of extraMigrationDirs) {
    for (const migration of await loadMigrations(extra)) {
      for (const statement of migration.statements) await store.command(statement);
    }
  }
  return store;
}

async function main(args: readonly string[]): Promise<number> {
  const targets =
    args.length > 0
      ? args.map((a) => {
          const [file, migrations] = a.split('=');
          return { file: file as string, migrations: migrations ? [resolve(migrations)] : [] };
        })
      : readdirSync('pipelines')
          .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'outputs.ts')
          .map((f) => ({ file: join('pipelines', f), migrations: [] as string[] }));
  const dir = mkdtempSync(join(tmpdir(), 'vigil-check-tables-'));
  try {
    const definitions = await Promise.all(targets.map((t) => loadPipeline(t.file)));
    const store = await migratedStore(
      dir,
      targets.flatMap((t) => t.migrations),
    );
    try {
      const report = await checkDeclaredTables(store, definitions);
      for (const line of report.problems) process.stderr.write(`check-tables: ${line}\n`);
      if (report.undeclared.length > 0) {
        process.stderr.write(`check-tables: no declared columns (not checked): ${report.undeclared.join(', ')}\n`);
      }
      process.stderr.write(
        `check-tables: ${report.checked} declared tables of ${definitions.length} pipelines checked against their migrations, ${report.problems.length} differences\n`,
      );
      return report.problems.length === 0 ? 0 : 1;
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
