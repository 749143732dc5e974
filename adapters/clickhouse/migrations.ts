/**
 * The migration runner: applies `infra/clickhouse/migrations/NNNN_name.sql` in version order, once each, and keeps
 * a history in `schema_migrations` (version, name, sha256 of the file, statement count, when).
 *
 * - Idempotent: applied versions are skipped, so running it on every start is cheap and safe.
 * - Refuses drift: an applied file whose sha256 changed, or two files with one version, stop it with
 *   MIGRATION_CONFLICT before anything runs. A schema change is a new file, never an edit.
 * - A version missing from the folder but recorded in the store (a newer Vigil migrated it) is reported, not fatal:
 *   migrations are additive, so an older worker keeps running against a newer schema.
 * - ClickHouse DDL is not transactional: a migration is recorded only after all its statements ran, and every
 *   statement must be idempotent (CREATE ... IF NOT EXISTS, ALTER ... ADD COLUMN IF NOT EXISTS) so a half-applied
 *   file is simply applied again. Two workers migrating at once both run the same idempotent statements; the
 *   history table is a ReplacingMergeTree keyed by version, so it ends with one row per version.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { ClickHouseStore } from './store.ts';
import { toDateTime64 } from './tables.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../infra/clickhouse/migrations/', import.meta.url));

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export const HISTORY_TABLE = 'schema_migrations';

const HISTORY_DDL = `CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE}
(
    version    UInt32,
    name       String,
    checksum   String,
    statements UInt32,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`;

export interface Migration {
  readonly version: number;
  /** File name, e.g. `0001_planes.sql`. */
  readonly name: string;
  /** Hex sha256 of the file (line endings normalised to LF, so a Windows checkout agrees). */
  readonly checksum: string;
  readonly statements: readonly string[];
}

export interface MigrationReport {
  /** Files applied by this run, in order. */
  readonly applied: readonly string[];
  /** Files that were already applied with the same checksum. */
  readonly skipped: readonly string[];
  /** Versions recorded in the store with no file in the folder (migrated by a newer Vigil). */
  readonly unknownApplied: readonly string[];
}

/** What the runner needs from a store (the store itself, minus `migrate`). */
export type MigrationTarget = Pick<ClickHouseStore, 'query' | 'command'>;

/** Reads and checks every migration file in `dir`, ordered by version. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  const seen = new Map<number, string>();
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) {
      throw new VigilError(
        'MIGRATION_CONFLICT',
        `migration file ${file} is not named NNNN_lower_snake.sql (in ${dir}); rename it so its order is explicit`,
      );
    }
    const version = Number(match[1]);
    const other = seen.get(version);
    if (other) {
      throw new VigilError('MIGRATION_CONFLICT', `migrations ${other} and ${file} share version ${match[1]}`);
    }
    seen.set(version, file);
    const text = (await readFile(path.join(dir, file), 'utf8')).replace(/\r\n/g, '\n');
    const statements = splitStatements(text);
    if (statements.length === 0) throw new VigilError('MIGRATION_CONFLICT', `migration ${file} has no statements`);
    migrations.push({ version, name: file, checksum: sha256(text), statements });
  }
  return migrations;
}

export interface MigrateOptions {
  /** The migrations folder (default infra/clickhouse/migrations). */
  readonly dir?: string;
  /** Stamps applied_at in the history. */
  readonly clock?: Clock;
}

/** Applies the pending migrations of `dir` to `target`. */
export async function applyMigrations(target: MigrationTarget, options: MigrateOptions = {}): Promise<MigrationReport> {
  const clock = options.clock ?? systemClock;
  const migrations = await loadMigrations(options.dir);
  await target.command(HISTORY_DDL);
  const history = await target.query<{ version: number; name: string; checksum: string }>(
    `SELECT version, argMax(name, applied_at) AS name, argMax(checksum, applied_at) AS checksum
     FROM ${HISTORY_TABLE} GROUP BY version ORDER BY version`,
  );
  const applied = new Map(history.map((row) => [Number(row.version), row]));

  // Check everything before changing anything.
  for (const migration of migrations) {
    const previous = applied.get(migration.version);
    if (previous && previous.checksum !== migration.checksum) {
      throw new VigilError(
        'MIGRATION_CONFLICT',
        `migration ${migration.name} was changed after it was applied (as ${previous.name}, sha256 ` +
          `${previous.checksum.slice(0, 12)}…, now ${migration.checksum.slice(0, 12)}…). Restore the file and put the ` +
          'change in a new migration',
      );
    }
  }

  const report = { applied: [] as string[], skipped: [] as string[], unknownApplied: [] as string[] };
  const known = new Set(migrations.map((m) => m.version));
  for (const [version, row] of applied) if (!known.has(version)) report.unknownApplied.push(row.name);

  for (const migration of migrations) {
    if (applied.has(migration.version)) {
      report.skipped.push(migration.name);
      continue;
    }
    for (const statement of migration.statements) await target.command(statement);
    await target.command(
      `INSERT INTO ${HISTORY_TABLE} (version, name, checksum, statements, applied_at)
       SELECT {version:UInt32}, {name:String}, {checksum:String}, {statements:UInt32}, {applied_at:DateTime64(3, 'UTC')}`,
      {
        version: migration.version,
        name: migration.name,
        checksum: migration.checksum,
        statements: migration.statements.length,
        applied_at: toDateTime64(clock.now(), 'applied_at'),
      },
    );
    report.applied.push(migration.name);
  }
  return report;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Splits a SQL file into statements at top-level semicolons, skipping those inside quotes ('...', "...", `...`) and
 * comments (-- to end of line, /* ... *\/). Comment-only fragments are dropped; statements keep their comments.
 */
export function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  const n = text.length;
  const push = (end: number) => {
    const statement = text.slice(start, end).trim();
    if (stripComments(statement).trim()) statements.push(statement);
  };
  while (i < n) {
    const c = text[i];
    if (c === '-' && text[i + 1] === '-') {
      const eol = text.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end === -1) throw new VigilError('MIGRATION_CONFLICT', 'unterminated /* comment in a migration');
      i = end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(text, i, c);
    } else if (c === ';') {
      push(i);
      start = i + 1;
      i += 1;
    } else {
      i += 1;
    }
  }
  push(n);
  return statements;
}

function skipQuoted(text: string, open: number, quote: string): number {
  let i = open + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (c === quote && text[i + 1] === quote)
      i += 2; // doubled quote escapes itself
    else if (c === quote) return i + 1;
    else i += 1;
  }
  throw new VigilError('MIGRATION_CONFLICT', `unterminated ${quote} quote in a migration`);
}

function stripComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}
