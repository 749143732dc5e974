/**
 * Insert cost of the embedded store, the way the sink writes: micro-batches of a few thousand rows, each with its own
 * dedup token, for the three big tables of a micro-batch (normalised events, inferences, raw events).
 *
 *   vigil bench micro --only clickhouse   (or: node --import tsx bench/micro/clickhouse.bench.ts [--batch 2000,10000] [--batches 12] [--json])
 *
 * For each table, the store's two paths on the same mapped rows, alternating batch by batch so that load from other
 * processes hits them alike (medians over the batches after two warm-up rounds):
 * - `<table>_rowbinary`: what the store does (RowBinary encoded in JS, written to a file, `INSERT ... SELECT FROM
 *   file()`, dedup token);
 * - `<table>_json`: the previous path (JSONCompactEachRow through chdb's raw passthrough), `openChdbStore({
 *   binaryInserts: false })` on the same directory.
 * Plus, for normalised rows: `map` (the row mapper alone), `json_each_row` (the passthrough with keys on every row) and
 * `object_insert` (chdb's object-array insert, which renders a VALUES literal in JS).
 * Figures: wall ns per row, and process CPU ns per row (`cpu_ns_per_record`: JS serialisation and every engine thread,
 * background merges included). Each raw record is about 1.4 kB (an upper bound: an Avro envelope is a few hundred
 * bytes). A measurement, not a test: numbers depend on the machine and what else runs on it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Session } from 'chdb';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { rawEventRow, TABLE_COLUMNS } from '../../adapters/clickhouse/tables.ts';
import { inferenceRow, normalisedEventRow } from '../../pipelines/outputs.ts';
import { inferenceFor, normalisedEvent, origin } from '../../test/fixtures/clickhouse.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '2000,10000' },
    batches: { type: 'string', default: '12' },
    json: { type: 'boolean', default: false },
  },
});
const batchSizes = values.batch.split(',').map(Number);
const batches = Number(values.batches) + 2;
const sites = ['site-a', 'site-b', 'site-c', 'site-d'];
const firmware = ['4.1.0', '4.2.0', '4.2.1'];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const dir = await mkdtemp(path.join(tmpdir(), 'vigil-bench-'));
const store = openChdbStore({ path: dir });
const jsonStore = openChdbStore({ path: dir, binaryInserts: false }); // same directory: a second connection
const session = new Session(dir);
try {
  await store.migrate();
  await store.command('CREATE TABLE ne_json AS normalised_events');
  await store.command('CREATE TABLE ne_objects AS normalised_events');
  for (const batchSize of batchSizes) await run(batchSize);
} finally {
  session.close();
  await jsonStore.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
}

async function run(batchSize: number): Promise<void> {
  const events = Array.from({ length: batches }, (_, b) =>
    Array.from({ length: batchSize }, (_, i) => {
      const n = b * batchSize + i;
      return normalisedEvent({
        n,
        offset: n + batchSize * 1_000_000, // distinct rows per batch size
        deviceId: `dev-${n % 1000}`,
        siteId: sites[n % sites.length] as string,
        firmware: firmware[n % firmware.length] as string,
        observedAt: Date.UTC(2026, 2, 10) + n * 997,
        vitals: { spo2: 90 + (n % 10), pulse: 60 + (n % 50) },
      });
    }),
  );
  const tables = {
    normalised: events.map((batch) => batch.map(normalisedEventRow)),
    inferences: events.map((batch) => batch.map((e, i) => inferenceRow(inferenceFor(e, { score: i % 9 })))),
    raw_events: events.map((batch) =>
      batch.map((e) => rawEventRow(origin(e.source_offset, Buffer.from(JSON.stringify(e))))),
    ),
  };
  const tableNames = { normalised: 'normalised_events', inferences: 'inferences', raw_events: 'raw_events' } as const;
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const time = async (name: string, warm: boolean, work: () => unknown) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await work();
    const ms = performance.now() - t0;
    const used = process.cpuUsage(c0);
    if (!warm) return;
    if (!wall[name]) wall[name] = [];
    if (!cpu[name]) cpu[name] = [];
    wall[name].push(ms);
    cpu[name].push((used.user + used.system) / 1000);
  };

  for (const [b, batch] of events.entries()) {
    const warm = b >= 2;
    await time('map', warm, () => batch.map(normalisedEventRow));
    for (const [key, rows] of Object.entries(tables)) {
      const table = tableNames[key as keyof typeof tables];
      const paths: [string, ClickHouseStore][] = [
        ['rowbinary', store],
        ['json', jsonStore],
      ];
      if (b % 2 === 1) paths.reverse(); // alternate which path goes first
      for (const [via, target] of paths) {
        await time(`${key}_${via}`, warm, () =>
          target.insert(table, rows[b] as never, { dedupToken: `bench-${batchSize}-${b}-${via}` }),
        );
      }
    }
    await time('json_each_row', warm, async () => {
      let payload = '';
      for (const row of tables.normalised[b] as object[]) payload += `${JSON.stringify(row)}\n`;
      await session.insert({
        table: 'ne_json',
        values: Buffer.from(payload),
        format: 'JSONEachRow',
        columns: TABLE_COLUMNS.normalised_events,
        settings: { insert_deduplication_token: `bench-${batchSize}-${b}` },
      });
    });
    await time('object_insert', warm, () =>
      session.insert({ table: 'ne_objects', values: tables.normalised[b] as unknown as Record<string, unknown>[] }),
    );
  }
  const [row] = await store.query<{ n: number }>(
    `SELECT count() AS n FROM normalised_events FINAL WHERE source_offset >= ${batchSize * 1_000_000} AND source_offset < ${(batchSize + 1) * 1_000_000}`,
  );
  // Both paths wrote each batch (under their own tokens): the same rows, one of each after FINAL.
  if (Number(row?.n) !== batches * batchSize) throw new Error(`expected ${batches * batchSize} rows, found ${row?.n}`);

  for (const name of Object.keys(wall)) {
    const ms = median(wall[name] as number[]);
    const cpuMs = median(cpu[name] as number[]);
    if (values.json) {
      // One line per case, in the micro-benchmarks' common shape (bench/micro/lib.ts).
      process.stdout.write(
        `${JSON.stringify({
          bench: 'clickhouse insert (chdb)',
          case: name,
          batch: batchSize,
          records: (batches - 2) * batchSize,
          records_per_s: Math.round(batchSize / (ms / 1000)),
          ns_per_record: Math.round((ms * 1e6) / batchSize),
          cpu_ns_per_record: Math.round((cpuMs * 1e6) / batchSize),
          ms_per_batch: Number(ms.toFixed(1)),
        })}\n`,
      );
    } else {
      process.stdout.write(
        `batch ${String(batchSize).padStart(6)}  ${name.padEnd(22)} ${String(Math.round((ms * 1e6) / batchSize)).padStart(7)} ns/row wall ${String(Math.round((cpuMs * 1e6) / batchSize)).padStart(7)} ns/row CPU\n`,
      );
    }
  }
}
