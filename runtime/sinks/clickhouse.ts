/**
 * The ClickHouse sink: lands a batch's outputs in their tables, effectively once.
 *
 * Deterministic batch contract: every insert is the rows of exactly one source batch (one partition's offset range)
 * and carries an `insert_deduplication_token` derived from that range and its records' hashes, so a batch retried
 * after a crash is dropped by ClickHouse as a duplicate block; ReplacingMergeTree keyed by the record's id is the
 * second line of defence (queries that must be exact use FINAL). The sink never invents rows: a table gets exactly
 * what the batch emitted for it.
 *
 * Last line of defence: a row ClickHouse cannot store because of its content (a record whose mapper throws, a value
 * outside its column's type, a row the engine refuses) never fails its batch, its run or its partition. It lands in
 * the `quarantine` table (infra/clickhouse/migrations/0005_quarantine.sql) with its source position, the reason code
 * (ROW_TYPE_MISMATCH, ROW_REFUSED_BY_STORE), the engine's code and name, and the record's bytes, is counted
 * (`vigil_clickhouse_quarantined_rows_total{table,reason}`), and every other row of the batch lands (guard.ts). The
 * quarantine insert carries its own deterministic token, `<batch token>#quarantine:<table>`, so a re-formed batch
 * quarantines the same rows once.
 */
import { createHash } from 'node:crypto';
import { type RefusedRow, RowGuard } from '../../adapters/clickhouse/guard.ts';
import { batchDedupToken, type ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import {
  isTableName,
  quarantineRow,
  ROW_MAPPERS,
  rawEventRow,
  type TableName,
} from '../../adapters/clickhouse/tables.ts';
import type { BatchRange } from '../engine.ts';
import { VigilError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { PipelineMetrics } from '../metrics.ts';
import type { EmittedBatch } from '../outputs.ts';
import { STANDARD_OUTPUTS } from '../outputs.ts';
import type { Origin } from '../record.ts';

export const QUARANTINE_TABLE = 'quarantine';

/** Where a row came from: the position and bytes its quarantine row keeps. */
export interface RowSource {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** The record's exact bytes; null for a row aggregated over its batch (the row itself, as JSON, is kept). */
  readonly bytes: Uint8Array | null;
  /** sha256 of `bytes` when already known. */
  readonly sha256: string | null;
}

/** A record whose mapper could not make a row of it: quarantined as ROW_TYPE_MISMATCH with this detail. */
export class Unmappable {
  readonly detail: string;
  constructor(detail: string) {
    this.detail = detail;
  }
}

export interface TableBatch {
  readonly table: string;
  /** The mapped rows, in offset order; an `Unmappable` stands for a record that has no row. */
  readonly rows: readonly (Record<string, unknown> | Unmappable)[];
  /**
   * Where each row came from (one per row), or a function giving it by row index (read only for quarantined rows, so
   * nothing is built per row). Without it, rows are attributed to the batch's first offset.
   */
  readonly sources?: readonly (RowSource | undefined)[] | ((index: number) => RowSource | undefined);
}

/** What one table's insert did: rows that landed and rows set aside in quarantine. */
export interface LandedBatch {
  readonly stored: number;
  readonly quarantined: number;
}

export interface ClickHouseSinkOptions {
  readonly metrics?: PipelineMetrics | null;
  /** Says how many rows of which table went to quarantine, and why (codes and positions only). */
  readonly log?: Logger | null;
  /** Stamps quarantined_at. */
  readonly now?: () => number;
}

export class ClickHouseSink {
  readonly #store: ClickHouseStore;
  readonly #pipeline: string;
  readonly #metrics: PipelineMetrics | null;
  readonly #log: Logger | null;
  readonly #now: () => number;
  readonly #guard: RowGuard;

  /** `pipeline` is `name@version`: a deliberate reprocessing by a new version is a new batch, not a retry. */
  constructor(store: ClickHouseStore, pipeline: string, options: ClickHouseSinkOptions = {}) {
    this.#store = store;
    this.#pipeline = pipeline;
    this.#metrics = options.metrics ?? null;
    this.#log = options.log ?? null;
    this.#now = options.now ?? Date.now;
    this.#guard = new RowGuard(store);
  }

  /**
   * Embedded mode: every output of one source batch, one insert per table, tokens from the source range. Returns the
   * rows quarantined per table (tables with none are absent).
   */
  async writeEmitted(batch: EmittedBatch): Promise<Record<string, number>> {
    const shas = batch.raw.map((r) => r.origin.rawSha256);
    const sourceOf = rowSources(batch);
    const tables: TableBatch[] = [
      {
        table: STANDARD_OUTPUTS.raw.table,
        rows: batch.raw.map((r) => mapOne(STANDARD_OUTPUTS.raw.table, () => rawEventRow(r.origin, r))),
        sources: (i: number) => {
          const r = batch.raw[i];
          return r ? originSource(r.origin) : undefined;
        },
      },
      ...[
        ...batch.outputs,
        { table: STANDARD_OUTPUTS.deadLetters.table, values: batch.deadLetters },
        { table: STANDARD_OUTPUTS.duplicates.table, values: batch.duplicates },
      ].map((o) => {
        const values = o.values.map((v) => v.value);
        return { table: o.table, rows: mapRows(o.table, values), sources: (i: number) => sourceOf(values[i]) };
      }),
    ];
    const quarantined: Record<string, number> = {};
    for (const t of tables) {
      const landed = await this.insert(t, batch.range, shas);
      if (landed.quarantined > 0) quarantined[t.table] = (quarantined[t.table] ?? 0) + landed.quarantined;
    }
    return quarantined;
  }

  /** Inserts one table's rows of one batch; `contentShas` are the batch's records' hashes in offset order. */
  async insert(batch: TableBatch, range: BatchRange, contentShas: readonly string[]): Promise<LandedBatch> {
    if (batch.rows.length === 0) return { stored: 0, quarantined: 0 };
    const dedupToken = batchDedupToken({ pipeline: this.#pipeline, ...range, rawSha256s: contentShas });
    // The rows sent: the batch's own array unless a record did not map (then the mapped ones and their indices).
    let rows = batch.rows as readonly Record<string, unknown>[];
    let rowIndex: number[] | null = null;
    const refused: RefusedRow[] = [];
    for (let index = 0; index < batch.rows.length; index++) {
      const row = batch.rows[index];
      if (row instanceof Unmappable) {
        if (rowIndex === null) {
          rows = batch.rows.slice(0, index) as Record<string, unknown>[];
          rowIndex = Array.from({ length: index }, (_, i) => i);
        }
        refused.push({
          index,
          reason: 'ROW_TYPE_MISMATCH',
          detail: row.detail,
          clickhouseCode: null,
          clickhouseName: null,
        });
      } else if (rowIndex !== null) {
        (rows as Record<string, unknown>[]).push(row as Record<string, unknown>);
        rowIndex.push(index);
      }
    }
    const started = process.hrtime.bigint();
    const landed = await this.#guard.land(batch.table, rows, { dedupToken });
    this.#metrics?.sinkInsertSeconds.observe({ table: batch.table }, Number(process.hrtime.bigint() - started) / 1e9);
    if (landed.stored > 0) this.#metrics?.sinkRows.inc({ table: batch.table }, landed.stored);
    for (const r of landed.refused)
      refused.push({ ...r, index: rowIndex === null ? r.index : (rowIndex[r.index] as number) });
    if (refused.length > 0) await this.#quarantine(batch, range, dedupToken, refused);
    return { stored: landed.stored, quarantined: refused.length };
  }

  async #quarantine(
    batch: TableBatch,
    range: BatchRange,
    dedupToken: string,
    refused: readonly RefusedRow[],
  ): Promise<void> {
    refused = [...refused].sort((a, b) => a.index - b.index);
    const now = this.#now();
    const sources = batch.sources;
    const sourceAt = (i: number): RowSource =>
      (typeof sources === 'function' ? sources(i) : sources?.[i]) ?? {
        topic: range.topic,
        partition: range.partition,
        offset: range.firstOffset,
        bytes: null,
        sha256: null,
      };
    // row_ordinal: the row's number among the rows of this batch from the same source position.
    const ordinals = new Map<number, number>();
    const seen = new Map<string, number>();
    const wanted = new Set(refused.map((r) => r.index));
    for (let i = 0; i < batch.rows.length; i++) {
      const s = sourceAt(i);
      const key = `${s.topic}\0${s.partition}\0${s.offset}`;
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      if (wanted.has(i)) ordinals.set(i, n);
    }
    const rows = refused.map((r) => {
      const source = sourceAt(r.index);
      const row = batch.rows[r.index];
      const record = source.bytes ?? Buffer.from(row instanceof Unmappable ? '' : jsonOf(row), 'utf8');
      return quarantineRow({
        pipeline: this.#pipeline,
        target_table: batch.table,
        source_topic: source.topic,
        source_partition: source.partition,
        source_offset: source.offset,
        row_ordinal: ordinals.get(r.index) ?? 0,
        reason_code: r.reason,
        reason_detail: r.detail,
        clickhouse_code: r.clickhouseCode,
        clickhouse_name: r.clickhouseName,
        record,
        record_sha256: source.sha256 ?? createHash('sha256').update(record).digest('hex'),
        batch_token: dedupToken,
        quarantined_at: now,
      });
    });
    await this.#store.insert(QUARANTINE_TABLE, rows, { dedupToken: `${dedupToken}#quarantine:${batch.table}` });
    const reasons: Record<string, number> = {};
    for (const r of refused) {
      reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
      this.#metrics?.sinkQuarantined.inc({ table: batch.table, reason: r.reason });
    }
    this.#log?.warn(
      {
        table: batch.table,
        quarantined: refused.length,
        reasons,
        topic: range.topic,
        partition: range.partition,
        offsets: `${range.firstOffset}..${range.lastOffset}`,
      },
      'rows ClickHouse cannot store were set aside in the quarantine table',
    );
  }
}

/**
 * Maps records to a table's rows: through its mapper when the table has one, else the records are the rows. A record
 * its mapper cannot map (a time DateTime64 cannot hold, a hostile shape) becomes an `Unmappable`, not a failed batch.
 */
export function mapRows(table: string, values: readonly unknown[]): (Record<string, unknown> | Unmappable)[] {
  if (!isTableName(table)) return values as Record<string, unknown>[];
  const map = rowMapper(table);
  const rows = new Array<Record<string, unknown> | Unmappable>(values.length);
  for (let i = 0; i < values.length; i++) rows[i] = map(values[i]);
  return rows;
}

/**
 * `mapRows` for one record at a time: through `row` when given (an output's declared mapping), else the table's
 * mapper, else the record is the row. A record that does not map becomes an `Unmappable`.
 */
export function rowMapper(
  table: string,
  row?: (value: Record<string, unknown>) => Record<string, unknown>,
): (value: unknown) => Record<string, unknown> | Unmappable {
  const map = row
    ? (row as (value: unknown) => Record<string, unknown>)
    : isTableName(table)
      ? (ROW_MAPPERS[table as TableName] as unknown as (value: unknown) => Record<string, unknown>)
      : null;
  if (!map) return (value) => value as Record<string, unknown>;
  return (value) => {
    try {
      return map(value);
    } catch (error) {
      return unmappable(table, error);
    }
  };
}

function mapOne(table: string, map: () => unknown): Record<string, unknown> | Unmappable {
  try {
    return map() as Record<string, unknown>;
  } catch (error) {
    return unmappable(table, error);
  }
}

function unmappable(table: string, error: unknown): Unmappable {
  // VigilError messages name fields and bounds, never values; any other error's text is not ours to repeat.
  return new Unmappable(error instanceof VigilError ? error.message : `the record does not map to a row of ${table}`);
}

function originSource(origin: Origin): RowSource {
  return {
    topic: origin.topic,
    partition: origin.partition,
    offset: origin.offset,
    bytes: origin.raw,
    sha256: origin.rawSha256,
  };
}

/**
 * The raw record each embedded output row came from: by its lineage columns (`source_offset`), else by its event id,
 * else none (a row aggregated over the batch, e.g. a drift histogram).
 */
function rowSources(batch: EmittedBatch): (value: unknown) => RowSource | undefined {
  const byOffset = new Map<number, Origin>();
  const byEvent = new Map<string, Origin>();
  for (const r of batch.raw) {
    byOffset.set(r.origin.offset, r.origin);
    if (r.eventId !== null && !byEvent.has(r.eventId)) byEvent.set(r.eventId, r.origin);
  }
  const { range } = batch;
  return (value) => {
    const v = (value ?? {}) as Record<string, unknown>;
    let origin: Origin | undefined;
    if (typeof v.source_offset === 'number' && v.source_topic === range.topic && v.source_partition === range.partition)
      origin = byOffset.get(v.source_offset);
    if (!origin && typeof v.event_id === 'string') origin = byEvent.get(v.event_id);
    return origin ? originSource(origin) : undefined;
  };
}

function jsonOf(row: unknown): string {
  try {
    return JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? '';
  } catch {
    return '';
  }
}
