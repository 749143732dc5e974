/**
 * The insert path's last line of defence: a row ClickHouse cannot store because of its content never fails its batch.
 *
 * 1. The checker: each row is checked against its table's column types (read once per table from `system.columns`,
 *    see column-types.ts) and a row that does not fit is set aside before anything is sent. Normally the insert then
 *    never fails.
 * 2. The fallback, for what the checker misses: when ClickHouse refuses an insert for its content (any code that is
 *    neither transient nor a wrong statement, see `isContentRefusal`), the batch is split in halves, recursively, until
 *    the refused rows are alone; every other row lands.
 *
 * Effectively once still holds: the checked rows go in one insert under the batch's own token; each half of a split
 * carries the parent token plus `/0` or `/1`. The checker and the engine are deterministic, so a batch re-formed after
 * a crash sets aside the same rows, splits at the same places under the same tokens, and ClickHouse drops every
 * sub-block that had landed (ClickHouse itself appends `_<n>` to a token per partition block, so `/` never collides).
 *
 * The caller records the refused rows (the sink's quarantine table); nothing here logs or quotes a value.
 */
import { VigilError } from '../../runtime/errors.ts';
import { columnCheck, type ValueCheck } from './column-types.ts';
import { compileRowCheck, type RowCheck } from './row-check.ts';
import { ClickHouseRefusalError, type ClickHouseStore, isTransientClickHouseCode } from './store.ts';
import { isTableName, TABLE_COLUMNS } from './tables.ts';

/** Why one row was set aside. */
export interface RefusedRow {
  /** Index of the row in the batch given to `land`. */
  readonly index: number;
  /** `ROW_TYPE_MISMATCH`: the checker found it; `ROW_REFUSED_BY_STORE`: ClickHouse refused it. */
  readonly reason: 'ROW_TYPE_MISMATCH' | 'ROW_REFUSED_BY_STORE';
  /** Column and rule (checker) or the engine's code and name: never a value. */
  readonly detail: string;
  readonly clickhouseCode: number | null;
  readonly clickhouseName: string | null;
}

export interface LandedRows {
  /** Rows sent and accepted (a retried block ClickHouse dropped as a duplicate counts too). */
  readonly stored: number;
  /** Rows set aside, in index order. */
  readonly refused: readonly RefusedRow[];
}

/**
 * ClickHouse codes that say the statement or the session is wrong, not a row: the same for every row, so splitting the
 * batch would only set every row aside. These fail the batch as before (CLICKHOUSE_QUERY_FAILED, not retriable).
 */
const STATEMENT_CODES = new Set([
  1, // UNSUPPORTED_METHOD
  8, // THERE_IS_NO_COLUMN
  10, // NOT_FOUND_COLUMN_IN_BLOCK
  16, // NO_SUCH_COLUMN_IN_TABLE
  44, // ILLEGAL_COLUMN
  46, // UNKNOWN_FUNCTION
  47, // UNKNOWN_IDENTIFIER
  48, // NOT_IMPLEMENTED
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR
  73, // UNKNOWN_FORMAT
  80, // INCORRECT_QUERY
  81, // UNKNOWN_DATABASE
  115, // UNKNOWN_SETTING
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  195, // IP_ADDRESS_NOT_ALLOWED
  218, // TABLE_IS_DROPPED
  291, // DATABASE_ACCESS_DENIED
  452, // SETTING_CONSTRAINT_VIOLATION
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

/** A refusal about the rows sent: not retriable, not a service condition, not a wrong statement, with a code. */
export function isContentRefusal(error: unknown): error is ClickHouseRefusalError & { clickhouseCode: number } {
  if (!(error instanceof ClickHouseRefusalError) || error.code !== 'CLICKHOUSE_QUERY_FAILED' || error.retriable) {
    return false;
  }
  const code = error.clickhouseCode;
  return code !== undefined && !isTransientClickHouseCode(code) && !STATEMENT_CODES.has(code);
}

/** One table's columns as ClickHouse describes them, and a check per column. */
export interface TableChecks {
  readonly table: string;
  /** Column name -> check, for every column the table has. */
  readonly columns: ReadonlyMap<string, ValueCheck>;
  /** Columns with a default expression: a row may leave them out. */
  readonly defaulted: ReadonlySet<string>;
  /** Column name -> its ClickHouse type name (lets row-check.ts test common types inline). */
  readonly types?: ReadonlyMap<string, string>;
}

/** Reads a table's column types. The table name is an identifier (checked), bound as a literal so any server reads it. */
async function describeTable(store: Pick<ClickHouseStore, 'query'>, table: string): Promise<TableChecks> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new VigilError('INTERNAL', 'unexpected table name');
  const rows = await store.query<{ name: string; type: string; default_kind: string }>(
    `SELECT name, type, default_kind FROM system.columns WHERE database = currentDatabase() AND table = '${table}'`,
  );
  if (rows.length === 0) {
    throw new VigilError('CLICKHOUSE_QUERY_FAILED', `table ${table} does not exist in ClickHouse (not migrated?)`);
  }
  return {
    table,
    columns: new Map(rows.map((r) => [r.name, columnCheck(r.type)])),
    types: new Map(rows.map((r) => [r.name, r.type])),
    defaulted: new Set(rows.filter((r) => r.default_kind !== '').map((r) => r.name)),
  };
}

/**
 * The first problem of a row against its table, or null. `columns` are the columns the insert sends (TABLE_COLUMNS
 * for a mapped table); a column the table lacks is left to ClickHouse (a wrong statement, not a wrong row).
 */
export function checkRow(checks: TableChecks, columns: readonly string[], row: unknown): string | null {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) return 'the row is not an object';
  const values = row as Record<string, unknown>;
  for (const column of columns) {
    const check = checks.columns.get(column);
    if (!check) continue;
    const value = values[column];
    if (value === undefined && checks.defaulted.has(column)) continue;
    const problem = check(value);
    if (problem) return `${column}: ${problem}`;
  }
  return null;
}

/**
 * Inserts `rows` under `dedupToken`; when ClickHouse refuses the insert for its content, splits it in halves (tokens
 * `<token>/0`, `<token>/1`) down to the refused rows. Returns their indices with the engine's code and name. Any other
 * failure (transient, wrong statement) is thrown as it came.
 */
export async function insertIsolating(
  store: Pick<ClickHouseStore, 'insert'>,
  table: string,
  rows: readonly object[],
  dedupToken: string,
): Promise<{ readonly index: number; readonly code: number; readonly name: string | null }[]> {
  const refused: { index: number; code: number; name: string | null }[] = [];
  const attempt = async (from: number, to: number, token: string): Promise<void> => {
    try {
      await store.insert(table, rows.slice(from, to) as Record<string, unknown>[], { dedupToken: token });
    } catch (error) {
      if (!isContentRefusal(error)) throw error;
      if (to - from === 1) {
        refused.push({ index: from, code: error.clickhouseCode, name: error.clickhouseName ?? null });
        return;
      }
      const middle = from + Math.ceil((to - from) / 2);
      await attempt(from, middle, `${token}/0`);
      await attempt(middle, to, `${token}/1`);
    }
  };
  if (rows.length > 0) await attempt(0, rows.length, dedupToken);
  return refused;
}

/**
 * Lands rows through the checker and the fallback, with one description per table read on first use.
 *
 * @example
 * const guard = new RowGuard(store);
 * const { stored, refused } = await guard.land('normalised_events', rows, { dedupToken });
 * // refused: [{ index: 7, reason: 'ROW_TYPE_MISMATCH', detail: 'spo2: Int32 out of range', ... }]
 */
export class RowGuard {
  readonly #store: Pick<ClickHouseStore, 'insert' | 'query'>;
  readonly #tables = new Map<string, Promise<TableChecks>>();
  /** Compiled row checks per table description and column list (row-check.ts): `checkRow`'s results, faster. */
  readonly #compiled = new WeakMap<TableChecks, Map<string, RowCheck>>();

  constructor(store: Pick<ClickHouseStore, 'insert' | 'query'>) {
    this.#store = store;
  }

  /** The table's checks, described once (a failed description is retried on the next call). */
  checks(table: string): Promise<TableChecks> {
    let checks = this.#tables.get(table);
    if (!checks) {
      checks = describeTable(this.#store, table);
      checks.catch(() => this.#tables.delete(table));
      this.#tables.set(table, checks);
    }
    return checks;
  }

  #rowCheck(checks: TableChecks, columns: readonly string[]): RowCheck {
    let byColumns = this.#compiled.get(checks);
    if (!byColumns) {
      byColumns = new Map();
      this.#compiled.set(checks, byColumns);
    }
    const key = columns.join('\0');
    let check = byColumns.get(key);
    if (!check) {
      check = compileRowCheck(checks, columns);
      byColumns.set(key, check);
    }
    return check;
  }

  async land(table: string, rows: readonly object[], options: { readonly dedupToken: string }): Promise<LandedRows> {
    if (rows.length === 0) return { stored: 0, refused: [] };
    const checks = await this.checks(table);
    const columns = isTableName(table) ? TABLE_COLUMNS[table] : Object.keys(rows[0] as object);
    const check = this.#rowCheck(checks, columns);
    const refused: RefusedRow[] = [];
    let kept: object[] = rows as object[];
    let keptIndex: number[] | null = null;
    for (let index = 0; index < rows.length; index++) {
      const row = rows[index] as object;
      const problem = check(row);
      if (problem && keptIndex === null) {
        // The first refused row: from here on, the rows kept and their indices are listed apart.
        kept = rows.slice(0, index);
        keptIndex = Array.from({ length: index }, (_, i) => i);
      }
      if (problem) {
        refused.push({
          index,
          reason: 'ROW_TYPE_MISMATCH',
          detail: problem,
          clickhouseCode: null,
          clickhouseName: null,
        });
      } else if (keptIndex !== null) {
        kept.push(row);
        keptIndex.push(index);
      }
    }
    const byEngine = await insertIsolating(this.#store, table, kept, options.dedupToken);
    for (const r of byEngine) {
      refused.push({
        index: keptIndex === null ? r.index : (keptIndex[r.index] as number),
        reason: 'ROW_REFUSED_BY_STORE',
        detail: `ClickHouse refused the row (code ${r.code}${r.name ? ` ${r.name}` : ''})`,
        clickhouseCode: r.code,
        clickhouseName: r.name,
      });
    }
    refused.sort((a, b) => a.index - b.index);
    return { stored: kept.length - byEngine.length, refused };
  }
}
