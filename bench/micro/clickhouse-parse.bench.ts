/**
 * What an embedded ClickHouse insert costs per field, by column type, and how much of a normalised row's insert is
 * parsing rather than writing the part: the figures behind "what bounds the sink" in bench/README.md.
 *
 *   vigil bench micro --only clickhouse-parse   (or: node --import tsx bench/micro/clickhouse-parse.bench.ts)
 *
 * - `<type>`: 5,000 rows of ten columns of that type, JSONCompactEachRow, into a table with ENGINE = Null (parsed and
 *   discarded: no part is written); `ns_per_field` is the figure to read.
 * - `normalised row -> Null` / `-> ReplacingMergeTree`: the store's own serialisation of normalised rows (the same
 *   bytes the sink sends), into a Null copy of the table and into the real one (with a fresh dedup token per insert):
 *   the difference is sorting, compressing and writing the part.
 * - `normalised row as TSV -> Null`: the same rows as TabSeparated (chdb's raw insert takes only text formats:
 *   JSONEachRow, JSONCompactEachRow, TSV, CSV).
 * - `... RowBinary`: the same cases as RowBinary read from a file (`INSERT ... SELECT * FROM file(path, 'RowBinary',
 *   structure)`, what the store does since issue 14; row-binary.ts), the file written once beforehand: the engine's
 *   side only (`encode normalised rows` is the JavaScript side, per row). Types in the structure without
 *   LowCardinality (`... RowBinary, LowCardinality structure` shows why).
 * A measurement, not a test.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RawInsertFormat, Session } from 'chdb';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { ByteWriter, rowBinaryEncoder } from '../../adapters/clickhouse/row-binary.ts';
import { TABLE_COLUMNS } from '../../adapters/clickhouse/tables.ts';
import { normalisedEventRow } from '../../pipelines/outputs.ts';
import { normalisedEvent } from '../../test/fixtures/clickhouse.ts';
import { measure, report } from './lib.ts';

const ROWS = 5_000;
const FIELDS = 10;
const bench = 'clickhouse parse (chdb)';
const options = { warmup: 2, batches: 4, trials: 5 };

/** Column type -> a value for row i, as the sink's rows carry them. */
const TYPES: readonly (readonly [string, string, (i: number) => unknown])[] = [
  ['String', 'short id', (i) => `dev-${i % 1000}`],
  ['String', '64-char hex', (i) => `${(i % 1000).toString(16).padStart(4, '0')}${'f0b12c89'.repeat(7)}ae4ee30c`],
  ['LowCardinality(String)', 'site', (i) => `site-${i % 4}`],
  ['Nullable(String)', 'null', () => null],
  ['LowCardinality(Nullable(String))', 'null', () => null],
  ['Float64', 'vital', (i) => 36.1 + (i % 10) / 10],
  ['Int64', 'offset', (i) => i * 7],
  ["DateTime64(3, 'UTC')", 'text', (i) => `2026-03-10 00:00:${String(i % 60).padStart(2, '0')}.350`],
  ['Array(String)', 'empty', () => []],
  ['Bool', 'false', () => false],
];

const dir = await mkdtemp(path.join(tmpdir(), 'vigil-bench-parse-'));
let files = 0;
const store = openChdbStore({ path: dir });
const session = new Session(dir);
try {
  const columns = Array.from({ length: FIELDS }, (_, j) => `c${j}`);
  for (const [index, [type, sample, value]] of TYPES.entries()) {
    const table = `t${index}`;
    await store.command(`CREATE TABLE ${table} (${columns.map((c) => `${c} ${type}`).join(', ')}) ENGINE = Null`);
    const lines: string[] = [];
    for (let i = 0; i < ROWS; i++) lines.push(JSON.stringify(columns.map(() => value(i))));
    const payload = Buffer.from(`${lines.join('\n')}\n`);
    const c = await measure(
      bench,
      `${type} (${sample})`,
      ROWS,
      () => session.insert({ table, columns, values: payload, format: 'JSONCompactEachRow' }),
      options,
    );
    report({ ...c, ns_per_field: Math.round(c.ns_per_record / FIELDS), fields: FIELDS });

    const encoder = rowBinaryEncoder(columns.map((name) => ({ name, type })));
    if (!encoder) throw new Error(`no RowBinary encoder for ${type}`);
    const file = await rowBinaryFile(
      encoder,
      Array.from({ length: ROWS }, (_, i) => Object.fromEntries(columns.map((col) => [col, value(i)]))),
    );
    const b = await measure(
      bench,
      `${type} (${sample}) RowBinary`,
      ROWS,
      () => session.queryAsync(insertFromFile(table, encoder, file), { format: 'TSV' }),
      options,
    );
    report({ ...b, ns_per_field: Math.round(b.ns_per_record / FIELDS), fields: FIELDS });
  }

  await store.migrate();
  await store.command('CREATE TABLE ne_null AS normalised_events ENGINE = Null');
  const normalisedColumns = TABLE_COLUMNS.normalised_events;
  const rows = Array.from({ length: ROWS }, (_, n) =>
    normalisedEventRow(
      normalisedEvent({
        n,
        deviceId: `dev-${n % 1000}`,
        siteId: `site-${n % 4}`,
        firmware: ['4.1.0', '4.2.0', '4.2.1'][n % 3] as string,
        observedAt: Date.UTC(2026, 2, 10) + n * 997,
        vitals: { spo2: 90 + (n % 10), pulse: 60 + (n % 50) },
      }),
    ),
  ) as unknown as Record<string, unknown>[];
  const compact = Buffer.from(`${rows.map((r) => JSON.stringify(normalisedColumns.map((c) => r[c]))).join('\n')}\n`);
  const tsv = Buffer.from(`${rows.map((r) => normalisedColumns.map((c) => tsvCell(r[c])).join('\t')).join('\n')}\n`);
  const fields = normalisedColumns.length;
  const normalised = async (name: string, table: string, values: Buffer, format: RawInsertFormat, token: boolean) => {
    let insert = 0;
    const c = await measure(
      bench,
      name,
      ROWS,
      () =>
        session.insert({
          table,
          columns: normalisedColumns,
          values,
          format,
          ...(token ? { settings: { insert_deduplication_token: `parse-bench-${insert++}` } } : {}),
        }),
      options,
    );
    report({ ...c, ns_per_field: Math.round(c.ns_per_record / fields), fields, bytes_per_row: values.length / ROWS });
  };
  await normalised('normalised row -> Null', 'ne_null', compact, 'JSONCompactEachRow', false);
  await normalised('normalised row as TSV -> Null', 'ne_null', tsv, 'TabSeparated', false);
  await normalised('normalised row -> ReplacingMergeTree', 'normalised_events', compact, 'JSONCompactEachRow', true);

  const described = await store.query<{ name: string; type: string }>(
    "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'normalised_events'",
  );
  const types = new Map(described.map((c) => [c.name, c.type]));
  const encoder = rowBinaryEncoder(normalisedColumns.map((name) => ({ name, type: types.get(name) as string })));
  if (!encoder) throw new Error('no RowBinary encoder for normalised_events');
  const writer = new ByteWriter();
  const encoded = await measure(
    bench,
    'encode normalised rows (RowBinary, JS)',
    ROWS,
    () => {
      writer.reset();
      if (encoder.encode(rows, writer) !== -1) throw new Error('a row the encoder cannot write');
    },
    options,
  );
  report({ ...encoded, bytes_per_row: writer.pos / ROWS });
  const file = await rowBinaryFile(encoder, rows);
  const fromFile = async (name: string, table: string, token: boolean, structure = encoder.structure) => {
    let insert = 0;
    const c = await measure(
      bench,
      name,
      ROWS,
      () =>
        session.queryAsync(
          insertFromFile(table, { ...encoder, structure }, file, token ? `parse-bench-rb-${insert++}` : undefined),
          { format: 'TSV' },
        ),
      options,
    );
    report({ ...c, ns_per_field: Math.round(c.ns_per_record / fields), fields });
  };
  await fromFile('normalised row -> Null RowBinary', 'ne_null', false);
  const lowCardinality = normalisedColumns.map((name) => `${name} ${types.get(name)}`).join(', ');
  await fromFile('normalised row -> Null RowBinary, LowCardinality structure', 'ne_null', false, lowCardinality);
  await fromFile('normalised row -> ReplacingMergeTree RowBinary', 'normalised_events', true);
} finally {
  session.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
}

/** The rows as one RowBinary file in the bench's directory. */
async function rowBinaryFile(
  encoder: NonNullable<ReturnType<typeof rowBinaryEncoder>>,
  rows: readonly object[],
): Promise<string> {
  const writer = new ByteWriter();
  if (encoder.encode(rows, writer) !== -1) throw new Error('a row the encoder cannot write');
  const file = path.join(dir, `rows-${files++}.rowbinary`);
  await writeFile(file, writer.bytes());
  return file;
}

/** The store's statement (chdb.ts), optionally with a dedup token. */
function insertFromFile(
  table: string,
  encoder: { readonly columns: readonly string[]; readonly structure: string },
  file: string,
  token?: string,
): string {
  const quote = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const settings = token ? ` SETTINGS insert_deduplication_token = ${quote(token)}` : '';
  return (
    `INSERT INTO ${table} (${encoder.columns.join(', ')})${settings} ` +
    `SELECT * FROM file(${quote(file)}, 'RowBinary', ${quote(encoder.structure)})`
  );
}

/** TabSeparated text of one value of the normalised table (strings escaped; arrays as ClickHouse literals). */
function tsvCell(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (Array.isArray(value))
    return `[${value.map((v) => (typeof v === 'string' ? `'${v.replace(/['\\]/g, '\\$&')}'` : String(v))).join(',')}]`;
  return String(value).replace(/[\\\t\n]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\\\'));
}
