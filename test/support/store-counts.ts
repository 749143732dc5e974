/**
 * `node --import tsx test/support/store-counts.ts DIR`: one JSON line of the drills' ClickHouse checks on a sink's chdb
 * data directory, after merging every table (OPTIMIZE ... FINAL), so plain counts must equal FINAL counts.
 */
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: store-counts.ts DIR');
const store = openChdbStore({ path: dir });
try {
  for (const table of ['normalised_events', 'duplicates', 'dead_letters', 'raw_events']) {
    await store.command(`OPTIMIZE TABLE ${table} FINAL`);
  }
  const [row] = await store.query<{ final: number; plain: number; distinct: number; raw: number; dups: number }>(
    `SELECT (SELECT count() FROM normalised_events FINAL) AS final, (SELECT count() FROM normalised_events) AS plain,
            (SELECT uniqExact(event_id) FROM normalised_events) AS distinct,
            (SELECT count() FROM raw_events FINAL) AS raw, (SELECT count() FROM duplicates FINAL) AS dups`,
  );
  const reasons = await store.query<{ reason_code: string; n: number }>(
    'SELECT reason_code, count() AS n FROM dead_letters FINAL GROUP BY reason_code ORDER BY reason_code',
  );
  process.stdout.write(
    `${JSON.stringify({
      final: Number(row?.final),
      plain: Number(row?.plain),
      distinct: Number(row?.distinct),
      raw: Number(row?.raw),
      duplicates: Number(row?.dups),
      deadLetters: Object.fromEntries(reasons.map((r) => [r.reason_code, Number(r.n)])),
    })}\n`,
  );
} finally {
  await store.close();
}
