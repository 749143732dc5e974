/**
 * The telemetry compliance check every operator must pass (Vector's compliance assertion, Connect's auto-observed
 * processors): run through the engine's wrapper, an operator's records in/out, batch time, dead letters by reason
 * and duplicates by kind all show up in the metrics, and the batch balances.
 */
import { expect } from 'vitest';
import { ManualClock } from '../../runtime/clock.ts';
import { Engine, type SourceBatch } from '../../runtime/engine.ts';
import { silentLogger } from '../../runtime/log.ts';
import { counterValue, PipelineMetrics } from '../../runtime/metrics.ts';
import type { ModelStore } from '../../runtime/models.ts';
import type { AnyOperator, OperatorContext } from '../../runtime/operator.ts';
import { definePipeline } from '../../runtime/pipeline.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';

export function testContext(models: ModelStore, clock = new ManualClock()): OperatorContext {
  return { pipeline: 'telemetry-test', clock, state: new MemoryStateBackend({ clock }), log: silentLogger, models };
}

export async function expectOperatorTelemetry(
  operator: AnyOperator,
  records: readonly InFlight<unknown>[],
  context: OperatorContext,
) {
  const metrics = new PipelineMetrics();
  const definition = definePipeline({
    name: 'telemetry-test',
    version: '1',
    source: { topic: 't', schema: 'envelope' },
  })
    .pipe(operator)
    .outputs({
      records: [{ name: 'out', topic: 't-out', schema: 'normalised', table: 't', select: () => null }],
      side: {} as never,
    });
  const engine = new Engine(definition, metrics);
  await context.state.open();
  await engine.open(context);
  const first = records[0]?.origin;
  const last = records.at(-1)?.origin;
  const batch: SourceBatch<unknown> = {
    range: {
      topic: 't',
      partition: first?.partition ?? 0,
      firstOffset: first?.offset ?? 0,
      lastOffset: last?.offset ?? 0,
    },
    origins: records.map((r) => r.origin),
    records,
    rejected: [],
  };
  const outcome = await engine.process(batch);
  await engine.close();

  const labels = { pipeline: 'telemetry-test', operator: operator.name };
  expect(await counterValue(metrics.operatorIn, labels), 'records in').toBe(records.length);
  expect(await counterValue(metrics.operatorOut, labels), 'records out').toBe(outcome.completed.length);
  const seconds = await metrics.operatorSeconds.get();
  const count = seconds.values.find(
    (v) => v.metricName === 'vigil_operator_batch_seconds_count' && v.labels.operator === operator.name,
  );
  expect(count?.value, 'batch time observed').toBe(1);
  for (const code of new Set(outcome.rejected.map((r) => r.code))) {
    expect(await counterValue(metrics.deadLetters, { reason: code, stage: operator.stage })).toBe(
      outcome.rejected.filter((r) => r.code === code).length,
    );
  }
  expect(await counterValue(metrics.duplicates)).toBe(outcome.duplicates.length);
  expect(outcome.completed.length + outcome.rejected.length + outcome.duplicates.length).toBe(records.length);
  return outcome;
}
