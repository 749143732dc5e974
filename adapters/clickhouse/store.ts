/**
 * One interface to ClickHouse, two implementations: the embedded engine (chdb, `chdb.ts`) and a server over HTTP
 * (`@clickhouse/client`, `server.ts`). Operators never see either; sinks, the migration runner, the saved surveillance
 * queries and the CLI talk to this.
 *
 * Effectively-once: every insert carries a dedup token. ClickHouse drops a retried insert block carrying the same
 * token (inside the tables' dedup window), so a batch retried after a crash is written once. `batchDedupToken` derives
 * the token from the deterministic batch contract (one partition's offset range, plus a digest of the records' bytes so
 * a recreated topic whose offsets restart never collides with old batches).
 */
import { createHash } from 'node:crypto';
import { VigilError } from '../../runtime/errors.ts';
import type { MigrateOptions, MigrationReport } from './migrations.ts';
import type { TableName, TableRows } from './tables.ts';

/** A bound query parameter. Dates and epoch-ms are the caller's to format; see `formatParam`. */
export type QueryParam = string | number | boolean | bigint | null | Date | readonly (string | number)[];
export type QueryParams = Readonly<Record<string, QueryParam>>;

export interface InsertOptions {
  /** Deterministic per batch (see `batchDedupToken`): the same batch retried carries the same token. */
  readonly dedupToken: string;
}

export interface InsertResult {
  /** Rows sent. A retried block that ClickHouse dropped as a duplicate still counts here: count rows with queries. */
  readonly rows: number;
}

export interface ClickHouseStore {
  /** `embedded` (chdb, in-process) or `server` (HTTP). */
  readonly kind: 'embedded' | 'server';
  /** Where the data lives: a directory (embedded) or a URL without credentials (server). For messages, never secrets. */
  readonly location: string;
  /** Applies every pending migration in infra/clickhouse/migrations, in order (see migrations.ts). */
  migrate(options?: MigrateOptions): Promise<MigrationReport>;
  /** Inserts mapped rows (see tables.ts) as one JSONEachRow block. */
  insert<T extends TableName>(table: T, rows: readonly TableRows[T][], options: InsertOptions): Promise<InsertResult>;
  /** A table without a mapper here (e.g. the drift tables): rows are sent as they are, columns from the first row. */
  insert(table: string, rows: readonly Record<string, unknown>[], options: InsertOptions): Promise<InsertResult>;
  /** Runs a SELECT with `{name:Type}` parameters bound by ClickHouse (never spliced into the text). */
  query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]>;
  /** Runs a statement that returns no rows (DDL, OPTIMIZE, INSERT ... SELECT), parameters bound the same way. */
  command(sql: string, params?: QueryParams): Promise<void>;
  close(): Promise<void>;
}

/**
 * The dedup token of one batch of the deterministic batch contract.
 *
 * @example
 * batchDedupToken({ pipeline: 'vitals@1', topic: 'vigil.telemetry.raw', partition: 3, firstOffset: 1200,
 *   lastOffset: 1699, rawSha256s: batch.map((r) => r.origin.rawSha256) })
 * // 'vitals@1|vigil.telemetry.raw|3|1200-1699|5d41402abc4b2a76'
 */
export function batchDedupToken(batch: {
  /** Pipeline name and version: a deliberate re-processing by a new version is a new batch, not a retry. */
  readonly pipeline: string;
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** The raw records' sha256s in offset order. */
  readonly rawSha256s: readonly string[];
}): string {
  const digest = createHash('sha256');
  for (const sha of batch.rawSha256s) digest.update(sha);
  const content = digest.digest('hex').slice(0, 16);
  return `${batch.pipeline}|${batch.topic}|${batch.partition}|${batch.firstOffset}-${batch.lastOffset}|${content}`;
}

/** Formats a parameter for ClickHouse's text parsing: a Date becomes `YYYY-MM-DD hh:mm:ss.sss` (UTC). */
export function formatParam(value: QueryParam): Exclude<QueryParam, Date> {
  if (value instanceof Date) {
    const iso = value.toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
  }
  return value;
}

export function formatParams(params: QueryParams | undefined): Record<string, Exclude<QueryParam, Date>> {
  const out: Record<string, Exclude<QueryParam, Date>> = {};
  for (const [name, value] of Object.entries(params ?? {})) out[name] = formatParam(value);
  return out;
}

// --- errors ----------------------------------------------------------------------------------------------------------

/**
 * ClickHouse error codes that describe a passing condition of the service rather than a wrong statement: retried with
 * backoff (CLICKHOUSE_UNAVAILABLE, retriable). Everything else ClickHouse refuses is CLICKHOUSE_QUERY_FAILED.
 */
const TRANSIENT_CLICKHOUSE_CODES = new Set([
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (replica in read-only mode)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  236, // ABORTED
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  279, // ALL_CONNECTION_TRIES_FAILED
  319, // UNKNOWN_STATUS_OF_INSERT
  394, // QUERY_WAS_CANCELLED
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
]);

export function isTransientClickHouseCode(code: number | undefined): boolean {
  return code !== undefined && TRANSIENT_CLICKHOUSE_CODES.has(code);
}

/**
 * The code and its name out of a ClickHouse exception text (`Code: 62. DB::Exception: ... (SYNTAX_ERROR)`), so that a
 * VigilError message can say what went wrong without repeating the text, which may quote row data (PHI).
 */
export function clickhouseCodeOf(message: string): { code?: number; name?: string } {
  const code = /Code:\s*(\d+)/.exec(message)?.[1];
  const name = /\(([A-Z][A-Z0-9_]+)\)\s*(?:\(version [^)]*\))?\s*$/.exec(message.trim())?.[1];
  return { ...(code ? { code: Number(code) } : {}), ...(name ? { name } : {}) };
}

export function describeClickHouseCode(code: number | undefined, name: string | undefined): string {
  if (code === undefined && name === undefined) return 'no ClickHouse code';
  return [code === undefined ? undefined : `code ${code}`, name].filter(Boolean).join(' ');
}

/**
 * A VigilError from a ClickHouse refusal, carrying the engine's code and name as fields (never its text), so the insert
 * path can tell a refused row from a wrong statement (guard.ts `isContentRefusal`) without parsing a message.
 */
export class ClickHouseRefusalError extends VigilError {
  readonly clickhouseCode: number | undefined;
  readonly clickhouseName: string | undefined;

  constructor(
    code: 'CLICKHOUSE_UNAVAILABLE' | 'CLICKHOUSE_QUERY_FAILED',
    message: string,
    clickhouse: { code: number | undefined; name: string | undefined },
    cause: unknown,
  ) {
    super(code, message, { cause });
    this.clickhouseCode = clickhouse.code;
    this.clickhouseName = clickhouse.name;
  }
}

/** A refusal by ClickHouse, classified: transient codes are retriable, the rest are not. */
export function clickhouseRefusal(
  what: string,
  code: number | undefined,
  name: string | undefined,
  cause: unknown,
): ClickHouseRefusalError {
  const detail = describeClickHouseCode(code, name);
  if (isTransientClickHouseCode(code)) {
    return new ClickHouseRefusalError(
      'CLICKHOUSE_UNAVAILABLE',
      `ClickHouse could not run ${what} right now (${detail})`,
      { code, name },
      cause,
    );
  }
  return new ClickHouseRefusalError(
    'CLICKHOUSE_QUERY_FAILED',
    `ClickHouse refused ${what} (${detail})`,
    { code, name },
    cause,
  );
}

/** What a statement is, for error messages: its leading keyword, never its parameters or data. */
export function statementLabel(sql: string): string {
  const keyword = /^[A-Za-z]+/.exec(sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ').trim())?.[0];
  return keyword ? `the ${keyword.toUpperCase()} statement` : 'the statement';
}
