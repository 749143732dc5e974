import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
// The batch below lands records of the vitals pipeline's tables: their mappers are registered beside its outputs.
import '../../pipelines/outputs.ts';
import { deadLetterRow } from '../../adapters/clickhouse/tables.ts';
import { deadLetter, inferenceFor, normalisedEvent, origin, sha256Hex, T0 } from '../../test/fixtures/clickhouse.ts';
import { counterValue, PipelineMetrics } from '../metrics.ts';
import type { EmittedBatch } from '../outputs.ts';
import { ClickHouseSink, mapRows, Unmappable } from './clickhouse.ts';

/**
 * The sink's last line of defence against the embedded engine: a batch with rows ClickHouse cannot store lands the
 * rest, quarantines the refused rows with their record's position and bytes, counts them, and a re-formed batch
 * (a retry after a crash) changes nothing.
 */
describe('mapRows', () => {
  it("maps each record through its table's mapper; a record it cannot map becomes an Unmappable, the rest map", () => {
    const good = deadLetter(1);
    const late = deadLetter(2, { failed_at: Date.UTC(2300, 0, 1) });
    const rows = mapRows('dead_letters', [good, late, good]);
    expect(rows[0]).toEqual(deadLetterRow(good));
    expect(rows[2]).toEqual(deadLetterRow(good));
    expect(rows[1]).toBeInstanceOf(Unmappable);
    expect((rows[1] as Unmappable).detail).toBe(
      'failed_at is outside the DateTime64 range 1900..2299 and cannot be stored',
    );
    // A table without a mapper: the records are the rows.
    const own = [{ a: 1 }];
    expect(mapRows('not_a_mapped_table', own)).toBe(own);
  });
});

describe('ClickHouseSink quarantine (chdb)', () => {
  let dir: string;
  let store: ClickHouseStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-sink-'));
    store = openChdbStore({ path: dir });
    await store.migrate();
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function count(sql: string): Promise<number> {
    const [row] = await store.query<{ n: number }>(sql);
    return Number(row?.n);
  }

  /** One embedded batch of 6 raw records: 4 events (one with an SpO2 far outside Int32, one scored at a time
   * DateTime64 cannot hold) and 2 dead letters (one claiming a sequence far outside Int64: the reported bug). */
  function batch(processedAt: number): EmittedBatch {
    const raws = Array.from({ length: 6 }, (_, n) => origin(n, Buffer.from(`raw-${n}`)));
    const events = [0, 1, 2, 3].map((n) => normalisedEvent({ n, vitals: n === 1 ? { spo2: 1e10 } : {} }));
    const inferences = events.map((e, i) => ({
      ...inferenceFor(e, { score: 3 }),
      scored_at: i === 2 ? 1e17 : processedAt,
    }));
    const letters = [4, 5].map((n) =>
      deadLetter(n, {
        source_offset: n,
        raw_sha256: raws[n]!.rawSha256,
        failed_at: processedAt,
        sequence: n === 5 ? 1.5e300 : null,
      }),
    );
    return {
      range: { topic: 'vigil.telemetry.raw', partition: 0, firstOffset: 0, lastOffset: 5 },
      raw: raws.map((o, n) => ({ origin: o, eventId: events[n]?.event_id ?? null, deviceId: null })),
      outputs: [
        {
          name: 'normalised',
          topic: 'vigil.normalised',
          schema: 'normalised',
          table: 'normalised_events',
          values: events.map((e) => ({ key: e.device_id, value: { ...e, processed_at: processedAt } })),
        },
        {
          name: 'inferences',
          topic: 'vigil.inferences',
          schema: 'inference',
          table: 'inferences',
          values: inferences.map((v) => ({ key: v.device_id, value: v as unknown as Record<string, unknown> })),
        },
      ],
      deadLetters: letters.map((l) => ({ key: '', value: l as unknown as Record<string, unknown> })),
      duplicates: [],
    };
  }

  it('lands the rest of the batch, quarantines the refused rows once, and counts them', async () => {
    const metrics = new PipelineMetrics();
    const sink = new ClickHouseSink(store, 'vitals@1', { metrics, now: () => T0 });
    const quarantined = await sink.writeEmitted(batch(T0));
    expect(quarantined).toEqual({ normalised_events: 1, inferences: 1, dead_letters: 1 });

    expect(await count('SELECT count() AS n FROM raw_events FINAL')).toBe(6);
    expect(await count('SELECT count() AS n FROM normalised_events FINAL')).toBe(3);
    expect(await count('SELECT count() AS n FROM inferences FINAL')).toBe(3);
    expect(await count('SELECT count() AS n FROM dead_letters FINAL')).toBe(1);

    const rows = await store.query<Record<string, unknown>>(
      `SELECT target_table, source_topic, source_partition, source_offset, row_ordinal, reason_code, reason_detail,
              clickhouse_code, record, record_sha256, record_size, toUnixTimestamp64Milli(quarantined_at) AS at
       FROM quarantine FINAL ORDER BY target_table`,
    );
    expect(rows).toEqual([
      {
        target_table: 'dead_letters',
        source_topic: 'vigil.telemetry.raw',
        source_partition: 0,
        source_offset: 5,
        row_ordinal: 0,
        reason_code: 'ROW_TYPE_MISMATCH',
        reason_detail: 'sequence: Int64 beyond ±2^53 or out of range',
        clickhouse_code: null,
        record: 'raw-5',
        record_sha256: sha256Hex('raw-5'),
        record_size: 5,
        at: T0,
      },
      expect.objectContaining({
        target_table: 'inferences',
        source_offset: 2, // found by the inference's event id
        reason_code: 'ROW_TYPE_MISMATCH',
        reason_detail: 'scored_at is outside the DateTime64 range 1900..2299 and cannot be stored',
        record: 'raw-2',
      }),
      expect.objectContaining({
        target_table: 'normalised_events',
        source_offset: 1,
        reason_code: 'ROW_TYPE_MISMATCH',
        reason_detail: 'spo2: Int32 out of range',
        record: 'raw-1',
        record_sha256: sha256Hex('raw-1'),
      }),
    ]);
    expect(
      await counterValue(metrics.sinkQuarantined, { table: 'normalised_events', reason: 'ROW_TYPE_MISMATCH' }),
    ).toBe(1);
    expect(await counterValue(metrics.sinkQuarantined)).toBe(3);
    expect(await counterValue(metrics.sinkRows, { table: 'normalised_events' })).toBe(3);

    // The same batch re-formed after a crash and processed again later: nothing is added anywhere, even without FINAL.
    const retry = new ClickHouseSink(store, 'vitals@1', { now: () => T0 + 60_000 });
    expect(await retry.writeEmitted(batch(T0 + 60_000))).toEqual(quarantined);
    for (const [table, n] of Object.entries({ raw_events: 6, normalised_events: 3, inferences: 3, dead_letters: 1 })) {
      expect(await count(`SELECT count() AS n FROM ${table}`), table).toBe(n);
    }
    expect(await count('SELECT count() AS n FROM quarantine')).toBe(3);
  });

  it('quarantines what the engine refuses (the fallback) and an unmappable record, under the consumed position', async () => {
    // IPv4 is a type the checker does not know: a bad address reaches the engine, which refuses the insert (code 675),
    // and bisection isolates the row.
    await store.command(
      `CREATE TABLE probe (k String, ip IPv4) ENGINE = ReplacingMergeTree ORDER BY k
       SETTINGS non_replicated_deduplication_window = 100`,
    );
    const sink = new ClickHouseSink(store, 'vitals@1', { now: () => T0 });
    const rows: (Record<string, unknown> | Unmappable)[] = [0, 1, 2, 3].map((i) => ({ k: `k${i}`, ip: '10.0.0.1' }));
    rows[1] = { k: 'k1', ip: 'not-an-ip' };
    rows[3] = new Unmappable('the record does not map to a row of probe');
    // Records as the distributed sink consumed them: position and bytes of the topic record.
    const sources = [0, 1, 2, 3].map((i) => ({
      topic: 'vigil.probe',
      partition: 2,
      offset: 100 + i,
      bytes: Buffer.from(`msg-${i}`),
      sha256: sha256Hex(`msg-${i}`),
    }));
    const range = { topic: 'vigil.probe', partition: 2, firstOffset: 100, lastOffset: 103 };
    const shas = sources.map((s) => s.sha256);
    expect(await sink.insert({ table: 'probe', rows, sources }, range, shas)).toEqual({ stored: 2, quarantined: 2 });
    const quarantined = await store.query<Record<string, unknown>>(
      `SELECT source_topic, source_partition, source_offset, reason_code, reason_detail, clickhouse_code,
              clickhouse_name, record
       FROM quarantine FINAL ORDER BY source_offset`,
    );
    expect(quarantined).toEqual([
      {
        source_topic: 'vigil.probe',
        source_partition: 2,
        source_offset: 101,
        reason_code: 'ROW_REFUSED_BY_STORE',
        reason_detail: 'ClickHouse refused the row (code 675 CANNOT_PARSE_IPV4)',
        clickhouse_code: 675,
        clickhouse_name: 'CANNOT_PARSE_IPV4',
        record: 'msg-1',
      },
      {
        source_topic: 'vigil.probe',
        source_partition: 2,
        source_offset: 103,
        reason_code: 'ROW_TYPE_MISMATCH',
        reason_detail: 'the record does not map to a row of probe',
        clickhouse_code: null,
        clickhouse_name: null,
        record: 'msg-3',
      },
    ]);
    // The batch again (a restart re-forms it from its recorded range): same rows land once, same rows quarantined once.
    expect(await sink.insert({ table: 'probe', rows, sources }, range, shas)).toEqual({ stored: 2, quarantined: 2 });
    expect(await count('SELECT count() AS n FROM probe')).toBe(2);
    expect(await count('SELECT count() AS n FROM quarantine')).toBe(2);
  });
});
