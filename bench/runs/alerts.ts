/**
 * The alert run: latency of clinical alerts, from the worker's receipt of the triggering record and from the device's
 * observed_at, to the commit of the transaction carrying the alert record.
 *
 * A paced stream of the simulator's scripted ward (simulator/alerts.ts, scaled to the rate: patients per cohort so
 * that the scenario's six hours last the run) as the vitals pipeline writes it — normalised device events and NEWS2
 * inferences, live and shadow — is produced onto an isolated namespace's topics at `rate` records/s, each record's
 * observed_at stamped with the wall clock as it is handed to the producer, through ONE `vigil run pipelines/alerts.ts`
 * worker (its group Stable before the first record). The worker observes, at each commit, per value of each output:
 * commit time minus the receipt of its batch, and minus its observed_at (`vigil_output_latency_seconds`, and the same
 * figures as DDSketches in its `--json` line: `stats.output_latency_ms`); the run reports the alerts topic's.
 *
 * Compressing the script's six hours into the run's seconds keeps every patient's order and every rule's transitions
 * that do not wait on event time (open, rise, resolve, alarms, technical alerts); escalations and re-notifications,
 * which wait 15+ minutes of event time, do not happen. Every alert record is timed the same way whatever its kind.
 *
 * Imported by bench/harness.ts (`npm run bench`), or alone (the alert run only, results in
 * bench/results/alerts-latest.{json,md}):
 *
 *   node --import tsx bench/runs/alerts.ts [--rate 3000] [--seconds 20] [--linger-ms MS] [--json] [--no-write]
 */
import { parseArgs } from 'node:util';
import { TOPIC_SPECS, type TopicSpec } from '../../infra/local/topics.ts';
import alerts from '../../pipelines/alerts.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import type { LatencySummary, RunStatsJson } from '../../runtime/runners/run-stats.ts';
import { AlertInputProducer, alertInputs } from '../../test/support/alert-stream.ts';
import { lastJson, sleep, spawnVigil } from '../lib/proc.ts';
import { machine, revision, versions, writeRunResults } from '../lib/results.ts';
import { createNamespace, deleteNamespace, groupJoined } from '../lib/stack.ts';

export const ALERT_RUN_DEFAULTS = { rate: 3_000, seconds: 20 } as const;

export interface AlertRunOptions {
  /** Records per second produced (normalised events and inferences together). */
  readonly rate: number;
  /** Length of the paced stream. */
  readonly seconds: number;
  /** The worker's `--linger-ms` (longest wait to fill a poll); default: the worker's own (100 ms). */
  readonly lingerMs?: number;
  readonly log: (line: string) => void;
}

/** What the alert run measured (ms; `receipt` and `observed` are per alert record, to its transaction's commit). */
export interface AlertRunResult {
  readonly target_rate: number;
  /** The worker's poll linger, when set (null: its default). */
  readonly linger_ms: number | null;
  readonly achieved_rate: number;
  /** Records produced and consumed. */
  readonly events: number;
  readonly patients: number;
  readonly alert_records: number;
  readonly receipt: LatencySummary;
  readonly observed: LatencySummary;
  /** The worker's consumed records per second, first consumed record -> last commit. */
  readonly worker_events_per_s: number;
  readonly cpu_us_per_event: number;
  readonly peak_rss_mb: number;
  readonly accounting: { consumed: number; emitted: number; dead_lettered: number; duplicates: number };
}

interface WorkerJson extends RunStatsJson {
  readonly consumed: number;
  readonly emitted: number;
  readonly dead_lettered: number;
  readonly duplicates: number;
}

/** Records of the scenario with one patient per cohort (the stream is scaled by whole patients per cohort). */
const PER_PATIENT_SET = alertInputs({ perCohort: 1 }).length;

export async function runAlerts(o: AlertRunOptions): Promise<AlertRunResult> {
  const perCohort = Math.max(1, Math.round((o.rate * o.seconds) / PER_PATIENT_SET));
  const inputs = alertInputs({ perCohort });
  const known = new Set(Object.values(TOPIC_SPECS).map((s) => s.name));
  const partitions = TOPIC_SPECS.inferences.partitions;
  // Source topics the stack does not create yet (the alert actions): co-partitioned with the inference topic.
  const own: TopicSpec[] = alerts.sources
    .filter((s) => !known.has(s.topic))
    .map((s) => ({ name: s.topic, partitions, config: {}, description: 'alerts pipeline source' }));
  const ns = await createNamespace('alerts', own);
  const group = `${ns.prefix}-alerts`;
  ns.extra.push(`${ns.prefix}.vigil.state.${group}.changelog`);
  const producer = await AlertInputProducer.create({
    inference: ns.name(TOPICS.inferences),
    normalised: ns.name(TOPICS.normalised),
  });
  try {
    o.log(`  alerts: ${inputs.length} records (${perCohort} patients per cohort) at ${o.rate}/s through one worker`);
    const worker = spawnVigil(
      [
        'run',
        'pipelines/alerts.ts',
        '--group',
        group,
        '--metrics-port',
        '0',
        '--max-records',
        String(inputs.length),
        '--stop-when-idle',
        '60000',
        '--json',
        ...(o.lingerMs !== undefined ? ['--linger-ms', String(o.lingerMs)] : []),
      ],
      { VIGIL_TOPIC_PREFIX: ns.prefix },
    );
    await Promise.race([
      groupJoined(group),
      worker.done.then((e) => {
        throw new Error(`the alerts worker exited before joining (${e.code ?? e.signal}): ${e.stderr.slice(-2000)}`);
      }),
    ]);
    await sleep(1_000);
    const sent = await producer.paced(inputs, o.rate, true);
    o.log(`  alerts: produced at ${sent.rate}/s; waiting for the worker`);
    const w = lastJson<WorkerJson>('vigil run pipelines/alerts.ts', await worker.done);
    const latency = w.output_latency_ms?.[ns.name(TOPICS.clinicalAlerts)];
    if (!latency) throw new Error('the alerts worker reported no latency for the clinical alerts topic');
    const span =
      w.first_consumed_at !== null && w.last_commit_at !== null ? (w.last_commit_at - w.first_consumed_at) / 1000 : NaN;
    return {
      target_rate: o.rate,
      linger_ms: o.lingerMs ?? null,
      achieved_rate: sent.rate,
      events: inputs.length,
      patients: perCohort * 6,
      alert_records: latency.receipt.count,
      receipt: latency.receipt,
      observed: latency.observed,
      worker_events_per_s: Math.round((w.consumed / span) * 10) / 10,
      cpu_us_per_event: Math.round(((w.cpu_user_us + w.cpu_system_us) / w.consumed) * 10) / 10,
      peak_rss_mb: w.peak_rss_mb,
      accounting: {
        consumed: w.consumed,
        emitted: w.emitted,
        dead_lettered: w.dead_lettered,
        duplicates: w.duplicates,
      },
    };
  } finally {
    await producer.close().catch(() => undefined);
    await deleteNamespace(ns).catch(() => undefined);
  }
}

/** The alert run's lines of the results markdown. */
export function alertMarkdown(a: AlertRunResult): string[] {
  const f = (x: number | null) => (x === null ? '—' : x.toLocaleString('en-GB', { maximumFractionDigits: 1 }));
  return [
    `alerts: ${f(a.alert_records)} alert records from ${f(a.events)} records (${a.patients} patients) paced at ` +
      `${f(a.achieved_rate)}/s (target ${f(a.target_rate)}/s) through one worker (poll linger ` +
      `${a.linger_ms === null ? 'default' : `${a.linger_ms} ms`}): from receipt p50 ` +
      `${f(a.receipt.p50)} ms, p99 ${f(a.receipt.p99)} ms (max ${f(a.receipt.max)}); from observed_at p50 ` +
      `${f(a.observed.p50)} ms, p99 ${f(a.observed.p99)} ms (max ${f(a.observed.max)}), to the transaction commit.`,
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: String(ALERT_RUN_DEFAULTS.rate) },
      seconds: { type: 'string', default: String(ALERT_RUN_DEFAULTS.seconds) },
      'linger-ms': { type: 'string' },
      json: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  if (!(rate > 0) || !(seconds > 0)) throw new Error('--rate and --seconds must be positive numbers');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const date = new Date().toISOString();
  const linger = values['linger-ms'] === undefined ? undefined : Number(values['linger-ms']);
  const result = await runAlerts({ rate, seconds, log, ...(linger !== undefined ? { lingerMs: linger } : {}) });
  const doc = { date, machine: machine(), versions: versions(), revision: revision(), alerts: result };
  const md = [`# Vigil alert run — ${date}`, '', `code ${doc.revision}`, '', ...alertMarkdown(result), ''].join('\n');
  if (!values['no-write']) writeRunResults('alerts', date, doc, md);
  process.stdout.write(values.json ? `${JSON.stringify(doc)}\n` : `${md}\n`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
