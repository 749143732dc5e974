/**
 * The landing definition of the gateway's rejection records: its sink reads the rejections topic only and lands it in
 * `gateway_rejections` (not the raw plane), and the rows its mapping makes fit the migrated table (chdb, every
 * migration applied): a re-delivered record collapses, the claimed fields stay NULL when absent, queries by reason
 * read back what landed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { pipelineTables, sinkRoutes } from '../runtime/runners/clickhouse-sink.ts';
import type { GatewayRejection } from '../schemas/types.ts';
import rejections, { GATEWAY_REJECTIONS_TABLE, gatewayRejectionRow } from './gateway-rejections.ts';

const T0 = Date.UTC(2026, 5, 1, 9, 0, 0);

function rejection(n: number, overrides: Partial<GatewayRejection> = {}): GatewayRejection {
  return {
    rejection_id: `01JX${String(n).padStart(22, '0')}`,
    received_at: T0 + n * 1_000,
    gateway_id: 'gw-1',
    stage: 'gateway',
    reason: 'BAD_SIGNATURE',
    device_cert_fingerprint: 'ab'.repeat(32),
    claimed_device_id: `dev-${n}`,
    key_id: 'ab'.repeat(32),
    firmware_version: '4.2.1',
    sequence: n,
    nonce: `nonce-${n}`,
    raw_sha256: 'cd'.repeat(32),
    raw_copy: null,
    trace_id: `trace-${n}`,
    detail: 'signature does not verify',
    ...overrides,
  };
}

describe('pipelines/gateway-rejections.ts', () => {
  let dir: string;
  let store: ClickHouseStore;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-rejections-'));
    store = openChdbStore({ path: dir });
    await store.migrate();
  });

  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lands the rejections topic in its own table: no raw plane, no dead letters or duplicates to read', () => {
    expect(rejections.operators).toEqual([]);
    expect(sinkRoutes(rejections)).toEqual([
      {
        topic: TOPICS.gatewayRejections,
        table: GATEWAY_REJECTIONS_TABLE,
        schema: 'gateway-rejection',
        raw: false,
        row: gatewayRejectionRow,
      },
    ]);
    expect(pipelineTables(rejections)).toEqual([GATEWAY_REJECTIONS_TABLE, 'quarantine']);
  });

  it('maps every record to a row the migrated table holds, once per rejection id, with absent claims NULL', async () => {
    const records = [
      rejection(1),
      rejection(2, { reason: 'NONCE_REPLAYED' }),
      // A whole-request refusal before any event was read: nothing claimed.
      rejection(3, {
        reason: 'UNTRUSTED_CERTIFICATE',
        device_cert_fingerprint: null,
        claimed_device_id: null,
        key_id: null,
        firmware_version: null,
        sequence: null,
        nonce: null,
        detail: null,
      }),
    ];
    const rows = records.map((r) => gatewayRejectionRow(r as unknown as Record<string, unknown>));
    await store.insert(GATEWAY_REJECTIONS_TABLE, rows, { dedupToken: 'rejections-test-1' });
    // The same record delivered again in another batch (a re-read topic): it collapses to one row by its identity.
    await store.insert(GATEWAY_REJECTIONS_TABLE, [rows[0]!], { dedupToken: 'rejections-test-2' });

    const byReason = await store.query<{ reason: string; n: number }>(
      `SELECT reason, count() AS n FROM ${GATEWAY_REJECTIONS_TABLE} FINAL GROUP BY reason ORDER BY reason`,
    );
    expect(byReason.map((r) => [r.reason, Number(r.n)])).toEqual([
      ['BAD_SIGNATURE', 1],
      ['NONCE_REPLAYED', 1],
      ['UNTRUSTED_CERTIFICATE', 1],
    ]);
    const [bare] = await store.query<Record<string, unknown>>(
      `SELECT claimed_device_id, sequence, detail, toUnixTimestamp64Milli(received_at) AS at
         FROM ${GATEWAY_REJECTIONS_TABLE} FINAL WHERE reason = 'UNTRUSTED_CERTIFICATE'`,
    );
    expect(bare).toMatchObject({ claimed_device_id: null, sequence: null, detail: null });
    expect(Number(bare?.at)).toBe(T0 + 3_000);
  });
});
