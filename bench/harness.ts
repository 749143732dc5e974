/**
 * `vigil bench` (`npm run bench`): the full chain side by side with a transport ceiling and a naive peer, on the local
 * stack, against the same data. See bench/README.md for what each run measures and why it is fair.
 *
 * 1. throughput: N envelopes pre-loaded on an isolated raw topic; then, one after the other, each run reads all of
 *    them (or, for the naive peer, the first `naiveEvents`) with its own consumer group: events/s, CPU µs per event
 *    (`process.cpuUsage` inside the run's process, first consumed record -> last durable commit), peak RSS;
 * 2. latency: per Kafka run, a fresh namespace, the consumer(s) started and joined, then a paced producer at `rate`
 *    events/s for `latencySeconds` stamping each record's Kafka timestamp as it is produced; the run reports
 *    producer timestamp -> durable acknowledgement per record as a DDSketch (p50/p99);
 *    then the alert run (./runs/alerts.ts): the alerts pipeline's scripted ward paced at a few thousand records/s
 *    through one alerts worker, receipt and observed_at -> the commit of each alert record (`runs.alerts`);
 * 3. results: JSON + markdown under bench/results/ (latest.json is the newest), and the table on stdout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOPIC_SPECS } from '../infra/local/topics.ts';
import { VIGIL_NODE_FLAGS } from '../runtime/node-flags.ts';
import type { RunStatsJson } from '../runtime/runners/run-stats.ts';
import { envelopeSchemaId, type Framed, framedRecords, pacedProduce, preload } from './lib/data.ts';
import { type Child, freePort, lastJson, scrapeCounter, sleep, spawnTs, spawnVigil } from './lib/proc.ts';
import {
  type BenchResults,
  machine,
  markdown,
  type RunFigures,
  revision,
  type Targets,
  versions,
  writeResults,
} from './lib/results.ts';
import { createNamespace, deleteNamespace, deleteRedisKeys, groupJoined, type Namespace } from './lib/stack.ts';
import { ALERT_RUN_DEFAULTS, type AlertRunResult, runAlerts } from './runs/alerts.ts';

export interface BenchOptions {
  readonly events: number;
  /** Paced rate of the latency runs (events/s); 0 skips them. */
  readonly rate: number;
  readonly latencySeconds: number;
  /** Records the naive peer's throughput is measured over (it is ~100x slower). */
  readonly naiveEvents: number;
  /**
   * Records per partition micro-batch, the same for every run: the embedded source cuts batches of this size per
   * partition; the Kafka runs poll this many per raw-topic partition (a poll is cut into one batch per partition).
   */
  readonly batch: number;
  /** Records per partition micro-batch of the embedded runs (the embedded runner's own default). */
  readonly embeddedBatch: number;
  /** Embedded RSS run: events (0 skips it). */
  readonly longEvents: number;
  readonly json: boolean;
  readonly write: boolean;
  readonly log: (line: string) => void;
}

const RAW = 'vigil.telemetry.raw';
/** Kafka runs poll `batch` records per raw-topic partition. */
const RAW_PARTITIONS = TOPIC_SPECS.raw.partitions;

interface RunJson extends RunStatsJson {
  readonly consumed: number;
}

interface SinkJson extends RunStatsJson {
  readonly read: Record<string, number>;
  readonly stored: Record<string, number>;
}

const span = (r: RunStatsJson) =>
  r.first_consumed_at !== null && r.last_commit_at !== null ? (r.last_commit_at - r.first_consumed_at) / 1000 : NaN;
const cpuUs = (r: RunStatsJson) => r.cpu_user_us + r.cpu_system_us;
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

/** Waits until the sink has landed `raw` raw rows and its row counters stopped moving, then stops it (SIGTERM). */
async function drainSink(sink: Child, port: number, raw: number, log: (l: string) => void): Promise<SinkJson> {
  let last = -1;
  let stableSince = Date.now();
  const until = Date.now() + 600_000;
  while (Date.now() < until) {
    if (sink.child.exitCode !== null) break;
    const landed = await scrapeCounter(port, 'vigil_clickhouse_rows_total', 'table="raw_events"');
    const total = await scrapeCounter(port, 'vigil_clickhouse_rows_total');
    if (total !== last) {
      last = total;
      stableSince = Date.now();
    } else if (landed >= raw && Date.now() - stableSince > 3_000) break;
    await sleep(500);
  }
  log(`  sink drained (${last} rows); stopping it`);
  sink.child.kill('SIGTERM');
  return lastJson<SinkJson>('vigil sink', await sink.done);
}

interface VigilRun {
  readonly worker: RunJson & { emitted: number; dead_lettered: number; duplicates: number };
  /** Null when the run was the worker alone. */
  readonly sink: SinkJson | null;
}

async function runVigil(
  ns: Namespace,
  events: number,
  batch: number,
  beforeStart: ((group: string) => Promise<void>) | null,
  log: (l: string) => void,
  withSink = true,
): Promise<VigilRun> {
  const env = { VIGIL_TOPIC_PREFIX: ns.prefix };
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-sink-'));
  const port = await freePort();
  // The worker-alone run reads the same preloaded topic as the full chain: a group of its own, or it finds it read.
  const group = `${ns.prefix}-vigil${withSink ? '' : '-alone'}`;
  try {
    const sink = withSink
      ? spawnVigil(
          [
            'sink',
            'pipelines/vitals.ts',
            '--data-dir',
            dir,
            '--group',
            `${group}-sink`,
            '--metrics-port',
            String(port),
            '--json',
          ],
          env,
        )
      : null;
    const worker = spawnVigil(
      [
        'run',
        'pipelines/vitals.ts',
        '--group',
        group,
        '--metrics-port',
        '0',
        '--batch-size',
        String(batch * RAW_PARTITIONS),
        '--max-records',
        String(events),
        '--stop-when-idle',
        '120000',
        '--json',
        // The bench's producers write straight to Kafka, not through a gateway (the gateway has its own run).
        '--accept-ungated',
      ],
      env,
    );
    if (beforeStart) {
      // Paced records must not wait for the sink to join either (its landing latency would include that).
      if (sink) await groupJoined(`${group}-sink`);
      await beforeStart(group);
    }
    const w = lastJson<VigilRun['worker']>('vigil run (worker)', await worker.done);
    const s = sink ? await drainSink(sink, port, events, log) : null;
    return { worker: w, sink: s };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sinkOf(run: VigilRun): SinkJson {
  if (!run.sink) throw new Error('this vigil run had no sink');
  return run.sink;
}

async function runCeiling(
  ns: Namespace,
  events: number,
  batch: number,
  beforeStart: ((group: string) => Promise<void>) | null,
): Promise<RunJson> {
  const group = `${ns.prefix}-ceiling`;
  const child = spawnTs(
    'bench/runs/ceiling.ts',
    [
      '--group',
      group,
      '--out',
      ns.ceilingOut,
      '--max-records',
      String(events),
      '--batch',
      String(batch * RAW_PARTITIONS),
    ],
    { VIGIL_TOPIC_PREFIX: ns.prefix },
    // The same runtime flags as Vigil's own runs: the ceiling is the transport's limit, not V8's defaults'.
    VIGIL_NODE_FLAGS,
  );
  if (beforeStart) await beforeStart(group);
  return lastJson<RunJson>('ceiling', await child.done);
}

async function runNaive(
  ns: Namespace,
  events: number,
  beforeStart: ((group: string) => Promise<void>) | null,
): Promise<RunJson & { stored: number }> {
  const group = `${ns.prefix}-naive`;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-naive-'));
  try {
    const child = spawnTs(
      'bench/runs/naive.ts',
      ['--group', group, '--max-records', String(events), '--data-dir', dir],
      { VIGIL_TOPIC_PREFIX: ns.prefix },
    );
    if (beforeStart) await beforeStart(group);
    return lastJson<RunJson & { stored: number }>('naive peer', await child.done);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface EmbeddedJson extends RunJson {
  readonly baseline_rss_mb: number;
  readonly rss_samples: {
    events: number;
    rss_mb: number;
    heap_mb: number;
    heap_total_mb: number;
    external_mb: number;
  }[];
  readonly stored: Record<string, number>;
}

async function runEmbedded(events: number, batch: number, stream: boolean): Promise<EmbeddedJson> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-embedded-'));
  try {
    const args = ['--events', String(events), '--data-dir', dir, '--batch', String(batch)];
    if (stream) args.push('--stream', '--sample-every', String(Math.max(100_000, Math.floor(events / 20))));
    return lastJson<EmbeddedJson>(
      'embedded',
      await spawnTs('bench/runs/embedded.ts', args, {}, [...VIGIL_NODE_FLAGS, ...(stream ? ['--expose-gc'] : [])]).done,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A paced latency run: fresh namespace, the run started and joined, then `rate` events/s for `seconds`. */
async function paced<T>(
  label: string,
  schemaId: number,
  rate: number,
  seconds: number,
  start: (ns: Namespace, events: number, joined: (group: string) => Promise<void>) => Promise<T>,
  log: (l: string) => void,
): Promise<{ result: T; achieved: number; events: number }> {
  const events = Math.max(100, Math.round(rate * seconds));
  const records: Framed[] = [...framedRecords(events, schemaId)];
  const ns = await createNamespace(`lat-${label}`);
  let achieved = 0;
  try {
    const result = await start(ns, events, async (group) => {
      await groupJoined(group);
      await sleep(1_000);
      log(`  ${label}: joined; producing ${events} records at ${rate}/s`);
      const sent = await pacedProduce(ns.name(RAW), records, rate);
      achieved = sent.rate;
    });
    return { result, achieved, events };
  } finally {
    await deleteRedisKeys(ns).catch(() => 0);
    await deleteNamespace(ns).catch(() => undefined);
  }
}

export async function runBench(o: BenchOptions): Promise<BenchResults> {
  const { log } = o;
  const date = new Date().toISOString();
  log(`vigil bench: N=${o.events}, batch ${o.batch}, paced latency at ${o.rate}/s for ${o.latencySeconds} s`);
  const schemaId = await envelopeSchemaId();
  const ns = await createNamespace('t');
  try {
    const t0 = Date.now();
    await preload(ns.name(RAW), o.events);
    log(`preloaded ${o.events} envelopes on ${ns.name(RAW)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    log('ceiling: node-rdkafka transactional pass-through');
    const ceiling = await runCeiling(ns, o.events, o.batch, null);
    log(`  ${r1(ceiling.consumed / span(ceiling))} ev/s`);

    log('vigil: worker + ClickHouse sink (full chain)');
    const vigil = await runVigil(ns, o.events, o.batch, null, log);
    const vigilEnd = Math.max(vigil.worker.last_commit_at ?? 0, sinkOf(vigil).last_commit_at ?? 0);
    const vigilSpan = (vigilEnd - (vigil.worker.first_consumed_at ?? vigilEnd)) / 1000;
    log(`  ${r1(o.events / vigilSpan)} ev/s full chain, ${r1(o.events / span(vigil.worker))} ev/s worker`);

    // The worker with the machine to itself (no sink beside it): what one worker does when ClickHouse and its sink run
    // elsewhere, as production deploys them (issue 14's worker targets).
    log('vigil worker alone: the same worker, no sink on this machine');
    const workerAlone = (await runVigil(ns, o.events, o.batch, null, log, false)).worker;
    log(
      `  ${r1(workerAlone.consumed / span(workerAlone))} ev/s, ${r1(cpuUs(workerAlone) / workerAlone.consumed)} µs/event`,
    );

    const naiveEvents = Math.min(o.events, o.naiveEvents);
    log(`naive peer: KafkaJS eachMessage over the first ${naiveEvents} records`);
    const naive = await runNaive(ns, naiveEvents, null);
    const naiveRate = naive.consumed / span(naive);
    log(`  ${r1(naiveRate)} ev/s`);

    log('embedded: the same chain from an in-memory source');
    const embedded = await runEmbedded(o.events, o.embeddedBatch, false);
    log(`  ${r1(embedded.consumed / span(embedded))} ev/s`);

    // --- latency ---------------------------------------------------------------------------------------------------
    type Lat = {
      p50: number | null;
      p99: number | null;
      max: number | null;
      target: number;
      achieved: number;
      events: number;
    };
    const lat: Partial<Record<'ceiling' | 'vigil' | 'naive', Lat>> = {};
    let vigilLanded: RunStatsJson['end_to_end_ms'] | null = null;
    let vigilWorkerOnly: Lat | null = null;
    let vigilSustained: (Lat & { landed_p50: number | null; landed_p99: number | null }) | null = null;
    let alertRun: AlertRunResult | null = null;
    let alertFailure: string | null = null;
    if (o.rate > 0) {
      log(`latency: paced producer at ${o.rate}/s for ${o.latencySeconds} s`);
      const c = await paced(
        'ceiling',
        schemaId,
        o.rate,
        o.latencySeconds,
        (pns, n, joined) => runCeiling(pns, n, o.batch, joined),
        log,
      );
      lat.ceiling = { ...c.result.end_to_end_ms, target: o.rate, achieved: c.achieved, events: c.events };
      const v = await paced(
        'vigil',
        schemaId,
        o.rate,
        o.latencySeconds,
        (pns, n, joined) => runVigil(pns, n, o.batch, joined, log),
        log,
      );
      lat.vigil = { ...v.result.worker.end_to_end_ms, target: o.rate, achieved: v.achieved, events: v.events };
      vigilLanded = sinkOf(v.result).end_to_end_ms;
      // The worker alone at the same rate (no ClickHouse sink competing for this machine's cores): what one worker
      // gives when the sink runs elsewhere, as it would in production.
      const wo = await paced(
        'vigil-worker',
        schemaId,
        o.rate,
        o.latencySeconds,
        (pns, n, joined) => runVigil(pns, n, o.batch, joined, log, false),
        log,
      );
      vigilWorkerOnly = { ...wo.result.worker.end_to_end_ms, target: o.rate, achieved: wo.achieved, events: wo.events };
      // Where the full chain cannot keep up with `rate` on this machine, its latency there is the growth of its
      // backlog; a second point at half its measured throughput shows its latency under a load it carries.
      const fullChainRate = o.events / vigilSpan;
      if (fullChainRate < o.rate * 1.1) {
        const pace = Math.max(100, Math.floor(fullChainRate / 2 / 100) * 100);
        const s2 = await paced(
          'vigil-sustained',
          schemaId,
          pace,
          o.latencySeconds,
          (pns, n, joined) => runVigil(pns, n, o.batch, joined, log),
          log,
        );
        vigilSustained = {
          ...s2.result.worker.end_to_end_ms,
          target: pace,
          achieved: s2.achieved,
          events: s2.events,
          landed_p50: sinkOf(s2.result).end_to_end_ms.p50,
          landed_p99: sinkOf(s2.result).end_to_end_ms.p99,
        };
      }
      // The naive peer cannot sustain the rate: pace it at half its own throughput so the figure is its latency,
      // not the growth of its backlog.
      const naivePace = Math.max(10, Math.min(o.rate, Math.floor(naiveRate / 2)));
      const n = await paced(
        'naive',
        schemaId,
        naivePace,
        o.latencySeconds,
        (pns, count, joined) => runNaive(pns, count, joined),
        log,
      );
      lat.naive = { ...n.result.end_to_end_ms, target: naivePace, achieved: n.achieved, events: n.events };

      // Clinical alerts: receipt / observed_at -> the commit of the alert record, one alerts worker, at a load this
      // machine sustains (a few thousand records/s, not the vitals target).
      const alertRate = Math.min(o.rate, ALERT_RUN_DEFAULTS.rate);
      log(`alerts: the alerts pipeline, one worker, paced at ${alertRate}/s`);
      try {
        alertRun = await runAlerts({
          rate: alertRate,
          seconds: Math.max(o.latencySeconds, ALERT_RUN_DEFAULTS.seconds),
          log,
        });
        log(`  alerts: p99 ${alertRun.receipt.p99} ms from receipt, ${alertRun.observed.p99} ms from observed_at`);
      } catch (error) {
        // The other runs' figures are kept; the results say the alert run failed.
        alertFailure = error instanceof Error ? (error.message.split('\n')[0] ?? 'failed') : String(error);
        log(`  alerts: FAILED: ${alertFailure}`);
      }
    }

    // --- long embedded run ---------------------------------------------------------------------------------------
    let long: Record<string, unknown> | undefined;
    if (o.longEvents > 0) {
      log(`long: embedded, ${o.longEvents} events streamed from the simulator, RSS sampled`);
      const l = await runEmbedded(o.longEvents, o.embeddedBatch, true);
      const samples = l.rss_samples;
      // The target compares 1M with the end: the first sample at or after 1M events (the heap and chdb's caches
      // warm up before that).
      const first = samples.find((x) => x.events >= 1_000_000) ?? samples[0];
      const lastSample = samples.at(-1);
      long = {
        events: l.consumed,
        events_per_s: r1(l.consumed / span(l)),
        cpu_us_per_event: r1(cpuUs(l) / l.consumed),
        rss_samples: samples,
        rss_first_mb: first?.rss_mb ?? null,
        rss_first_events: first?.events ?? null,
        rss_last_mb: lastSample?.rss_mb ?? null,
        rss_change_pct: first && lastSample ? r1(((lastSample.rss_mb - first.rss_mb) / first.rss_mb) * 100) : null,
        peak_rss_mb: l.peak_rss_mb,
      };
    }

    // --- figures -------------------------------------------------------------------------------------------------
    const pacedLatency = (l: Lat | undefined) =>
      l ? { target_rate: l.target, achieved_rate: l.achieved, events: l.events, max_ms: l.max } : null;
    const pacedPoint = (l: Lat) => ({
      target_rate: l.target,
      achieved_rate: l.achieved,
      events: l.events,
      p50_ms: l.p50,
      p99_ms: l.p99,
      max_ms: l.max,
    });
    /** The figures every Kafka run reports: `measured` is the process the CPU, RSS and event count are taken from. */
    const kafkaRun = (measured: RunJson, eventsPerS: number, l: Lat | undefined) => ({
      events_per_s: r1(eventsPerS),
      cpu_us_per_event: r1(cpuUs(measured) / measured.consumed),
      p50_ms: l?.p50 ?? null,
      p99_ms: l?.p99 ?? null,
      peak_rss_mb: measured.peak_rss_mb,
      events: measured.consumed,
      latency: pacedLatency(l),
    });
    const runs: Record<'ceiling' | 'vigil' | 'worker' | 'naive' | 'embedded', RunFigures> = {
      ceiling: {
        ...kafkaRun(ceiling, ceiling.consumed / span(ceiling), lat.ceiling),
        latency_note: 'producer timestamp -> transaction commit',
      },
      vigil: {
        ...kafkaRun(vigil.worker, o.events / vigilSpan, lat.vigil),
        latency_note: 'producer timestamp -> worker transaction commit (outputs durable in Kafka)',
        worker_events_per_s: r1(vigil.worker.consumed / span(vigil.worker)),
        sink_cpu_us_per_event: r1(cpuUs(sinkOf(vigil)) / o.events),
        sink_peak_rss_mb: sinkOf(vigil).peak_rss_mb,
        landed_p50_ms: vigilLanded?.p50 ?? null,
        landed_p99_ms: vigilLanded?.p99 ?? null,
        latency_worker_only: vigilWorkerOnly ? pacedPoint(vigilWorkerOnly) : null,
        latency_sustained: vigilSustained
          ? {
              ...pacedPoint(vigilSustained),
              landed_p50_ms: vigilSustained.landed_p50,
              landed_p99_ms: vigilSustained.landed_p99,
            }
          : null,
        accounting: {
          consumed: vigil.worker.consumed,
          emitted: vigil.worker.emitted,
          dead_lettered: vigil.worker.dead_lettered,
          duplicates: vigil.worker.duplicates,
        },
        stored: sinkOf(vigil).stored,
      },
      worker: {
        ...kafkaRun(workerAlone, workerAlone.consumed / span(workerAlone), vigilWorkerOnly ?? undefined),
        latency_note: 'producer timestamp -> worker transaction commit, no sink on the machine',
        accounting: {
          consumed: workerAlone.consumed,
          emitted: workerAlone.emitted,
          dead_lettered: workerAlone.dead_lettered,
          duplicates: workerAlone.duplicates,
        },
      },
      naive: {
        ...kafkaRun(naive, naiveRate, lat.naive),
        latency_note: 'producer timestamp -> the INSERT returned',
        stored: naive.stored,
      },
      embedded: {
        events_per_s: r1(embedded.consumed / span(embedded)),
        cpu_us_per_event: r1(cpuUs(embedded) / embedded.consumed),
        p50_ms: embedded.end_to_end_ms.p50,
        p99_ms: embedded.end_to_end_ms.p99,
        peak_rss_mb: embedded.peak_rss_mb,
        events: embedded.consumed,
        latency: null,
        latency_note: 'unpaced: micro-batch cut -> its last ClickHouse insert (no broker)',
        baseline_rss_mb: embedded.baseline_rss_mb,
        cpu_note: 'whole process, chdb insert threads included',
        stored: embedded.stored,
      },
    };
    const alertFigures: RunFigures | null = alertRun
      ? {
          events_per_s: alertRun.worker_events_per_s,
          cpu_us_per_event: alertRun.cpu_us_per_event,
          p50_ms: alertRun.receipt.p50,
          p99_ms: alertRun.receipt.p99,
          peak_rss_mb: alertRun.peak_rss_mb,
          events: alertRun.events,
          latency: {
            target_rate: alertRun.target_rate,
            achieved_rate: alertRun.achieved_rate,
            events: alertRun.events,
            max_ms: alertRun.receipt.max,
          },
          latency_note: "worker's receipt of the triggering record -> commit of the alert record's transaction",
          observed_p50_ms: alertRun.observed.p50,
          observed_p99_ms: alertRun.observed.p99,
          observed_max_ms: alertRun.observed.max,
          alert_records: alertRun.alert_records,
          patients: alertRun.patients,
          accounting: alertRun.accounting,
        }
      : null;
    const ratios = {
      vigil_over_ceiling: r2(runs.vigil.events_per_s / runs.ceiling.events_per_s),
      vigil_over_naive: r1(runs.vigil.events_per_s / runs.naive.events_per_s),
      worker_over_ceiling: r2(runs.worker.events_per_s / runs.ceiling.events_per_s),
      worker_beside_sink_over_ceiling: r2((runs.vigil.worker_events_per_s as number) / runs.ceiling.events_per_s),
    };
    const sinkCpu = runs.vigil.sink_cpu_us_per_event as number;
    // Issue 14's targets, each from this run's figures.
    const targets: Targets = {
      'worker alone throughput': {
        target: '>= 50,000 events/s',
        measured: `${runs.worker.events_per_s} events/s (${ratios.worker_over_ceiling}x the ceiling)`,
        met: runs.worker.events_per_s >= 50_000,
      },
      'worker CPU per event, state included': {
        target: '<= 20 µs',
        measured: `${runs.worker.cpu_us_per_event} µs (worker alone; ${runs.vigil.cpu_us_per_event} µs beside the sink)`,
        met: runs.worker.cpu_us_per_event <= 20,
      },
      'full chain / ceiling': {
        target: '>= 0.25',
        measured: `${ratios.vigil_over_ceiling} (${runs.vigil.events_per_s} of ${runs.ceiling.events_per_s} events/s)`,
        met: ratios.vigil_over_ceiling >= 0.25,
      },
      'sink CPU per source event': { target: '<= 10 µs', measured: `${sinkCpu} µs`, met: sinkCpu <= 10 },
      'embedded throughput into chdb': {
        target: '>= 60,000 events/s',
        measured: `${runs.embedded.events_per_s} events/s (${runs.embedded.cpu_us_per_event} µs CPU per event)`,
        met: runs.embedded.events_per_s >= 60_000,
      },
      'vigil / naive': { target: '>= 10', measured: `${ratios.vigil_over_naive}`, met: ratios.vigil_over_naive >= 10 },
      'full chain p99 at 20k events/s': {
        target: '<= 500 ms at a steady 20,000/s',
        measured: lat.vigil
          ? `${lat.vigil.p99} ms at ${lat.vigil.achieved}/s produced (target ${lat.vigil.target}/s)` +
            (vigilWorkerOnly
              ? `; worker alone (no sink on the machine): ${vigilWorkerOnly.p99} ms at ${vigilWorkerOnly.achieved}/s`
              : '') +
            (vigilSustained
              ? `; full chain at ${vigilSustained.achieved}/s (half its throughput): ${vigilSustained.p99} ms`
              : '')
          : 'not run',
        met: lat.vigil && o.rate >= 20_000 ? (lat.vigil.p99 ?? Infinity) <= 500 : null,
      },
      'alert p99 from receipt': {
        target: '<= 100 ms at a load the machine sustains',
        measured: alertRun
          ? `${alertRun.receipt.p99} ms over ${alertRun.alert_records} alert records at ${alertRun.achieved_rate}/s ` +
            `(from observed_at: ${alertRun.observed.p99} ms)`
          : alertFailure
            ? `failed: ${alertFailure}`
            : 'not run',
        met: alertRun ? (alertRun.receipt.p99 ?? Infinity) <= 100 : null,
      },
      'embedded RSS flat (1M -> 10M)': {
        target: 'within ±10%',
        measured: long
          ? `${long.rss_first_mb} MB at ${long.rss_first_events} events -> ${long.rss_last_mb} MB at ${long.events} events (${long.rss_change_pct}%)` +
            ((long.events as number) < 10_000_000 ? `; ${long.events} of the 10M events run` : '')
          : 'not run (use --long)',
        // Judged over the range actually run (the measured string says when that is short of 10M).
        met: long ? Math.abs(long.rss_change_pct as number) <= 10 : null,
      },
    };
    const results: BenchResults = {
      date,
      n: o.events,
      machine: machine(),
      versions: versions(),
      revision: revision(),
      settings: {
        batch: o.batch,
        embedded_batch: o.embeddedBatch,
        rate: o.rate,
        latency_seconds: o.latencySeconds,
        naive_events: naiveEvents,
        simulation:
          'fleet simulator, 1,000 devices, seed "bench", default fault mix (3% duplicates, 0.5% replays, 1% malformed)',
      },
      runs: alertFigures ? { ...runs, alerts: alertFigures } : runs,
      ratios,
      targets,
      ...(long ? { long } : {}),
    };
    if (o.write) {
      const files = writeResults(results);
      log(`results: ${files.json} (and latest.json / latest.md)`);
    }
    if (o.json) process.stdout.write(`${JSON.stringify(results)}\n`);
    else process.stdout.write(`\n${markdown(results)}\n`);
    return results;
  } finally {
    await deleteRedisKeys(ns).catch(() => 0);
    await deleteNamespace(ns).catch(() => undefined);
  }
}
