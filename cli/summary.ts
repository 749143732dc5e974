/**
 * What a run tells its user: the accounting identity, dead letters by reason, what ClickHouse holds (the pipeline's
 * own tables, from its definition), and, for a pipeline that has them, the worst drift findings and one surveillance
 * query — as a short human summary, or as one JSON line (`--json`, a contract: its keys are never renamed).
 */
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { driftFindingsQuery } from '../operators/detect-drift/index.ts';
import { balanced } from '../runtime/engine.ts';
import type { PipelineDefinition } from '../runtime/pipeline.ts';
import type { EmbeddedLinkReport } from '../runtime/runners/embedded-run.ts';
import type { EmbeddedSessionResult } from '../runtime/runners/embedded-session.ts';
import type { GatewayRunReport } from '../runtime/runners/gateway-source.ts';
import type { TruthSummary } from '../simulator/simulate.ts';
import { runSavedQuery } from '../surveillance/queries.ts';
import { alertCounts } from './commands/alerts.ts';

/** Resolves on the first SIGTERM or SIGINT: workers finish and commit their batch, then leave. */
export function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

export function runJson(
  definition: PipelineDefinition,
  result: EmbeddedSessionResult,
  location: string,
  gateway: GatewayRunReport | null = null,
) {
  const a = result.accounting;
  return {
    pipeline: `${definition.name}@${definition.version}`,
    mode: 'embedded',
    consumed: a.consumed,
    emitted: a.emitted,
    dead_lettered: a.deadLettered,
    duplicates: a.duplicates,
    balanced: balanced(a),
    dlq: sorted(result.deadLetters),
    duplicates_by_kind: sorted(result.duplicates),
    stored: result.stored,
    // Rows of this run set aside in the quarantine table, by target table: not a fourth fate (each came from a record
    // counted above), so `balanced` is unchanged; every row emitted for a table is in stored or quarantined.
    quarantined: sorted(result.quarantined),
    state_evictions: result.stateEvictions,
    clickhouse: location,
    elapsed_ms: result.elapsedMs,
    // Added when the run went through the gateway (`npm start`): beside the keys above, never instead of one.
    ...(gateway ? { gateway: gatewayJson(gateway) } : {}),
  };
}

/** The `gateway` key: what the gateway accepted (by lane) and its rejection records by reason, against the truth. */
export function gatewayJson(g: GatewayRunReport) {
  return {
    accepted: g.accepted,
    lanes: g.lanes,
    rejected: g.rejected,
    algorithm: g.algorithm,
    matches_truth: g.matchesTruth,
    retries: g.retries,
    truth: { accepted: g.truth.accepted, rejected: g.truth.rejected, worker: g.truth.worker },
    elapsed_ms: g.elapsedMs,
  };
}

/** A scripted scenario fed to a chained run, and what it must raise (its truth: alerts opened by rule and band). */
export interface ScenarioTruth {
  readonly site: string;
  readonly expected: Record<string, Record<string, number>>;
}

/** What a chained run reports beside its accounting: the alerts it raised, when it lands clinical alerts. */
export interface LinkSummary {
  readonly report: EmbeddedLinkReport;
  readonly alerts: AlertsSummary | null;
}

export interface AlertsSummary {
  /** Alerts opened, by rule and opening band. */
  readonly raised: Record<string, Record<string, number>>;
  /** Repeats suppressed within the window. */
  readonly suppressed: number;
  /** The scenario's own site: raised and suppressed there, its truth, whether they agree. */
  readonly scenario: {
    readonly site: string;
    readonly raised: Record<string, Record<string, number>>;
    readonly suppressed: number;
    readonly expected: Record<string, Record<string, number>>;
    readonly matches_truth: boolean;
  } | null;
}

/** A chained run's alerts, counted from ClickHouse (FINAL), when its outputs are clinical alerts. */
export async function summariseLink(
  report: EmbeddedLinkReport,
  store: ClickHouseStore,
  scenario: ScenarioTruth | null,
): Promise<LinkSummary> {
  if (!report.definition.outputs.records.some((o) => o.schema === 'clinical-alert')) return { report, alerts: null };
  const all = await alertCounts(store);
  let ward: AlertsSummary['scenario'] = null;
  if (scenario) {
    const at = await alertCounts(store, scenario.site);
    ward = {
      site: scenario.site,
      raised: at.raised,
      suppressed: at.suppressed,
      expected: scenario.expected,
      matches_truth: sameCounts(at.raised, scenario.expected),
    };
  }
  return { report, alerts: { raised: all.raised, suppressed: all.suppressed, scenario: ward } };
}

function sameCounts(a: Record<string, Record<string, number>>, b: Record<string, Record<string, number>>): boolean {
  const flat = (m: Record<string, Record<string, number>>) =>
    Object.entries(m)
      .flatMap(([rule, bands]) => Object.entries(bands).map(([band, n]) => `${rule}|${band}|${n}`))
      .sort()
      .join(',');
  return flat(a) === flat(b);
}

/**
 * The `--json` keys of chained runs, added beside the main run's (never replacing one): under the chained pipeline's
 * name, its accounting, what it read from each chained topic and, for clinical alerts, `raised` and `suppressed`.
 */
export function linksJson(main: Record<string, unknown>, links: readonly LinkSummary[]): Record<string, unknown> {
  const out = { ...main };
  for (const { report, alerts } of links) {
    const key = report.definition.name;
    if (key in out) continue;
    const a = report.result.accounting;
    out[key] = {
      pipeline: `${report.definition.name}@${report.definition.version}`,
      consumed: a.consumed,
      emitted: a.emitted,
      dead_lettered: a.deadLettered,
      duplicates: a.duplicates,
      balanced: balanced(a),
      chained: report.chained,
      ...(alerts ?? {}),
      elapsed_ms: report.result.elapsedMs,
    };
  }
  return out;
}

function sorted(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

const fmt = (n: number) => n.toLocaleString('en-GB');

interface SummaryInput {
  readonly definition: PipelineDefinition;
  readonly result: EmbeddedSessionResult;
  readonly store: ClickHouseStore;
  readonly truth: TruthSummary | null;
  readonly input: string | null;
  readonly links?: readonly LinkSummary[];
  readonly gateway?: GatewayRunReport | null;
}

export async function printEmbeddedSummary({
  definition,
  result,
  store,
  truth,
  input,
  links = [],
  gateway = null,
}: SummaryInput): Promise<void> {
  const out: string[] = [];
  const a = result.accounting;
  const ok = balanced(a);
  const rate = result.elapsedMs > 0 ? Math.round((a.consumed / result.elapsedMs) * 1000) : 0;
  out.push('');
  const from = input ? `input ${input}` : gateway ? 'simulated fleet through the gateway' : 'simulated fleet';
  out.push(`Vigil ${definition.name}@${definition.version}, embedded — ${from}`);
  out.push(`  ${fmt(a.consumed)} records in ${(result.elapsedMs / 1000).toFixed(1)} s (${fmt(rate)}/s)`);
  out.push('');
  out.push('Accounting');
  out.push(
    `  consumed ${fmt(a.consumed)} = emitted ${fmt(a.emitted)} + dead-lettered ${fmt(a.deadLettered)} + duplicates ${fmt(a.duplicates)}  ${ok ? 'balanced' : 'DOES NOT BALANCE'}`,
  );
  if (truth) {
    out.push(
      `  simulator truth: ${fmt(truth.valid)} valid, ${fmt(truth.duplicates + truth.replays)} duplicates/replays, ${fmt(truth.malformed)} malformed`,
    );
  }
  if (gateway) gatewaySection(out, gateway);
  out.push('');
  out.push('Dead letters by reason');
  const reasons = Object.entries(result.deadLetters).sort((x, y) => y[1] - x[1]);
  if (reasons.length === 0) out.push('  none');
  for (const [reason, n] of reasons) out.push(`  ${reason.padEnd(22)} ${fmt(n).padStart(8)}`);
  const quarantined = Object.entries(result.quarantined);
  if (quarantined.length > 0) {
    out.push('');
    out.push('Quarantined: rows ClickHouse cannot store, kept in the quarantine table (vigil query: quarantine FINAL)');
    for (const [table, n] of quarantined) out.push(`  ${table.padEnd(22)} ${fmt(n).padStart(8)}`);
  }
  out.push('');
  out.push(`Stored in ClickHouse (${store.location}), rows counted with FINAL`);
  out.push(
    `  ${Object.entries(result.stored)
      .map(([t, n]) => `${t} ${fmt(n)}`)
      .join(' · ')}`,
  );

  await driftSection(out, definition, store);
  await surveillanceSection(out, definition, store);
  for (const link of links) linkSection(out, link);
  out.push('');
  // Reads need a principal and are audited (access/): the hint is the whole set-up, so it runs as printed.
  out.push('Explore (each read needs a principal and is an audit entry; README: Principals):');
  out.push('  vigil audit keygen · vigil principals add analyst-1 --role analyst --all-sites --audit-dir .vigil/audit');
  out.push(
    `  VIGIL_TOKEN=<its token> vigil query run <name> --audit-dir .vigil/audit --data-dir ${store.location} · vigil query list`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

/** The gateway's side: what it accepted and refused (its own records), and whether that is the fleet's truth. */
function gatewaySection(out: string[], g: GatewayRunReport): void {
  const refused = Object.values(g.rejected).reduce((x, y) => x + y, 0);
  out.push('');
  out.push(
    `Gateway (in-process on loopback, mTLS, ${g.algorithm}-signed events, simulated clock; ${(g.elapsedMs / 1000).toFixed(1)} s)`,
  );
  out.push(
    `  accepted ${fmt(g.accepted)} (alarm lane ${fmt(g.lanes.priority)}) · refused ${fmt(refused)} (rejection records) — ${g.matchesTruth ? 'matches the fleet’s truth' : 'DIFFERS from the fleet’s truth'}`,
  );
  if (g.retries > 0) {
    out.push(`  ${fmt(g.retries)} requests went unanswered and were sent again (a starved machine's timers)`);
  }
  out.push('  Gateway rejections by reason');
  for (const [reason, n] of Object.entries(g.rejected).sort((x, y) => y[1] - x[1])) {
    out.push(`    ${reason.padEnd(22)} ${fmt(n).padStart(8)}`);
  }
}

/**
 * The worst drift findings of every model a drift detector of the pipeline measures (its config's `models`), per
 * version that has partials (the pipeline default and whatever the registry routed: live, canary, shadow).
 */
async function driftSection(out: string[], definition: PipelineDefinition, store: ClickHouseStore): Promise<void> {
  const models = definition.operators.flatMap((op) => driftModelsOf(op));
  for (const { model, version: pipelineDefault } of models) {
    const measured = (
      await store.query(
        'SELECT DISTINCT model_version AS version FROM drift_histograms WHERE model_name = {model:String} ORDER BY version',
        { model },
      )
    ).map((row) => String(row['version']));
    // A model without partials still gets its section ("none") under its pipeline default.
    for (const version of measured.length > 0 ? measured : [pipelineDefault])
      await driftFindingsSection(out, store, model, version);
  }
}

/** The models a drift detector measures (`config.models` of detect-drift), none for any other operator. */
function driftModelsOf(operator: unknown): { model: string; version: string }[] {
  const config = (operator as { config?: { models?: unknown; windowMs?: unknown } }).config;
  if (!config || typeof config.windowMs !== 'number' || !Array.isArray(config.models)) return [];
  return (config.models as { model?: unknown; version?: unknown }[]).flatMap((m) =>
    typeof m.model === 'string' && typeof m.version === 'string' ? [{ model: m.model, version: m.version }] : [],
  );
}

async function driftFindingsSection(
  out: string[],
  store: ClickHouseStore,
  model: string,
  version: string,
): Promise<void> {
  const findings = driftFindingsQuery({ model, version, from: 0, to: 8.64e15, by: 'firmware', limit: 5 });
  const rows = (await store.query(findings.sql, findings.params)).map(findings.decode);
  out.push('');
  out.push(
    `Top drift findings (${model}@${version}; Jensen-Shannon distance vs the reference; drift = JS >= 0.1 and beyond chance for the devices seen)`,
  );
  if (rows.length === 0) out.push('  none');
  for (const r of rows) {
    out.push(
      `  firmware ${String(r.firmware_version).padEnd(12)} ${String(r.feature).padEnd(16)} JS ${r.js_distance?.toFixed(3) ?? '—'}  PSI ${r.psi?.toFixed(3) ?? '—'}  n ${fmt(r.n)}  ${r.drifted ? 'DRIFT' : 'ok'}`,
    );
  }
}

/** One surveillance query over the clinical plane, when the pipeline lands inferences. */
async function surveillanceSection(
  out: string[],
  definition: PipelineDefinition,
  store: ClickHouseStore,
): Promise<void> {
  if (!definition.outputs.records.some((o) => o.table === 'inferences')) return;
  const news2 = await runSavedQuery<Record<string, number | string>>(store, 'news2-by-firmware');
  out.push('');
  out.push('Surveillance — NEWS2 by firmware (vigil query run news2-by-firmware)');
  out.push(
    `  ${'firmware'.padEnd(12)} ${'scored'.padStart(8)} ${'mean'.padStart(6)} ${'p90'.padStart(4)} ${'medium+high'.padStart(12)}`,
  );
  for (const r of news2) {
    const mh = Number(r.share_medium) + Number(r.share_high);
    out.push(
      `  ${String(r.firmware_version).padEnd(12)} ${fmt(Number(r.inferences)).padStart(8)} ${Number(r.mean_score).toFixed(2).padStart(6)} ${String(r.p90).padStart(4)} ${`${(mh * 100).toFixed(1)}%`.padStart(12)}`,
    );
  }
}

const BAND_ORDER = ['high', 'medium', 'low_medium', 'low'];

/** A chained run: its accounting and what it read; for clinical alerts, raised by rule and band, suppressed repeats. */
function linkSection(out: string[], { report, alerts }: LinkSummary): void {
  const a = report.result.accounting;
  const ok = balanced(a);
  const read = Object.entries(report.chained)
    .map(([t, n]) => `${t} ${fmt(n)}`)
    .join(' · ');
  out.push('');
  out.push(
    `Chained: ${report.definition.name}@${report.definition.version} on what this run wrote (${read}) and its own inputs`,
  );
  out.push(
    `  consumed ${fmt(a.consumed)} = emitted ${fmt(a.emitted)} + dead-lettered ${fmt(a.deadLettered)} + duplicates ${fmt(a.duplicates)}  ${ok ? 'balanced' : 'DOES NOT BALANCE'}  (${(report.result.elapsedMs / 1000).toFixed(1)} s)`,
  );
  if (!alerts) return;
  const bandsLine = (bands: Record<string, number>) =>
    BAND_ORDER.filter((b) => bands[b])
      .map((b) => `${b} ${fmt(bands[b] ?? 0)}`)
      .join(' · ');
  const total = (m: Record<string, Record<string, number>>) =>
    Object.values(m).reduce((n, bands) => n + Object.values(bands).reduce((x, y) => x + y, 0), 0);
  out.push('');
  out.push(
    `Clinical alerts raised, by rule and opening band (clinical_alerts FINAL; vigil alerts list --data-dir <dir>): ${fmt(total(alerts.raised))}, ${fmt(alerts.suppressed)} repeats suppressed`,
  );
  for (const [rule, bands] of Object.entries(alerts.raised)) out.push(`  ${rule.padEnd(30)} ${bandsLine(bands)}`);
  if (alerts.raised && Object.keys(alerts.raised).length === 0) out.push('  none');
  const s = alerts.scenario;
  if (s) {
    out.push(
      `  of which the scripted ward (${s.site}): ${fmt(total(s.raised))} raised, ${fmt(s.suppressed)} suppressed; simulator truth ${fmt(total(s.expected))} — ${s.matches_truth ? 'matches by rule and band' : 'DIFFERS from the truth'}`,
    );
    for (const [rule, bands] of Object.entries(s.raised)) out.push(`    ${rule.padEnd(28)} ${bandsLine(bands)}`);
  }
}
