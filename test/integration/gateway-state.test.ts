/** The Redis GatewayState passes the shared conformance suite against the local stack's Redis (no mock). */
import { ulid } from 'ulid';
import { afterAll } from 'vitest';
import { openRedisGatewayState, type RedisGatewayState } from '../../adapters/redis/gateway-state.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { gatewayStateConformance } from '../conformance/gateway-state.ts';
import { sleep } from '../support/process.ts';

const opened: RedisGatewayState[] = [];
const keyPrefix = `it-gw-${ulid().toLowerCase()}:`;

gatewayStateConformance('redis', {
  make: async (params) => {
    const state = await openRedisGatewayState({ url: resolveEndpoints().redisUrl, keyPrefix }, params);
    opened.push(state);
    return state;
  },
  elapse: (ms) => sleep(ms),
  nonceTtlMs: 500,
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});
