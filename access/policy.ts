/**
 * What each role may read, and how a read is constrained to the principal's sites.
 *
 *   analyst    pseudonymised surveillance tables; results pass small-cell suppression (k = 11 by default); never
 *              raw bytes
 *   clinician  the clinical plane (alerts, normalised events, inferences) of its sites; a purpose is required
 *   auditor    the audit log and the evidence a trace reads (raw plane metadata, provenance, inferences, alerts)
 *   operator   operational tables (dead letters, gateway rejections and quarantine without their bytes, duplicates,
 *              sink batches); no clinical values
 *
 * A table is in one of three scopes: `site` (it has a site_id column: every read is filtered to the principal's
 * sites), `global` (its rows belong to sites but carry no site column, e.g. dead letters of undecodable bytes: only a
 * principal of all sites may read it), `shared` (not site data: reference bins, audit tables, sink bookkeeping).
 *
 * The site filter is ClickHouse's `additional_table_filters` setting, added to the query as it is sent: the engine
 * applies it to every read of the table, in CTEs, joins and subqueries alike, so a saved query needs no edit and no
 * site parameter (the saved .sql files stay the analysts' reviewed text). Site ids match a strict pattern (SITE) and
 * are the only values quoted into it. The production database enforces the same rules on its own (roles, grants, row
 * policies: infra/clickhouse/rbac/roles.sql); this layer is what the embedded store has, and what the audit records.
 */
import { ALL_SITES, type Principal, type Role, SITE } from './principals.ts';

export type TableScope = 'site' | 'global' | 'shared';

export interface TableSpec {
  readonly scope: TableScope;
  /** Columns holding raw, possibly PHI-bearing bytes: no role reads them through `vigil query`. */
  readonly bytes?: readonly string[];
  /** For a view: the tables it reads (filtered by site as well, whether or not the engine expands the view first). */
  readonly reads?: readonly string[];
}

/** Every table and view a role may be granted, with its scope. A table not listed here is refused to everyone. */
export const TABLES: Readonly<Record<string, TableSpec>> = {
  raw_events: { scope: 'global', bytes: ['raw', 'headers', 'signed_event'] },
  normalised_events: { scope: 'site' },
  normalised_events_current: { scope: 'site', reads: ['normalised_events'] },
  inferences: { scope: 'site' },
  inferences_current: { scope: 'site', reads: ['inferences'] },
  duplicates: { scope: 'site' },
  drift_histograms: { scope: 'site' },
  drift_reports: { scope: 'site' },
  drift_reference_bins: { scope: 'shared' },
  dead_letters: { scope: 'global' },
  quarantine: { scope: 'global', bytes: ['record'] },
  gateway_rejections: { scope: 'global', bytes: ['raw_copy'] },
  sink_batches: { scope: 'shared' },
  clinical_alerts: { scope: 'site' },
  clinical_alerts_current: { scope: 'site', reads: ['clinical_alerts'] },
  outcomes: { scope: 'site' },
  // Aggregates per model version x cohort; small cohorts are suppressed by the saved queries that read it.
  model_calibration: { scope: 'shared' },
  audit_entries: { scope: 'shared' },
  audit_checkpoints: { scope: 'shared' },
};

/** Every raw-byte column name: of the tables above, and the signed/raw payload columns the gateway may add. */
export const BYTE_COLUMNS: readonly string[] = [
  ...new Set([...Object.values(TABLES).flatMap((t) => t.bytes ?? []), 'signed_event', 'payload']),
];

export interface RoleSpec {
  readonly tables: readonly string[];
  /** Results pass small-cell suppression (suppress.ts). */
  readonly suppress: boolean;
  /** A purpose must be given (`--purpose`); otherwise `defaultPurpose` is recorded. */
  readonly purposeRequired: boolean;
  readonly defaultPurpose: string;
}

export const POLICY: Readonly<Record<Role, RoleSpec>> = {
  analyst: {
    tables: [
      'normalised_events',
      'normalised_events_current',
      'inferences',
      'inferences_current',
      'duplicates',
      'drift_histograms',
      'drift_reports',
      'drift_reference_bins',
      'model_calibration',
    ],
    suppress: true,
    purposeRequired: false,
    defaultPurpose: 'surveillance',
  },
  clinician: {
    tables: [
      'clinical_alerts',
      'clinical_alerts_current',
      'normalised_events',
      'normalised_events_current',
      'inferences',
      'inferences_current',
      'outcomes',
    ],
    suppress: false,
    purposeRequired: true,
    defaultPurpose: 'treatment',
  },
  auditor: {
    tables: [
      'audit_entries',
      'audit_checkpoints',
      'raw_events',
      'sink_batches',
      'dead_letters',
      'normalised_events',
      'normalised_events_current',
      'inferences',
      'inferences_current',
      'clinical_alerts',
      'clinical_alerts_current',
      'gateway_rejections',
      'outcomes',
      'model_calibration',
    ],
    suppress: false,
    purposeRequired: false,
    defaultPurpose: 'audit',
  },
  operator: {
    tables: ['dead_letters', 'duplicates', 'quarantine', 'gateway_rejections', 'sink_batches'],
    suppress: false,
    purposeRequired: false,
    defaultPurpose: 'operations',
  },
};

/** Why a read was refused: a small fixed set (audited, and safe as a metric label). */
export type DenialReason = 'role' | 'table' | 'raw_bytes' | 'site' | 'purpose' | 'function' | 'suppression';

export type QueryDecision =
  | {
      readonly allowed: true;
      readonly tables: readonly string[];
      /** The SQL to send: the query with the site filter settings appended. */
      readonly sql: string;
      readonly suppress: boolean;
    }
  | { readonly allowed: false; readonly reason: DenialReason; readonly message: string };

/** Table functions and functions that reach outside the granted tables. */
const OUTSIDE = new Set([
  'file',
  'url',
  's3',
  's3cluster',
  'hdfs',
  'remote',
  'remotesecure',
  'cluster',
  'clusterallreplicas',
  'input',
  'mysql',
  'postgresql',
  'jdbc',
  'odbc',
  'executable',
  'dictget',
  'joinget',
  'merge',
  'numbers',
  'generaterandom',
  'view',
  'loop',
]);

/** The SQL with string literals emptied and comments removed: what is left is structure and identifiers. */
export function stripSql(sql: string): string {
  return sql
    .replace(/'(?:[^'\\]|\\.)*'/g, "''")
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ');
}

export interface SqlReads {
  /** Names after FROM / JOIN / IN that are not CTEs or subqueries (qualified names kept whole: `system.users`). */
  readonly tables: readonly string[];
  readonly identifiers: ReadonlySet<string>;
  /** Called functions (lower case). */
  readonly functions: ReadonlySet<string>;
  /** `SELECT *`, `t.*` or COLUMNS(...): every column, whatever its name. */
  readonly star: boolean;
}

/** What a single SELECT reads, from its text. Conservative: anything unclear counts as read. */
export function sqlReads(sql: string): SqlReads {
  // Quoted identifiers (`x`, "x") read as bare names, so a quoted table or column is seen like any other.
  const text = stripSql(sql).replace(/`([^`]*)`|"([^"]*)"/g, (_, a?: string, b?: string) => a ?? b ?? '');
  const ctes = new Set([...text.matchAll(/\b([A-Za-z_]\w*)\s+AS\s*\(/gi)].map((m) => m[1]!.toLowerCase()));
  const tables = new Set<string>();
  for (const m of text.matchAll(/\b(?:FROM|JOIN|IN)\s+([A-Za-z_][\w.]*)(\s*\()?/gi)) {
    const name = m[1]!.toLowerCase();
    if (m[2] || ctes.has(name)) continue; // a table function (caught as a function) or a CTE
    tables.add(name);
  }
  const functions = new Set([...text.matchAll(/\b([A-Za-z_]\w*)\s*\(/g)].map((m) => m[1]!.toLowerCase()));
  const identifiers = new Set([...text.matchAll(/\b([A-Za-z_]\w*)\b/g)].map((m) => m[1]!.toLowerCase()));
  // `SELECT *`, `, *`, `t.*` (a multiplication has an operand before its `*`; count(*) an opening parenthesis).
  const star = /(?:\bSELECT(?:\s+DISTINCT)?|,|\.)\s*\*/i.test(text) || functions.has('columns');
  return { tables: [...tables], identifiers, functions, star };
}

const deny = (reason: DenialReason, message: string): QueryDecision => ({ allowed: false, reason, message });

/** The role the principal acts in: the one asked for (which it must hold), or its only role. */
export function actingRole(principal: Principal, asked?: string): Role | { reason: 'role'; message: string } {
  if (asked !== undefined) {
    return (principal.roles as readonly string[]).includes(asked)
      ? (asked as Role)
      : { reason: 'role', message: `${principal.name} does not hold the role ${asked}` };
  }
  if (principal.roles.length === 1) return principal.roles[0]!;
  return { reason: 'role', message: `${principal.name} holds ${principal.roles.join(', ')}: choose one with --role` };
}

/** The purpose recorded for a read: the one given (a slug), or the role's default; clinical reads must give one. */
export function purposeFor(role: Role, given?: string): string | { reason: 'purpose'; message: string } {
  if (given === undefined || given === '') {
    return POLICY[role].purposeRequired
      ? { reason: 'purpose', message: `a ${role} read needs --purpose (e.g. treatment, handover, ward-round)` }
      : POLICY[role].defaultPurpose;
  }
  if (!/^[a-z][a-z0-9_-]{0,39}$/.test(given)) {
    return {
      reason: 'purpose',
      message: '--purpose is a short slug: lower-case letters, digits, - and _ (e.g. treatment)',
    };
  }
  return given;
}

/**
 * Decides whether `role` (held by `principal`) may run `sql`, and returns the SQL constrained to its sites.
 *
 * @example
 * const d = authorizeQuery(principal, 'analyst', saved.sql);
 * if (!d.allowed) throw new AccessDenied(d.reason, d.message);
 * const rows = await store.query(d.sql, params);
 */
export function authorizeQuery(principal: Principal, role: Role, sql: string): QueryDecision {
  if (!principal.roles.includes(role)) return deny('role', `${principal.name} does not hold the role ${role}`);
  const spec = POLICY[role];
  const reads = sqlReads(sql);
  const outside = [...reads.functions].filter((f) => OUTSIDE.has(f));
  if (outside.length > 0) return deny('function', `the query calls ${outside.join(', ')}: not allowed through Vigil`);
  if (reads.tables.length === 0) return deny('table', 'the query reads no table Vigil knows');
  // A byte column's name anywhere in the query is refused, whatever table it seems to belong to (fail closed).
  const named = BYTE_COLUMNS.filter((column) => reads.identifiers.has(column));
  if (named.length > 0) {
    return deny('raw_bytes', `the query names raw byte columns (${named.join(', ')}): no role reads them here`);
  }
  for (const table of reads.tables) {
    const known = TABLES[table];
    const bytes = known?.bytes ?? [];
    if (bytes.length > 0 && reads.star) {
      return deny(
        'raw_bytes',
        `the query reads the raw bytes of ${table} (${bytes.join(', ')}): no role reads them here`,
      );
    }
    if (!known || !spec.tables.includes(table)) {
      return deny(
        table === 'raw_events' || table === 'quarantine' ? 'raw_bytes' : 'table',
        `the ${role} role is not granted ${table}`,
      );
    }
    if (known.scope === 'global' && principal.sites !== ALL_SITES) {
      return deny('site', `${table} has no site column: only a principal of all sites may read it`);
    }
  }
  const filtered = [
    ...new Set(
      reads.tables.filter((t) => TABLES[t]?.scope === 'site').flatMap((t) => [t, ...(TABLES[t]?.reads ?? [])]),
    ),
  ];
  return {
    allowed: true,
    tables: reads.tables,
    sql: principal.sites === ALL_SITES || filtered.length === 0 ? sql : withSiteFilter(sql, filtered, principal.sites),
    suppress: spec.suppress,
  };
}

/** Appends `additional_table_filters` (to the query's own SETTINGS clause when it ends with one). */
export function withSiteFilter(sql: string, tables: readonly string[], sites: readonly string[]): string {
  for (const site of sites) if (!SITE.test(site)) throw new RangeError('a site id outside the SITE pattern');
  if (sites.length === 0) throw new RangeError('a site filter needs at least one site');
  // Inside the map the filter is itself a quoted string: site ids carry no quote or backslash (SITE), so the only
  // quoting is the fixed one written here.
  const inList = sites.map((s) => `\\'${s}\\'`).join(', ');
  const map = tables.map((t) => `'${t}': 'site_id IN (${inList})'`).join(', ');
  const setting = `additional_table_filters = {${map}}`;
  const body = sql.trim().replace(/;\s*$/, '');
  return /\bSETTINGS\b[^()]*$/i.test(stripSql(body)) ? `${body},\n    ${setting}` : `${body}\nSETTINGS ${setting}`;
}

/** Defence in depth: rows that name a site (site_id or site) must all be of the principal's sites. */
export function rowsOutsideSites(principal: Principal, rows: readonly Record<string, unknown>[]): number {
  if (principal.sites === ALL_SITES) return 0;
  const sites = new Set(principal.sites);
  return rows.filter((row) => {
    const site = row.site_id ?? row.site;
    return typeof site === 'string' && site !== '' && !sites.has(site);
  }).length;
}
