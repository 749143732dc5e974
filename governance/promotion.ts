/**
 * Promotion evidence: what a candidate version did during its shadow (or canary) period, read from the clinical plane,
 * and the manifest's pre-specified acceptance criteria evaluated on it. `vigil models promote` prints every criterion
 * (required / observed / pass) and records them in the `promoted` record; the registry refuses a promotion whose
 * criteria did not all hold (governance/service.ts promoteModel, PROMOTION_REFUSED).
 *
 * The comparison is paired: the candidate's inferences and the live version's on the SAME events (event_id), so a
 * difference is the models', never the patients'. Calibration reads the outcomes (table `outcomes`) of the candidate's
 * patients and labels each inference whose outcome window has closed (governance/calibration.ts).
 *
 * `evaluateCriteria` is pure (no store, no clock): the same data gives the same verdict, and tests state it exactly.
 */
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { VigilError } from '../runtime/errors.ts';
import type { ModelManifest, ModelOutput } from '../runtime/models.ts';
import { calibrationMetrics, labelInferences } from './calibration.ts';
import type { CriterionResult } from './types.ts';

/** A subgroup's Brier score is compared only when it has at least this many labelled events shared with live. */
export const MIN_SUBGROUP_EVENTS = 50;

/** One event the candidate scored in the period, with the live version's inference on the same event if any. */
export interface PeriodEvent {
  readonly event_id: string;
  readonly patient_ref: string;
  /** Epoch ms. */
  readonly observed_at: number;
  readonly patient_subgroup: string | null;
  readonly score: number;
  readonly risk_band: string;
  readonly live: { readonly score: number; readonly risk_band: string } | null;
}

/** An outcome of one of the candidate's patients (distinct patient, kind, time). */
export interface PeriodOutcome {
  readonly patient_ref: string;
  readonly kind: string;
  /** Epoch ms. */
  readonly occurred_at: number;
}

export interface ShadowPeriodData {
  readonly model: string;
  readonly version: string;
  /** Epoch ms, inclusive from, exclusive to (observed_at of the events). */
  readonly period: { readonly from: number; readonly to: number };
  /** The live version compared with (null: none was live). */
  readonly live_version: string | null;
  /** What the live version outputs: the subgroup Brier comparison needs probabilities on both sides. */
  readonly live_output: ModelOutput['kind'] | null;
  readonly events: readonly PeriodEvent[];
  readonly outcomes: readonly PeriodOutcome[];
  /** Outcomes are known up to here (epoch ms): an event is labelled once observed_at + horizon <= as_of. */
  readonly as_of: number;
}

export interface ShadowPeriodQuery {
  readonly model: string;
  readonly version: string;
  /** Epoch ms, inclusive. */
  readonly since: number;
  /** Epoch ms, exclusive. */
  readonly until: number;
  /** The live version to compare with (the registry's); null: none. */
  readonly liveVersion: string | null;
  readonly liveOutput?: ModelOutput['kind'] | null;
  /** Outcomes are known up to here (epoch ms; the caller's clock, usually now). Default: `until`. */
  readonly asOf?: number;
}

interface PairRow {
  event_id: string;
  patient_ref: string;
  patient_subgroup: string | null;
  observed_at: number | string;
  score: number;
  risk_band: string;
  live_score: number | null;
  live_band: string | null;
}

// The current derivation of each inference (inferences_current, 0011), one per event: the candidate's in the period,
// the live version's (rollout live) on the same events. Filters on LIMIT BY columns are pushed below the view's choice.
const PAIRS_SQL = `
WITH candidate AS (
  SELECT event_id AS c_event, any(patient_ref) AS c_patient, any(patient_subgroup) AS c_subgroup,
         toUnixTimestamp64Milli(any(observed_at)) AS c_observed, any(score) AS c_score, any(risk_band) AS c_band
  FROM inferences_current
  WHERE model_name = {model:String} AND model_version = {version:String}
    AND observed_at >= fromUnixTimestamp64Milli({from:Int64}) AND observed_at < fromUnixTimestamp64Milli({to:Int64})
  GROUP BY event_id
), live AS (
  SELECT event_id AS l_event, any(score) AS l_score, any(risk_band) AS l_band
  FROM inferences_current
  WHERE model_name = {model:String} AND model_version = {live:String} AND rollout = 'live'
    AND observed_at >= fromUnixTimestamp64Milli({from:Int64}) AND observed_at < fromUnixTimestamp64Milli({to:Int64})
  GROUP BY event_id
)
SELECT c_event AS event_id, c_patient AS patient_ref, c_subgroup AS patient_subgroup, c_observed AS observed_at,
       c_score AS score, c_band AS risk_band, l_score AS live_score, l_band AS live_band
FROM candidate LEFT JOIN live ON c_event = l_event
ORDER BY observed_at, event_id
SETTINGS join_use_nulls = 1`;

// Outcomes of the candidate's patients from the period's start on (no upper bound: the last events' windows reach
// past the period). Distinct (patient, kind, time): a corrected record is at most a second outcome (0014). Aliases
// never take a column's name: ClickHouse would read the alias in WHERE.
const OUTCOMES_SQL = `
SELECT DISTINCT patient_ref, kind, toUnixTimestamp64Milli(occurred_at) AS occurred_ms
FROM outcomes
WHERE occurred_at >= fromUnixTimestamp64Milli({from:Int64})
  AND patient_ref IN (
    SELECT DISTINCT patient_ref FROM inferences_current
    WHERE model_name = {model:String} AND model_version = {version:String}
      AND observed_at >= fromUnixTimestamp64Milli({from:Int64}) AND observed_at < fromUnixTimestamp64Milli({to:Int64}))
ORDER BY occurred_ms, patient_ref, kind`;

async function tableExists(store: ClickHouseStore, name: string): Promise<boolean> {
  const [row] = await store.query<{ n: number | string }>(
    'SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {name:String}',
    { name },
  );
  return Number(row?.n) > 0;
}

/**
 * Reads a candidate's shadow/canary period from the read store: its inferences, the live version's on the same
 * events, and its patients' outcomes. A store without the clinical plane is a mistake in the command line
 * (CONFIG_INVALID); a store without the outcomes table yet gives no outcomes (calibration then fails for want of them).
 *
 * @example
 * const data = await loadShadowPeriod(store, { model: 'deterioration', version: '1.1.0', since, until: Date.now(),
 *   liveVersion: '1.0.0', liveOutput: 'probability', asOf: Date.now() });
 * const criteria = evaluateCriteria(manifest, data);
 */
export async function loadShadowPeriod(store: ClickHouseStore, query: ShadowPeriodQuery): Promise<ShadowPeriodData> {
  if (!(query.until > query.since)) {
    throw new VigilError('CONFIG_INVALID', 'the period is empty: its end must be after its start');
  }
  if (!(await tableExists(store, 'inferences_current'))) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the store at ${store.location} has no clinical plane yet: run a pipeline (\`npm start\`) to create and fill it`,
    );
  }
  const params = { model: query.model, version: query.version, from: query.since, to: query.until };
  const rows = await store.query<PairRow>(PAIRS_SQL, { ...params, live: query.liveVersion ?? '' });
  const outcomes = (await tableExists(store, 'outcomes'))
    ? await store.query<{ patient_ref: string; kind: string; occurred_ms: number | string }>(OUTCOMES_SQL, params)
    : [];
  return {
    model: query.model,
    version: query.version,
    period: { from: query.since, to: query.until },
    live_version: query.liveVersion,
    live_output: query.liveOutput ?? null,
    events: rows.map((r) => ({
      event_id: r.event_id,
      patient_ref: r.patient_ref,
      observed_at: Number(r.observed_at),
      patient_subgroup: r.patient_subgroup,
      score: Number(r.score),
      risk_band: r.risk_band,
      live:
        r.live_score === null || r.live_band === null ? null : { score: Number(r.live_score), risk_band: r.live_band },
    })),
    outcomes: outcomes.map((o) => ({ patient_ref: o.patient_ref, kind: o.kind, occurred_at: Number(o.occurred_ms) })),
    as_of: query.asOf ?? query.until,
  };
}

const fixed = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const skipped = (criterion: string): CriterionResult => ({
  criterion,
  required: 'null (not specified)',
  observed: 'skipped',
  passed: true,
});

/** Labels (y) of the events whose outcome window has closed by `as_of`, by index in `data.events` (undefined: open). */
function labelsOf(
  output: Extract<ModelOutput, { kind: 'probability' }>,
  data: ShadowPeriodData,
): (0 | 1 | undefined)[] {
  const { kinds, horizon_ms } = output.outcome;
  const labelled = labelInferences(data.events, data.outcomes, horizon_ms, kinds, data.as_of);
  const byEvent = new Map(labelled.map((e) => [e.event_id, e.y]));
  return data.events.map((e) => byEvent.get(e.event_id));
}

function calibrationResults(
  manifest: Pick<ModelManifest, 'acceptance_criteria' | 'output'>,
  data: ShadowPeriodData,
  labels: readonly (0 | 1 | undefined)[],
): CriterionResult[] {
  const bounds = manifest.acceptance_criteria.calibration;
  if (bounds === null) return [skipped('calibration')];
  const rows = data.events.flatMap((e, i) => (labels[i] === undefined ? [] : [{ p: e.score, y: labels[i] as 0 | 1 }]));
  const metrics = rows.length > 0 ? calibrationMetrics(rows) : undefined;
  const events = metrics?.events ?? 0;
  const na = (why: string) => `n/a (${why})`;
  const unknown = metrics === undefined ? na('no event with a closed outcome window') : undefined;
  const citl = metrics?.citl ?? Number.NaN;
  const slope = metrics?.slope ?? Number.NaN;
  const ece = metrics?.ece15 ?? Number.NaN;
  // A figure undefined for the rows (one class only, constant or separating scores) is never a pass.
  const shown = (x: number) => unknown ?? (Number.isFinite(x) ? fixed(x) : na('undefined for these events'));
  return [
    {
      criterion: 'calibration.min_outcome_events',
      required: `>= ${bounds.min_outcome_events}`,
      observed: `${events} (of ${rows.length} labelled)`,
      passed: events >= bounds.min_outcome_events,
    },
    {
      criterion: 'calibration.citl_abs_max',
      required: `|citl| <= ${bounds.citl_abs_max}`,
      observed: shown(citl),
      passed: Math.abs(citl) <= bounds.citl_abs_max,
    },
    {
      criterion: 'calibration.slope',
      required: `${bounds.slope_min} <= slope <= ${bounds.slope_max}`,
      observed: shown(slope),
      passed: slope >= bounds.slope_min && slope <= bounds.slope_max,
    },
    {
      criterion: 'calibration.ece_max',
      required: `ece15 <= ${bounds.ece_max}`,
      observed: shown(ece),
      passed: ece <= bounds.ece_max,
    },
  ];
}

const brier = (pairs: readonly { p: number; y: 0 | 1 }[]) =>
  pairs.reduce((sum, { p, y }) => sum + (p - y) ** 2, 0) / pairs.length;

function subgroupResults(
  manifest: Pick<ModelManifest, 'acceptance_criteria' | 'output'>,
  data: ShadowPeriodData,
  labels: readonly (0 | 1 | undefined)[],
): CriterionResult[] {
  const margin = manifest.acceptance_criteria.subgroup_brier_margin;
  const criterion = 'subgroup_brier_margin';
  if (margin === null) return [skipped(criterion)];
  const refused = (observed: string): CriterionResult[] => [
    { criterion, required: `candidate Brier <= live Brier + ${margin} in every subgroup`, observed, passed: false },
  ];
  if (manifest.output.kind !== 'probability') return refused('n/a (the candidate outputs no probability)');
  if (data.live_version === null) return refused('n/a (no live version to compare with)');
  if (data.live_output !== 'probability') return refused(`n/a (live ${data.live_version} outputs no probability)`);
  const groups = new Map<string, { candidate: { p: number; y: 0 | 1 }[]; live: { p: number; y: 0 | 1 }[] }>();
  data.events.forEach((e, i) => {
    const y = labels[i];
    if (y === undefined || e.live === null) return;
    const name = e.patient_subgroup ?? '(none)';
    const group = groups.get(name) ?? { candidate: [], live: [] };
    group.candidate.push({ p: e.score, y });
    group.live.push({ p: e.live.score, y });
    groups.set(name, group);
  });
  const results: CriterionResult[] = [];
  for (const [name, group] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const n = group.candidate.length;
    if (n < MIN_SUBGROUP_EVENTS) {
      results.push({
        criterion: `${criterion}:${name}`,
        required: `>= ${MIN_SUBGROUP_EVENTS} labelled events to compare`,
        observed: `skipped (${n} labelled events)`,
        passed: true,
      });
      continue;
    }
    const candidate = brier(group.candidate);
    const live = brier(group.live);
    results.push({
      criterion: `${criterion}:${name}`,
      required: `Brier <= ${fixed(live)} (live) + ${margin}`,
      observed: `${fixed(candidate)} (n=${n})`,
      passed: candidate <= live + margin,
    });
  }
  if (!results.some((r) => !r.observed.startsWith('skipped'))) {
    return [
      ...results,
      ...refused(`n/a (no subgroup with >= ${MIN_SUBGROUP_EVENTS} labelled events shared with live)`),
    ];
  }
  return results;
}

/**
 * Evaluates the manifest's acceptance criteria on a shadow period, in the manifest's order: `min_inferences`,
 * `min_agreement_with_live` (share of the events both scored where the risk bands are equal), the calibration bounds
 * (on the candidate's events whose outcome window has closed; `calibration.min_outcome_events` counts the positive
 * outcomes among them), and `subgroup_brier_margin:<subgroup>` for every patient subgroup with at least
 * MIN_SUBGROUP_EVENTS labelled events shared with live. A criterion the manifest leaves null is listed as skipped
 * (passed); one that cannot be evaluated (no live version, no outcomes) fails, saying why.
 *
 * @example
 * const failed = evaluateCriteria(manifest, data).filter((c) => !c.passed).map((c) => c.criterion);
 */
export function evaluateCriteria(
  manifest: Pick<ModelManifest, 'acceptance_criteria' | 'output'>,
  data: ShadowPeriodData,
): CriterionResult[] {
  const criteria = manifest.acceptance_criteria;
  const shared = data.events.filter((e) => e.live !== null);
  const agreeing = shared.filter((e) => e.live?.risk_band === e.risk_band).length;
  const agreement = shared.length === 0 ? Number.NaN : agreeing / shared.length;
  const results: CriterionResult[] = [
    {
      criterion: 'min_inferences',
      required: `>= ${criteria.min_inferences}`,
      observed: String(data.events.length),
      passed: data.events.length >= criteria.min_inferences,
    },
    {
      criterion: 'min_agreement_with_live',
      required: `>= ${criteria.min_agreement_with_live}`,
      observed:
        shared.length === 0
          ? `n/a (no event scored by live ${data.live_version ?? '(none)'})`
          : `${fixed(agreement)} (${agreeing} of ${shared.length} events)`,
      passed: shared.length > 0 ? agreement >= criteria.min_agreement_with_live : criteria.min_agreement_with_live <= 0,
    },
  ];
  const output = manifest.output;
  const probability = output.kind === 'probability';
  const labels = probability ? labelsOf(output, data) : data.events.map(() => undefined);
  if (probability || criteria.calibration === null) results.push(...calibrationResults(manifest, data, labels));
  else {
    results.push({
      criterion: 'calibration',
      required: 'calibration bounds',
      observed: 'n/a (the candidate outputs no probability)',
      passed: false,
    });
  }
  results.push(...subgroupResults(manifest, data, labels));
  return results;
}
