import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stateBackendConformance } from '../../test/conformance/state-backend.ts';
import { ManualClock } from '../clock.ts';
import { VigilError } from '../errors.ts';
import type { ClaimRequest, SequenceRequest, StateBackend, StateDescriptor } from '../state.ts';
import {
  ChangelogStateBackend,
  MAX_BATCH_ENTRIES,
  parseChange,
  type RestoreCounts,
  type StateChange,
} from './changelog.ts';

const EVENT_IDS: StateDescriptor = { name: 'dedupe.event_id', ttlMs: 60_000 };
const SEQUENCES: StateDescriptor = { name: 'dedupe.sequence', ttlMs: 60_000 };
const ALERTS: StateDescriptor = { name: 'raise-alerts.episode', ttlMs: 60_000 };
const STATES = [EVENT_IDS, SEQUENCES, ALERTS];

/** The conformance suite's requests carry no partition: this view puts them all on partition 0. */
function onPartitionZero(backend: ChangelogStateBackend): StateBackend {
  return {
    kind: backend.kind,
    open: () => backend.open(),
    claim: (s, requests) =>
      backend.claim(
        s,
        requests.map((r) => ({ ...r, partition: 0 })),
      ),
    advanceSequences: (s, window, requests) =>
      backend.advanceSequences(
        s,
        window,
        requests.map((r) => ({ ...r, partition: 0 })),
      ),
    get: (s, requests) =>
      backend.get(
        s,
        requests.map((r) => ({ ...r, partition: 0 })),
      ),
    put: (s, writes) =>
      backend.put(
        s,
        writes.map((w) => ({ ...w, partition: 0 })),
      ),
    close: () => backend.close(),
  };
}

const conformanceClock = new ManualClock();
stateBackendConformance('changelog (one partition)', {
  make: async () => {
    const backend = new ChangelogStateBackend({ clock: conformanceClock, states: [] });
    await backend.open();
    return onPartitionZero(backend);
  },
  elapse: async (ms) => conformanceClock.advance(ms),
  ttlMs: 60_000,
  namespace: 'test',
});

function fresh(clock = new ManualClock()) {
  return { clock, backend: new ChangelogStateBackend({ clock, states: STATES }) };
}

function restoreInto(backend: ChangelogStateBackend, changes: readonly StateChange[]): RestoreCounts {
  const counts: RestoreCounts = { applied: 0, skipped: 0 };
  for (const c of changes) backend.restore(c.partition, c.key, c.value, counts);
  return counts;
}

/** The entries of a take, batch records unpacked, parsed. */
function entriesOf(changes: readonly StateChange[]) {
  return changes.flatMap((c) => {
    if (!c.key.startsWith('b\u0000')) return [parseChange(c.key, c.value)];
    const flat = JSON.parse(c.value ?? '[]') as string[];
    const out = [];
    for (let i = 0; i < flat.length; i += 2) out.push(parseChange(flat[i]!, flat[i + 1]!));
    return out;
  });
}

const claim = (key: string, owner: string, partition = 0): ClaimRequest => ({ key, owner, partition });
const seq = (stream: string, sequence: number, owner: string, partition = 0): SequenceRequest => ({
  stream,
  sequence,
  owner,
  partition,
});

describe('ChangelogStateBackend', () => {
  it('logs a change for every claim it grants (claimed or own), none for a taken key', async () => {
    const { clock, backend } = fresh();
    const expiresAt = clock.now() + 60_000;
    await backend.claim(EVENT_IDS, [claim('a', '0:1'), claim('a', '0:2'), claim('a', '0:1'), claim('b', '0:3')]);
    const changes = backend.takeChanges();
    expect(changes).toHaveLength(1); // one batch record for the partition
    expect(entriesOf(changes)).toEqual([
      { kind: 'claim', state: 'dedupe.event_id', key: 'a', owner: '0:1', expiresAt },
      { kind: 'claim', state: 'dedupe.event_id', key: 'a', owner: '0:1', expiresAt },
      { kind: 'claim', state: 'dedupe.event_id', key: 'b', owner: '0:3', expiresAt },
    ]);
    expect(backend.takeChanges()).toEqual([]);
  });

  it('logs accepted sequences only (a duplicate or a too-old sequence changes nothing)', async () => {
    const { clock, backend } = fresh();
    const expiresAt = clock.now() + 60_000;
    const results = await backend.advanceSequences(SEQUENCES, 4, [
      seq('dev-1', 10, '0:1'),
      seq('dev-1', 10, '0:2'),
      seq('dev-1', 3, '0:3'),
      seq('dev-1', 8, '0:4'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['new', 'duplicate', 'too_old', 'new']);
    expect(entriesOf(backend.takeChanges())).toEqual([
      { kind: 'sequence', state: 'dedupe.sequence', stream: 'dev-1', sequence: 10, owner: '0:1', expiresAt },
      { kind: 'sequence', state: 'dedupe.sequence', stream: 'dev-1', sequence: 8, owner: '0:4', expiresAt },
    ]);
  });

  it('keeps partitions apart: each change names its input partition, and dropping one forgets only it', async () => {
    const { backend } = fresh();
    await backend.claim(EVENT_IDS, [claim('a', '0:1', 0), claim('a', '1:1', 1)]);
    expect(backend.takeChanges().map((c) => c.partition)).toEqual([0, 1]);
    expect(backend.stats().get(EVENT_IDS.name)).toEqual({ entries: 2, evictions: 0 });
    backend.drop(1);
    const again = await backend.claim(EVENT_IDS, [claim('a', '0:9', 0), claim('a', '1:9', 1)]);
    expect(again).toEqual([{ status: 'taken', heldBy: '0:1' }, { status: 'claimed' }]);
  });

  it('refuses a request without its input partition (a programming error, not a bad record)', async () => {
    const { backend } = fresh();
    await expect(backend.claim(EVENT_IDS, [{ key: 'a', owner: '0:1' }])).rejects.toBeInstanceOf(VigilError);
  });

  it('a restored copy classifies exactly as the original: taken, own, duplicate, too old', async () => {
    const original = fresh();
    await original.backend.claim(EVENT_IDS, [claim('a', '0:1'), claim('b', '0:2')]);
    await original.backend.advanceSequences(SEQUENCES, 4, [seq('dev-1', 10, '0:1'), seq('dev-1', 7, '0:2')]);
    const restored = fresh(original.clock);
    expect(restoreInto(restored.backend, original.backend.takeChanges())).toEqual({ applied: 4, skipped: 0 });
    expect(restored.backend.takeChanges()).toEqual([]); // a restore logs nothing
    for (const { backend } of [original, restored]) {
      expect(await backend.claim(EVENT_IDS, [claim('a', '0:9'), claim('b', '0:2'), claim('c', '0:3')])).toEqual([
        { status: 'taken', heldBy: '0:1' },
        { status: 'own' },
        { status: 'claimed' },
      ]);
      expect(
        await backend.advanceSequences(SEQUENCES, 4, [
          seq('dev-1', 7, '0:5'),
          seq('dev-1', 5, '0:6'),
          seq('dev-1', 10, '0:1'),
        ]),
      ).toEqual([{ status: 'duplicate', heldBy: '0:2' }, { status: 'too_old', highest: 10 }, { status: 'new' }]);
    }
  });

  it('skips expired entries, states no operator declares, and records it cannot read', async () => {
    const { clock, backend } = fresh();
    await backend.claim(EVENT_IDS, [claim('old', '0:1')]);
    const old = backend.takeChanges();
    clock.advance(60_001);
    const restored = fresh(clock).backend;
    const counts = restoreInto(restored, [
      ...old,
      { partition: 0, key: 'c\u0000gone.state\u0000k', value: `0:2\u0000${clock.now() + 1000}` },
      { partition: 0, key: 'x\u0000dedupe.event_id\u0000k', value: `0:3\u0000${clock.now() + 1000}` },
    ]);
    restored.restore(0, 'c\u0000dedupe.event_id\u0000tombstone', null, counts);
    expect(counts).toEqual({ applied: 0, skipped: 4 });
    expect(await restored.claim(EVENT_IDS, [claim('old', '0:9')])).toEqual([{ status: 'claimed' }]);
  });

  it('logs keyed values and their deletions (tombstones), and a restored copy holds the same values', async () => {
    const { clock, backend } = fresh();
    await backend.put(ALERTS, [
      { key: 'psn-1|news2', value: '{"state":"open"}', partition: 2 },
      { key: 'psn-2|news2', value: 'x\u0000y', partition: 2 },
      { key: 'psn-1|news2', value: '{"state":"escalated"}', partition: 2 },
      { key: 'psn-2|news2', value: null, partition: 2 },
    ]);
    const changes = backend.takeChanges();
    expect(changes.map((c) => [c.partition, parseChange(c.key, c.value)])).toEqual([
      [
        2,
        {
          kind: 'value',
          state: ALERTS.name,
          key: 'psn-1|news2',
          value: '{"state":"open"}',
          expiresAt: clock.now() + 60_000,
        },
      ],
      [
        2,
        { kind: 'value', state: ALERTS.name, key: 'psn-2|news2', value: 'x\u0000y', expiresAt: clock.now() + 60_000 },
      ],
      [
        2,
        {
          kind: 'value',
          state: ALERTS.name,
          key: 'psn-1|news2',
          value: '{"state":"escalated"}',
          expiresAt: clock.now() + 60_000,
        },
      ],
      [2, { kind: 'value', state: ALERTS.name, key: 'psn-2|news2', value: null, expiresAt: 0 }],
    ]);
    const restored = fresh(clock).backend;
    expect(restoreInto(restored, changes)).toEqual({ applied: 4, skipped: 0 });
    const keys = [
      { key: 'psn-1|news2', partition: 2 },
      { key: 'psn-2|news2', partition: 2 },
      { key: 'psn-1|news2', partition: 0 },
    ];
    expect(await restored.get(ALERTS, keys)).toEqual(['{"state":"escalated"}', null, null]);
    expect(await restored.get(ALERTS, keys)).toEqual(await backend.get(ALERTS, keys));
  });

  it('cuts a large batch into records of at most MAX_BATCH_ENTRIES entries, each with its own key, all restored', async () => {
    const { clock, backend } = fresh();
    const n = MAX_BATCH_ENTRIES + 10;
    await backend.claim(
      EVENT_IDS,
      Array.from({ length: n }, (_, i) => claim(`e${i}`, `0:${i}`)),
    );
    const changes = backend.takeChanges();
    expect(changes.map((c) => JSON.parse(c.value ?? '[]').length / 2)).toEqual([MAX_BATCH_ENTRIES, 10]);
    expect(new Set(changes.map((c) => c.key)).size).toBe(2);
    const restored = fresh(clock).backend;
    expect(restoreInto(restored, changes)).toEqual({ applied: n, skipped: 0 });
    expect(await restored.claim(EVENT_IDS, [claim('e0', '0:99999'), claim(`e${n - 1}`, `0:${n - 1}`)])).toEqual([
      { status: 'taken', heldBy: '0:0' },
      { status: 'own' },
    ]);
    const counts: RestoreCounts = { applied: 0, skipped: 0 };
    restored.restore(0, 'b\u0000x\u0000y\u00000', 'not json', counts);
    expect(counts).toEqual({ applied: 0, skipped: 1 });
  });

  it('reads back keys and streams holding the separator', () => {
    const key = 's\u0000dedupe.sequence\u0000dev\u0000odd\u000042';
    expect(parseChange(key, '3:7\u0000100')).toEqual({
      kind: 'sequence',
      state: 'dedupe.sequence',
      stream: 'dev\u0000odd',
      sequence: 42,
      owner: '3:7',
      expiresAt: 100,
    });
    expect(parseChange('c\u0000s\u0000a\u0000b', '1:1\u00005')).toMatchObject({ key: 'a\u0000b' });
    expect(parseChange('c\u0000s\u0000a', 'no-expiry')).toBeNull();
  });

  it('property: after any prefix of requests, a copy restored from the changelog answers the rest identically', async () => {
    const request = fc.record({
      kind: fc.constantFrom('claim', 'sequence', 'value'),
      value: fc.option(fc.constantFrom('open', 'escalated', 'a\u0000b'), { nil: null }),
      key: fc.constantFrom('e1', 'e2', 'e3', 'e4', 'e5'),
      stream: fc.constantFrom('d1', 'd2'),
      sequence: fc.integer({ min: 0, max: 40 }),
      partition: fc.integer({ min: 0, max: 2 }),
      offset: fc.integer({ min: 0, max: 30 }),
      advanceMs: fc.constantFrom(0, 0, 0, 20_000),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { maxLength: 60 }), fc.nat(), async (requests, cutAt) => {
        const cut = requests.length === 0 ? 0 : cutAt % (requests.length + 1);
        const clock = new ManualClock();
        const a = new ChangelogStateBackend({ clock, states: STATES });
        const log: StateChange[] = [];
        const step = async (backend: ChangelogStateBackend, r: (typeof requests)[number]) => {
          const owner = `${r.partition}:${r.offset}`;
          if (r.kind === 'claim') return backend.claim(EVENT_IDS, [claim(r.key, owner, r.partition)]);
          if (r.kind === 'sequence') {
            return backend.advanceSequences(SEQUENCES, 8, [seq(r.stream, r.sequence, owner, r.partition)]);
          }
          await backend.put(ALERTS, [{ key: r.key, value: r.value, partition: r.partition }]);
          return backend.get(ALERTS, [
            { key: r.key, partition: r.partition },
            { key: 'e1', partition: r.partition },
          ]);
        };
        for (const r of requests.slice(0, cut)) {
          clock.advance(r.advanceMs);
          await step(a, r);
          log.push(...a.takeChanges());
        }
        const b = new ChangelogStateBackend({ clock, states: STATES });
        restoreInto(b, log);
        for (const r of requests.slice(cut)) {
          clock.advance(r.advanceMs);
          expect(await step(b, r)).toEqual(await step(a, r));
        }
      }),
      { numRuns: 300 },
    );
  });
});
