/**
 * The ClickHouse sink: lands a batch's outputs in their tables, effectively once.
 *
 * Deterministic batch contract: every insert is the rows of exactly one source batch (one partition's offset range)
 * and carries an `insert_deduplication_token` derived from that range and its records' hashes, so a batch retried
 * after a crash is dropped by ClickHouse as a duplicate block; ReplacingMergeTree keyed by the record's id is the
 * second line of defence (queries that must be exact use FINAL). The sink never invents rows: a table gets exactly
 * what the batch emitted for it.
 */

import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { batchDedupToken } from '../../adapters/clickhouse/store.ts';
import {
  isTableName,
  ROW_MAPPERS,
  rawEventRow,
  type TableName,
  type TableSources,
} from '../../adapters/clickhouse/tables.ts';
import type { BatchRange } from '../engine.ts';
import type { PipelineMetrics } from '../metrics.ts';
import type { EmittedBatch } from '../outputs.ts';
import { STANDARD_OUTPUTS } from '../outputs.ts';

export interface TableBatch {
  readonly table: string;
  readonly rows: readonly Record<string, unknown>[];
}

export class ClickHouseSink {
  readonly #store: ClickHouseStore;
  readonly #pipeline: string;
  readonly #metrics: PipelineMetrics | null;

  /** `pipeline` is `name@version`: a deliberate reprocessing by a new version is a new batch, not a retry. */
  constructor(store: ClickHouseStore, pipeline: string, metrics: PipelineMetrics | null = null) {
    this.#store = store;
    this.#pipeline = pipeline;
    this.#metrics = metrics;
  }

  /** Embedded mode: every output of one source batch, one insert per table, tokens from the source range. */
  async writeEmitted(batch: EmittedBatch): Promise<void> {
    const shas = batch.raw.map((r) => r.origin.rawSha256);
    const tables: TableBatch[] = [
      {
        table: STANDARD_OUTPUTS.raw.table,
        rows: batch.raw.map((r) => rawEventRow(r.origin, r) as unknown as Record<string, unknown>),
      },
      ...batch.outputs.map((o) => ({
        table: o.table,
        rows: mapRows(
          o.table,
          o.values.map((v) => v.value),
        ),
      })),
      {
        table: STANDARD_OUTPUTS.deadLetters.table,
        rows: mapRows(
          STANDARD_OUTPUTS.deadLetters.table,
          batch.deadLetters.map((v) => v.value),
        ),
      },
      {
        table: STANDARD_OUTPUTS.duplicates.table,
        rows: mapRows(
          STANDARD_OUTPUTS.duplicates.table,
          batch.duplicates.map((v) => v.value),
        ),
      },
    ];
    for (const t of tables) await this.insert(t, batch.range, shas);
  }

  /** Inserts one table's rows of one batch; `contentShas` are the batch's records' hashes in offset order. */
  async insert(batch: TableBatch, range: BatchRange, contentShas: readonly string[]): Promise<void> {
    if (batch.rows.length === 0) return;
    const dedupToken = batchDedupToken({ pipeline: this.#pipeline, ...range, rawSha256s: contentShas });
    const started = process.hrtime.bigint();
    await this.#store.insert(batch.table, batch.rows, { dedupToken });
    this.#metrics?.sinkInsertSeconds.observe({ table: batch.table }, Number(process.hrtime.bigint() - started) / 1e9);
    this.#metrics?.sinkRows.inc({ table: batch.table }, batch.rows.length);
  }
}

/** Maps records to a table's rows: through its mapper when the table has one, else the records are the rows. */
export function mapRows(table: string, values: readonly unknown[]): Record<string, unknown>[] {
  if (!isTableName(table)) return values as Record<string, unknown>[];
  const map = ROW_MAPPERS[table as TableName] as (source: TableSources[TableName]) => unknown;
  return values.map((v) => map(v as TableSources[TableName]) as Record<string, unknown>);
}
