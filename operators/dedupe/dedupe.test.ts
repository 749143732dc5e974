import { createServer } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redisState } from '../../adapters/redis/index.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelStore } from '../../runtime/models.ts';
import type { Operator, OperatorContext, Results } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import type {
  ClaimRequest,
  ClaimResult,
  SequenceRequest,
  SequenceResult,
  StateBackend,
  StateDescriptor,
  ValueRequest,
  ValueWrite,
} from '../../runtime/state.ts';
import type { Envelope } from '../../schemas/types.ts';
import { envelope, inFlight, ulidFor } from '../../test/fixtures/envelope.ts';
import type { CheckedEvent } from '../types.ts';
import { DEDUPE_DEFAULTS, dedupe, EVENT_ID_STATE, parseDedupeConfig } from './index.ts';

/** dedupe loads no model: a store that has none. */
const noModels: ModelStore = {
  load: async () => {
    throw new VigilError('MODEL_NOT_FOUND', 'no models in this test');
  },
  readVerified: async () => {
    throw new VigilError('MODEL_NOT_FOUND', 'no models in this test');
  },
  manifest: async () => {
    throw new VigilError('MODEL_NOT_FOUND', 'no models in this test');
  },
};

/** A real memory backend that also counts the calls made to it. */
class CountingState implements StateBackend {
  readonly kind = 'memory' as const;
  readonly calls: string[] = [];
  constructor(readonly inner: MemoryStateBackend) {}
  open(): Promise<void> {
    this.calls.push('open');
    return this.inner.open();
  }
  claim(state: StateDescriptor, requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    this.calls.push(`claim:${state.name}:${requests.length}`);
    return this.inner.claim(state, requests);
  }
  advanceSequences(state: StateDescriptor, window: number, requests: readonly SequenceRequest[]) {
    this.calls.push(`advanceSequences:${state.name}:${window}:${requests.length}`);
    return this.inner.advanceSequences(state, window, requests) as Promise<SequenceResult[]>;
  }
  get(state: StateDescriptor, requests: readonly ValueRequest[]) {
    return this.inner.get(state, requests);
  }
  put(state: StateDescriptor, writes: readonly ValueWrite[]) {
    return this.inner.put(state, writes);
  }
  close() {
    return this.inner.close();
  }
}

function context(state: StateBackend, clock: ManualClock): OperatorContext {
  return { pipeline: 'test', clock, state, log: silentLogger, models: noModels };
}

async function opened(
  config = {},
  state?: StateBackend,
): Promise<{ op: Operator<CheckedEvent, CheckedEvent>; state: StateBackend; clock: ManualClock }> {
  const clock = new ManualClock();
  const backend = state ?? new MemoryStateBackend({ clock });
  const op = dedupe(config);
  await op.open!(context(backend, clock));
  return { op, state: backend, clock };
}

const checked = (e: Envelope, offset: number, partition = 0): InFlight<CheckedEvent> =>
  inFlight({ envelope: e, flags: [] }, offset, partition);

/** A readable, comparable digest of a result: where every record went, by offset. */
function digest(results: Results<CheckedEvent>) {
  return {
    out: results.out.map((r) => r.origin.offset),
    duplicates: results.duplicates.map((d) => `${d.record.origin.offset}:${d.kind}<-${d.firstSeen}`),
    rejected: results.rejected.map((r) => `${r.record.origin.offset}:${r.code}`),
  };
}

function expectAccounted(batch: readonly InFlight<CheckedEvent>[], results: Results<CheckedEvent>): void {
  const seen = [
    ...results.out.map((r) => r.origin),
    ...results.duplicates.map((d) => d.record.origin),
    ...results.rejected.map((r) => r.record.origin),
  ];
  expect(seen).toHaveLength(batch.length);
  expect(new Set(seen).size).toBe(batch.length);
  for (const record of batch) expect(seen).toContain(record.origin);
}

describe('dedupe', () => {
  it('has a stable name, stage and state descriptors', async () => {
    const { op } = await opened();
    expect(op.name).toBe('dedupe');
    expect(op.stage).toBe('dedupe');
  });

  describe('two sources (the alarm lane beside raw): the same partition:offset on both lanes', () => {
    const RAW = 'lane.raw';
    const PRIORITY = 'lane.raw-priority';
    const onLane = (e: Envelope, topic: string, offset: number, partition = 0): InFlight<CheckedEvent> => {
      const record = checked(e, offset, partition);
      return { ...record, origin: { ...record.origin, topic } };
    };
    async function twoLanes(state?: StateBackend) {
      const clock = new ManualClock();
      const backend = state ?? new MemoryStateBackend({ clock });
      const op = dedupe();
      await op.open!({ ...context(backend, clock), sources: [RAW, PRIORITY] });
      return op;
    }

    it('tells the lanes apart: one event on both at the same position is a duplicate, not a replay of itself', async () => {
      const op = await twoLanes();
      const alarm = envelope({ event_id: ulidFor(40), sequence: 40 });
      const first = await op.process([onLane(alarm, RAW, 5)]);
      expect(digest(first)).toEqual({ out: [5], duplicates: [], rejected: [] });
      // Same partition 0, offset 5, other topic: with a `partition:offset` token it would read as its own replay.
      const second = await op.process([onLane(alarm, PRIORITY, 5)]);
      expect(digest(second)).toEqual({ out: [], duplicates: ['5:event_id<-0:5'], rejected: [] });
      // And the other way round: first seen on the alarm lane, its token names the lane.
      const other = envelope({ event_id: ulidFor(41), sequence: 41 });
      await op.process([onLane(other, PRIORITY, 6)]);
      expect(digest(await op.process([onLane(other, RAW, 6)]))).toEqual({
        out: [],
        duplicates: ['6:event_id<-0:6/1'],
        rejected: [],
      });
    });

    it('still reads a re-read batch of either lane as its own replay (crash before the offsets were committed)', async () => {
      const op = await twoLanes();
      const a = envelope({ event_id: ulidFor(42), sequence: 42 });
      const b = envelope({ event_id: ulidFor(43), sequence: 43 });
      const batch = [onLane(a, RAW, 7), onLane(b, PRIORITY, 7)];
      expect(digest(await op.process(batch))).toEqual({ out: [7, 7], duplicates: [], rejected: [] });
      expect(digest(await op.process(batch))).toEqual({ out: [7, 7], duplicates: [], rejected: [] });
    });

    it("keeps one sequence window per device and lane: an alarm behind the device's vitals is not too old", async () => {
      const op = await twoLanes();
      const vitals = Array.from({ length: 100 }, (_, i) =>
        onLane(envelope({ event_id: ulidFor(500 + i), sequence: 500 + i }), RAW, i),
      );
      expect(digest(await op.process(vitals)).out).toHaveLength(100);
      // The alarm lane lags here (sequence 430, far behind raw's 599, window 64): its own window has seen nothing.
      const alarm = onLane(envelope({ event_id: ulidFor(700), sequence: 430 }), PRIORITY, 0);
      expect(digest(await op.process([alarm]))).toEqual({ out: [0], duplicates: [], rejected: [] });
      // On raw, the same distance behind is still too old.
      const late = onLane(envelope({ event_id: ulidFor(701), sequence: 431 }), RAW, 100);
      expect(digest(await op.process([late]))).toEqual({ out: [], duplicates: [], rejected: ['100:SEQUENCE_TOO_OLD'] });
    });

    it("keeps the first source's tokens as they were (`partition:offset`), so existing changelogs restore as before", async () => {
      const op = await twoLanes();
      const e = envelope({ event_id: ulidFor(44), sequence: 44 });
      await op.process([onLane(e, RAW, 9, 2)]);
      expect(digest(await op.process([onLane(e, RAW, 10, 2)]))).toEqual({
        out: [],
        duplicates: ['10:event_id<-2:9'],
        rejected: [],
      });
    });
  });

  it('drops a second copy by event_id, within a batch and across batches, naming the first', async () => {
    const { op } = await opened();
    const a = envelope({ event_id: ulidFor(1), sequence: 1 });
    const b = envelope({ event_id: ulidFor(2), sequence: 2 });
    const first = await op.process([checked(a, 10), checked(b, 11), checked(a, 12)]);
    expect(digest(first)).toEqual({ out: [10, 11], duplicates: ['12:event_id<-0:10'], rejected: [] });
    const second = await op.process([checked(b, 20, 3)]);
    expect(digest(second)).toEqual({ out: [], duplicates: ['20:event_id<-0:11'], rejected: [] });
    expect(second.duplicates[0]!.record.origin.partition).toBe(3);
  });

  it('drops a second record with the same (device, sequence) under a new event id', async () => {
    const { op } = await opened();
    const batch = [
      checked(envelope({ event_id: ulidFor(1), device_id: 'dev-a', sequence: 7 }), 0),
      checked(envelope({ event_id: ulidFor(2), device_id: 'dev-b', sequence: 7 }), 1),
      checked(envelope({ event_id: ulidFor(3), device_id: 'dev-a', sequence: 7 }), 2),
    ];
    expect(digest(await op.process(batch))).toEqual({
      out: [0, 1],
      duplicates: ['2:sequence<-0:0'],
      rejected: [],
    });
  });

  it('accepts reordering inside the window and rejects a never-seen sequence left of it', async () => {
    const { op } = await opened({ window: 16 });
    const seqs = [100, 98, 99, 90, 84, 83, 101];
    const batch = seqs.map((sequence, i) => checked(envelope({ event_id: ulidFor(i), sequence }), i));
    const results = await op.process(batch);
    expect(digest(results)).toEqual({ out: [0, 1, 2, 3, 4, 6], duplicates: [], rejected: ['5:SEQUENCE_TOO_OLD'] });
    const detail = results.rejected[0]!.detail;
    expect(detail).toBe("sequence is left of the device's 16-sequence replay window and was never accepted");
    expect(detail).not.toMatch(/83|100|dev-/);
  });

  it('checks records without a sequence by event_id only', async () => {
    const { op } = await opened();
    const e = envelope({ event_id: ulidFor(5), sequence: null });
    const results = await op.process([checked(e, 0), checked(envelope({ event_id: ulidFor(6), sequence: null }), 1)]);
    expect(digest(results)).toEqual({ out: [0, 1], duplicates: [], rejected: [] });
    expect(digest(await op.process([checked(e, 2)]))).toEqual({
      out: [],
      duplicates: ['2:event_id<-0:0'],
      rejected: [],
    });
  });

  it('runs the sequence check only on survivors: a duplicate by event_id never moves the window', async () => {
    const { op } = await opened({ window: 8 });
    const original = envelope({ event_id: ulidFor(1), sequence: 100 });
    await op.process([checked(original, 0)]);
    const results = await op.process([
      checked({ ...original, sequence: 10_000 }, 1), // same event id, forged far-ahead sequence
      checked(envelope({ event_id: ulidFor(2), sequence: 95 }), 2),
    ]);
    expect(digest(results)).toEqual({ out: [2], duplicates: ['1:event_id<-0:0'], rejected: [] });
  });

  it('makes one state call of each kind per batch, in batch order, and none for an empty batch', async () => {
    const clock = new ManualClock();
    const state = new CountingState(new MemoryStateBackend({ clock }));
    const { op } = await opened({ window: 32 }, state);
    await op.process([]);
    await op.process([
      checked(envelope({ event_id: ulidFor(1), sequence: 1 }), 0),
      checked(envelope({ event_id: ulidFor(1), sequence: 2 }), 1),
      checked(envelope({ event_id: ulidFor(2), sequence: null }), 2),
      checked(envelope({ event_id: ulidFor(3), sequence: 3 }), 3),
    ]);
    await op.process([checked(envelope({ event_id: ulidFor(9), sequence: null }), 4)]);
    expect(state.calls).toEqual([
      'open',
      'claim:dedupe.event_id:4',
      'advanceSequences:dedupe.sequence:32:2',
      'claim:dedupe.event_id:1',
    ]);
  });

  it('classifies a crash replay exactly as the first run (same origins, state kept)', async () => {
    const clock = new ManualClock();
    const state = new MemoryStateBackend({ clock });
    const batches = [
      [
        checked(envelope({ event_id: ulidFor(1), sequence: 1 }), 0),
        checked(envelope({ event_id: ulidFor(2), sequence: 2 }), 1),
        checked(envelope({ event_id: ulidFor(1), sequence: 1 }), 2), // duplicate by id, same batch
        checked(envelope({ event_id: ulidFor(3), sequence: 2 }), 3), // duplicate by sequence
        checked(envelope({ event_id: ulidFor(4), sequence: null }), 4),
      ],
      [
        checked(envelope({ event_id: ulidFor(2), sequence: 2 }), 5), // duplicate of the previous batch
        checked(envelope({ event_id: ulidFor(5), sequence: 500 }), 6),
        checked(envelope({ event_id: ulidFor(6), sequence: 3 }), 7), // too old now
        checked(envelope({ event_id: ulidFor(7), sequence: 499 }), 8),
      ],
    ];
    const worker1 = await opened({ window: 64 }, state);
    const firstRun = [];
    for (const batch of batches) firstRun.push(digest(await worker1.op.process(batch)));
    expect(firstRun).toEqual([
      { out: [0, 1, 4], duplicates: ['2:event_id<-0:0', '3:sequence<-0:1'], rejected: [] },
      { out: [6, 8], duplicates: ['5:event_id<-0:1'], rejected: ['7:SEQUENCE_TOO_OLD'] },
    ]);

    // Worker 1 dies before committing; worker 2 takes over the partition and re-reads both batches.
    const worker2 = await opened({ window: 64 }, state);
    const replay = [];
    for (const batch of batches) replay.push(digest(await worker2.op.process(batch)));
    expect(replay).toEqual(firstRun);

    // Only the second batch was uncommitted: re-reading it alone gives the same answer too.
    const worker3 = await opened({ window: 64 }, state);
    expect(digest(await worker3.op.process(batches[1]!))).toEqual(firstRun[1]);

    // The same events under new offsets (a producer retry, not a replay) are duplicates of the first copies.
    const resent = batches[0]!.map((r, i) => checked(r.value.envelope, 100 + i));
    expect(digest(await worker3.op.process(resent))).toEqual({
      out: [],
      duplicates: [
        '100:event_id<-0:0',
        '101:event_id<-0:1',
        '102:event_id<-0:0',
        '103:event_id<-0:3',
        '104:event_id<-0:4',
      ],
      rejected: [],
    });
  });

  it('sends every record to exactly one output, keeps first copies unique, and replays identically (property)', async () => {
    const record = fc.record({
      id: fc.integer({ min: 0, max: 40 }),
      device: fc.integer({ min: 0, max: 3 }),
      sequence: fc.option(fc.integer({ min: 0, max: 200 }), { nil: null }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(record, { maxLength: 60 }), { maxLength: 5 }), async (specs) => {
        let offset = 0;
        const batches = specs.map((batch) =>
          batch.map((r) =>
            checked(
              envelope({ event_id: ulidFor(r.id), device_id: `dev-${r.device}`, sequence: r.sequence }),
              offset++,
            ),
          ),
        );
        const state = new MemoryStateBackend({ clock: new ManualClock() });
        const first = await opened({ window: 32 }, state);
        const digests = [];
        const ids = new Set<string>();
        const sequences = new Set<string>();
        for (const batch of batches) {
          const results = await first.op.process(batch);
          expectAccounted(batch, results);
          for (const r of results.out) {
            const { event_id, device_id, sequence } = r.value.envelope;
            expect(ids.has(event_id)).toBe(false);
            ids.add(event_id);
            if (sequence !== null) {
              expect(sequences.has(`${device_id}/${sequence}`)).toBe(false);
              sequences.add(`${device_id}/${sequence}`);
            }
          }
          digests.push(digest(results));
        }
        const again = await opened({ window: 32 }, state);
        for (let b = 0; b < batches.length; b++) {
          expect(digest(await again.op.process(batches[b]!))).toEqual(digests[b]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('forgets an event id after the TTL (measured on the injected clock)', async () => {
    const { op, clock } = await opened({ ttlMs: 60_000 });
    const e = envelope({ event_id: ulidFor(1), sequence: null });
    await op.process([checked(e, 0)]);
    clock.advance(59_999);
    expect(digest(await op.process([checked(e, 1)])).duplicates).toEqual(['1:event_id<-0:0']);
    clock.advance(1);
    expect(digest(await op.process([checked(e, 2)])).out).toEqual([2]);
  });

  it('passes its capacity to the in-memory backend, whose evictions are counted per state', async () => {
    const clock = new ManualClock();
    const state = new MemoryStateBackend({ clock });
    const { op } = await opened({ maxEntries: 10 }, state);
    await op.process(Array.from({ length: 25 }, (_, i) => checked(envelope({ event_id: ulidFor(i), sequence: i }), i)));
    expect(state.evictions(EVENT_ID_STATE)).toBe(15);
  });

  it('refuses to process before open()', async () => {
    await expect(dedupe().process([])).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('fails open() before the first record when the state backend is unreachable', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const state = redisState({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500 });
    const op = dedupe();
    await expect(op.open!(context(state, new ManualClock()))).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
      retriable: true,
    });
    await state.close();
  });

  describe('config', () => {
    it('fills every default', () => {
      expect(parseDedupeConfig()).toEqual(DEDUPE_DEFAULTS);
    });

    it('fails with CONFIG_INVALID on unknown keys and impossible values', () => {
      for (const bad of [{ windowSize: 64 }, { window: 0 }, { window: 1.5 }, { ttlMs: 0 }, { maxEntries: -1 }]) {
        expect(() => dedupe(bad as never), JSON.stringify(bad)).toThrow(
          expect.objectContaining({ code: 'CONFIG_INVALID' }),
        );
      }
    });
  });
});
