/**
 * The production RBAC DDL against chdb and against access/policy.ts.
 *
 * What chdb 3.4 (ClickHouse 26.7) accepts, measured: it parses every statement (EXPLAIN AST), but runs none — its
 * session user `default` has no access management (CREATE ROLE: ACCESS_DENIED, code 497), and even with a
 * --config-file granting it, there is no writable access storage (ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND, 514) and
 * EXECUTE AS is disabled. So the embedded store relies on access/policy.ts, and this test checks that the DDL says
 * the same thing: the same tables per role, no byte column granted, a row policy on every site table, and the row
 * policy's condition keeps exactly a site's rows (evaluated on chdb with the enabled roles given as a literal).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY, TABLES } from '../../../access/policy.ts';
import { ROLES } from '../../../access/principals.ts';
import { openChdbStore } from '../../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../../adapters/clickhouse/store.ts';
import { normalisedEventRow } from '../../../pipelines/outputs.ts';
import { normalisedEvent } from '../../../test/fixtures/clickhouse.ts';

const DDL = readFileSync(new URL('./roles.sql', import.meta.url), 'utf8');
const statements = DDL.split('\n')
  .filter((line) => !line.startsWith('--'))
  .join('\n')
  .split(';')
  .map((s) => s.trim())
  .filter(Boolean);

/** table -> granted columns ('*' for the whole table), per Vigil role. */
function grants(): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const s of statements) {
    const m = /^GRANT SELECT(?:\(([^)]*)\))? ON (\w+) TO vigil_(\w+)$/.exec(s);
    if (!m) continue;
    const [, columns, table, role] = m as unknown as [string, string | undefined, string, string];
    const byTable = out.get(role) ?? new Map<string, string[]>();
    out.set(role, byTable);
    byTable.set(table, columns ? columns.split(',').map((c) => c.trim()) : ['*']);
  }
  return out;
}

let dir: string;
let store: ClickHouseStore;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-rbac-'));
  store = openChdbStore({ path: dir });
  await store.migrate();
  await store.insert(
    'normalised_events',
    [
      normalisedEvent({ n: 1, siteId: 'north' }),
      normalisedEvent({ n: 2, siteId: 'south' }),
      normalisedEvent({ n: 3, siteId: 'north' }),
    ].map(normalisedEventRow),
    { dedupToken: 'rbac' },
  );
}, 60_000);

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('infra/clickhouse/rbac/roles.sql', () => {
  it('parses on ClickHouse 26.7 (chdb), statement by statement', async () => {
    expect(statements.length).toBeGreaterThan(20);
    for (const s of statements) {
      const [row] = await store.query<{ explain: string }>(`EXPLAIN AST ${s}`);
      expect(row?.explain, s).toMatch(/Query|query/);
    }
  });

  it('is refused by chdb when run: its session user has no access management', async () => {
    await expect(store.command('CREATE ROLE IF NOT EXISTS vigil_analyst')).rejects.toThrow(/ACCESS_DENIED|497/);
    await expect(store.command('GRANT SELECT ON normalised_events TO vigil_analyst')).rejects.toThrow(
      /UNKNOWN_ROLE|511/,
    );
  });

  it('grants each role exactly the tables access/policy.ts grants it', () => {
    const granted = grants();
    for (const role of ROLES) {
      expect([...(granted.get(role)?.keys() ?? [])].sort(), role).toEqual([...POLICY[role].tables].sort());
    }
  });

  it('grants no byte column to anyone (raw_events.raw/headers, quarantine.record)', () => {
    for (const [role, byTable] of grants()) {
      for (const [table, columns] of byTable) {
        const bytes = TABLES[table]?.bytes ?? [];
        if (bytes.length === 0) continue;
        expect(columns, `${role} on ${table}`).not.toContain('*');
        for (const b of bytes) expect(columns, `${role} on ${table}`).not.toContain(b);
      }
    }
  });

  it('puts a row policy on every table with site rows (views excepted: their tables carry it)', async () => {
    const policed = statements
      .map((s) => /^CREATE ROW POLICY IF NOT EXISTS vigil_site ON (\w+) /.exec(s)?.[1])
      .filter((t): t is string => t !== undefined)
      .sort();
    const [{ views } = { views: [] as string[] }] = await store.query<{ views: string[] }>(
      "SELECT groupArray(name) AS views FROM system.tables WHERE database = currentDatabase() AND engine = 'View'",
    );
    const expected = Object.entries(TABLES)
      .filter(([name, spec]) => spec.scope !== 'shared' && !views.includes(name))
      .map(([name]) => name)
      .sort();
    expect(policed).toEqual(expected);
  });

  it("the site condition keeps exactly the rows of the user's site roles", async () => {
    const site = statements.find((s) =>
      s.startsWith('CREATE ROW POLICY IF NOT EXISTS vigil_site ON normalised_events'),
    )!;
    const condition = /USING (.*) TO ALL$/.exec(site)![1]!;
    const rowsFor = async (roles: string[]) => {
      const literal = `[${roles.map((r) => `'${r}'`).join(', ')}]::Array(String)`;
      const rows = await store.query<{ site_id: string }>(
        `SELECT site_id FROM normalised_events FINAL WHERE ${condition.replaceAll('enabledRoles()', literal)} ORDER BY site_id`,
      );
      return rows.map((r) => r.site_id);
    };
    expect(await rowsFor(['vigil_analyst', 'vigil_site_north'])).toEqual(['north', 'north']);
    expect(await rowsFor(['vigil_clinician', 'vigil_site_south'])).toEqual(['south']);
    expect(await rowsFor(['vigil_operator', 'vigil_all_sites'])).toEqual(['north', 'north', 'south']);
    expect(await rowsFor(['vigil_analyst'])).toEqual([]);
  });
});
