/**
 * What a long-running process (a worker, the sink) measures about itself for `--json` and the benchmarks: when it
 * first got records and when it last made some durable, the CPU it spent in between (`process.cpuUsage`: every thread
 * of the process, librdkafka's and onnxruntime's included), its peak RSS, and the end-to-end latency of its records
 * (producer timestamp -> durable acknowledgement) as a DDSketch: a mergeable quantile sketch with 1% relative
 * accuracy and bounded memory, whatever the number of records.
 */
import { DDSketch } from '@datadog/sketches-js';

export interface LatencySummary {
  readonly count: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/** Latencies in milliseconds, summarised by quantiles (1% relative accuracy). */
export class LatencySketch {
  readonly sketch = new DDSketch({ relativeAccuracy: 0.01 });
  #max = 0;

  observe(ms: number): void {
    const v = Math.max(ms, 0);
    this.sketch.accept(v);
    if (v > this.#max) this.#max = v;
  }

  get count(): number {
    return this.sketch.count;
  }

  /** The sketch's estimate (1% relative error), never above the largest value seen. */
  quantile(q: number): number | null {
    return this.sketch.count === 0 ? null : round(Math.min(this.sketch.getValueAtQuantile(q), this.#max));
  }

  summary(): LatencySummary {
    return {
      count: this.sketch.count,
      p50: this.quantile(0.5),
      p99: this.quantile(0.99),
      max: this.sketch.count === 0 ? null : round(this.#max),
    };
  }
}

/** The JSON keys a worker or sink adds to its final `--json` line. */
export interface RunStatsJson {
  /** CPU from the first consumed record to the last durable commit, microseconds. */
  readonly cpu_user_us: number;
  readonly cpu_system_us: number;
  /** Peak resident set size of the process, MiB. */
  readonly peak_rss_mb: number;
  /** Epoch ms (null when nothing was consumed / committed). */
  readonly first_consumed_at: number | null;
  readonly first_commit_at: number | null;
  readonly last_commit_at: number | null;
  /** Producer timestamp -> durable commit, per record, ms. */
  readonly end_to_end_ms: LatencySummary;
  /**
   * Per output topic (outputs sharing a topic are one series), per value committed to it, ms: from the worker's
   * receipt of the records that made it, and from the event time it states (`observed_at`). A worker's figures; the
   * same observations as its `vigil_output_latency_seconds`. Absent for processes that commit no outputs.
   */
  readonly output_latency_ms?: Record<string, { readonly receipt: LatencySummary; readonly observed: LatencySummary }>;
}

/** One output topic's latency sketches (see `RunStatsJson.output_latency_ms`). */
export interface OutputLatency {
  readonly receipt: LatencySketch;
  readonly observed: LatencySketch;
}

export class RunStats {
  readonly latency = new LatencySketch();
  /** Per output topic (see `RunStatsJson.output_latency_ms`). */
  readonly #outputs = new Map<string, OutputLatency>();
  firstConsumedAt: number | null = null;
  firstCommitAt: number | null = null;
  lastCommitAt: number | null = null;
  #cpuStart: NodeJS.CpuUsage | null = null;
  #cpuLast: NodeJS.CpuUsage | null = null;

  /** Call when a poll returned records (only the first call counts). */
  consumed(now: number): void {
    if (this.firstConsumedAt !== null) return;
    this.firstConsumedAt = now;
    this.#cpuStart = process.cpuUsage();
  }

  /** Call when records became durable (a committed transaction, a finished insert). */
  committed(now: number): void {
    if (this.firstCommitAt === null) this.firstCommitAt = now;
    this.lastCommitAt = now;
    this.#cpuLast = process.cpuUsage();
  }

  /** The latency sketches of values committed to `topic` (created on first use). */
  output(topic: string): OutputLatency {
    let o = this.#outputs.get(topic);
    if (!o) {
      o = { receipt: new LatencySketch(), observed: new LatencySketch() };
      this.#outputs.set(topic, o);
    }
    return o;
  }

  json(): RunStatsJson {
    const start = this.#cpuStart;
    const last = this.#cpuLast;
    const outputs = [...this.#outputs].map(
      ([topic, o]) => [topic, { receipt: o.receipt.summary(), observed: o.observed.summary() }] as const,
    );
    return {
      cpu_user_us: start && last ? last.user - start.user : 0,
      cpu_system_us: start && last ? last.system - start.system : 0,
      peak_rss_mb: peakRssMb(),
      first_consumed_at: this.firstConsumedAt,
      first_commit_at: this.firstCommitAt,
      last_commit_at: this.lastCommitAt,
      end_to_end_ms: this.latency.summary(),
      ...(outputs.length > 0 ? { output_latency_ms: Object.fromEntries(outputs) } : {}),
    };
  }
}

/** Peak RSS of this process so far, MiB (getrusage maxrss is in KiB on Linux). */
export function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
