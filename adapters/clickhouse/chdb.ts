/**
 * The embedded store: ClickHouse in-process through chdb, on a data directory (the default `npm start` fills is
 * `.vigil/embedded/clickhouse`). chdb binds one data directory per process: opening a second directory while one is
 * open fails (CLICKHOUSE_UNAVAILABLE), and `close()` waits until the engine has let go so another can be opened.
 *
 * Inserts use chdb's raw passthrough: the rows are serialised once into an NDJSON buffer that the engine parses
 * directly (`INSERT INTO t (cols) SETTINGS insert_deduplication_token='...' FORMAT JSONCompactEachRow`), rather than
 * chdb's object-array insert, which renders a VALUES literal in JS (compared in bench/micro/clickhouse.bench.ts).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { drainPending, Session } from 'chdb';
import { VigilError } from '../../runtime/errors.ts';
import { applyMigrations, type MigrateOptions } from './migrations.ts';
import {
  type ClickHouseStore,
  clickhouseCodeOf,
  clickhouseRefusal,
  formatParams,
  type InsertOptions,
  type InsertResult,
  type QueryParams,
  statementLabel,
} from './store.ts';
import { isTableName, TABLE_COLUMNS, type TableName } from './tables.ts';

export interface ChdbStoreOptions {
  /** The data directory; created when missing. */
  readonly path: string;
}

/** Settings fixed for the whole session (chdb takes them at connect time). */
const CONNECTION_ARGS = [
  // 64-bit integers as JSON numbers: Vigil stores none beyond 2^53 (offsets, counts); cast to String when exactness
  // beyond that matters. Keeps both stores returning the same shapes.
  '--output_format_json_quote_64bit_integers=0',
];

/**
 * Opens the embedded store.
 *
 * @example
 * const store = openChdbStore({ path: '.vigil/embedded/clickhouse' });
 * await store.migrate();
 * await store.insert('normalised_events', events.map(normalisedEventRow), { dedupToken });
 * const [row] = await store.query<{ n: number }>('SELECT count() AS n FROM normalised_events FINAL');
 * await store.close();
 */
export function openChdbStore(options: ChdbStoreOptions): ClickHouseStore {
  const dir = path.resolve(options.path);
  mkdirSync(dir, { recursive: true });
  let session: Session;
  try {
    session = new Session(dir, { connectionArgs: CONNECTION_ARGS });
  } catch (error) {
    throw new VigilError(
      'CLICKHOUSE_UNAVAILABLE',
      `cannot open the embedded ClickHouse store at ${dir}: another process is using it (a running \`npm start\`?), ` +
        'or this process has another data directory open (chdb holds one per process)',
      { cause: error },
    );
  }
  return new ChdbStore(session, dir);
}

class ChdbStore implements ClickHouseStore {
  readonly kind = 'embedded' as const;
  readonly location: string;
  readonly #session: Session;
  #closed = false;

  constructor(session: Session, dir: string) {
    this.#session = session;
    this.location = dir;
  }

  migrate(options: MigrateOptions = {}) {
    return applyMigrations(this, options);
  }

  async insert(table: string, rows: readonly object[], options: InsertOptions): Promise<InsertResult> {
    this.#checkOpen();
    if (rows.length === 0) return { rows: 0 };
    // Known tables: JSONCompactEachRow (values only, in TABLE_COLUMNS order) through a serialiser compiled once per
    // table; half the bytes of JSONEachRow and measurably cheaper to parse (bench/micro/clickhouse.bench.ts).
    // Other tables: JSONEachRow.
    const known = isTableName(table);
    const columns = known ? TABLE_COLUMNS[table] : Object.keys(rows[0] as object);
    const line = known ? compactSerializer(table) : (row: object) => JSON.stringify(row);
    let payload = '';
    for (const row of rows) payload += `${line(row)}\n`;
    try {
      await this.#session.insert({
        table,
        columns,
        values: Buffer.from(payload, 'utf8'),
        format: known ? 'JSONCompactEachRow' : 'JSONEachRow',
        // Block deduplication is on by default (deduplicate_insert / insert_deduplicate); the token makes a retried
        // batch a duplicate even when its rows differ in processing times.
        settings: { insert_deduplication_token: options.dedupToken },
      });
    } catch (error) {
      throw mapChdbError(`an insert into ${table}`, error);
    }
    return { rows: rows.length };
  }

  async query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]> {
    const text = await this.#run(sql, params, 'JSONEachRow');
    const rows: T[] = [];
    let from = 0;
    while (from < text.length) {
      let to = text.indexOf('\n', from);
      if (to === -1) to = text.length;
      if (to > from) rows.push(JSON.parse(text.slice(from, to)) as T);
      from = to + 1;
    }
    return rows;
  }

  async command(sql: string, params?: QueryParams): Promise<void> {
    await this.#run(sql, params, 'TSV');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#session.close();
    await drainPending();
  }

  async #run(sql: string, params: QueryParams | undefined, format: string): Promise<string> {
    this.#checkOpen();
    try {
      const result =
        params && Object.keys(params).length > 0
          ? await this.#session.queryBindAsync(sql, formatParams(params), { format })
          : await this.#session.queryAsync(sql, { format });
      return result.text();
    } catch (error) {
      throw mapChdbError(statementLabel(sql), error);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new VigilError('INTERNAL', `the embedded ClickHouse store at ${this.location} is closed`);
  }
}

const serializers = new Map<TableName, (row: object) => string>();

/**
 * `(row) => JSON.stringify([row.a, row.b, ...])` for a table's columns, generated once. The column names come from
 * TABLE_COLUMNS (checked identifiers, never input), and V8 compiles the fixed property reads into fast loads.
 */
function compactSerializer(table: TableName): (row: object) => string {
  let serializer = serializers.get(table);
  if (!serializer) {
    const columns = TABLE_COLUMNS[table];
    for (const column of columns) {
      if (!/^[a-z_][a-z0-9_]*$/.test(column)) throw new VigilError('INTERNAL', `unexpected column name in ${table}`);
    }
    serializer = new Function('r', `return JSON.stringify([${columns.map((c) => `r.${c}`).join(', ')}]);`) as (
      row: object,
    ) => string;
    serializers.set(table, serializer);
  }
  return serializer;
}

/** chdb's typed errors -> VigilError. Messages keep the ClickHouse code, never the engine's text (it may quote rows). */
export function mapChdbError(what: string, error: unknown): VigilError {
  if (error instanceof VigilError) return error;
  const e = error as { code?: unknown; clickhouseCode?: unknown; message?: unknown };
  const chdbCode = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const parsed = clickhouseCodeOf(message);
  const code = typeof e.clickhouseCode === 'number' ? e.clickhouseCode : parsed.code;
  switch (chdbCode) {
    case 'CHDB_CONNECTION':
    case 'CHDB_CLOSED':
    case 'CHDB_TIMEOUT':
    case 'CHDB_ABORT':
    case 'CHDB_INTERNAL':
      return new VigilError(
        'CLICKHOUSE_UNAVAILABLE',
        `the embedded ClickHouse engine could not run ${what} (${chdbCode})`,
        {
          cause: error,
        },
      );
    case 'CHDB_BIND':
      return new VigilError('CLICKHOUSE_QUERY_FAILED', `a parameter of ${what} cannot be bound (${chdbCode})`, {
        cause: error,
      });
    default:
      return clickhouseRefusal(what, code, parsed.name, error);
  }
}
