/**
 * The worker's latency observations at commit, with a fake consumer and producer and a manual clock (no broker):
 * per value of each output that declares its event time, seconds since the receipt of its batch and since that event
 * time, on `vigil_output_latency_seconds{pipeline, output, from}` and in the run's stats; other outputs are not measured.
 */
import { describe, expect, it } from 'vitest';
import type { ConsumedMessage, KafkaConsumerClient } from '../../adapters/kafka/consumer.ts';
import type { ProducerRecord, TransactionalProducer } from '../../adapters/kafka/producer.ts';
import { ManualClock } from '../clock.ts';
import type { BatchDecoder } from '../codec.ts';
import { TOPICS } from '../endpoints.ts';
import { Engine } from '../engine.ts';
import { silentLogger } from '../log.ts';
import { PipelineMetrics } from '../metrics.ts';
import type { ModelStore } from '../models.ts';
import type { Operator } from '../operator.ts';
import { definePipeline, type SourceSpec } from '../pipeline.ts';
import { MemoryStateBackend } from '../state/memory.ts';
import { RunStats } from './run-stats.ts';
import { Worker } from './worker.ts';

interface Reading {
  readonly id: number;
  readonly device: string;
  readonly observed_at: number;
  readonly alarm: boolean;
}

const readings: SourceSpec<Reading> = { topic: 'in', schema: 'envelope' };
const pass: Operator<Reading, Reading> = {
  name: 'pass',
  stage: 'validate',
  process: (batch) => ({ out: [...batch], rejected: [], duplicates: [], side: {} }),
};
const pipeline = definePipeline({ name: 'latency', version: '1', source: readings })
  .pipe(pass)
  .outputs({
    records: [
      // An alert-like output: one value for some records, stating the event time of the record that made it.
      {
        name: 'alarms',
        topic: 'out.alarms',
        schema: 'clinical-alert',
        table: 't',
        select: (r) =>
          r.value.alarm ? { key: r.value.device, value: { id: r.value.id, observed_at: r.value.observed_at } } : null,
        eventTime: (v) => v.observed_at as number,
      },
      // An output declaring no event time: not measured.
      {
        name: 'echo',
        topic: 'out.echo',
        schema: 'normalised',
        table: 't',
        select: (r) => ({ key: r.value.device, value: { id: r.value.id } }),
      },
    ],
    side: {},
  });

const noModels = {} as ModelStore;
const json: BatchDecoder<Reading> = {
  decodeBatch: async (values) => values.map((v) => ({ ok: true as const, value: JSON.parse(v.toString()) as Reading })),
};

function message(offset: number, value: Reading): ConsumedMessage {
  return {
    topic: 'in',
    partition: 0,
    offset,
    key: value.device,
    value: Buffer.from(JSON.stringify(value)),
    headers: [],
    timestamp: 0,
  };
}

/** One poll of `messages` at the clock's time, then nothing; commits take `commitMs` of the manual clock. */
function fakes(clock: ManualClock, polls: ConsumedMessage[][], commitMs: number) {
  const committed: ProducerRecord[][] = [];
  const consumer = {
    epoch: 1,
    revoking: false,
    assignment: [{ topic: 'in', partition: 0 }],
    consume: async () => polls.shift() ?? [],
    idleFor: () => Number.POSITIVE_INFINITY,
    pauseAll: () => undefined,
    resumeAll: () => undefined,
    lag: () => [],
    rewindToCommitted: async () => undefined,
  } as unknown as KafkaConsumerClient;
  const producer = {
    commit: async (records: ProducerRecord[]) => {
      clock.advance(commitMs);
      committed.push(records);
      return 'committed' as const;
    },
  } as unknown as TransactionalProducer;
  return { consumer, producer, committed };
}

async function runOnce(polls: ConsumedMessage[][], commitMs: number, clock: ManualClock) {
  const metrics = new PipelineMetrics();
  const stats = new RunStats();
  const engine = new Engine(pipeline, metrics);
  await engine.open({
    pipeline: 'latency',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: noModels,
  });
  const { consumer, producer, committed } = fakes(clock, polls, commitMs);
  const worker = new Worker(
    {
      engine,
      consumer,
      producer,
      decoders: new Map([['in', json]]),
      encoder: { encode: (_schema, value) => Buffer.from(JSON.stringify(value)) },
      metrics,
      log: silentLogger,
      now: () => clock.now(),
      stats,
    },
    { maxBatch: 100, stopWhenIdleMs: 0 },
  );
  const accounting = await worker.run();
  await engine.close();
  return { metrics, stats, committed, accounting };
}

/** The histogram's samples for one output and origin: count, sum and cumulative bucket counts by upper bound. */
async function series(metrics: PipelineMetrics, output: string, from: string) {
  const { values } = await metrics.outputLatency.get();
  const mine = values.filter((v) => v.labels.output === output && v.labels.from === from);
  const countSample = mine.find((v) => v.metricName === 'vigil_output_latency_seconds_count');
  const count = countSample?.value ?? 0;
  const sum = mine.find((v) => v.metricName === 'vigil_output_latency_seconds_sum')?.value ?? 0;
  const buckets = new Map(
    mine
      .filter((v) => v.metricName === 'vigil_output_latency_seconds_bucket')
      .map((v) => [String((v.labels as Record<string, unknown>).le), v.value]),
  );
  return { count, sum, buckets, labels: countSample?.labels };
}

describe('worker: output latency at commit', () => {
  it('observes, per output value, seconds since its receipt and since its observed_at, at the commit carrying it', async () => {
    const clock = new ManualClock(1_000_000);
    const t0 = clock.now();
    const poll = [
      message(0, { id: 0, device: 'd1', observed_at: t0 - 2_000, alarm: true }),
      message(1, { id: 1, device: 'd2', observed_at: t0 - 500, alarm: false }),
      message(2, { id: 2, device: 'd1', observed_at: t0 - 30, alarm: true }),
    ];
    const { metrics, stats, committed, accounting } = await runOnce([poll], 40, clock);
    expect(accounting.consumed).toBe(3);
    expect(committed).toHaveLength(1);

    // Receipt (t0) -> commit (t0 + 40 ms): every value of both outputs.
    const alarmsReceipt = await series(metrics, 'alarms', 'receipt');
    expect(alarmsReceipt.labels).toEqual({ pipeline: 'latency', output: 'alarms', from: 'receipt' });
    expect(alarmsReceipt.count).toBe(2);
    expect(alarmsReceipt.sum).toBeCloseTo(0.08, 9);
    expect((await series(metrics, 'echo', 'receipt')).count).toBe(0);

    // observed_at -> commit: 2.04 s and 0.07 s for the two alarms; the echo output declares no event time.
    const alarmsObserved = await series(metrics, 'alarms', 'observed');
    expect(alarmsObserved.count).toBe(2);
    expect(alarmsObserved.sum).toBeCloseTo(2.04 + 0.07, 9);
    expect(alarmsObserved.buckets.get('0.075')).toBe(1);
    expect(alarmsObserved.buckets.get('2.5')).toBe(2);
    expect((await series(metrics, 'echo', 'observed')).count).toBe(0);

    // The run's stats keep the same figures per output topic, in ms.
    const json = stats.json().output_latency_ms ?? {};
    expect(json['out.alarms']).toEqual({
      receipt: { count: 2, p50: expect.closeTo(40, 0), p99: expect.closeTo(40, 0), max: 40 },
      observed: { count: 2, p50: expect.closeTo(70, 0), p99: expect.any(Number), max: 2_040 },
    });
    expect(json['out.echo']).toBeUndefined();

    // Labels from fixed sets only: no device id or other record value.
    expect(await metrics.expose()).not.toMatch(/d1|d2/);
  });

  it('a batch with no value for an output observes nothing for it', async () => {
    const clock = new ManualClock(5_000_000);
    const poll = [message(0, { id: 0, device: 'd1', observed_at: clock.now() - 10, alarm: false })];
    const { metrics } = await runOnce([poll], 25, clock);
    expect((await series(metrics, 'alarms', 'receipt')).count).toBe(0);
    expect((await series(metrics, 'alarms', 'observed')).count).toBe(0);
    expect((await series(metrics, 'echo', 'receipt')).count).toBe(0);
  });
});

describe('worker: what one transaction carries', () => {
  it('per partition batch, in poll order: each output in declaration order, then dead letters; offsets after each', async () => {
    // Records are encoded as each batch is processed (not at send): the transaction must still carry exactly this.
    const clock = new ManualClock(2_000_000);
    const t0 = clock.now();
    const on = (partition: number, offset: number, value: Reading | string): ConsumedMessage => ({
      ...message(offset, typeof value === 'string' ? { id: -1, device: 'x', observed_at: 0, alarm: false } : value),
      partition,
      value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
      timestamp: t0 - 100,
    });
    const failing: BatchDecoder<Reading> = {
      decodeBatch: async (values) =>
        values.map((v) => {
          const text = v.toString();
          return text.startsWith('{')
            ? { ok: true as const, value: JSON.parse(text) as Reading }
            : { ok: false as const, code: 'AVRO_DECODE_FAILED' as const, detail: 'not a reading' };
        }),
    };
    const polls = [
      [
        on(1, 10, { id: 10, device: 'd1', observed_at: t0 - 5, alarm: true }),
        on(0, 3, { id: 3, device: 'd2', observed_at: t0 - 6, alarm: false }),
        on(1, 11, 'garbage'),
        on(0, 4, { id: 4, device: 'd3', observed_at: t0 - 7, alarm: true }),
      ],
      [on(0, 5, { id: 5, device: 'd4', observed_at: t0 - 8, alarm: true })],
    ];
    const metrics = new PipelineMetrics();
    const engine = new Engine(pipeline, metrics);
    await engine.open({
      pipeline: 'latency',
      clock,
      state: new MemoryStateBackend({ clock }),
      log: silentLogger,
      models: noModels,
    });
    const { consumer, committed } = fakes(clock, polls, 10);
    const offsets: unknown[] = [];
    const producer = {
      commit: async (records: ProducerRecord[], sent: unknown[]) => {
        committed.push(records);
        offsets.push(sent);
        return 'committed' as const;
      },
    } as unknown as TransactionalProducer;
    const worker = new Worker(
      {
        engine,
        consumer,
        producer,
        decoders: new Map([['in', failing]]),
        encoder: { encode: (schema, value) => Buffer.from(`${schema}:${JSON.stringify(value)}`) },
        metrics,
        log: silentLogger,
        now: () => clock.now(),
      },
      { maxBatch: 100, stopWhenIdleMs: 0 },
    );
    const accounting = await worker.run();
    await engine.close();
    expect(accounting).toEqual({ consumed: 5, emitted: 4, deadLettered: 1, duplicates: 0 });
    const shown = committed.map((records) =>
      records.map((r) => `${r.topic} ${r.key} ${r.value?.toString().split(':')[0]}`),
    );
    expect(shown).toEqual([
      [
        // partition 1's batch (first in the poll): each output's values, then its dead letter
        'out.alarms d1 clinical-alert',
        'out.echo d1 normalised',
        `${TOPICS.deadLetter} x dead-letter`,
        // then partition 0's
        'out.alarms d3 clinical-alert',
        'out.echo d2 normalised',
        'out.echo d3 normalised',
      ],
      ['out.alarms d4 clinical-alert', 'out.echo d4 normalised'],
    ]);
    // The values are the encoder's bytes of the selected values, unchanged.
    expect(committed[0]![0]!.value!.toString()).toBe(
      `clinical-alert:${JSON.stringify({ id: 10, observed_at: t0 - 5 })}`,
    );
    expect(committed[1]![1]!.value!.toString()).toBe(`normalised:${JSON.stringify({ id: 5 })}`);
    expect(offsets).toEqual([
      [
        { topic: 'in', partition: 1, offset: 12 },
        { topic: 'in', partition: 0, offset: 5 },
      ],
      [{ topic: 'in', partition: 0, offset: 6 }],
    ]);
  });
});
