/**
 * The distributed sink's own JavaScript per row, beside the code it replaced (kept here to compare against):
 *
 *   vigil bench micro --only sink   (or: node --import tsx bench/micro/sink.bench.ts [--pairs 3])
 *
 * - `check_<table>_closures`: the guard's check as it was (guard.ts `checkRow`: a Map lookup and a chain of closures
 *   per column; DateTime text through a regex and a Date) -- `check_<table>_compiled`: what `RowGuard.land` runs now
 *   (row-check.ts: one function per table and column list, common types inline, DateTime text by a cached day);
 * - `datetime64_before` (a cached day, then the time of day by arithmetic and five concatenations) -- `datetime64`
 *   (tables.ts `toDateTime64` now: the text up to the second cached, one concatenation).
 * Rows are the real mappers' output for the fixtures' records, the table descriptions those of a migrated embedded
 * store. Pairs alternate old and new so load from other processes hits both; every row is first checked to give the
 * same answer both ways. A measurement, not a test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ValueCheck } from '../../adapters/clickhouse/column-types.ts';
import { checkRow, RowGuard, type TableChecks } from '../../adapters/clickhouse/guard.ts';
import { compileRowCheck } from '../../adapters/clickhouse/row-check.ts';
import { rawEventRow, TABLE_COLUMNS, type TableName, toDateTime64 } from '../../adapters/clickhouse/tables.ts';
import { inferenceRow, normalisedEventRow } from '../../pipelines/outputs.ts';
import { inferenceFor, normalisedEvent, origin } from '../../test/fixtures/clickhouse.ts';
import { measure, report } from './lib.ts';

const { values: flags } = parseArgs({ options: { pairs: { type: 'string', default: '3' } }, strict: false });
const BATCH = 2000;
const sites = ['site-a', 'site-b', 'site-c', 'site-d'];

const events = Array.from({ length: BATCH }, (_, n) =>
  normalisedEvent({
    n,
    offset: n,
    deviceId: `dev-${n % 1000}`,
    siteId: sites[n % sites.length] as string,
    firmware: '4.2.0',
    observedAt: Date.UTC(2026, 2, 10) + n * 997,
    vitals: { spo2: 90 + (n % 10), pulse: 60 + (n % 50) },
  }),
);
const rows: Partial<Record<TableName, object[]>> = {
  normalised_events: events.map(normalisedEventRow) as object[],
  inferences: events.map((e, i) => inferenceRow(inferenceFor(e, { score: i % 9 }))) as object[],
  raw_events: events.map((e) => rawEventRow(origin(e.source_offset, Buffer.from(JSON.stringify(e))))) as object[],
} as Partial<Record<TableName, object[]>>;

/** column-types.ts's DateTime text check before its cached day (the regex and a Date per value). */
function regexDateText(name: string, [min, max]: readonly [number, number]): (v: string) => string | null {
  const text = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?$/;
  return (v) => {
    const m = text.exec(v);
    if (!m || m[4] === undefined) return `not a ${name} text`;
    const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((x) => (x === undefined ? 0 : Number(x)));
    const ms = Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
    const date = new Date(ms);
    if (date.getUTCDate() !== d || date.getUTCMonth() !== (mo as number) - 1 || h > 23 || mi > 59 || s > 59) {
      return `not a calendar ${name}`;
    }
    return ms >= min && ms <= max ? null : `${name} outside its range`;
  };
}

/** The checks as they were: DateTime64 text columns through the regex parse. */
function closuresBefore(checks: TableChecks): TableChecks {
  const dt64 = regexDateText('DateTime64', [Date.UTC(1900, 0, 1), Date.UTC(2299, 11, 31, 23, 59, 59, 999)]);
  const columns = new Map<string, ValueCheck>();
  for (const [column, check] of checks.columns) {
    const type = checks.types?.get(column) ?? '';
    if (type.startsWith('DateTime64')) {
      columns.set(column, (v) =>
        v === null || v === undefined
          ? 'NULL in a non-Nullable DateTime64 column'
          : typeof v === 'string'
            ? dt64(v)
            : check(v),
      );
    } else if (type.startsWith('Nullable(DateTime64')) {
      columns.set(column, (v) => (v === null || v === undefined ? null : typeof v === 'string' ? dt64(v) : check(v)));
    } else columns.set(column, check);
  }
  return { table: checks.table, columns, defaulted: checks.defaulted };
}

/** tables.ts `toDateTime64` before the second cache. */
const TWO = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
let beforeDay = Number.NaN;
let beforeDayText = '';
function toDateTime64Before(ms: number): string {
  const t = Math.trunc(ms);
  const day = Math.floor(t / 86_400_000);
  if (day !== beforeDay) {
    beforeDayText = `${new Date(day * 86_400_000).toISOString().slice(0, 10)} `;
    beforeDay = day;
  }
  let rest = t - day * 86_400_000;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  const milli = rest - s * 1000;
  return `${beforeDayText}${TWO[h]}:${TWO[m]}:${TWO[s]}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}`;
}

const dir = await mkdtemp(path.join(tmpdir(), 'vigil-bench-sink-'));
const store = openChdbStore({ path: dir });
try {
  await store.migrate();
  const guard = new RowGuard(store);
  let sink = 0;
  for (const [table, tableRows] of Object.entries(rows) as [TableName, object[]][]) {
    const checks = await guard.checks(table);
    const columns = TABLE_COLUMNS[table];
    const before = closuresBefore(checks);
    const compiled = compileRowCheck(checks, columns);
    for (const row of tableRows) {
      const a = checkRow(before, columns, row);
      if (a !== compiled(row) || a !== checkRow(checks, columns, row)) throw new Error(`${table}: the checks differ`);
    }
    for (let p = 0; p < Number(flags.pairs); p++) {
      report(
        await measure('sink', `check_${table}_closures`, BATCH, () => {
          for (const row of tableRows) if (checkRow(before, columns, row) !== null) sink++;
        }),
      );
      report(
        await measure('sink', `check_${table}_compiled`, BATCH, () => {
          for (const row of tableRows) if (compiled(row) !== null) sink++;
        }),
      );
    }
  }
  // A batch's times: a few per second, as the rows' observed/received/processed times are.
  const times = Array.from({ length: BATCH }, (_, i) => Date.UTC(2026, 2, 10) + i * 331);
  for (const t of times) if (toDateTime64Before(t) !== toDateTime64(t)) throw new Error('the DateTime64 texts differ');
  let length = 0;
  for (let p = 0; p < Number(flags.pairs); p++) {
    report(
      await measure('sink', 'datetime64_before', BATCH, () => {
        for (const t of times) length += toDateTime64Before(t).length;
      }),
    );
    report(
      await measure('sink', 'datetime64', BATCH, () => {
        for (const t of times) length += toDateTime64(t).length;
      }),
    );
  }
  if (sink !== 0 || length === 0) throw new Error('a fixture row was refused');
} finally {
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
