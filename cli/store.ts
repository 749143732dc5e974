/**
 * The ClickHouse store a read command (`query run`, `alerts`, `trace`, `evidence export`) reads: the embedded store
 * `npm start` fills (or `--data-dir`), or the server at CLICKHOUSE_URL with `--server`. Read commands never create
 * an embedded store: a missing directory is a mistake in the command line, said with how to fix it.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_EMBEDDED_DIR, openClickHouseStore } from '../adapters/clickhouse/index.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { resolveEndpoints } from '../runtime/endpoints.ts';
import { VigilError } from '../runtime/errors.ts';

export interface StoreFlags {
  readonly server?: boolean;
  readonly dataDir?: string;
}

/**
 * @example
 * const store = openReadStore(flags); // flags from --server / --data-dir
 */
export function openReadStore(
  flags: StoreFlags,
  missing = 'run `npm start` first, or pass --data-dir <dir> or --server',
): ClickHouseStore {
  if (flags.server) return openClickHouseStore({ mode: 'server', url: resolveEndpoints().clickhouseUrl });
  const path = flags.dataDir ?? DEFAULT_EMBEDDED_DIR;
  if (!existsSync(path)) throw new VigilError('CONFIG_INVALID', `no embedded store at ${path}: ${missing}`);
  return openClickHouseStore({ mode: 'embedded', path });
}
