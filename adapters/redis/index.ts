/**
 * Redis for Vigil: the distributed StateBackend (see ./state.ts for its design).
 */
import { RedisStateBackend, type RedisStateOptions } from './state.ts';

export { REDIS_STATE_DEFAULTS, RedisStateBackend, type RedisStateOptions, redactRedisUrl } from './state.ts';

/**
 * Creates the Redis state backend. Nothing connects until `open()`, which pings Redis, loads the Lua scripts and
 * fails with STATE_UNAVAILABLE (naming the URL without credentials and what to check) when Redis cannot be used.
 *
 * @example
 * import { resolveEndpoints } from '../../runtime/endpoints.ts';
 * const state = redisState({ url: resolveEndpoints().redisUrl });
 * await state.open();
 * const verdicts = await state.claim({ name: 'dedupe.event_id', ttlMs: 86_400_000 }, [{ key: eventId, owner: '3:1207' }]);
 * await state.close();
 */
export function redisState(options: RedisStateOptions): RedisStateBackend {
  return new RedisStateBackend(options);
}
