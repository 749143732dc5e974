/**
 * Where the gateway's rejection records land: the `gateway-rejection` records on TOPICS.gatewayRejections (one per
 * refused signed event or request, written by `vigil gateway`) become rows of `gateway_rejections`
 * (infra/clickhouse/migrations/0007_gateway.sql). A landing definition: no operator, no output; its one source lands in
 * its own table instead of the raw plane (`SourceSpec.lands`), so the table's columns and row mapping live here, once,
 * and `npm run check` compares them with the migration.
 *
 * Distributed: `vigil sink pipelines/gateway-rejections.ts` (a sink in its own consumer group, effectively once like
 * every sink). Embedded: a run that goes through the gateway lands the same rows with `gatewayRejectionRow` (the
 * same mapping), in the same table. There is nothing to `vigil run`: no chain reads these records.
 */
import { toDateTime64 } from '../adapters/clickhouse/tables.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { definePipeline, type SourceSpec } from '../runtime/pipeline.ts';
import type { GatewayRejection } from '../schemas/types.ts';

export const GATEWAY_REJECTIONS_TABLE = 'gateway_rejections';

const COLUMNS = [
  'rejection_id',
  'received_at',
  'gateway_id',
  'stage',
  'reason',
  'device_cert_fingerprint',
  'claimed_device_id',
  'key_id',
  'firmware_version',
  'sequence',
  'nonce',
  'raw_sha256',
  'raw_copy',
  'trace_id',
  'detail',
] as const satisfies readonly (keyof GatewayRejection)[];

/**
 * One rejection record (as on its topic) -> its row: the record's own fields, received_at as DateTime64.
 *
 * @example
 * await store.insert(GATEWAY_REJECTIONS_TABLE, rejections.map(gatewayRejectionRow), { dedupToken });
 */
export function gatewayRejectionRow(value: Record<string, unknown>): Record<string, unknown> {
  const r = value as unknown as GatewayRejection;
  return {
    rejection_id: r.rejection_id,
    received_at: toDateTime64(r.received_at, 'received_at'),
    gateway_id: r.gateway_id,
    stage: r.stage,
    reason: r.reason,
    device_cert_fingerprint: r.device_cert_fingerprint ?? null,
    claimed_device_id: r.claimed_device_id ?? null,
    key_id: r.key_id ?? null,
    firmware_version: r.firmware_version ?? null,
    sequence: r.sequence ?? null,
    nonce: r.nonce ?? null,
    raw_sha256: r.raw_sha256,
    raw_copy: r.raw_copy ?? null,
    trace_id: r.trace_id,
    detail: r.detail ?? null,
  };
}

const rejections: SourceSpec<GatewayRejection> = {
  topic: TOPICS.gatewayRejections,
  schema: 'gateway-rejection',
  lands: { table: GATEWAY_REJECTIONS_TABLE, rows: { columns: COLUMNS, row: gatewayRejectionRow } },
};

export default definePipeline({ name: 'gateway-rejections', version: '1', source: rejections }).outputs({
  records: [],
  side: {},
});
