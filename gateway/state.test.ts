import { describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/clock.ts';
import { gatewayStateConformance } from '../test/conformance/gateway-state.ts';
import { MemoryGatewayState, TokenBucket } from './state.ts';

const clock = new ManualClock();
gatewayStateConformance('memory', {
  make: async (params) => new MemoryGatewayState(params, clock),
  elapse: async (ms) => clock.advance(ms),
  nonceTtlMs: 1_000,
});

describe('TokenBucket', () => {
  it('starts full, refills at its rate, never above its size', () => {
    const c = new ManualClock();
    const bucket = new TokenBucket(2, 3, c);
    expect([bucket.take(1), bucket.take(1), bucket.take(1), bucket.take(1)]).toEqual([true, true, true, false]);
    expect(bucket.retryAfterMs(1)).toBe(500);
    c.advance(500);
    expect(bucket.take(1)).toBe(true);
    c.advance(60_000);
    expect(bucket.take(3)).toBe(true);
    expect(bucket.take(1)).toBe(false);
  });
});
