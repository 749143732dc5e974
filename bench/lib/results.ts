/**
 * The benchmark's results: one JSON document and a markdown table per run under bench/results/, named by date, with
 * `latest.json` / `latest.md` the newest. The JSON keys `runs.<name>.{events_per_s, cpu_us_per_event, p50_ms, p99_ms,
 * peak_rss_mb}` and `ratios.{vigil_over_ceiling, vigil_over_naive}` are a contract (issue 4).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import { RUNTIME as ONNX_RUNTIME } from '../../adapters/onnx/index.ts';
import { REPO } from './proc.ts';

export const RUN_NAMES = ['ceiling', 'vigil', 'naive', 'embedded'] as const;
export type RunName = (typeof RUN_NAMES)[number];

export interface RunFigures {
  readonly events_per_s: number;
  readonly cpu_us_per_event: number;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly peak_rss_mb: number;
  /** Records the throughput figures were measured over. */
  readonly events: number;
  /** The paced run the latency comes from (null: measured in the throughput run, see `latency_note`). */
  readonly latency: {
    readonly target_rate: number;
    readonly achieved_rate: number;
    readonly events: number;
    readonly max_ms: number | null;
  } | null;
  readonly latency_note: string;
  readonly [extra: string]: unknown;
}

export interface Targets {
  readonly [name: string]: { readonly target: string; readonly measured: string; readonly met: boolean | null };
}

export interface BenchResults {
  readonly date: string;
  readonly n: number;
  readonly machine: { cores: number; memory_gb: number; cpu_model: string; platform: string };
  readonly versions: Record<string, string>;
  /** The code measured: the short commit sha, with `-dirty` when tracked files had uncommitted changes. */
  readonly revision: string;
  readonly settings: Record<string, unknown>;
  /**
   * The four runs; `worker` (the vitals worker alone, no sink on the machine) and `alerts` (the clinical alert latency
   * run, bench/runs/alerts.ts) when they ran.
   */
  readonly runs: Record<RunName, RunFigures> & { readonly alerts?: RunFigures; readonly worker?: RunFigures };
  readonly ratios: { vigil_over_ceiling: number; vigil_over_naive: number; [extra: string]: number };
  readonly targets: Targets;
  readonly long?: Record<string, unknown>;
}

/** The commit the figures belong to (`<sha>` or `<sha>-dirty`), or `unknown` outside a git checkout. */
export function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim();
    const sha = git('rev-parse', '--short=12', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === '' ? sha : `${sha}-dirty`;
  } catch {
    return 'unknown';
  }
}

export function machine() {
  const list = cpus();
  return {
    cores: list.length,
    memory_gb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    cpu_model: list[0]?.model ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
  };
}

export function versions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const pkg = (name: string) => {
    try {
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  const pom = readFileSync(join(REPO, 'infra', 'local', 'pom.xml'), 'utf8');
  return {
    node: process.version,
    librdkafka: Kafka.librdkafkaVersion,
    'node-rdkafka': pkg('node-rdkafka'),
    kafka: /<kafka\.version>([^<]+)</.exec(pom)?.[1] ?? 'unknown',
    apicurio: /<apicurio\.version>([^<]+)</.exec(pom)?.[1] ?? 'unknown',
    onnxruntime: ONNX_RUNTIME.version,
    chdb: `${pkg('chdb')} (engine ${pkg('@chdb/lib-linux-x64-gnu')})`,
    kafkajs: pkg('kafkajs'),
    ioredis: pkg('ioredis'),
    avsc: pkg('avsc'),
  };
}

const fmt = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '—'
    : x.toLocaleString('en-GB', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function markdown(r: BenchResults): string {
  const lines: string[] = [];
  lines.push(`# Vigil benchmark — ${r.date}`);
  lines.push('');
  lines.push(
    `N = ${fmt(r.n)} envelopes · ${r.machine.cores} cores (${r.machine.cpu_model}), ${r.machine.memory_gb} GB · ` +
      Object.entries(r.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(' · ') +
      ` · code ${r.revision}`,
  );
  lines.push('');
  lines.push('| run | events/s | worker CPU µs/event | p50 ms | p99 ms | peak RSS MB | latency measured at |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const name of RUN_NAMES) {
    const run = r.runs[name];
    const at = run.latency
      ? `${fmt(run.latency.achieved_rate)}/s paced (target ${fmt(run.latency.target_rate)}/s)`
      : run.latency_note;
    lines.push(
      `| ${name} | ${fmt(run.events_per_s)} | ${fmt(run.cpu_us_per_event, 1)} | ${fmt(run.p50_ms, 1)} | ${fmt(run.p99_ms, 1)} | ${fmt(run.peak_rss_mb)} | ${at} |`,
    );
  }
  const worker = r.runs.worker;
  if (worker) {
    const at = worker.latency
      ? `${fmt(worker.latency.achieved_rate)}/s paced (target ${fmt(worker.latency.target_rate)}/s)`
      : '';
    lines.push(
      `| worker | ${fmt(worker.events_per_s)} | ${fmt(worker.cpu_us_per_event, 1)} | ${fmt(worker.p50_ms, 1)} | ${fmt(worker.p99_ms, 1)} | ${fmt(worker.peak_rss_mb)} | ${at} (no sink on the machine) |`,
    );
  }
  const alerts = r.runs.alerts;
  if (alerts) {
    lines.push(
      `| alerts | ${fmt(alerts.events_per_s)} | ${fmt(alerts.cpu_us_per_event, 1)} | ${fmt(alerts.p50_ms, 1)} | ${fmt(alerts.p99_ms, 1)} | ${fmt(alerts.peak_rss_mb)} | ${fmt(alerts.latency?.achieved_rate)}/s paced, receipt -> commit of the alert |`,
    );
    lines.push('');
    lines.push(
      `alerts (one alerts worker, ${fmt(alerts.alert_records as number)} alert records): from the worker's receipt of ` +
        `the triggering record p50 ${fmt(alerts.p50_ms, 1)} ms, p99 ${fmt(alerts.p99_ms, 1)} ms; from the device's ` +
        `observed_at p50 ${fmt(alerts.observed_p50_ms as number | null, 1)} ms, p99 ` +
        `${fmt(alerts.observed_p99_ms as number | null, 1)} ms, to the commit of the transaction carrying the alert.`,
    );
  }
  const sustained = r.runs.vigil.latency_sustained as
    | { achieved_rate: number; p50_ms: number | null; p99_ms: number | null; landed_p99_ms: number | null }
    | null
    | undefined;
  const workerOnly = r.runs.vigil.latency_worker_only as
    | { achieved_rate: number; p50_ms: number | null; p99_ms: number | null }
    | null
    | undefined;
  if (workerOnly) {
    lines.push('');
    lines.push(
      `vigil worker alone (no sink on this machine) at ${fmt(workerOnly.achieved_rate)}/s paced: p50 ` +
        `${fmt(workerOnly.p50_ms, 1)} ms, p99 ${fmt(workerOnly.p99_ms, 1)} ms to the transaction commit.`,
    );
  }
  if (sustained) {
    lines.push('');
    lines.push(
      `vigil at a load it sustains (${fmt(sustained.achieved_rate)}/s paced): p50 ${fmt(sustained.p50_ms, 1)} ms, ` +
        `p99 ${fmt(sustained.p99_ms, 1)} ms to the worker's commit; p99 ${fmt(sustained.landed_p99_ms, 1)} ms until ` +
        'the raw record is in ClickHouse.',
    );
  }
  lines.push('');
  lines.push(
    `vigil / ceiling = **${fmt(r.ratios.vigil_over_ceiling, 2)}** · vigil / naive = **${fmt(r.ratios.vigil_over_naive, 1)}**` +
      (r.ratios.worker_over_ceiling !== undefined
        ? ` · worker alone / ceiling = ${fmt(r.ratios.worker_over_ceiling, 2)}`
        : ''),
  );
  lines.push('');
  lines.push('| target | measured | met |');
  lines.push('| --- | --- | --- |');
  for (const [name, t] of Object.entries(r.targets)) {
    lines.push(`| ${name}: ${t.target} | ${t.measured} | ${t.met === null ? 'not run' : t.met ? 'yes' : '**no**'} |`);
  }
  lines.push('');
  return lines.join('\n');
}

export function writeResults(r: BenchResults, dir = join(REPO, 'bench', 'results')): { json: string; md: string } {
  const stamp = r.date.replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  const json = `${JSON.stringify(r, null, 2)}\n`;
  const md = markdown(r);
  const files = { json: join(dir, `${stamp}.json`), md: join(dir, `${stamp}.md`) };
  writeFileSync(files.json, json);
  writeFileSync(files.md, md);
  writeFileSync(join(dir, 'latest.json'), json);
  writeFileSync(join(dir, 'latest.md'), md);
  return files;
}

/**
 * A single run's results (the alert run, the gateway run) as `<run>-<stamp>.{json,md}` and `<run>-latest.{json,md}`.
 *
 * @example
 * writeRunResults('gateway', doc.date, doc, md);
 */
export function writeRunResults(run: string, date: string, doc: unknown, md: string): void {
  const dir = join(REPO, 'bench', 'results');
  const stamp = date.replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  for (const name of [`${run}-${stamp}`, `${run}-latest`]) {
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
    writeFileSync(join(dir, `${name}.md`), md);
  }
}
