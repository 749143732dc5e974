import { describe, expect, it } from 'vitest';
import type { ConsumedMessage } from '../../adapters/kafka/consumer.ts';
import vitals from '../../pipelines/vitals.ts';
import { TOPICS } from '../endpoints.ts';
import { definePipeline, type SourceSpec } from '../pipeline.ts';
import { BatchPlanner, type PlannedBatch, pipelineTables, sinkRoutes } from './clickhouse-sink.ts';

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

  describe('with an accumulation', () => {
    const acc = { minRows: 3, maxHoldMs: 100, backlogHoldMs: 1_000, maxHeldRows: 10 };
    const ranges = (planned: readonly PlannedBatch[]) =>
      planned.map((p) => [p.range.topic, p.range.partition, p.range.firstOffset, p.range.lastOffset]);
    const offsets = (planned: readonly PlannedBatch[]) => planned.map((p) => p.batch.map((m) => m.offset));

    it('gathers a partition across polls until it has minRows records, then lands them as one batch', () => {
      const planner = new BatchPlanner(routes, acc);
      expect(planner.plan([message('in.a', 0, 0), message('in.b', 0, 0)], 0)).toEqual([]);
      expect(planner.holding).toBe(true);
      const planned = planner.plan([message('in.a', 0, 1), message('in.a', 0, 2), message('in.a', 0, 3)], 10);
      expect(ranges(planned)).toEqual([['in.a', 0, 0, 3]]);
      expect(offsets(planned)).toEqual([[0, 1, 2, 3]]);
      // in.b still gathers; it lands once its oldest record waited maxHoldMs (`due`, or its next poll)
      expect(planner.due(99)).toEqual([]);
      expect(ranges(planner.due(100))).toEqual([['in.b', 0, 0, 0]]);
      expect(planner.holding).toBe(false);
    });

    it('lets a backlog wait backlogHoldMs, and lands everything held past maxHeldRows', () => {
      const planner = new BatchPlanner(routes, acc);
      planner.plan([message('in.a', 0, 0)], 0, true);
      expect(planner.plan([message('in.b', 0, 0)], 500, true)).toEqual([]);
      expect(planner.due(500, true)).toEqual([]);
      expect(ranges(planner.due(500))).toEqual([['in.a', 0, 0, 0]]);
      const many = Array.from({ length: 9 }, (_, i) => message('in.a', i % 5, 100 + i));
      expect(ranges(planner.plan(many, 510, true))).toEqual([
        ['in.b', 0, 0, 0],
        ['in.a', 0, 100, 105],
        ['in.a', 1, 101, 106],
        ['in.a', 2, 102, 107],
        ['in.a', 3, 103, 108],
        ['in.a', 4, 104, 104],
      ]);
      expect(planner.holding).toBe(false);
    });

    it('re-forms recorded ranges exactly first, then gathers the rest', () => {
      const planner = new BatchPlanner(routes, acc);
      planner.assigned({ topic: 'in.a', partition: 0 }, [{ first: 0, last: 1 }]);
      const planned = planner.plan([message('in.a', 0, 0), message('in.a', 0, 1), message('in.a', 0, 2)], 0);
      expect(ranges(planned)).toEqual([['in.a', 0, 0, 1]]);
      expect(planner.holding).toBe(true);
      expect(offsets(planner.due(100))).toEqual([[2]]);
    });

    it('forgets what it gathered when the partitions are revoked or assigned again (read again from the commit)', () => {
      const planner = new BatchPlanner(routes, acc);
      planner.plan([message('in.a', 0, 0), message('in.b', 0, 0)], 0);
      planner.assigned({ topic: 'in.a', partition: 0 }, []);
      expect(ranges(planner.due(100))).toEqual([['in.b', 0, 0, 0]]);
      planner.plan([message('in.a', 0, 0)], 0);
      planner.clear();
      expect(planner.holding).toBe(false);
      expect(planner.due(1_000)).toEqual([]);
      // and the held count restarted: two more records do not reach maxHeldRows
      expect(planner.plan([message('in.a', 0, 0), message('in.a', 1, 0)], 1_000)).toEqual([]);
    });

    it('gives the same batches as without accumulation when every partition brings minRows in one poll', () => {
      const poll = [0, 1, 2, 3].flatMap((o) => [message('in.a', 0, o), message('in.b', 1, o)]);
      expect(offsets(new BatchPlanner(routes, acc).plan(poll, 0))).toEqual(
        offsets(new BatchPlanner(routes).plan(poll)),
      );
    });
  });

  it('refuses a record from a topic the pipeline does not route', () => {
    expect(() => new BatchPlanner(routes).plan([message('elsewhere', 0, 0)])).toThrow(/unrouted topic elsewhere/);
  });
});
