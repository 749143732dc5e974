/**
 * The server store: a ClickHouse server over HTTP through the official client (`@clickhouse/client`).
 *
 * Vigil relies on features of current servers (insert_deduplication_token, query parameters, DateTime64, EPHEMERAL
 * columns, named tuples as JSON objects): the first call checks the server's version and refuses anything older than
 * MIN_SERVER_VERSION with a message that says so, rather than failing later on a confusing statement.
 */
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { VigilError } from '../../runtime/errors.ts';
import { applyMigrations, type MigrateOptions } from './migrations.ts';
import { clickhouseSecurityOptions } from './security.ts';
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
import { isTableName, TABLE_COLUMNS } from './tables.ts';

/** The oldest server line with everything the migrations and the insert path use (an LTS release). */
export const MIN_SERVER_VERSION = [23, 8] as const;

export interface ServerStoreOptions {
  /** HTTP(S) URL, e.g. `http://127.0.0.1:18123` (CLICKHOUSE_URL); may carry `user:password@`. */
  readonly url: string;
  readonly database?: string;
  readonly username?: string;
  readonly password?: string;
  /** Per-request timeout. */
  readonly requestTimeoutMs?: number;
}

/**
 * Opens a store on a ClickHouse server. Nothing is sent until the first call.
 *
 * @example
 * const store = openServerStore({ url: resolveEndpoints().clickhouseUrl });
 * await store.migrate();
 * await store.insert('inferences', inferences.map(inferenceRow), { dedupToken });
 * await store.close();
 */
export function openServerStore(options: ServerStoreOptions): ClickHouseStore {
  const url = new URL(options.url);
  // Explicit options first, then the connection configuration (CLICKHOUSE_USERNAME, CLICKHOUSE_PASSWORD_FILE,
  // CLICKHOUSE_ROLE, CLICKHOUSE_CA_FILE), then credentials in the URL.
  const security = clickhouseSecurityOptions();
  const username =
    options.username ?? security.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password =
    options.password ?? security.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  url.username = '';
  url.password = '';
  const client = createClient({
    url: url.toString(),
    ...(security.role ? { role: security.role } : {}),
    ...(security.tls && url.protocol === 'https:' ? { tls: security.tls } : {}),
    ...(options.database ? { database: options.database } : {}),
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    request_timeout: options.requestTimeoutMs ?? 30_000,
    // The client's own logger prints server error texts, which can quote row data (PHI). Errors reach callers as
    // VigilErrors instead (mapServerError), which keep only codes.
    log: { level: ClickHouseLogLevel.OFF },
  });
  return serverStore(client, url.toString().replace(/\/$/, ''));
}

/**
 * A store on a client you configured yourself (TLS, proxies, a custom connection). `location` names it in messages.
 *
 * @example
 * const store = serverStore(createClient({ url, tls: { ca_cert } }), 'clickhouse-prod');
 */
export function serverStore(client: ClickHouseClient, location: string): ClickHouseStore {
  return new ServerStore(client, location);
}

class ServerStore implements ClickHouseStore {
  readonly kind = 'server' as const;
  readonly location: string;
  readonly #client: ClickHouseClient;
  #versionChecked: Promise<void> | null = null;

  constructor(client: ClickHouseClient, location: string) {
    this.#client = client;
    this.location = location;
  }

  migrate(options: MigrateOptions = {}) {
    return applyMigrations(this, options);
  }

  async insert(table: string, rows: readonly object[], options: InsertOptions): Promise<InsertResult> {
    if (rows.length === 0) return { rows: 0 };
    await this.#checkVersion();
    const columns = isTableName(table) ? TABLE_COLUMNS[table] : Object.keys(rows[0] as object);
    await insertJsonEachRow(this.#client, {
      table,
      rows,
      columns,
      // Synchronous insert: acknowledged once written, deduplicated by the token. Recent servers default to async
      // inserts; this keeps the semantics the same on every supported line.
      settings: { insert_deduplication_token: options.dedupToken, async_insert: 0 },
    });
    return { rows: rows.length };
  }

  async query<T = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]> {
    await this.#checkVersion();
    try {
      const result = await this.#client.query({
        query: sql,
        format: 'JSONEachRow',
        query_params: formatParams(params),
        clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
      });
      return await result.json<T>();
    } catch (error) {
      throw mapServerError(statementLabel(sql), error);
    }
  }

  async command(sql: string, params?: QueryParams): Promise<void> {
    await this.#checkVersion();
    try {
      await this.#client.command({ query: sql, query_params: formatParams(params) });
    } catch (error) {
      throw mapServerError(statementLabel(sql), error);
    }
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  #checkVersion(): Promise<void> {
    this.#versionChecked ??= serverVersion(this.#client).then(
      (version) => {
        if (!versionAtLeast(version, MIN_SERVER_VERSION)) {
          throw new VigilError(
            'CONFIG_INVALID',
            `the ClickHouse server at ${this.location} runs ${version}; Vigil needs ${MIN_SERVER_VERSION.join('.')} or ` +
              'newer (insert deduplication tokens, query parameters, DateTime64). Point CLICKHOUSE_URL at a current server',
          );
        }
      },
      (error: unknown) => {
        this.#versionChecked = null; // a server that was down may come back: check again next time
        throw error;
      },
    );
    return this.#versionChecked;
  }
}

/** `SELECT version()` over plain HTTP: works on every server line, however old. */
export async function serverVersion(client: ClickHouseClient): Promise<string> {
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    const [row] = await result.json<{ version: string }>();
    return row?.version ?? 'unknown';
  } catch (error) {
    throw mapServerError('a version check', error);
  }
}

export function versionAtLeast(version: string, minimum: readonly number[]): boolean {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < minimum.length; i += 1) {
    const have = parts[i] ?? 0;
    const need = minimum[i] ?? 0;
    if (Number.isNaN(have)) return false;
    if (have !== need) return have > need;
  }
  return true;
}

/**
 * The HTTP insert path: one JSONEachRow body with an explicit column list and per-insert settings. Exported so the
 * integration test can drive it against the local (old) server without the settings that server does not know.
 */
export async function insertJsonEachRow(
  client: ClickHouseClient,
  insert: {
    readonly table: string;
    readonly rows: readonly object[];
    readonly columns: readonly string[];
    readonly settings?: Record<string, string | number>;
  },
): Promise<void> {
  const [first, ...rest] = insert.columns;
  if (first === undefined) throw new VigilError('INTERNAL', `an insert into ${insert.table} names no columns`);
  try {
    await client.insert({
      table: insert.table,
      values: insert.rows as object[],
      format: 'JSONEachRow',
      columns: [first, ...rest],
      ...(insert.settings ? { clickhouse_settings: insert.settings } : {}),
    });
  } catch (error) {
    throw mapServerError(`an insert into ${insert.table}`, error);
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_SOCKET',
]);

/** Client errors -> VigilError: network failures and transient server codes are retriable, refusals are not. */
export function mapServerError(what: string, error: unknown): VigilError {
  if (error instanceof VigilError) return error;
  const network = networkCode(error);
  if (network) {
    return new VigilError('CLICKHOUSE_UNAVAILABLE', `ClickHouse did not answer ${what} (${network})`, { cause: error });
  }
  const e = error as { code?: unknown; type?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (/timeout/i.test(message) && typeof e.code !== 'string') {
    return new VigilError('CLICKHOUSE_UNAVAILABLE', `ClickHouse did not answer ${what} in time`, { cause: error });
  }
  // ClickHouseError carries code and type; older servers' error texts (`Code: 115, e.displayText() = ...`) are not
  // parsed by the client, so read the code from the text then.
  const parsed = clickhouseCodeOf(message);
  const code = typeof e.code === 'string' && /^\d+$/.test(e.code) ? Number(e.code) : parsed.code;
  const name = typeof e.type === 'string' ? e.type : parsed.name;
  if (code === undefined && name === undefined) {
    return new VigilError('CLICKHOUSE_UNAVAILABLE', `ClickHouse failed ${what} without an error code`, {
      cause: error,
    });
  }
  return clickhouseRefusal(what, code, name, error);
}

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    const errors = (e as { errors?: unknown }).errors; // AggregateError from happy-eyeballs connects
    if (Array.isArray(errors)) {
      for (const inner of errors) {
        const innerCode = (inner as { code?: unknown }).code;
        if (typeof innerCode === 'string' && NETWORK_CODES.has(innerCode)) return innerCode;
      }
    }
  }
  return undefined;
}
