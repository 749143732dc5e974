import { describe, expect, it } from 'vitest';
import { loadMigrations, splitStatements } from './migrations.ts';

describe('splitStatements', () => {
  it('splits at top-level semicolons only', () => {
    const sql = [
      '-- a comment; with a semicolon',
      "CREATE TABLE a (x String DEFAULT ';') ENGINE = Memory;",
      '/* block; comment */',
      'CREATE FUNCTION f AS (x) -> concat(x, \';\', "q;", `c;`);',
      "SELECT 'it''s; fine', 'escaped \\'; too'",
      ';;',
      '-- trailing comment only',
    ].join('\n');
    expect(splitStatements(sql)).toEqual([
      "-- a comment; with a semicolon\nCREATE TABLE a (x String DEFAULT ';') ENGINE = Memory",
      '/* block; comment */\nCREATE FUNCTION f AS (x) -> concat(x, \';\', "q;", `c;`)',
      "SELECT 'it''s; fine', 'escaped \\'; too'",
    ]);
  });

  it('refuses unterminated quotes and comments', () => {
    expect(() => splitStatements("SELECT 'oops")).toThrow(/unterminated ' quote/);
    expect(() => splitStatements('SELECT 1 /* oops')).toThrow(/unterminated \/\* comment/);
  });
});

describe('the migrations folder', () => {
  it('holds versioned files, 0001 and 0002 first, each statement idempotent (IF [NOT] EXISTS, OR REPLACE, MODIFY)', async () => {
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.version)).toEqual([...migrations.map((m) => m.version)].sort((a, b) => a - b));
    expect(migrations.slice(0, 2).map((m) => m.name)).toEqual(['0001_planes.sql', '0002_operations.sql']);
    for (const migration of migrations) {
      expect(migration.checksum).toMatch(/^[0-9a-f]{64}$/);
      for (const statement of migration.statements) {
        const code = statement.replace(/--[^\n]*/g, '').trim();
        // The one INSERT allowed: a table copied whole to or from its `<table>_rebuild` twin during a rebuild that
        // keeps the table's own structure (0012: raw_events). Re-running it is harmless only because the target is
        // a ReplacingMergeTree keyed by the rows' identity, so a second copy of identical rows collapses; any other
        // INSERT (a row of data, a partial copy) would repeat itself on every re-application of a half-applied file.
        const rebuildCopy = /^INSERT INTO (\w+) SELECT \* FROM (\w+)$/.exec(code);
        if (
          rebuildCopy &&
          (rebuildCopy[1] === `${rebuildCopy[2]}_rebuild` || rebuildCopy[2] === `${rebuildCopy[1]}_rebuild`)
        )
          continue;
        expect(code, `${migration.name}: ${code.slice(0, 60)}`).toMatch(
          /^(CREATE (TABLE|DATABASE|VIEW|MATERIALIZED VIEW|DICTIONARY) IF NOT EXISTS|CREATE OR REPLACE|DROP \w+ IF EXISTS|ALTER TABLE \S+ ((ADD|DROP) \w+ IF (NOT )?EXISTS|MODIFY ))/,
        );
      }
    }
  });
});
