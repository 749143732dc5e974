/**
 * The conformance suite every StateBackend passes: the memory backend in a unit test (ManualClock), the Redis backend
 * in test/integration/redis-state.test.ts (the real Redis of the local stack). Call it inside a test file:
 *
 * @example
 * stateBackendConformance('memory', { make: async () => backend, elapse: async (ms) => clock.advance(ms), ttlMs: 1000,
 *   namespace: 'test' });
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateBackend, StateDescriptor } from '../../runtime/state.ts';

export interface ConformanceHarness {
  /** Returns an opened backend (called once, before the suite). */
  make(): Promise<StateBackend>;
  /** Lets `ms` of the backend's time pass: a ManualClock step, or a real wait against Redis. */
  elapse(ms: number): Promise<void>;
  /** TTL for the expiry checks: short when `elapse` really waits. */
  readonly ttlMs: number;
  /** Prefix of every descriptor name the suite uses, unique per run so a shared Redis never mixes runs. */
  readonly namespace: string;
  /** Called once after the suite (e.g. delete the namespace's keys, close the backend). */
  cleanup?(backend: StateBackend): Promise<void>;
}

const LONG_TTL = 3_600_000;

export function stateBackendConformance(label: string, harness: ConformanceHarness): void {
  describe(`StateBackend conformance: ${label}`, () => {
    let backend: StateBackend;
    let counter = 0;
    const state = (ttlMs = LONG_TTL): StateDescriptor => ({ name: `${harness.namespace}.s${++counter}`, ttlMs });

    beforeAll(async () => {
      backend = await harness.make();
    });
    afterAll(async () => {
      await harness.cleanup?.(backend);
    });

    describe('claim', () => {
      it('classifies in order within one call: a later request sees an earlier claim', async () => {
        const s = state();
        const results = await backend.claim(s, [
          { key: 'a', owner: '0:1' },
          { key: 'a', owner: '0:2' },
          { key: 'b', owner: '0:3' },
          { key: 'a', owner: '0:1' },
          { key: 'b', owner: '0:3' },
        ]);
        expect(results).toEqual([
          { status: 'claimed' },
          { status: 'taken', heldBy: '0:1' },
          { status: 'claimed' },
          { status: 'own' },
          { status: 'own' },
        ]);
      });

      it('remembers claims across calls: the same owner gets own, any other owner gets taken', async () => {
        const s = state();
        expect(await backend.claim(s, [{ key: 'x', owner: '3:10' }])).toEqual([{ status: 'claimed' }]);
        expect(
          await backend.claim(s, [
            { key: 'x', owner: '3:10' },
            { key: 'x', owner: '5:99' },
          ]),
        ).toEqual([{ status: 'own' }, { status: 'taken', heldBy: '3:10' }]);
      });

      it('answers an empty call with an empty list', async () => {
        expect(await backend.claim(state(), [])).toEqual([]);
      });

      it('keeps descriptors apart: the same key in two states is two claims', async () => {
        const [s1, s2] = [state(), state()];
        expect(await backend.claim(s1, [{ key: 'k', owner: '0:1' }])).toEqual([{ status: 'claimed' }]);
        expect(await backend.claim(s2, [{ key: 'k', owner: '0:2' }])).toEqual([{ status: 'claimed' }]);
      });

      it('keeps keys with separators and non-ASCII apart', async () => {
        const s = state();
        const keys = ['a:b', 'a', 'a:b:c', 'ä:β', 'a\u0000b', ''];
        const results = await backend.claim(
          s,
          keys.map((key, i) => ({ key, owner: `0:${i}` })),
        );
        expect(results).toEqual(keys.map(() => ({ status: 'claimed' })));
        const again = await backend.claim(
          s,
          keys.map((key, i) => ({ key, owner: `0:${i}` })),
        );
        expect(again).toEqual(keys.map(() => ({ status: 'own' })));
      });

      it('forgets a claim once its TTL has passed, not before', async () => {
        const s = state(harness.ttlMs);
        expect(await backend.claim(s, [{ key: 'k', owner: '0:1' }])).toEqual([{ status: 'claimed' }]);
        await harness.elapse(Math.floor(harness.ttlMs / 4));
        expect(await backend.claim(s, [{ key: 'k', owner: '0:2' }])).toEqual([{ status: 'taken', heldBy: '0:1' }]);
        await harness.elapse(harness.ttlMs);
        expect(await backend.claim(s, [{ key: 'k', owner: '0:2' }])).toEqual([{ status: 'claimed' }]);
      });

      it('classifies a large batch in order (later requests see earlier ones across any internal chunking)', async () => {
        const s = state();
        const n = 2500;
        const requests = Array.from({ length: n }, (_, i) => ({ key: `k${i % 2000}`, owner: `1:${i}` }));
        const results = await backend.claim(s, requests);
        for (let i = 0; i < n; i++) {
          expect(results[i]).toEqual(i < 2000 ? { status: 'claimed' } : { status: 'taken', heldBy: `1:${i - 2000}` });
        }
        // A replay of the same batch (same owners) is classified exactly as the first time.
        expect(await backend.claim(s, requests)).toEqual(
          results.map((r) => (r.status === 'claimed' ? { status: 'own' } : r)),
        );
      });
    });

    describe('advanceSequences', () => {
      it('accepts new sequences and reports a repeat from another owner as a duplicate', async () => {
        const s = state();
        const results = await backend.advanceSequences(s, 64, [
          { stream: 'd1', sequence: 1, owner: '0:1' },
          { stream: 'd1', sequence: 2, owner: '0:2' },
          { stream: 'd1', sequence: 1, owner: '0:3' },
        ]);
        expect(results).toEqual([{ status: 'new' }, { status: 'new' }, { status: 'duplicate', heldBy: '0:1' }]);
        expect(await backend.advanceSequences(s, 64, [{ stream: 'd1', sequence: 2, owner: '4:4' }])).toEqual([
          { status: 'duplicate', heldBy: '0:2' },
        ]);
      });

      it('accepts reordering inside the window', async () => {
        const s = state();
        const seqs = [10, 8, 9, 7, 12, 11];
        const results = await backend.advanceSequences(
          s,
          64,
          seqs.map((sequence, i) => ({ stream: 'd', sequence, owner: `0:${i}` })),
        );
        expect(results).toEqual(seqs.map(() => ({ status: 'new' })));
      });

      it('rejects a sequence more than `window` below the highest as too_old; the window edge is inside', async () => {
        const s = state();
        expect(await backend.advanceSequences(s, 64, [{ stream: 'd', sequence: 100, owner: '0:1' }])).toEqual([
          { status: 'new' },
        ]);
        const results = await backend.advanceSequences(s, 64, [
          { stream: 'd', sequence: 35, owner: '0:2' },
          { stream: 'd', sequence: 36, owner: '0:3' },
          { stream: 'd', sequence: 0, owner: '0:4' },
        ]);
        expect(results).toEqual([
          { status: 'too_old', highest: 100 },
          { status: 'new' },
          { status: 'too_old', highest: 100 },
        ]);
      });

      it('moves the window within one call and keeps streams apart', async () => {
        const s = state();
        const results = await backend.advanceSequences(s, 4, [
          { stream: 'a', sequence: 1, owner: '0:1' },
          { stream: 'a', sequence: 50, owner: '0:2' },
          { stream: 'a', sequence: 2, owner: '0:3' },
          { stream: 'b', sequence: 2, owner: '0:4' },
          { stream: 'a:b', sequence: 2, owner: '0:5' },
          { stream: 'a', sequence: 46, owner: '0:6' },
          { stream: 'a', sequence: 45, owner: '0:7' },
        ]);
        expect(results).toEqual([
          { status: 'new' },
          { status: 'new' },
          { status: 'too_old', highest: 50 },
          { status: 'new' },
          { status: 'new' },
          { status: 'new' },
          { status: 'too_old', highest: 50 },
        ]);
      });

      it('classifies a replay of the same records (same owners) exactly as the first time', async () => {
        const s = state();
        const requests = [
          ...Array.from({ length: 200 }, (_, i) => ({ stream: 'dev', sequence: i + 1, owner: `2:${i}` })),
          { stream: 'dev', sequence: 150, owner: '2:200' }, // a duplicate from another record
          { stream: 'dev', sequence: 3, owner: '2:201' }, // its first owner's key is still held: a duplicate
          { stream: 'other', sequence: 1, owner: '2:202' },
          { stream: 'other', sequence: 1000, owner: '2:203' },
          { stream: 'other', sequence: 5, owner: '2:204' }, // never seen and left of the window
        ];
        const first = await backend.advanceSequences(s, 64, requests);
        expect(first.slice(0, 200)).toEqual(requests.slice(0, 200).map(() => ({ status: 'new' })));
        expect(first.slice(200)).toEqual([
          { status: 'duplicate', heldBy: '2:149' },
          { status: 'duplicate', heldBy: '2:2' },
          { status: 'new' },
          { status: 'new' },
          { status: 'too_old', highest: 1000 },
        ]);
        // The "crash": the same records are read again and must come out the same, although the window has moved
        // far beyond the first ones since.
        expect(await backend.advanceSequences(s, 64, requests)).toEqual(first);
        // A different record carrying an accepted sequence stays a duplicate, even left of the window.
        expect(await backend.advanceSequences(s, 64, [{ stream: 'dev', sequence: 1, owner: '9:9' }])).toEqual([
          { status: 'duplicate', heldBy: '2:0' },
        ]);
      });

      it('handles sequence 0 and the largest safe integer exactly', async () => {
        const s = state();
        const max = Number.MAX_SAFE_INTEGER;
        const results = await backend.advanceSequences(s, 64, [
          { stream: 'd', sequence: 0, owner: '0:1' },
          { stream: 'd', sequence: max, owner: '0:2' },
          { stream: 'd', sequence: max - 64, owner: '0:3' },
          { stream: 'd', sequence: max - 65, owner: '0:4' },
          { stream: 'd', sequence: max, owner: '0:5' },
        ]);
        expect(results).toEqual([
          { status: 'new' },
          { status: 'new' },
          { status: 'new' },
          { status: 'too_old', highest: max },
          { status: 'duplicate', heldBy: '0:2' },
        ]);
      });

      it('forgets a stream once its TTL has passed', async () => {
        const s = state(harness.ttlMs);
        await backend.advanceSequences(s, 8, [{ stream: 'd', sequence: 1000, owner: '0:1' }]);
        await harness.elapse(Math.floor(harness.ttlMs / 4));
        expect(
          await backend.advanceSequences(s, 8, [
            { stream: 'd', sequence: 1, owner: '0:2' },
            { stream: 'd', sequence: 1000, owner: '0:3' },
          ]),
        ).toEqual([
          { status: 'too_old', highest: 1000 },
          { status: 'duplicate', heldBy: '0:1' },
        ]);
        await harness.elapse(harness.ttlMs);
        expect(
          await backend.advanceSequences(s, 8, [
            { stream: 'd', sequence: 1, owner: '0:4' },
            { stream: 'd', sequence: 1000, owner: '0:5' },
          ]),
        ).toEqual([{ status: 'new' }, { status: 'new' }]);
      });

      it('classifies a large batch in order across any internal chunking', async () => {
        const s = state();
        const n = 3000;
        const requests = Array.from({ length: n }, (_, i) => {
          const sequence = i < 2000 ? i : i - 2000;
          return { stream: `dev-${sequence % 7}`, sequence, owner: `4:${i}` };
        });
        const results = await backend.advanceSequences(s, 5000, requests);
        for (let i = 0; i < n; i++) {
          expect(results[i]).toEqual(i < 2000 ? { status: 'new' } : { status: 'duplicate', heldBy: `4:${i - 2000}` });
        }
        expect(await backend.advanceSequences(s, 5000, requests)).toEqual(results);
      });

      it('answers an empty call with an empty list', async () => {
        expect(await backend.advanceSequences(state(), 64, [])).toEqual([]);
      });
    });

    describe('keyed values', () => {
      it('round-trips, overwrites and deletes values, in order within one call', async () => {
        const s = state();
        expect(await backend.get(s, [{ key: 'p1' }, { key: 'p2' }])).toEqual([null, null]);
        await backend.put(s, [
          { key: 'p1', value: '{"state":"open","band":"urgent"}' },
          { key: 'p2', value: 'first' },
          { key: 'p2', value: 'second ✓' },
        ]);
        expect(await backend.get(s, [{ key: 'p1' }, { key: 'p2' }, { key: 'p3' }])).toEqual([
          '{"state":"open","band":"urgent"}',
          'second ✓',
          null,
        ]);
        await backend.put(s, [{ key: 'p1', value: null }]);
        expect(await backend.get(s, [{ key: 'p1' }, { key: 'p2' }])).toEqual([null, 'second ✓']);
        expect(await backend.get(s, [])).toEqual([]);
        await backend.put(s, []);
      });

      it('expires a value its TTL after its last write, and keeps states apart', async () => {
        const s = state(harness.ttlMs);
        const other = state();
        await backend.put(s, [{ key: 'k', value: 'v1' }]);
        await backend.put(other, [{ key: 'k', value: 'elsewhere' }]);
        await harness.elapse(Math.floor(harness.ttlMs / 2));
        await backend.put(s, [{ key: 'k', value: 'v2' }]);
        await harness.elapse(Math.floor((harness.ttlMs * 3) / 4));
        expect(await backend.get(s, [{ key: 'k' }])).toEqual(['v2']);
        await harness.elapse(harness.ttlMs);
        expect(await backend.get(s, [{ key: 'k' }])).toEqual([null]);
        expect(await backend.get(other, [{ key: 'k' }])).toEqual(['elsewhere']);
      });
    });
  });
}
