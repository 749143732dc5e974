/**
 * The capacity model (scripts/capacity.ts): its measured inputs equal the committed benchmark results, and the plan's
 * arithmetic holds on a case worked by hand.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capacityPlan, DEFAULT_ASSUMPTIONS, EXAMPLES, examplesTable, MEASURED } from './capacity.ts';

const RESULTS = join(import.meta.dirname, '..', 'bench', 'results');
const read = (file: string) => JSON.parse(readFileSync(join(RESULTS, file), 'utf8'));

describe('capacity inputs', () => {
  it('are the figures of the committed benchmark results', () => {
    const latest = read('latest.json');
    // the worker alone (no sink on its machine), as production deploys it; runs.vigil has it beside the sink
    expect(MEASURED.workerCpuUs).toBe(latest.runs.worker.cpu_us_per_event);
    expect(MEASURED.sinkCpuUs).toBe(latest.runs.vigil.sink_cpu_us_per_event);
    expect(MEASURED.alertsCpuUsPerRecord).toBe(latest.runs.alerts.cpu_us_per_event);
    const stored = latest.runs.vigil.stored;
    expect(MEASURED.alertsRecordsPerEvent).toBe((stored.normalised_events + stored.inferences) / latest.n);
    const rows =
      stored.raw_events +
      stored.normalised_events +
      stored.inferences +
      stored.dead_letters +
      stored.duplicates +
      stored.drift_histograms;
    expect(MEASURED.clickhouseRowsPerEvent).toBe(rows / latest.n);
    expect(MEASURED.gatewayEventsPerSecond).toBe(read('gateway-latest.json').gateway.max.events_per_s);
    const store = readFileSync(join(RESULTS, 'trace-2026-11-29T003100Z-10m.jsonl'), 'utf8').split('\n')[0] as string;
    const { disk_mb, events } = JSON.parse(store) as { disk_mb: number; events: number };
    expect(MEASURED.clickhouseBytesPerEvent).toBeCloseTo((disk_mb * 1024 * 1024) / events, 6);
  });
});

describe('capacityPlan', () => {
  it('10,000 devices at 1 event/s, worked by hand', () => {
    const plan = capacityPlan({ devices: 10_000, eventsPerDevicePerSecond: 1 });
    expect(plan.eventsPerSecond).toEqual({ mean: 10_000, peak: 30_000 });
    // 30,000/s x 37.4 µs = 1.122 cores; / 0.6 utilisation = 1.87 -> 2 workers
    expect(plan.workers.vitals).toBe(2);
    // 30,000/s x 68 µs x 2.565 records (513,004 / 200,000) = 5.233 cores; / 0.6 = 8.72 -> 9
    expect(plan.workers.alerts).toBe(9);
    // twice the largest group (18) on the ladder 6, 12, 24...
    expect(plan.partitions).toBe(24);
    // 30,000 / 10,875 per gateway = 2.76 cores; / 0.6 = 4.6 -> 5
    expect(plan.gateways).toBe(5);
    // 30,000/s x 118 µs = 3.54 cores; / 0.6 = 5.9 -> 6
    expect(plan.sinks).toBe(6);
    // 30,000 x 4.2525 rows (850,506 / 200,000) x 9 µs = 1.1482 cores; / 0.6 = 1.914
    expect(plan.clickhouse.insertCores).toBeCloseTo(1.914, 3);
    // 864M events a day x 365 x ~851.7 B
    expect(plan.clickhouse.bytesPerYear / 1e12).toBeCloseTo(268.6, 0);
  });

  it('never plans more consumers than partitions, nor fewer pods than the minimum', () => {
    for (const fleet of EXAMPLES) {
      const plan = capacityPlan(fleet);
      expect(plan.workers.vitals).toBeLessThanOrEqual(plan.partitions);
      expect(plan.workers.alerts).toBeLessThanOrEqual(plan.partitions);
      expect(plan.sinks).toBeLessThanOrEqual(plan.partitions);
      expect(plan.gateways).toBeGreaterThanOrEqual(DEFAULT_ASSUMPTIONS.minPods);
      expect(plan.clickhouse.shards).toBeGreaterThanOrEqual(1);
    }
  });

  it('grows with the fleet and takes overridden assumptions', () => {
    const small = capacityPlan({ devices: 1_000, eventsPerDevicePerSecond: 1 });
    const large = capacityPlan({ devices: 100_000, eventsPerDevicePerSecond: 1 });
    expect(large.partitions).toBeGreaterThan(small.partitions);
    expect(large.clickhouse.bytesPerYear).toBeCloseTo(small.clickhouse.bytesPerYear * 100, -6);
    const calm = capacityPlan({ devices: 100_000, eventsPerDevicePerSecond: 1 }, { peakFactor: 1.5 });
    expect(calm.gateways).toBeLessThan(large.gateways);
    expect(examplesTable()).toContain('| 100,000 | 1/s |');
  });
});
