import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.ts';
import type { EmittedBatch } from '../outputs.ts';
import { definePipeline, type SourceSpec } from '../pipeline.ts';
import { chainedSource, TopicTap } from './embedded-chain.ts';

const a: SourceSpec<unknown> = { topic: 'in.a', schema: 'normalised' };
const upstream = definePipeline({ name: 'up', version: '1', source: a }).outputs({
  records: [
    { name: 'x', topic: 'mid.x', schema: 'inference', table: 'x', select: () => null },
    { name: 'y', topic: 'mid.y', schema: 'normalised', table: 'y', select: () => null },
  ],
  side: {},
});
const x: SourceSpec<unknown> = { topic: 'mid.x', schema: 'alert-action' };
const other: SourceSpec<unknown> = { topic: 'elsewhere', schema: 'normalised' };
const downstream = definePipeline({ name: 'down', version: '1', sources: [x, other] }).outputs({
  records: [{ name: 'z', topic: 'out.z', schema: 'normalised', table: 'z', select: () => null }],
  side: {},
});

const emitted = (outputs: { topic: string; keys: string[] }[]): EmittedBatch => ({
  range: { topic: 'in.a', partition: 0, firstOffset: 0, lastOffset: 0 },
  outputs: outputs.map((o) => ({
    name: o.topic,
    topic: o.topic,
    schema: 's',
    table: 't',
    values: o.keys.map((key) => ({ key, value: { key } })),
  })),
  deadLetters: [],
  duplicates: [],
  raw: [],
});

describe('TopicTap', () => {
  it('taps the topics the downstream pipeline reads that the upstream one writes, keeping order and keys', () => {
    const tap = TopicTap.between(upstream, downstream);
    expect([...tap.topics]).toEqual(['mid.x']);
    tap.observe(
      emitted([
        { topic: 'mid.x', keys: ['d1', 'd2'] },
        { topic: 'mid.y', keys: ['d3'] },
      ]),
    );
    tap.observe(emitted([{ topic: 'mid.x', keys: ['d1'] }]));
    expect(tap.records.map((r) => [r.topic, r.key])).toEqual([
      ['mid.x', 'd1'],
      ['mid.x', 'd2'],
      ['mid.x', 'd1'],
    ]);
    expect(tap.counts()).toEqual({ 'mid.x': 3 });
  });

  it('refuses a pair that shares no topic, and a downstream run that does not read a tapped topic', () => {
    expect(() => TopicTap.between(downstream, upstream)).toThrow(/reads no topic down writes/);
    expect(() => chainedSource(downstream, [new TopicTap(['mid.y'])], { clock: new ManualClock(0) })).toThrow(
      /does not read tapped topic mid.y/,
    );
  });

  it('feeds the downstream run what was tapped, then its own records, as framed records decoded per source', async () => {
    const tap = new TopicTap(['mid.x']);
    const action = {
      action_id: 'a1',
      alert_id: 'al1',
      patient_ref: 'psn-1',
      device_id: 'd1',
      rule_id: 'news2.response',
      alarm_code: null,
      action: 'ack',
      principal: 'staff-1',
      reason: null,
      at: 0,
    };
    const batch = emitted([{ topic: 'mid.x', keys: ['d1'] }]);
    tap.observe({ ...batch, outputs: batch.outputs.map((o) => ({ ...o, values: [{ key: 'd1', value: action }] })) });
    const batches = [];
    for await (const batch of chainedSource(downstream, [tap], {
      clock: new ManualClock(0),
      more: [{ topic: 'elsewhere', key: 'd1', value: Buffer.from('not framed') }],
    })) {
      batches.push(batch);
    }
    // The tapped value decodes as its topic's schema; bytes that are no framed record are dead-lettered, as on Kafka.
    expect(batches.map((b) => [b.range.topic, b.records.length, b.rejected.length])).toEqual([
      ['mid.x', 1, 0],
      ['elsewhere', 0, 1],
    ]);
    expect(batches[0]?.records[0]?.value).toMatchObject({ action_id: 'a1', action: 'ack' });
  });
});
