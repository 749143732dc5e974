import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stateBackendConformance } from '../../test/conformance/state-backend.ts';
import { MapStateBackend } from '../../test/support/map-state-backend.ts';
import { ManualClock } from '../clock.ts';
import { VigilError } from '../errors.ts';
import { MemoryStateBackend } from './memory.ts';

const clock = new ManualClock();
stateBackendConformance('memory', {
  make: async () => {
    const backend = new MemoryStateBackend({ clock });
    await backend.open();
    return backend;
  },
  elapse: async (ms) => clock.advance(ms),
  ttlMs: 60_000,
  namespace: 'test',
});

describe('MemoryStateBackend', () => {
  const fresh = () => {
    const c = new ManualClock();
    return { clock: c, backend: new MemoryStateBackend({ clock: c }) };
  };

  it('evicts the oldest claims beyond the capacity and counts them', async () => {
    const { backend } = fresh();
    const s = { name: 'dedupe.event_id', ttlMs: 60_000, maxEntries: 3 };
    const requests = ['a', 'b', 'c', 'd', 'e'].map((key, i) => ({ key, owner: `0:${i}` }));
    expect((await backend.claim(s, requests)).every((r) => r.status === 'claimed')).toBe(true);
    expect(backend.evictions('dedupe.event_id')).toBe(2);
    expect(backend.stats().get('dedupe.event_id')).toEqual({ entries: 3, evictions: 2, expirations: 0 });
    // a and b were evicted (oldest first): another owner now claims them; c, d, e are still held.
    expect(
      await backend.claim(s, [
        { key: 'a', owner: '1:0' },
        { key: 'e', owner: '1:1' },
      ]),
    ).toEqual([{ status: 'claimed' }, { status: 'taken', heldBy: '0:4' }]);
  });

  it('bounds sequence state by the capacity: accepted sequences, and the streams that hold them', async () => {
    const { backend } = fresh();
    const s = { name: 'dedupe.sequence', ttlMs: 60_000, maxEntries: 100 };
    for (let batch = 0; batch < 50; batch++) {
      const requests = Array.from({ length: 100 }, (_, i) => ({
        stream: `dev-${(batch * 100 + i) % 1000}`,
        sequence: batch,
        owner: `0:${batch * 100 + i}`,
      }));
      await backend.advanceSequences(s, 64, requests);
    }
    // 5,000 accepted sequences through a capacity of 100: the 4,900 oldest were evicted, and with them every stream
    // left without an accepted sequence.
    expect(backend.stats().get('dedupe.sequence')).toEqual({ entries: 100, evictions: 4900, expirations: 0 });
    expect(backend.streams('dedupe.sequence')).toBe(100);
    // An evicted stream's window is forgotten (protection weakened, and counted): an old sequence is new again.
    expect(await backend.advanceSequences(s, 64, [{ stream: 'dev-0', sequence: 1, owner: '9:9' }])).toEqual([
      { status: 'new' },
    ]);
  });

  it('expires entries from the front by the injected clock, without counting them as evictions', async () => {
    const { clock, backend } = fresh();
    const s = { name: 'x', ttlMs: 1000 };
    await backend.claim(s, [{ key: 'a', owner: '0:0' }]);
    clock.advance(500);
    await backend.claim(s, [{ key: 'b', owner: '0:1' }]);
    clock.advance(500); // a expires now (written + ttl), b has 500 ms left
    await backend.claim(s, [{ key: 'c', owner: '0:2' }]);
    expect(backend.stats().get('x')).toEqual({ entries: 2, evictions: 0, expirations: 1 });
    expect(await backend.claim(s, [{ key: 'b', owner: '9:9' }])).toEqual([{ status: 'taken', heldBy: '0:1' }]);
  });

  it('keeps an entry at least its TTL when a later call shortens the TTL', async () => {
    const { clock, backend } = fresh();
    await backend.claim({ name: 'x', ttlMs: 10_000 }, [{ key: 'long', owner: '0:0' }]);
    await backend.claim({ name: 'x', ttlMs: 100 }, [{ key: 'short', owner: '0:1' }]);
    clock.advance(200);
    // 'short' waits behind 'long' (expiry is kept in insertion order): held longer than asked, never shorter.
    expect(await backend.claim({ name: 'x', ttlMs: 100 }, [{ key: 'short', owner: '0:2' }])).toEqual([
      { status: 'taken', heldBy: '0:1' },
    ]);
    clock.advance(10_000);
    expect(
      await backend.claim({ name: 'x', ttlMs: 100 }, [
        { key: 'short', owner: '0:2' },
        { key: 'long', owner: '0:3' },
      ]),
    ).toEqual([{ status: 'claimed' }, { status: 'claimed' }]);
  });

  it('forgets a stream together with its last accepted sequence', async () => {
    const { clock, backend } = fresh();
    const s = { name: 'q', ttlMs: 1000 };
    await backend.advanceSequences(s, 8, [{ stream: 'a', sequence: 100, owner: '0:0' }]);
    clock.advance(600);
    await backend.advanceSequences(s, 8, [{ stream: 'a', sequence: 101, owner: '0:1' }]);
    clock.advance(600); // 100 expired, 101 (and so the stream) still live
    expect(backend.streams('q')).toBe(1);
    expect(await backend.advanceSequences(s, 8, [{ stream: 'a', sequence: 50, owner: '0:2' }])).toEqual([
      { status: 'too_old', highest: 101 },
    ]);
    clock.advance(400);
    expect(await backend.advanceSequences(s, 8, [])).toEqual([]);
    expect(backend.streams('q')).toBe(0);
    expect(backend.stats().get('q')).toEqual({ entries: 0, evictions: 0, expirations: 2 });
  });

  it('stays bounded over a long run with a moving clock (memory follows the TTL, not the run length)', async () => {
    const { clock, backend } = fresh();
    const s = { name: 'dedupe.event_id', ttlMs: 10_000 };
    const q = { name: 'dedupe.sequence', ttlMs: 10_000 };
    for (let batch = 0; batch < 500; batch++) {
      const base = batch * 200;
      await backend.claim(
        s,
        Array.from({ length: 200 }, (_, i) => ({ key: `e${base + i}`, owner: `0:${base + i}` })),
      );
      await backend.advanceSequences(
        q,
        64,
        Array.from({ length: 200 }, (_, i) => ({ stream: `d${i % 50}`, sequence: base + i, owner: `0:${base + i}` })),
      );
      clock.advance(1000); // 200 records per simulated second: 10 s of TTL holds ~2,000 entries
    }
    expect(backend.stats().get('dedupe.event_id')!.entries).toBeLessThanOrEqual(2200);
    expect(backend.stats().get('dedupe.sequence')!.entries).toBeLessThanOrEqual(2200);
    expect(backend.streams('dedupe.sequence')).toBe(50);
    expect(backend.evictions()).toBe(0);
  });

  it('rejects nonsense arguments as programming errors and refuses use after close', async () => {
    const { backend } = fresh();
    await expect(
      backend.advanceSequences({ name: 'q', ttlMs: 1 }, 64, [{ stream: 'd', sequence: 1.5, owner: '0:0' }]),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(backend.advanceSequences({ name: 'q', ttlMs: 1 }, -1, [])).rejects.toBeInstanceOf(VigilError);
    expect(() => new MemoryStateBackend({ clock: new ManualClock(), defaultMaxEntries: 0 })).toThrow(VigilError);
    await backend.close();
    await expect(backend.claim({ name: 'x', ttlMs: 1 }, [])).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('MemoryStateBackend against the Map-based backend it replaced (test/support/map-state-backend.ts)', () => {
  const ULIDS = ['01ARZ3NDEKTSV4RRFFQ69G5FAV', '01ARZ3NDEKTSV4RRFFQ69G5FAW', '7ZZZZZZZZZZZZZZZZZZZZZZZZZ'];
  const key = fc.oneof(
    fc.constantFrom(...ULIDS, ULIDS[0]!.toLowerCase(), '81ARZ3NDEKTSV4RRFFQ69G5FAV', 'e1', 'e2', 'e3', '', 'é\u0000'),
    fc.integer({ min: 0, max: 30 }).map((i) => `01JGZ5Q8V3${String(i).padStart(16, '0')}`),
  );
  // Owner tokens as originToken writes them (kept as codes) and others (kept as strings).
  const owner = fc.constantFrom('0:1', '0:2', '1:7', '2:9/1', '01:7', '0:1/0', 'x');
  const step = fc.oneof(
    fc.record({ op: fc.constant('claim' as const), requests: fc.array(fc.record({ key, owner }), { maxLength: 12 }) }),
    fc.record({
      op: fc.constant('advance' as const),
      window: fc.integer({ min: 0, max: 6 }),
      requests: fc.array(
        fc.record({
          stream: fc.constantFrom('d1', 'd2', 'd3', 'd4'),
          sequence: fc.oneof(fc.integer({ min: 0, max: 25 }), fc.constantFrom(2 ** 40, -3, 2 ** 53 - 1)),
          owner,
        }),
        { maxLength: 12 },
      ),
    }),
    fc.record({ op: fc.constant('restoreClaim' as const), key, owner, ahead: fc.integer({ min: -50, max: 500 }) }),
    fc.record({
      op: fc.constant('restoreSequence' as const),
      stream: fc.constantFrom('d1', 'd2', 'd5'),
      sequence: fc.integer({ min: 0, max: 25 }),
      owner,
      ahead: fc.integer({ min: -50, max: 500 }),
    }),
    fc.record({ op: fc.constant('elapse' as const), ms: fc.integer({ min: 0, max: 120 }) }),
  );

  it('gives the same verdicts, stats, streams and evictions for any sequence of calls (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 60 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(100, 300),
        async (steps, maxEntries, ttlMs) => {
          const c = new ManualClock();
          const flat = new MemoryStateBackend({ clock: c });
          const maps = new MapStateBackend({ clock: c });
          const claims = { name: 'dedupe.event_id', ttlMs, maxEntries };
          const sequences = { name: 'dedupe.sequence', ttlMs, maxEntries };
          for (const s of steps) {
            if (s.op === 'claim') {
              expect(await flat.claim(claims, s.requests)).toEqual(await maps.claim(claims, s.requests));
            } else if (s.op === 'advance') {
              expect(await flat.advanceSequences(sequences, s.window, s.requests)).toEqual(
                await maps.advanceSequences(sequences, s.window, s.requests),
              );
            } else if (s.op === 'restoreClaim') {
              flat.restoreClaim(claims, s.key, s.owner, c.now() + s.ahead);
              maps.restoreClaim(claims, s.key, s.owner, c.now() + s.ahead);
            } else if (s.op === 'restoreSequence') {
              flat.restoreSequence(sequences, s.stream, s.sequence, s.owner, c.now() + s.ahead);
              maps.restoreSequence(sequences, s.stream, s.sequence, s.owner, c.now() + s.ahead);
            } else {
              c.advance(s.ms);
            }
            expect(flat.stats()).toEqual(maps.stats());
            expect(flat.streams(sequences.name)).toBe(maps.streams(sequences.name));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('gives the same verdicts over a long run past its capacity (50,000 events, capacity 800, TTL of ~2 batches, 5% copies)', async () => {
    const c = new ManualClock();
    const flat = new MemoryStateBackend({ clock: c });
    const maps = new MapStateBackend({ clock: c });
    const claims = { name: 'dedupe.event_id', ttlMs: 1500, maxEntries: 800 };
    const sequences = { name: 'dedupe.sequence', ttlMs: 1500, maxEntries: 800 };
    const id = (n: number) => `01JGZ5Q8V3${String(n).padStart(16, '0')}`;
    let verdicts = 0;
    for (let batch = 0; batch < 100; batch++) {
      const claimRequests = Array.from({ length: 500 }, (_, i) => {
        const n = batch * 500 + i;
        const copy = i % 20 === 7 && n > 2000;
        return { key: id(copy ? n - 1 - ((n * 7919) % 2000) : n), owner: `0:${n}` };
      });
      const advanceRequests = claimRequests.map((r, i) => ({
        stream: `dev-${(batch * 500 + i) % 300}`,
        sequence: Math.floor((batch * 500 + i) / 300) - (i % 50 === 3 ? 9 : 0),
        owner: r.owner,
      }));
      const a = await flat.claim(claims, claimRequests);
      expect(a).toEqual(await maps.claim(claims, claimRequests));
      const b = await flat.advanceSequences(sequences, 8, advanceRequests);
      expect(b).toEqual(await maps.advanceSequences(sequences, 8, advanceRequests));
      verdicts += a.length + b.length;
      c.advance(1000);
    }
    expect(verdicts).toBe(100_000);
    expect(flat.stats()).toEqual(maps.stats());
    expect(flat.streams(sequences.name)).toBe(maps.streams(sequences.name));
    expect(flat.evictions()).toBeGreaterThan(0);
    expect(flat.stats().get(claims.name)!.expirations).toBeGreaterThan(0);
  });
});
