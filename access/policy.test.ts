import { describe, expect, it } from 'vitest';
import { listSavedQueries } from '../surveillance/queries.ts';
import { actingRole, authorizeQuery, purposeFor, rowsOutsideSites, sqlReads, withSiteFilter } from './policy.ts';
import type { Principal } from './principals.ts';
import { DEFAULT_MIN_CELL, SUPPRESSED, suppressSmallCells } from './suppress.ts';

const analystNorth: Principal = { name: 'an-1', roles: ['analyst'], sites: ['north'], via: 'token' };
const operatorAll: Principal = { name: 'op-1', roles: ['operator'], sites: '*', via: 'token' };
const nurseSouth: Principal = { name: 'rn-1', roles: ['clinician', 'analyst'], sites: ['south'], via: 'oidc' };

describe('sqlReads', () => {
  it('finds tables behind FROM, JOIN and IN, skipping CTEs, subqueries, strings and comments', () => {
    const reads = sqlReads(`
      -- FROM raw_events in a comment
      WITH stored AS (SELECT site_id FROM normalised_events FINAL WHERE x = 'FROM raw_events')
      SELECT * FROM stored JOIN (SELECT 1 FROM duplicates) AS d ON 1 WHERE y IN clinical_alerts`);
    expect([...reads.tables].sort()).toEqual(['clinical_alerts', 'duplicates', 'normalised_events']);
    expect(reads.star).toBe(true);
  });

  it('tells a star selection from a multiplication and count(*)', () => {
    expect(sqlReads('SELECT round(1000 * a / b, 2), count(*) FROM t').star).toBe(false);
    expect(sqlReads('SELECT t.* FROM t').star).toBe(true);
    expect(sqlReads("SELECT COLUMNS('^r') FROM t").star).toBe(true);
  });
});

describe('authorizeQuery', () => {
  it('lets an analyst run every surveillance saved query and refuses the operational one', async () => {
    const allowed: string[] = [];
    for (const q of await listSavedQueries())
      if (authorizeQuery(analystNorth, 'analyst', q.sql).allowed) allowed.push(q.name);
    expect(allowed.sort()).toEqual([
      'alarm-rate-by-firmware',
      'calibration-by-model-version',
      'completeness-by-site',
      'duplicates-by-site',
      'news2-by-firmware',
      'reliability-by-model-version',
      'score-by-model-subgroup',
      'spo2-by-firmware-batch',
    ]);
    expect(
      authorizeQuery(
        analystNorth,
        'analyst',
        (await listSavedQueries()).find((q) => q.name === 'dead-letters-by-reason')!.sql,
      ),
    ).toMatchObject({ allowed: false, reason: 'table' });
  });

  it('refuses raw bytes to every role, by column, by star and by table', () => {
    expect(authorizeQuery(analystNorth, 'analyst', 'SELECT raw FROM raw_events')).toMatchObject({
      reason: 'raw_bytes',
    });
    expect(authorizeQuery(operatorAll, 'operator', 'SELECT * FROM quarantine')).toMatchObject({ reason: 'raw_bytes' });
    expect(authorizeQuery(operatorAll, 'operator', 'SELECT record FROM quarantine')).toMatchObject({
      reason: 'raw_bytes',
    });
    expect(authorizeQuery(operatorAll, 'operator', 'SELECT count() FROM quarantine')).toMatchObject({ allowed: true });
    expect(authorizeQuery(operatorAll, 'operator', 'SELECT raw_copy FROM gateway_rejections')).toMatchObject({
      reason: 'raw_bytes',
    });
    expect(
      authorizeQuery(operatorAll, 'operator', 'SELECT reason, count() AS n FROM gateway_rejections GROUP BY reason'),
    ).toMatchObject({ allowed: true });
    expect(authorizeQuery(operatorAll, 'operator', 'SELECT signed_event FROM raw_events')).toMatchObject({
      reason: 'raw_bytes',
    });
    expect(authorizeQuery(analystNorth, 'analyst', 'SELECT payload FROM normalised_events')).toMatchObject({
      reason: 'raw_bytes',
    });
    // quoted names, and a byte column reached through a join with a granted table, are refused too
    expect(
      authorizeQuery(
        analystNorth,
        'analyst',
        'SELECT r."raw" FROM normalised_events AS n JOIN "raw_events" AS r ON n.raw_sha256 = r.raw_sha256',
      ),
    ).toMatchObject({ reason: 'raw_bytes' });
    expect(sqlReads('SELECT 1 FROM "raw_events"').tables).toEqual(['raw_events']);
  });

  it('refuses table functions, unknown and system tables, roles not held, and global tables to a site principal', () => {
    expect(authorizeQuery(analystNorth, 'analyst', "SELECT * FROM file('/etc/passwd')")).toMatchObject({
      reason: 'function',
    });
    expect(authorizeQuery(analystNorth, 'analyst', 'SELECT name FROM system.users')).toMatchObject({ reason: 'table' });
    expect(authorizeQuery(analystNorth, 'clinician', 'SELECT 1 FROM clinical_alerts')).toMatchObject({
      reason: 'role',
    });
    const siteOperator: Principal = { ...operatorAll, sites: ['north'] };
    expect(authorizeQuery(siteOperator, 'operator', 'SELECT count() FROM dead_letters')).toMatchObject({
      reason: 'site',
    });
    expect(authorizeQuery(operatorAll, 'operator', 'SELECT count() FROM dead_letters')).toMatchObject({
      allowed: true,
      sql: 'SELECT count() FROM dead_letters',
    });
  });

  it('filters every site table a site principal reads, appending to an existing SETTINGS clause', () => {
    const d = authorizeQuery(
      nurseSouth,
      'analyst',
      'SELECT 1 FROM normalised_events JOIN duplicates USING (site_id) SETTINGS join_use_nulls = 0',
    );
    expect(d).toMatchObject({ allowed: true, suppress: true });
    expect(d.allowed && d.sql).toBe(
      "SELECT 1 FROM normalised_events JOIN duplicates USING (site_id) SETTINGS join_use_nulls = 0,\n    additional_table_filters = {'normalised_events': 'site_id IN (\\'south\\')', 'duplicates': 'site_id IN (\\'south\\')'}",
    );
    expect(withSiteFilter('SELECT 1 FROM t;', ['t'], ['a', 'b'])).toBe(
      "SELECT 1 FROM t\nSETTINGS additional_table_filters = {'t': 'site_id IN (\\'a\\', \\'b\\')'}",
    );
    expect(() => withSiteFilter('SELECT 1', ['t'], ["x') OR 1 --"])).toThrow(RangeError);
  });
});

describe('role, purpose and site checks', () => {
  it('needs --role when a principal holds several, and only a role it holds', () => {
    expect(actingRole(analystNorth)).toBe('analyst');
    expect(actingRole(nurseSouth)).toMatchObject({ reason: 'role', message: expect.stringContaining('--role') });
    expect(actingRole(nurseSouth, 'clinician')).toBe('clinician');
    expect(actingRole(nurseSouth, 'auditor')).toMatchObject({ reason: 'role' });
  });

  it('requires a purpose for clinical reads, defaults the others, and takes slugs only', () => {
    expect(purposeFor('clinician')).toMatchObject({ reason: 'purpose' });
    expect(purposeFor('clinician', 'treatment')).toBe('treatment');
    expect(purposeFor('analyst')).toBe('surveillance');
    expect(purposeFor('operator')).toBe('operations');
    expect(purposeFor('analyst', 'Looking at patient 42')).toMatchObject({ reason: 'purpose' });
  });

  it('counts rows of other sites in a result (defence in depth)', () => {
    expect(rowsOutsideSites(analystNorth, [{ site_id: 'north' }, { site: 'south' }, { firmware: 'x' }])).toBe(1);
    expect(rowsOutsideSites(operatorAll, [{ site_id: 'south' }])).toBe(0);
  });
});

describe('suppressSmallCells', () => {
  it('keeps labels and masks every measure and time of a cell under k = 11', () => {
    const { rows, suppressed, cellColumn } = suppressSmallCells([
      { firmware_version: '4.1.0', devices: 11, mean_spo2: 96.1 },
      { firmware_version: '4.2.0', devices: 10, mean_spo2: 91.2 },
    ]);
    expect(DEFAULT_MIN_CELL).toBe(11);
    expect(cellColumn).toBe('devices');
    expect(suppressed).toBe(1);
    expect(rows).toEqual([
      { firmware_version: '4.1.0', devices: 11, mean_spo2: 96.1 },
      { firmware_version: '4.2.0', devices: SUPPRESSED, mean_spo2: SUPPRESSED },
    ]);
  });

  it('prefers people over observations, masks times and numeric strings, honours a configured k', () => {
    const { rows } = suppressSmallCells(
      [{ subgroup: 'adult', inferences: 500, patients: 4, first_failed_at: '2026-03-10 08:00:00', n64: '123' }],
      5,
    );
    expect(rows[0]).toEqual({
      subgroup: 'adult',
      inferences: SUPPRESSED,
      patients: SUPPRESSED,
      first_failed_at: SUPPRESSED,
      n64: SUPPRESSED,
    });
    expect(suppressSmallCells([{ site: 'a', patients: 5 }], 5).suppressed).toBe(0);
  });

  it('refuses a result with no count column to read the cell size from (fail closed)', () => {
    expect(() => suppressSmallCells([{ site: 'a', mean: 1 }])).toThrow(/no count column/);
    expect(suppressSmallCells([])).toEqual({ rows: [], suppressed: 0, cellColumn: null });
  });
});
