import { describe, expect, it } from 'vitest';
import type { ConsumedMessage } from '../../adapters/kafka/consumer.ts';
import vitals from '../../pipelines/vitals.ts';
import { TOPICS } from '../endpoints.ts';
import { definePipeline, type SourceSpec } from '../pipeline.ts';
import { BatchPlanner, pipelineTables, sinkRoutes } from './clickhouse-sink.ts';

const a: SourceSpec<{ id: string }> = { topic: 'in.a', schema: 'schema-a' };
const b: SourceSpec<{ id: string }> = { topic: 'in.b', schema: 'schema-b' };
const twoSources = definePipeline({ name: 'two', version: '1', sources: [a, b] })
  .pipe({
    name: 'pass',
    stage: 'validate',
    process: (batch) => ({ out: [...batch], rejected: [], duplicates: [], side: {} }),
  })
  .outputs({
    records: [
      {
        name: 'o',
        topic: 'out',
        schema: 'schema-o',
        table: 'o_rows',
        select: (r) => ({ key: r.value.id, value: r.value }),
      },
    ],
    side: {},
  });

const message = (topic: string, partition: number, offset: number) =>
  ({
    topic,
    partition,
    offset,
    key: null,
    value: Buffer.from([offset]),
    headers: [],
    timestamp: 0,
  }) as unknown as ConsumedMessage;

describe('sink routes and tables, from the definition', () => {
  it('lands every source in the raw plane, read as its own schema', () => {
    const routes = sinkRoutes(twoSources);
    expect(routes.filter((r) => r.raw).map((r) => [r.topic, r.schema, r.table])).toEqual([
      ['in.a', 'schema-a', 'raw_events'],
      ['in.b', 'schema-b', 'raw_events'],
    ]);
    expect(routes.find((r) => r.topic === 'out')).toMatchObject({ table: 'o_rows', schema: 'schema-o', raw: false });
    expect(routes.map((r) => r.topic)).toContain(TOPICS.deadLetter);
    expect(pipelineTables(twoSources)).toEqual(['raw_events', 'o_rows', 'dead_letters', 'duplicates', 'quarantine']);
  });

  it('reports the vitals tables it always did', () => {
    expect(pipelineTables(vitals)).toEqual([
      'raw_events',
      'normalised_events',
      'inferences',
      'dead_letters',
      'duplicates',
      'drift_histograms',
      'quarantine',
    ]);
  });
});

describe('BatchPlanner', () => {
  const routes = new Map(sinkRoutes(twoSources).map((r) => [r.topic, r]));

  it('cuts one batch per partition of each topic when nothing is recorded', () => {
    const planner = new BatchPlanner(routes);
    const planned = planner.plan([message('in.a', 0, 0), message('in.b', 0, 0), message('in.a', 0, 1)]);
    expect(planned.map((p) => [p.range.topic, p.range.partition, p.range.firstOffset, p.range.lastOffset])).toEqual([
      ['in.a', 0, 0, 1],
      ['in.b', 0, 0, 0],
    ]);
  });

  it('re-forms recorded ranges exactly, holding records until a range is complete', () => {
    const planner = new BatchPlanner(routes);
    planner.assigned({ topic: 'in.a', partition: 0 }, [{ first: 0, last: 2 }]);
    expect(planner.plan([message('in.a', 0, 0), message('in.a', 0, 1)])).toEqual([]);
    expect(planner.holding).toBe(true);
    const planned = planner.plan([message('in.a', 0, 2), message('in.a', 0, 3)]);
    expect(planned.map((p) => [p.range.firstOffset, p.range.lastOffset])).toEqual([
      [0, 2],
      [3, 3],
    ]);
    expect(planner.holding).toBe(false);
  });

  it('refuses a record from a topic the pipeline does not route', () => {
    expect(() => new BatchPlanner(routes).plan([message('elsewhere', 0, 0)])).toThrow(/unrouted topic elsewhere/);
  });
});
