/**
 * The capacity model of docs/capacity.md as code: a fleet (devices x events per device per second) -> events/s ->
 * partitions, workers, gateways, sinks, ClickHouse shards and storage per year. Its per-event CPU inputs are the
 * measured figures of `npm run bench` (bench/results/latest.json, gateway-latest.json) and the on-disk bytes of the
 * trace benchmark's 10M-event store; scripts/capacity.test.ts keeps them equal to those files.
 *
 *   npx tsx scripts/capacity.ts --devices 10000 --rate 1 [--json]
 *   npx tsx scripts/capacity.ts --examples          # the tables of docs/capacity.md
 */
import { parseArgs } from 'node:util';

/** Measured per-event figures (one core, this project's 2-core AMD EPYC machine, Node 20.20.2). */
export const MEASURED = {
  /**
   * Worker CPU per source event, state included: the vitals worker alone, no sink on its machine, as production
   * deploys it (latest.json runs.worker.cpu_us_per_event, run 2026-11-29T09:30Z on commit 72e5f24, with the 64 MB young
   * generation of runtime/node-flags.ts; beside the sink, runs.vigil, it was 40.2).
   */
  workerCpuUs: 37.4,
  /**
   * Sink CPU per source event, chdb in-process with RowBinary inserts: ClickHouse's part writing included
   * (runs.vigil.sink_cpu_us_per_event, same run).
   */
  sinkCpuUs: 118,
  /** Alerts worker CPU per record it consumes (runs.alerts.cpu_us_per_event, same run; paced at 3,000/s: an upper bound). */
  alertsCpuUsPerRecord: 68,
  /**
   * Alerts input records per source event: normalised 190,856 + inferences 322,148 (two models per event) of 200,000
   * (runs.vigil.stored, same run).
   */
  alertsRecordsPerEvent: (190_856 + 322_148) / 200_000,
  /**
   * ClickHouse rows written per source event, all planes: raw 200,000 + normalised 190,856 + inferences 322,148 +
   * dead letters 2,016 + duplicates 7,128 + drift histograms 128,358 of 200,000 (runs.vigil.stored, same run).
   */
  clickhouseRowsPerEvent: (200_000 + 190_856 + 322_148 + 2_016 + 7_128 + 128_358) / 200_000,
  /**
   * Accepted events/s of one gateway process (gateway-latest.json gateway.max.events_per_s, ES256, batch 100, run
   * 2026-11-29T08:38Z on 58870f1; 10,069 at batch 50 a minute before).
   */
  gatewayEventsPerSecond: 10_875,
  /** ClickHouse bytes on disk per source event, all planes (trace store: 8,122.5 MB for 10M events). */
  clickhouseBytesPerEvent: (8_122.5 * 1024 * 1024) / 10_000_000,
} as const;

/** Assumptions, each stated in docs/capacity.md; every one can be overridden. */
export interface Assumptions {
  /** Peak over mean event rate (diurnal peaks, a fleet reconnecting after an outage and sending its backlog). */
  readonly peakFactor: number;
  /** Highest planned CPU utilisation of a process's core at the peak (room for rebalances, GC, replays). */
  readonly utilisation: number;
  /** Cores a worker, sink or gateway pod uses (Node's main thread plus librdkafka's threads: ~1). */
  readonly coresPerPod: number;
  /**
   * ClickHouse server CPU per row inserted (µs): RowBinary inserts of ~10,000 rows, 8.1-11.5 µs of engine CPU per
   * normalised row in the micro-benchmarks of 0fad8f3 and d275419 (JSON was 14.4-20.3).
   */
  readonly clickhouseCpuUsPerRow: number;
  /** Cores of one ClickHouse shard (per replica) given to inserts; the rest serves queries and merges. */
  readonly clickhouseInsertCoresPerShard: number;
  /** Usable disk of one ClickHouse replica (bytes), filled to at most 70%. */
  readonly clickhouseDiskBytesPerReplica: number;
  readonly clickhouseReplicas: number;
  /** Years of data ClickHouse keeps (the planes are append-only evidence: no TTL by default). */
  readonly retentionYears: number;
  /** Kafka bytes per source event over all topics it produces, times each topic's retention (estimate, see doc). */
  readonly kafkaByteDaysPerEvent: number;
  readonly kafkaReplicationFactor: number;
  /** Partitions the raw topics start with and the ladder they grow on (co-partitioned topics grow together). */
  readonly partitionSteps: readonly number[];
  /** Workers must be able to double without repartitioning a keyed topic (state and co-partitioning). */
  readonly partitionScaleRoom: number;
  /** Fewest pods of a scaled component, so a zone or a node can be lost. */
  readonly minPods: number;
}

export const DEFAULT_ASSUMPTIONS: Assumptions = {
  peakFactor: 3,
  utilisation: 0.6,
  coresPerPod: 1,
  clickhouseCpuUsPerRow: 9,
  clickhouseInsertCoresPerShard: 8,
  clickhouseDiskBytesPerReplica: 10 * 1024 ** 4,
  clickhouseReplicas: 2,
  retentionYears: 1,
  // raw ~1,000 B x 7 d + normalised ~600 B x 7 d + inferences 1.61 x ~400 B x 30 d + dead letters, duplicates, drift
  kafkaByteDaysPerEvent: 1_000 * 7 + 600 * 7 + 1.61 * 400 * 30 + 1_000,
  kafkaReplicationFactor: 3,
  partitionSteps: [6, 12, 24, 48, 96, 192, 384],
  partitionScaleRoom: 2,
  minPods: 2,
};

export interface Fleet {
  readonly devices: number;
  /** Events each device sends per second on average (1/60: one reading a minute). */
  readonly eventsPerDevicePerSecond: number;
}

export interface CapacityPlan {
  readonly eventsPerSecond: { readonly mean: number; readonly peak: number };
  readonly eventsPerDay: number;
  readonly partitions: number;
  readonly workers: { readonly vitals: number; readonly alerts: number };
  readonly gateways: number;
  readonly sinks: number;
  readonly clickhouse: {
    readonly insertCores: number;
    readonly shards: number;
    readonly replicas: number;
    /** Bytes on disk per year, one replica. */
    readonly bytesPerYear: number;
    /** Bytes on disk over the retention, all replicas. */
    readonly bytesRetained: number;
  };
  readonly kafka: { readonly bytesRetained: number };
}

const SECONDS_PER_DAY = 86_400;
const DAYS_PER_YEAR = 365;

/** Pods for a per-event CPU cost at the peak rate, at the planned utilisation. */
function pods(peak: number, cpuUsPerEvent: number, a: Assumptions): number {
  const cores = (peak * cpuUsPerEvent) / 1e6;
  return Math.max(a.minPods, Math.ceil(cores / (a.utilisation * a.coresPerPod)));
}

/**
 * The capacity a fleet needs, from the measured per-event figures and the stated assumptions.
 *
 * @example
 * const plan = capacityPlan({ devices: 10_000, eventsPerDevicePerSecond: 1 });
 * plan.partitions; // 24: room to double the 9 alerts workers (2 vitals workers) its 30,000 events/s peak needs
 */
export function capacityPlan(fleet: Fleet, overrides: Partial<Assumptions> = {}): CapacityPlan {
  const a: Assumptions = { ...DEFAULT_ASSUMPTIONS, ...overrides };
  const mean = fleet.devices * fleet.eventsPerDevicePerSecond;
  const peak = mean * a.peakFactor;
  const vitals = pods(peak, MEASURED.workerCpuUs, a);
  const alerts = pods(peak, MEASURED.alertsCpuUsPerRecord * MEASURED.alertsRecordsPerEvent, a);
  const neededPartitions = Math.max(vitals, alerts) * a.partitionScaleRoom;
  const partitions = a.partitionSteps.find((p) => p >= neededPartitions) ?? (a.partitionSteps.at(-1) as number);
  const insertCores = (peak * MEASURED.clickhouseRowsPerEvent * a.clickhouseCpuUsPerRow) / 1e6 / a.utilisation;
  const bytesPerYear = mean * SECONDS_PER_DAY * DAYS_PER_YEAR * MEASURED.clickhouseBytesPerEvent;
  const retainedPerReplica = bytesPerYear * a.retentionYears;
  const shards = Math.max(
    1,
    Math.ceil(insertCores / a.clickhouseInsertCoresPerShard),
    Math.ceil(retainedPerReplica / (a.clickhouseDiskBytesPerReplica * 0.7)),
  );
  return {
    eventsPerSecond: { mean, peak },
    eventsPerDay: mean * SECONDS_PER_DAY,
    partitions,
    workers: { vitals: Math.min(vitals, partitions), alerts: Math.min(alerts, partitions) },
    gateways: pods(peak, 1e6 / MEASURED.gatewayEventsPerSecond, a),
    sinks: Math.min(pods(peak, MEASURED.sinkCpuUs, a), partitions),
    clickhouse: {
      insertCores,
      shards,
      replicas: a.clickhouseReplicas,
      bytesPerYear,
      bytesRetained: retainedPerReplica * a.clickhouseReplicas,
    },
    kafka: { bytesRetained: mean * a.kafkaByteDaysPerEvent * SECONDS_PER_DAY * a.kafkaReplicationFactor },
  };
}

/** The worked examples of docs/capacity.md. */
export const EXAMPLES: readonly Fleet[] = [1_000, 10_000, 100_000].flatMap((devices) => [
  { devices, eventsPerDevicePerSecond: 1 / 60 },
  { devices, eventsPerDevicePerSecond: 1 },
]);

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function rate(r: number): string {
  return r === 1 ? '1/s' : `1/${Math.round(1 / r)}s`;
}

/** One markdown table row per fleet. */
export function examplesTable(fleets: readonly Fleet[] = EXAMPLES): string {
  const head =
    '| devices | rate per device | events/s mean / peak | partitions | vitals workers | alerts workers | gateways | sinks | ClickHouse insert cores | shards x replicas | ClickHouse per year (1 replica) | Kafka retained (x3) |\n' +
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const rows = fleets.map((f) => {
    const p = capacityPlan(f);
    return `| ${f.devices.toLocaleString('en')} | ${rate(f.eventsPerDevicePerSecond)} | ${Math.round(p.eventsPerSecond.mean).toLocaleString('en')} / ${Math.round(p.eventsPerSecond.peak).toLocaleString('en')} | ${p.partitions} | ${p.workers.vitals} | ${p.workers.alerts} | ${p.gateways} | ${p.sinks} | ${p.clickhouse.insertCores.toFixed(1)} | ${p.clickhouse.shards} x ${p.clickhouse.replicas} | ${bytes(p.clickhouse.bytesPerYear)} | ${bytes(p.kafka.bytesRetained)} |`;
  });
  return [head, ...rows].join('\n');
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string' },
      rate: { type: 'string' },
      examples: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (values.examples || values.devices === undefined) {
    process.stdout.write(`${examplesTable()}\n`);
  } else {
    const fleet = { devices: Number(values.devices), eventsPerDevicePerSecond: Number(values.rate ?? 1 / 60) };
    const plan = capacityPlan(fleet);
    process.stdout.write(values.json ? `${JSON.stringify(plan)}\n` : `${examplesTable([fleet])}\n`);
  }
}
