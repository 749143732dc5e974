/**
 * Where clinical outcomes land: the `outcome` records on TOPICS.outcomes (escalations, ICU transfers, confirmed
 * deteriorations by patient pseudonym and time, keyed by patient_ref; `vigil simulate` writes the simulated fleet's)
 * become rows of `outcomes` (infra/clickhouse/migrations/0014_outcomes.sql), which model calibration joins to
 * inferences (governance/calibrate.ts). A landing definition, like pipelines/gateway-rejections.ts: no operator, no
 * output; its one source lands in its own table (`SourceSpec.lands`), so the table's columns and row mapping live
 * here, once, and `npm run check` compares them with the migration.
 *
 * Distributed: `vigil sink pipelines/outcomes.ts` (a sink in its own consumer group, effectively once like every sink).
 * Embedded: `landOutcomes` lands outcome records (e.g. read from a file by `readOutcomesFile`, written by
 * `writeOutcomesFile`, or the simulator's)
 * with the same mapping, in the same table. There is nothing to `vigil run`: no chain reads these records.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { toDateTime64 } from '../adapters/clickhouse/tables.ts';
import { readLines } from '../adapters/file/lines.ts';
import { coerceTimestamp } from '../adapters/file/timestamps.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { VigilError } from '../runtime/errors.ts';
import { definePipeline, type SourceSpec } from '../runtime/pipeline.ts';
import type { Outcome } from '../schemas/generated/outcome.ts';

export type { Outcome } from '../schemas/generated/outcome.ts';
export type OutcomeKind = Outcome['kind'];

export const OUTCOMES_TABLE = 'outcomes';

/** The outcome kinds of schema outcome v1, in the schema's order. */
export const OUTCOME_KINDS: readonly OutcomeKind[] = ['escalation', 'icu_transfer', 'confirmed_deterioration'];

const COLUMNS = [
  'outcome_id',
  'patient_ref',
  'site_id',
  'kind',
  'occurred_at',
  'recorded_at',
  'source',
] as const satisfies readonly (keyof Outcome)[];

/**
 * One outcome record (as on its topic) -> its row: the record's own fields, times as DateTime64.
 *
 * @example
 * await store.insert(OUTCOMES_TABLE, outcomes.map(outcomeRow), { dedupToken });
 */
export function outcomeRow(value: Record<string, unknown>): Record<string, unknown> {
  const o = value as unknown as Outcome;
  return {
    outcome_id: o.outcome_id,
    patient_ref: o.patient_ref,
    site_id: o.site_id,
    kind: o.kind,
    occurred_at: toDateTime64(o.occurred_at, 'occurred_at'),
    recorded_at: toDateTime64(o.recorded_at, 'recorded_at'),
    source: o.source,
  };
}

const outcomes: SourceSpec<Outcome> = {
  topic: TOPICS.outcomes,
  schema: 'outcome',
  lands: { table: OUTCOMES_TABLE, rows: { columns: COLUMNS, row: outcomeRow } },
};

export default definePipeline({ name: 'outcomes', version: '1', source: outcomes }).outputs({
  records: [],
  side: {},
});

/** Rows per insert of `landOutcomes`: each chunk is one block with its own dedup token. */
const OUTCOME_CHUNK = 5_000;

/**
 * Lands outcome records in `outcomes` in the embedded mode, as `vigil sink pipelines/outcomes.ts` lands them from the
 * topic: the same row mapping, in chunks whose dedup token names their position and a digest of their records, so landing the same
 * records again (a re-run on a kept store) adds no row. Returns the rows sent.
 *
 * @example
 * await landOutcomes(store, await readOutcomesFile('outcomes.ndjson'));
 */
export async function landOutcomes(
  store: Pick<ClickHouseStore, 'insert'>,
  records: readonly Outcome[],
): Promise<number> {
  let rows = 0;
  for (let i = 0; i < records.length; i += OUTCOME_CHUNK) {
    const chunk = records.slice(i, i + OUTCOME_CHUNK);
    // The digest covers each record's content, not only its id: a record that reuses an id with other content is
    // another block (and another row, 0014's append-only rule), never dropped as a retry.
    const content = createHash('sha256');
    for (const o of chunk) {
      content.update(
        `${o.outcome_id}|${o.patient_ref}|${o.site_id}|${o.kind}|${o.occurred_at}|${o.recorded_at}|${o.source}\n`,
      );
    }
    const dedupToken = `outcomes|${TOPICS.outcomes}|${i}-${i + chunk.length - 1}|${content.digest('hex').slice(0, 16)}`;
    const result = await store.insert(
      OUTCOMES_TABLE,
      chunk.map((o) => outcomeRow(o as unknown as Record<string, unknown>)),
      { dedupToken },
    );
    rows += result.rows;
  }
  return rows;
}

/**
 * One outcome from a JSON object (a line of an outcomes NDJSON file): the schema's fields, times as epoch ms or
 * ISO-8601 with a zone. Throws CONFIG_INVALID naming the field (never its value: a pseudonym is PHI) when one is
 * missing or wrong.
 */
export function parseOutcome(value: unknown, where = 'outcome'): Outcome {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VigilError('CONFIG_INVALID', `${where}: not a JSON object`);
  }
  const v = value as Record<string, unknown>;
  const text = (field: keyof Outcome): string => {
    const s = v[field];
    if (typeof s !== 'string' || s.length === 0) {
      throw new VigilError('CONFIG_INVALID', `${where}: ${field} must be a non-empty string`);
    }
    return s;
  };
  const time = (field: 'occurred_at' | 'recorded_at'): number => {
    const ms = coerceTimestamp(v[field]);
    if (ms === undefined) {
      throw new VigilError('CONFIG_INVALID', `${where}: ${field} must be epoch ms or ISO-8601 with a zone`);
    }
    return ms;
  };
  const kind = text('kind');
  if (!(OUTCOME_KINDS as readonly string[]).includes(kind)) {
    throw new VigilError('CONFIG_INVALID', `${where}: kind must be one of ${OUTCOME_KINDS.join(', ')}`);
  }
  const known = new Set<string>(COLUMNS);
  const unknown = Object.keys(v).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new VigilError('CONFIG_INVALID', `${where}: unknown field(s) ${unknown.join(', ')}`);
  return {
    outcome_id: text('outcome_id'),
    patient_ref: text('patient_ref'),
    site_id: text('site_id'),
    kind: kind as OutcomeKind,
    occurred_at: time('occurred_at'),
    recorded_at: time('recorded_at'),
    source: text('source'),
  };
}

/**
 * Reads an outcomes file: NDJSON, one outcome object per line (`parseOutcome`; blank lines skipped). A bad line is
 * CONFIG_INVALID naming its line number: an outcomes file is reviewed input, not device traffic to dead-letter.
 *
 * @example
 * const records = await readOutcomesFile('fleet.outcomes.ndjson');
 */
export async function readOutcomesFile(path: string): Promise<Outcome[]> {
  const records: Outcome[] = [];
  for await (const line of readLines(path)) {
    const where = `${path}:${line.number}`;
    if (line.bytes === null) throw new VigilError('CONFIG_INVALID', `${where}: line too long`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.bytes.toString('utf8'));
    } catch {
      throw new VigilError('CONFIG_INVALID', `${where}: not JSON`);
    }
    records.push(parseOutcome(parsed, where));
  }
  return records;
}

/**
 * Writes outcomes as an NDJSON file `readOutcomesFile` reads back (times as epoch ms): the simulator's ground truth
 * beside a fleet file (`vigil simulate --out fleet.ndjson` -> `fleet.ndjson.outcomes.ndjson`), for an embedded run.
 *
 * @example
 * await writeOutcomesFile('fleet.ndjson.outcomes.ndjson', simulationOutcomes(options));
 */
export async function writeOutcomesFile(path: string, records: readonly Outcome[]): Promise<void> {
  const lines = records.map((o) =>
    JSON.stringify({
      outcome_id: o.outcome_id,
      patient_ref: o.patient_ref,
      site_id: o.site_id,
      kind: o.kind,
      occurred_at: o.occurred_at,
      recorded_at: o.recorded_at,
      source: o.source,
    }),
  );
  await writeFile(path, lines.length > 0 ? `${lines.join('\n')}\n` : '');
}
