import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.ts';
import { balanced, Engine, type SourceBatch } from './engine.ts';
import { VigilError } from './errors.ts';
import { silentLogger } from './log.ts';
import { counterValue, PipelineMetrics } from './metrics.ts';
import type { ModelStore } from './models.ts';
import { type Operator, ResultsBuilder } from './operator.ts';
import { definePipeline, type SourceSpec } from './pipeline.ts';
import type { InFlight, Origin } from './record.ts';
import { MemoryStateBackend } from './state/memory.ts';

const noModels: ModelStore = {
  load: () => Promise.reject(new Error('no models in this test')),
  readVerified: () => Promise.reject(new Error('no models in this test')),
  manifest: () => Promise.reject(new Error('no models in this test')),
};

function origin(offset: number): Origin {
  return {
    topic: 't',
    partition: 0,
    offset,
    consumedAt: 0,
    rawSha256: `sha${offset}`,
    raw: Buffer.from([offset]),
    headers: [],
    key: null,
  };
}

function batchOf(values: number[], decodeFailures = 0): SourceBatch<number> {
  const records: InFlight<number>[] = values.map((value, i) => ({ value, origin: origin(i) }));
  const rejected = Array.from({ length: decodeFailures }, (_, i) => ({
    record: { value: undefined, origin: origin(values.length + i) },
    code: 'BAD_MAGIC_BYTE' as const,
    detail: 'first byte is not 0',
  }));
  return {
    range: { topic: 't', partition: 0, firstOffset: 0, lastOffset: values.length + decodeFailures - 1 },
    origins: [...records.map((r) => r.origin), ...rejected.map((r) => r.record.origin)],
    records,
    rejected,
  };
}

/** Rejects negatives, drops even duplicates of a seen value, doubles the rest; reports one side row per batch. */
const double: Operator<number, number, { seen: { n: number } }> = {
  name: 'double',
  stage: 'validate',
  process(batch) {
    const out = new ResultsBuilder<number, { seen: { n: number } }>();
    const seen = new Set<number>();
    for (const r of batch) {
      if (r.value < 0) out.reject(r, 'VALUE_OUT_OF_RANGE', 'value below 0');
      else if (seen.has(r.value)) out.duplicate(r, 'event_id', null);
      else {
        seen.add(r.value);
        out.pass(r.origin, r.value * 2);
      }
    }
    out.emitSide('seen', { n: batch.length });
    return out;
  },
};

const toText: Operator<number, string> = {
  name: 'to-text',
  stage: 'score',
  process: (batch) => ({
    out: batch.map((r) => ({ value: String(r.value), origin: r.origin })),
    rejected: [],
    duplicates: [],
    side: {},
  }),
};

const numbers: SourceSpec<number> = { topic: 't', schema: 'envelope' };

const sink = { topic: 'side', schema: 'drift-histogram', table: 'side', key: () => 'k' };

function pipeline() {
  return definePipeline({ name: 'engine-test', version: '1', source: numbers })
    .pipe(double)
    .pipe(toText)
    .outputs({
      records: [{ name: 'o', topic: 'o', schema: 'normalised', table: 'o', select: () => null }],
      side: { seen: sink },
    });
}

async function openEngine(definition = pipeline()) {
  const metrics = new PipelineMetrics();
  const engine = new Engine(definition, metrics);
  const clock = new ManualClock();
  await engine.open({
    pipeline: 'engine-test',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: noModels,
  });
  return { engine, metrics };
}

describe('Engine', () => {
  it('runs the chain and files every record in exactly one of emitted, dead-lettered, duplicates', async () => {
    const { engine, metrics } = await openEngine();
    const outcome = await engine.process(batchOf([1, -2, 3, 3, 4], 2));
    expect(outcome.completed.map((r) => r.value)).toEqual(['2', '6', '8']);
    expect(outcome.rejected.map((r) => [r.stage, r.operator, r.code])).toEqual([
      ['decode', 'decode', 'BAD_MAGIC_BYTE'],
      ['decode', 'decode', 'BAD_MAGIC_BYTE'],
      ['validate', 'double', 'VALUE_OUT_OF_RANGE'],
    ]);
    expect(outcome.duplicates).toHaveLength(1);
    expect(outcome.side).toEqual({ seen: [{ n: 5 }] });
    const accounting = {
      consumed: outcome.origins.length,
      emitted: outcome.completed.length,
      deadLettered: outcome.rejected.length,
      duplicates: outcome.duplicates.length,
    };
    expect(accounting).toEqual({ consumed: 7, emitted: 3, deadLettered: 3, duplicates: 1 });
    expect(balanced(accounting)).toBe(true);
    expect(await counterValue(metrics.consumed)).toBe(7);
    expect(await counterValue(metrics.emitted)).toBe(3);
    expect(await counterValue(metrics.deadLetters, { stage: 'decode', reason: 'BAD_MAGIC_BYTE' })).toBe(2);
    expect(await counterValue(metrics.deadLetters, { stage: 'validate', reason: 'VALUE_OUT_OF_RANGE' })).toBe(1);
    expect(await counterValue(metrics.operatorIn, { operator: 'double' })).toBe(5);
    expect(await counterValue(metrics.operatorOut, { operator: 'double' })).toBe(3);
    expect(await counterValue(metrics.operatorIn, { operator: 'to-text' })).toBe(3);
  });

  it('stops on an operator that loses a record (a bug), and counts the violation', async () => {
    const lossy: Operator<number, number> = {
      name: 'lossy',
      stage: 'validate',
      process: (batch) => ({
        out: batch.slice(1).map((r) => ({ value: r.value, origin: r.origin })),
        rejected: [],
        duplicates: [],
        side: {},
      }),
    };
    const definition = definePipeline({ name: 'engine-test', version: '1', source: numbers })
      .pipe(lossy)
      .outputs({
        records: [{ name: 'o', topic: 'o', schema: 'normalised', table: 'o', select: () => null }],
        side: {},
      });
    const { engine, metrics } = await openEngine(definition as never);
    const error = await engine.process(batchOf([1, 2])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VigilError);
    expect((error as VigilError).code).toBe('INTERNAL');
    expect(await counterValue(metrics.accountingViolations)).toBe(1);
  });

  it('refuses a source batch that does not account for what it consumed', async () => {
    const { engine } = await openEngine();
    const broken = { ...batchOf([1, 2]), origins: [origin(0)] };
    await expect(engine.process(broken)).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('stops before the first record when an operator cannot open, saying which', async () => {
    const failing: Operator<number, number> = {
      name: 'needs-model',
      stage: 'score',
      open: () => Promise.reject(new Error('model store empty')),
      process: () => ({ out: [], rejected: [], duplicates: [], side: {} }),
    };
    const definition = definePipeline({ name: 'engine-test', version: '1', source: numbers })
      .pipe(failing)
      .outputs({
        records: [{ name: 'o', topic: 'o', schema: 'normalised', table: 'o', select: () => null }],
        side: {},
      });
    await expect(openEngine(definition as never)).rejects.toThrow(
      /needs-model could not start: Error: model store empty/,
    );
  });
});
