/**
 * ClickHouse behind one interface (`ClickHouseStore`): the embedded engine by default, a server when asked.
 *
 * @example
 * // embedded (npm start, tests): chdb on a data directory
 * const store = openClickHouseStore({ mode: 'embedded' });
 * // distributed: the server at CLICKHOUSE_URL
 * const server = openClickHouseStore({ mode: 'server', url: resolveEndpoints().clickhouseUrl });
 * await store.migrate();
 */
import { fileURLToPath } from 'node:url';
import { openChdbStore } from './chdb.ts';
import { openServerStore, type ServerStoreOptions } from './server.ts';
import type { ClickHouseStore } from './store.ts';

/** The embedded store's data directory `npm start` fills and `vigil query` reads (inside the git-ignored `.vigil/`). */
export const DEFAULT_EMBEDDED_DIR = fileURLToPath(new URL('../../.vigil/embedded/clickhouse', import.meta.url));

export type StoreOptions =
  | { readonly mode: 'embedded'; readonly path?: string }
  | ({ readonly mode: 'server' } & ServerStoreOptions);

export function openClickHouseStore(options: StoreOptions): ClickHouseStore {
  return options.mode === 'embedded'
    ? openChdbStore({ path: options.path ?? DEFAULT_EMBEDDED_DIR })
    : openServerStore(options);
}

export { mapChdbError, openChdbStore } from './chdb.ts';
export { applyMigrations, loadMigrations, MIGRATIONS_DIR, type MigrationReport } from './migrations.ts';
export { insertJsonEachRow, MIN_SERVER_VERSION, mapServerError, openServerStore, serverStore } from './server.ts';
export {
  batchDedupToken,
  type ClickHouseStore,
  type InsertOptions,
  type InsertResult,
  type QueryParam,
  type QueryParams,
} from './store.ts';
export * from './tables.ts';
