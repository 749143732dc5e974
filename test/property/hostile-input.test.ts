/**
 * Hostile input through the whole embedded run, into chdb: what `vigil run pipelines/vitals.ts --embedded --input FILE`
 * does (the file source, runEmbeddedSession, the chdb store), on files of generated hostile NDJSON lines and Avro
 * records. Whatever the input, the run must not throw, every run must balance (consumed = emitted + dead-lettered +
 * duplicates), and the store must hold every record somewhere: one raw_events row per consumed record, one
 * dead_letters row per dead letter with the runner's reason counts, one normalised_events row per emitted record.
 *
 * One store for the whole file (a temp chdb data dir); each run reads its own file, so its rows are its file's topic.
 * test/property/hostile-lines.ndjson holds every line the generator has ever failed on: it always runs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { PipelineDefinition } from '../../runtime/pipeline.ts';
import { runEmbeddedSession } from '../../runtime/runners/embedded-session.ts';
import { fileSource } from '../../runtime/runners/embedded-sources.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import type { Envelope } from '../../schemas/types.ts';
import { hostileAvroRecord, hostileLine, writeAvroRecords, writeNdjson } from './hostile.ts';

const REGRESSIONS = new URL('./hostile-lines.ndjson', import.meta.url);

interface RegressionCase {
  readonly why: string;
  readonly line?: string;
  readonly hex?: string;
  readonly repeat?: readonly { readonly marker: string; readonly char: string; readonly times: number }[];
  /** The reason code the line must get, or "ok" when it must pass. */
  readonly reason: string;
}

let dir: string;
let store: ClickHouseStore;
let definition: PipelineDefinition<Envelope, unknown>;
let runs = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-hostile-'));
  store = openChdbStore({ path: join(dir, 'clickhouse') });
  await store.migrate();
  // What `vigil run --embedded --input FILE --accept-ungated` runs: hostile files are not gateway traffic.
  definition = acceptUngated(await loadPipeline('pipelines/vitals.ts')) as PipelineDefinition<Envelope, unknown>;
}, 60_000);

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

async function count(table: string, topic: string): Promise<number> {
  const [row] = await store.query<{ n: number | string }>(
    `SELECT count() AS n FROM ${table} FINAL WHERE source_topic = ${quote(topic)}`,
  );
  return Number(row?.n ?? 0);
}

/** Runs one file end to end and checks the run's accounting against itself and against what the store holds. */
async function runAndCheck(path: string, records: number): Promise<Record<string, number>> {
  const topic = `file:${path.split('/').pop()}`;
  const result = await runEmbeddedSession(definition, fileSource(path, { batchSize: 64 }), store, silentLogger);
  const a = result.accounting;
  expect(a.consumed).toBe(records);
  expect(a.consumed).toBe(a.emitted + a.deadLettered + a.duplicates);
  expect(await count('raw_events', topic)).toBe(a.consumed);
  expect(await count('dead_letters', topic)).toBe(a.deadLettered);
  expect(await count('duplicates', topic)).toBe(a.duplicates);
  expect(await count('normalised_events', topic)).toBe(a.emitted);
  const byReason = await store.query<{ reason_code: string; n: number | string }>(
    `SELECT reason_code, count() AS n FROM dead_letters FINAL WHERE source_topic = ${quote(topic)} GROUP BY reason_code`,
  );
  expect(Object.fromEntries(byReason.map((r) => [r.reason_code, Number(r.n)]))).toEqual(result.deadLetters);
  return result.deadLetters;
}

describe('hostile input through the whole embedded run (chdb)', () => {
  it('every line that ever broke a run: dead letters with their reason codes, the run balanced', async () => {
    const text = readFileSync(REGRESSIONS, 'utf8');
    // The fixture holds one JSON-escaped line per row (so lone surrogates, NUL and invalid UTF-8 survive the file):
    // {"why", "line": "<the line's text>" or "hex": "<its bytes>", "reason"}, plus // comments. A long run of one
    // character is written as a marker and expanded ("repeat"), to keep megabyte lines out of the repository.
    const cases = text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as RegressionCase);
    const lines = cases.map((c) => {
      if (c.hex !== undefined) return Buffer.from(c.hex, 'hex');
      let text = c.line ?? '';
      for (const r of c.repeat ?? []) text = text.replace(r.marker, r.char.repeat(r.times));
      return Buffer.from(text);
    });
    const path = join(dir, 'regressions.ndjson');
    const dlq = await runAndCheck(path, writeNdjson(path, lines));
    const expected: Record<string, number> = {};
    for (const c of cases) expected[c.reason] = (expected[c.reason] ?? 0) + 1;
    expect(dlq).toEqual(Object.fromEntries(Object.entries(expected).filter(([r]) => r !== 'ok')));
  });

  it('generated hostile NDJSON lines never break a run', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileLine, { minLength: 1, maxLength: 40 }), async (lines) => {
        const path = join(dir, `lines-${++runs}.ndjson`);
        await runAndCheck(path, writeNdjson(path, lines));
      }),
      { numRuns: 25, endOnFailure: true },
    );
  }, 120_000);

  it('generated hostile Avro records never break a run', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileAvroRecord, { minLength: 1, maxLength: 30 }), async (records) => {
        const path = join(dir, `records-${++runs}.avro`);
        await runAndCheck(path, writeAvroRecords(path, records));
      }),
      { numRuns: 15, endOnFailure: true },
    );
  }, 120_000);
});
