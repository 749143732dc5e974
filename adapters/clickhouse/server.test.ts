/**
 * The server store's code (its @clickhouse/client calls: JSONEachRow objects with a column list, per-insert settings,
 * query parameters, error objects) against a current ClickHouse engine, in-process: @clickhouse/client over chdb's
 * pluggable connection (`chdb/connection`) instead of HTTP. The local Debian server is too old for the migrations
 * (test/integration/clickhouse-server.test.ts covers the HTTP wire against it).
 */
import { createClient } from '@clickhouse/client';
import { drainPending } from 'chdb';
import { createChdbConnection } from 'chdb/connection';
import { describe, expect, it } from 'vitest';
import { describeStoreConformance } from '../../test/conformance/clickhouse-store.ts';
import { mapServerError, serverStore, versionAtLeast } from './server.ts';
import type { ClickHouseStore } from './store.ts';

/** chdb types its connection against its own copy of @clickhouse/client-common; the interface is the same. */
type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

function inProcessServerStore(dataDir: string): ClickHouseStore {
  const connection = createChdbConnection({ path: dataDir }) as unknown as ClientConnection;
  const store = serverStore(createClient({ connection }), `chdb:${dataDir}`);
  return {
    kind: store.kind,
    location: store.location,
    migrate: (options) => store.migrate(options),
    insert: ((table: string, rows: readonly Record<string, unknown>[], options: { dedupToken: string }) =>
      store.insert(table, rows, options)) as ClickHouseStore['insert'],
    query: (sql, params) => store.query(sql, params),
    command: (sql, params) => store.command(sql, params),
    // The connection holds the process's one chdb data directory until it is really released.
    close: async () => {
      await store.close();
      await drainPending();
    },
  };
}

describeStoreConformance('server store (client on an in-process engine)', inProcessServerStore);

describe('server store errors', () => {
  it('maps network failures to CLICKHOUSE_UNAVAILABLE (retriable), also when nested', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(mapServerError('a query', refused)).toMatchObject({ code: 'CLICKHOUSE_UNAVAILABLE', retriable: true });
    const nested = new Error('request failed', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    expect(mapServerError('a query', nested).message).toBe('ClickHouse did not answer a query (ECONNRESET)');
    const aggregate = Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ETIMEDOUT' })]), {});
    expect(mapServerError('a query', aggregate)).toMatchObject({ code: 'CLICKHOUSE_UNAVAILABLE' });
    expect(mapServerError('a query', new Error('Timeout error.'))).toMatchObject({
      code: 'CLICKHOUSE_UNAVAILABLE',
      retriable: true,
    });
  });

  it('maps ClickHouse refusals by code: transient ones retriable, the rest not, never quoting the server text', () => {
    const tooManyParts = Object.assign(new Error('Too many parts (300) ... row data here'), {
      code: '252',
      type: 'TOO_MANY_PARTS',
    });
    const transient = mapServerError('an insert into inferences', tooManyParts);
    expect(transient).toMatchObject({ code: 'CLICKHOUSE_UNAVAILABLE', retriable: true });
    expect(transient.message).toBe(
      'ClickHouse could not run an insert into inferences right now (code 252 TOO_MANY_PARTS)',
    );

    const parse = Object.assign(new Error("Cannot parse input: expected '{' before: 'pt:v1:abc...'"), {
      code: '27',
      type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
    });
    const refused = mapServerError('an insert into normalised_events', parse);
    expect(refused).toMatchObject({ code: 'CLICKHOUSE_QUERY_FAILED', retriable: false });
    expect(refused.message).not.toContain('pt:v1');

    // An 18.x server's error text, which the client does not parse.
    const old = new Error('Code: 115, e.displayText() = DB::Exception: Unknown setting x, e.what() = DB::Exception');
    expect(mapServerError('an insert into t', old)).toMatchObject({
      code: 'CLICKHOUSE_QUERY_FAILED',
      retriable: false,
    });
  });

  it('compares server versions', () => {
    expect(versionAtLeast('26.7.2.1', [23, 8])).toBe(true);
    expect(versionAtLeast('23.8.1', [23, 8])).toBe(true);
    expect(versionAtLeast('23.3.22', [23, 8])).toBe(false);
    expect(versionAtLeast('18.16.1', [23, 8])).toBe(false);
    expect(versionAtLeast('unknown', [23, 8])).toBe(false);
  });
});
