/**
 * The conformance suite every GatewayState passes: the memory state in gateway/state.test.ts (ManualClock), the Redis
 * state in test/integration/gateway-state.test.ts (the real Redis of the local stack).
 *
 * @example
 * gatewayStateConformance('memory', { make: async (params) => new MemoryGatewayState(params, clock),
 *   elapse: async (ms) => clock.advance(ms) });
 */
import { describe, expect, it } from 'vitest';
import type { GatewayState, GatewayStateParams } from '../../gateway/state.ts';

export interface GatewayStateHarness {
  /** A fresh, open state with these parameters (device ids are unique per call, so states may share a store). */
  make(params: GatewayStateParams): Promise<GatewayState>;
  /** Lets `ms` of the state's time pass. */
  elapse(ms: number): Promise<void>;
  /** Short TTLs when `elapse` really waits. */
  readonly nonceTtlMs: number;
}

let devices = 0;
const device = (): string => `gs-dev-${process.pid}-${Date.now()}-${++devices}`;

export function gatewayStateConformance(label: string, harness: GatewayStateHarness): void {
  const params = (over: Partial<GatewayStateParams> = {}): GatewayStateParams => ({
    ratePerSec: 1000,
    burst: 10_000,
    nonceTtlMs: harness.nonceTtlMs,
    sequenceTtlMs: 3_600_000,
    ...over,
  });

  describe(`GatewayState conformance: ${label}`, () => {
    it('accepts fresh claims and refuses a nonce or a sequence seen before, in request order', async () => {
      const state = await harness.make(params());
      const d = device();
      const first = await state.admit({
        deviceId: d,
        owner: 'r1',
        cost: 4,
        claims: [
          { nonce: 'n1', sequence: 1 },
          { nonce: 'n2', sequence: 2 },
          { nonce: 'n1', sequence: 3 },
          { nonce: 'n3', sequence: 2 },
        ],
      });
      expect(first).toEqual({
        admitted: true,
        verdicts: ['fresh', 'fresh', 'nonce_replayed', 'sequence_replayed'],
      });
      const again = await state.admit({
        deviceId: d,
        owner: 'r2',
        cost: 2,
        claims: [
          { nonce: 'n2', sequence: 9 },
          { nonce: 'n9', sequence: 1 },
        ],
      });
      expect(again).toEqual({ admitted: true, verdicts: ['nonce_replayed', 'sequence_replayed'] });
      await state.close();
    });

    it('keeps states of devices apart', async () => {
      const state = await harness.make(params());
      const [a, b] = [device(), device()];
      await state.admit({ deviceId: a, owner: 'r1', cost: 1, claims: [{ nonce: 'n', sequence: 5 }] });
      const other = await state.admit({ deviceId: b, owner: 'r2', cost: 1, claims: [{ nonce: 'n', sequence: 5 }] });
      expect(other).toEqual({ admitted: true, verdicts: ['fresh'] });
      await state.close();
    });

    it('slides a 64-wide window: out of order inside it is fine, at or below highest - 64 is a replay', async () => {
      const state = await harness.make(params());
      const d = device();
      const verdicts = async (sequences: number[]) => {
        const r = await state.admit({
          deviceId: d,
          owner: `r-${sequences.join('-')}`,
          cost: sequences.length,
          claims: sequences.map((s) => ({ nonce: `n-${s}-${Math.random()}`, sequence: s })),
        });
        return r.admitted ? r.verdicts : r;
      };
      expect(await verdicts([100, 90, 37, 36, 100, 164, 101, 100])).toEqual([
        'fresh', // highest 100
        'fresh', // inside the window, out of order
        'fresh', // 100 - 63: the window's left edge
        'sequence_replayed', // 100 - 64: left of the window
        'sequence_replayed', // seen
        'fresh', // highest 164: the window now covers 101..164
        'fresh', // its left edge, never seen
        'sequence_replayed', // now left of the window
      ]);
      // A big jump forgets everything below: 90 was seen but is now far left; 1000 is new.
      expect(await verdicts([1000, 999, 936, 937, 1000])).toEqual([
        'fresh',
        'fresh',
        'sequence_replayed',
        'fresh',
        'sequence_replayed',
      ]);
      await state.close();
    });

    it('rate-limits per device: a request needing more tokens than are left is refused whole, claiming nothing', async () => {
      const state = await harness.make(params({ ratePerSec: 10, burst: 5 }));
      const d = device();
      expect(await state.admit({ deviceId: d, owner: 'a', cost: 4, claims: [] })).toEqual({
        admitted: true,
        verdicts: [],
      });
      const refused = await state.admit({ deviceId: d, owner: 'b', cost: 3, claims: [{ nonce: 'x', sequence: 1 }] });
      expect(refused.admitted).toBe(false);
      if (!refused.admitted) {
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(300); // 2 missing tokens at 10/s, and a little slack
      }
      // Another device has its own bucket.
      expect((await state.admit({ deviceId: device(), owner: 'c', cost: 5, claims: [] })).admitted).toBe(true);
      // The refused request claimed nothing: its nonce and sequence are still fresh once tokens are back.
      await harness.elapse(400);
      expect(await state.admit({ deviceId: d, owner: 'b2', cost: 3, claims: [{ nonce: 'x', sequence: 1 }] })).toEqual({
        admitted: true,
        verdicts: ['fresh'],
      });
      await state.close();
    });

    it("release undoes only the owner's claims, so a retry of the same events is fresh", async () => {
      const state = await harness.make(params());
      const d = device();
      await state.admit({ deviceId: d, owner: 'kept', cost: 1, claims: [{ nonce: 'k', sequence: 10 }] });
      const failed = [
        { nonce: 'f1', sequence: 11 },
        { nonce: 'f2', sequence: 12 },
      ];
      expect(await state.admit({ deviceId: d, owner: 'lost', cost: 2, claims: failed })).toEqual({
        admitted: true,
        verdicts: ['fresh', 'fresh'],
      });
      // Releasing as another owner, or another request's claim, changes nothing.
      await state.release(d, 'lost', [{ nonce: 'k', sequence: 10 }]);
      await state.release(d, 'someone-else', failed);
      await state.release(d, 'lost', failed);
      expect(
        await state.admit({
          deviceId: d,
          owner: 'retry',
          cost: 3,
          claims: [...failed, { nonce: 'k', sequence: 10 }],
        }),
      ).toEqual({ admitted: true, verdicts: ['fresh', 'fresh', 'nonce_replayed'] });
      await state.close();
    });

    it('forgets a nonce after its TTL (the sequence window still refuses the same sequence)', async () => {
      const state = await harness.make(params());
      const d = device();
      await state.admit({ deviceId: d, owner: 'a', cost: 1, claims: [{ nonce: 'old', sequence: 1 }] });
      await harness.elapse(harness.nonceTtlMs + 200);
      expect(
        await state.admit({
          deviceId: d,
          owner: 'b',
          cost: 2,
          claims: [
            { nonce: 'old', sequence: 2 },
            { nonce: 'new', sequence: 1 },
          ],
        }),
      ).toEqual({ admitted: true, verdicts: ['fresh', 'sequence_replayed'] });
      await state.close();
    });
  });
}
