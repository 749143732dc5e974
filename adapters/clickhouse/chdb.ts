/**
 * The embedded store: ClickHouse in-process through chdb, on a data directory (the default `npm start` fills is
 * `.vigil/embedded/clickhouse`). chdb binds one data directory per process: opening a second directory while one is
 * open fails (CLICKHOUSE_UNAVAILABLE), and `close()` waits until the engine has let go so another can be opened.
 *
 * Inserts into the known tables (TABLE_COLUMNS) are encoded in RowBinary (row-binary.ts, one encoder per table from
 * the types in `system.columns`), written to a file in the store's private temporary directory (0700, on /dev/shm
 * when there is one; files 0600, named by a counter, removed after the insert and the directory on close) and read by
 * the engine: `INSERT INTO t (cols) SETTINGS insert_deduplication_token='...', deduplicate_insert_select='force_enable'
 * SELECT * FROM file(path, 'RowBinary', structure)`. chdb's in-memory raw insert takes text formats only, and parsing
 * JSON text was most of an insert's cost (bench/micro/clickhouse.bench.ts compares them). `force_enable` makes the
 * engine refuse the insert rather than skip the token's deduplication if it ever judged the SELECT unstable.
 * A batch the encoder cannot write exactly (a value not of its column's type) and the other tables go as before
 * through chdb's raw passthrough as NDJSON (`FORMAT JSONCompactEachRow` for known tables, JSONEachRow otherwise), so
 * the engine's answer for an odd value (stored, converted, or refused for the guard to isolate) does not change.
 */
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { drainPending, Session } from 'chdb';
import { VigilError } from '../../runtime/errors.ts';
import { applyMigrations, type MigrateOptions } from './migrations.ts';
import { ByteWriter, type RowBinaryEncoder, rowBinaryEncoder } from './row-binary.ts';
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
  /**
   * Known tables' inserts as RowBinary through a temporary file (default true); false sends every insert as NDJSON
   * (the previous path, kept for comparison in tests and benchmarks).
   */
  readonly binaryInserts?: boolean;
  /** Where the store makes its private directory of insert files (default: /dev/shm when writable, else the OS tmpdir). */
  readonly spoolBase?: string;
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
  return new ChdbStore(session, dir, options.binaryInserts ?? true, options.spoolBase);
}

class ChdbStore implements ClickHouseStore {
  readonly kind = 'embedded' as const;
  readonly location: string;
  readonly #session: Session;
  readonly #binary: boolean;
  readonly #spoolBase: string | undefined;
  #closed = false;
  /** Per known table: its RowBinary encoder, null when a column's type has none (JSON then). */
  readonly #encoders = new Map<string, Promise<RowBinaryEncoder | null>>();
  readonly #writer = new ByteWriter();
  /** The private directory of the insert files, made on first use. */
  #spool: string | null = null;
  #spoolFiles = 0;
  readonly #removeSpool = () => {
    if (this.#spool) rmSync(this.#spool, { recursive: true, force: true });
  };

  constructor(session: Session, dir: string, binary: boolean, spoolBase: string | undefined) {
    this.#session = session;
    this.location = dir;
    this.#binary = binary;
    this.#spoolBase = spoolBase;
  }

  async migrate(options: MigrateOptions = {}) {
    try {
      return await applyMigrations(this, options);
    } finally {
      // A migration may have changed a column's type: describe the tables again.
      this.#encoders.clear();
    }
  }

  async insert(table: string, rows: readonly object[], options: InsertOptions): Promise<InsertResult> {
    this.#checkOpen();
    if (rows.length === 0) return { rows: 0 };
    if (this.#binary && isTableName(table)) {
      const encoder = await this.#encoder(table);
      this.#checkOpen(); // closed while the table was described
      if (encoder && (await this.#insertRowBinary(table, encoder, rows, options))) return { rows: rows.length };
    }
    return this.#insertJson(table, rows, options);
  }

  /** The NDJSON path: other tables, and a batch the RowBinary encoder cannot write exactly. */
  async #insertJson(table: string, rows: readonly object[], options: InsertOptions): Promise<InsertResult> {
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
    try {
      await this.#run(sql, params, 'TSV');
    } finally {
      // A statement that may change a table's columns: describe the tables again before the next RowBinary insert.
      if (/^(ALTER|CREATE|DROP|RENAME|EXCHANGE|ATTACH|DETACH|REPLACE)$/.test(statementLabel(sql).split(' ')[1] ?? '')) {
        this.#encoders.clear();
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#session.close();
    await drainPending();
    this.#removeSpool();
    process.off('exit', this.#removeSpool);
  }

  /** A known table's encoder from its column types, described once (a failed description is tried again). */
  #encoder(table: TableName): Promise<RowBinaryEncoder | null> {
    let encoder = this.#encoders.get(table);
    if (!encoder) {
      encoder = this.query<{ name: string; type: string }>(
        `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '${table}'`,
      ).then((described) => {
        const types = new Map(described.map((c) => [c.name, c.type]));
        const columns: { name: string; type: string }[] = [];
        for (const name of TABLE_COLUMNS[table]) {
          const type = types.get(name);
          // A column the table lacks: the JSON insert reports it as the engine always did.
          if (type === undefined) return null;
          columns.push({ name, type });
        }
        return rowBinaryEncoder(columns);
      });
      // Not described (no such table yet?): JSON this time, described again on the next insert.
      const described: Promise<RowBinaryEncoder | null> = encoder.catch(() => {
        // Unless a DDL command already replaced it with a newer description.
        if (this.#encoders.get(table) === described) this.#encoders.delete(table);
        return null;
      });
      encoder = described;
      this.#encoders.set(table, encoder);
    }
    return encoder;
  }

  /** Writes the batch as RowBinary and inserts it; false when a value is not exactly of its type (nothing sent). */
  async #insertRowBinary(
    table: TableName,
    encoder: RowBinaryEncoder,
    rows: readonly object[],
    options: InsertOptions,
  ): Promise<boolean> {
    const writer = this.#writer;
    writer.reset();
    if (encoder.encode(rows, writer) !== -1) return false;
    let file: string | undefined;
    try {
      file = path.join(this.#spoolDir(), `${++this.#spoolFiles}.rowbinary`);
      // Synchronous: the writer is reused by the next insert, which may start while this one awaits the engine.
      writeFileSync(file, writer.bytes(), { mode: 0o600, flag: 'wx' });
    } catch {
      // No spool, or no room in it (a small /dev/shm, a file size limit): nothing of the batch stays on disk, and the
      // batch goes as JSON, which needs no file, rather than failing every retry the same way.
      if (file) rmSync(file, { force: true });
      return false;
    }
    try {
      await this.#session.queryAsync(
        `INSERT INTO ${table} (${encoder.columns.join(', ')}) SETTINGS insert_deduplication_token = ${sqlString(options.dedupToken)}, ` +
          `deduplicate_insert_select = 'force_enable' SELECT * FROM file(${sqlString(file)}, 'RowBinary', ${sqlString(encoder.structure)})`,
        { format: 'TSV' },
      );
    } catch (error) {
      throw mapChdbError(`an insert into ${table}`, error);
    } finally {
      rmSync(file, { force: true });
    }
    return true;
  }

  #spoolDir(): string {
    if (!this.#spool) {
      const base = this.#spoolBase ?? (isWritableDir('/dev/shm') ? '/dev/shm' : tmpdir());
      this.#spool = mkdtempSync(path.join(base, 'vigil-chdb-')); // mode 0700
      process.on('exit', this.#removeSpool);
    }
    return this.#spool;
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

/** A ClickHouse string literal. */
function sqlString(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function isWritableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
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
