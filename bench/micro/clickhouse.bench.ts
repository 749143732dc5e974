/**
 * Insert throughput of the embedded store for normalised rows, the way the sink writes them: micro-batches of a few
 * thousand rows, each with its own dedup token.
 *
 *   vigil bench micro --only clickhouse   (or: node --import tsx bench/micro/clickhouse.bench.ts [--batch 2000] [--batches 20] [--json])
 *
 * Three ways of inserting the same batches, interleaved batch by batch into identical tables so that load from other
 * processes hits them alike, medians over the batches after two warm-up rounds:
 * - `store`: what the store does (map + JSONCompactEachRow buffer through chdb's raw passthrough, dedup token);
 * - `json_each_row`: the same passthrough with JSONEachRow (keys on every row);
 * - `object_insert`: chdb's object-array insert (renders a VALUES literal in JS).
 * Plus the store's path for the two other big tables of a micro-batch, `inferences` and `raw_events` (each raw record
 * about 1.4 kB, as an Avro envelope would be a few hundred bytes: an upper bound).
 * A measurement, not a test: numbers depend on the machine and what else runs on it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Session } from 'chdb';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { rawEventRow, TABLE_COLUMNS } from '../../adapters/clickhouse/tables.ts';
import { inferenceRow, normalisedEventRow } from '../../pipelines/outputs.ts';
import { inferenceFor, normalisedEvent, origin } from '../../test/fixtures/clickhouse.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '2000' },
    batches: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
  },
});
const batchSize = Number(values.batch);
const batches = Number(values.batches) + 2;
const sites = ['site-a', 'site-b', 'site-c', 'site-d'];
const firmware = ['4.1.0', '4.2.0', '4.2.1'];

const data = Array.from({ length: batches }, (_, b) =>
  Array.from({ length: batchSize }, (_, i) => {
    const n = b * batchSize + i;
    return normalisedEvent({
      n,
      deviceId: `dev-${n % 1000}`,
      siteId: sites[n % sites.length]!,
      firmware: firmware[n % firmware.length]!,
      observedAt: Date.UTC(2026, 2, 10) + n * 997,
      vitals: { spo2: 90 + (n % 10), pulse: 60 + (n % 50) },
    });
  }),
);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const timings: Record<
  'map' | 'store' | 'json_each_row' | 'object_insert' | 'store_inferences' | 'store_raw_events',
  number[]
> = {
  map: [],
  store: [],
  json_each_row: [],
  object_insert: [],
  store_inferences: [],
  store_raw_events: [],
};

const dir = await mkdtemp(path.join(tmpdir(), 'vigil-bench-'));
const store = openChdbStore({ path: dir });
const session = new Session(dir); // a second connection to the same directory (allowed: same path)
try {
  await store.migrate();
  await store.command('CREATE TABLE ne_json AS normalised_events');
  await store.command('CREATE TABLE ne_objects AS normalised_events');
  for (const [b, batch] of data.entries()) {
    const warm = b >= 2;
    let start = performance.now();
    const rows = batch.map(normalisedEventRow);
    if (warm) timings.map.push(performance.now() - start);

    start = performance.now();
    await store.insert('normalised_events', batch.map(normalisedEventRow), { dedupToken: `bench-${b}` });
    if (warm) timings.store.push(performance.now() - start);

    start = performance.now();
    let payload = '';
    for (const row of batch.map(normalisedEventRow)) payload += `${JSON.stringify(row)}\n`;
    await session.insert({
      table: 'ne_json',
      values: Buffer.from(payload),
      format: 'JSONEachRow',
      columns: TABLE_COLUMNS.normalised_events,
      settings: { insert_deduplication_token: `bench-${b}` },
    });
    if (warm) timings.json_each_row.push(performance.now() - start);

    start = performance.now();
    await session.insert({ table: 'ne_objects', values: rows as unknown as Record<string, unknown>[] });
    if (warm) timings.object_insert.push(performance.now() - start);

    // The other two big tables of a micro-batch, through the store (mapping included).
    start = performance.now();
    await store.insert(
      'inferences',
      batch.map((e, i) => inferenceRow(inferenceFor(e, { score: i % 9 }))),
      { dedupToken: `bench-${b}` },
    );
    if (warm) timings.store_inferences.push(performance.now() - start);

    start = performance.now();
    await store.insert(
      'raw_events',
      batch.map((e) => rawEventRow(origin(e.source_offset, Buffer.from(JSON.stringify(e))))),
      { dedupToken: `bench-${b}` },
    );
    if (warm) timings.store_raw_events.push(performance.now() - start);
  }
  const [row] = await store.query<{ n: number }>('SELECT count() AS n FROM normalised_events');
  if (Number(row?.n) !== batches * batchSize) throw new Error(`expected ${batches * batchSize} rows, found ${row?.n}`);
} finally {
  session.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
}

const result = Object.fromEntries(
  Object.entries(timings).map(([name, ms]) => [
    name,
    { ms_per_batch: Number(median(ms).toFixed(1)), rows_per_s: Math.round(batchSize / (median(ms) / 1000)) },
  ]),
);
if (values.json) {
  // One line per case, in the micro-benchmarks' common shape (bench/micro/lib.ts).
  for (const [name, r] of Object.entries(result)) {
    process.stdout.write(
      `${JSON.stringify({
        bench: 'clickhouse insert (chdb)',
        case: name,
        batch: batchSize,
        records: (batches - 2) * batchSize,
        records_per_s: r.rows_per_s,
        ns_per_record: Math.round((r.ms_per_batch * 1e6) / batchSize),
        ms_per_batch: r.ms_per_batch,
      })}\n`,
    );
  }
} else {
  process.stdout.write(`normalised rows, ${batches - 2} batches of ${batchSize} (medians after 2 warm-up batches):\n`);
  for (const [name, r] of Object.entries(result)) {
    process.stdout.write(
      `  ${name.padEnd(14)} ${String(r.ms_per_batch).padStart(8)} ms/batch ${String(r.rows_per_s).padStart(9)} rows/s\n`,
    );
  }
}
