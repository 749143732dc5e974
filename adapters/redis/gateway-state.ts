/**
 * The Redis GatewayState (gateway/state.ts): gateways scaled out share device token buckets, the nonce cache and the
 * replay windows. One EVALSHA per request: the script takes the device's tokens and, when there were enough,
 * classifies and claims every nonce and sequence of the request in order, atomically.
 *
 * - Keys, all with a TTL: `<prefix>gw:{<device>}:bucket` (hash: tokens, last refill), `...:high` (highest accepted
 *   sequence, as the device sent it), `...:bits` (a 64-bit map: bit `s % 64` set = sequence s accepted, for s in the
 *   window), `...:nonce:<nonce>` (value: the request's owner token, so `release` undoes only its own claims). The
 *   `{<device>}` hash tag keeps one request's keys in one Cluster slot.
 * - Time comes from the caller's clock (ARGV), not Redis TIME, so every gateway and the tests agree on one clock source.
 * - Failure is immediate (`enableOfflineQueue: false`, no retries): STATE_UNAVAILABLE, and the gateway answers 503.
 */
import { Redis } from 'ioredis';
import type {
  AdmitRequest,
  AdmitResult,
  ClaimVerdict,
  GatewayState,
  GatewayStateParams,
  ReplayClaim,
} from '../../gateway/state.ts';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { redisSecurityOptions } from './security.ts';
import { redactRedisUrl } from './state.ts';

/**
 * KEYS[1] bucket, KEYS[2] high, KEYS[3] bits, KEYS[3+i] nonce key of claim i.
 * ARGV[1] now (ms), ARGV[2] rate/s, ARGV[3] burst, ARGV[4] cost, ARGV[5] nonce TTL, ARGV[6] window TTL, ARGV[7] owner,
 * ARGV[7+i] sequence of claim i (decimal).
 * Returns {'r<retry after ms>'} when rate-limited, else {'a', verdict...}: `f` fresh, `n` nonce replayed, `s` sequence
 * replayed (left of the window, or seen).
 */
export const GATEWAY_ADMIT_LUA = `
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local bucketTtl = math.ceil(burst * 1000 / rate) + 1000
local b = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
if tokens < cost then
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'a', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], bucketTtl)
  return {'r' .. tostring(math.ceil((cost - tokens) * 1000 / rate))}
end
redis.call('HSET', KEYS[1], 't', tostring(tokens - cost), 'a', ARGV[1])
redis.call('PEXPIRE', KEYS[1], bucketTtl)
local highText = redis.call('GET', KEYS[2])
local high = nil
if highText then high = tonumber(highText) end
local out = {'a'}
local claimed = false
for i = 1, #KEYS - 3 do
  local nonceKey = KEYS[3 + i]
  local seqText = ARGV[7 + i]
  local seq = tonumber(seqText)
  if redis.call('EXISTS', nonceKey) == 1 then
    out[i + 1] = 'n'
  else
    local fresh = true
    if high and seq <= high then
      if seq <= high - 64 or redis.call('GETBIT', KEYS[3], seq % 64) == 1 then fresh = false end
    end
    if not fresh then
      out[i + 1] = 's'
    else
      redis.call('SET', nonceKey, ARGV[7], 'PX', ARGV[5])
      if not high then
        redis.call('DEL', KEYS[3])
        high = seq
        highText = seqText
      elseif seq > high then
        if seq - high >= 64 then
          redis.call('DEL', KEYS[3])
        else
          for k = high + 1, seq do redis.call('SETBIT', KEYS[3], k % 64, 0) end
        end
        high = seq
        highText = seqText
      end
      redis.call('SETBIT', KEYS[3], seq % 64, 1)
      claimed = true
      out[i + 1] = 'f'
    end
  end
end
if claimed then
  redis.call('SET', KEYS[2], highText, 'PX', ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return out
`;

/**
 * KEYS[1] high, KEYS[2] bits, KEYS[2+i] nonce key of claim i. ARGV[1] owner, ARGV[1+i] sequence of claim i.
 * Deletes each nonce the owner holds and clears its sequence's bit when still inside the window.
 */
export const GATEWAY_RELEASE_LUA = `
local highText = redis.call('GET', KEYS[1])
local high = nil
if highText then high = tonumber(highText) end
for i = 1, #KEYS - 2 do
  if redis.call('GET', KEYS[2 + i]) == ARGV[1] then
    redis.call('DEL', KEYS[2 + i])
    local seq = tonumber(ARGV[1 + i])
    if high and seq <= high and seq > high - 64 then redis.call('SETBIT', KEYS[2], seq % 64, 0) end
  end
end
return 0
`;

export interface RedisGatewayStateOptions {
  /** `redis://host:port`, e.g. resolveEndpoints().redisUrl. */
  readonly url: string;
  /** Prefix of every key (default `vigil:`); a test run gives its own. */
  readonly keyPrefix?: string;
  readonly commandTimeoutMs?: number;
  readonly clock?: Clock;
}

const VERDICTS: Record<string, ClaimVerdict> = { f: 'fresh', n: 'nonce_replayed', s: 'sequence_replayed' };

/**
 * Opens the shared gateway state on Redis (connects, pings, loads the two scripts).
 *
 * @example
 * const state = await openRedisGatewayState({ url: resolveEndpoints().redisUrl },
 *   { ratePerSec: 100, burst: 1000, nonceTtlMs: 600_000, sequenceTtlMs: 604_800_000 });
 */
export async function openRedisGatewayState(
  options: RedisGatewayStateOptions,
  params: GatewayStateParams,
): Promise<RedisGatewayState> {
  const state = new RedisGatewayState(options, params);
  await state.open();
  return state;
}

export class RedisGatewayState implements GatewayState {
  readonly #redis: Redis;
  readonly #safeUrl: string;
  readonly #prefix: string;
  readonly #clock: Clock;
  #admitSha = '';
  #releaseSha = '';

  constructor(
    options: RedisGatewayStateOptions,
    private readonly params: GatewayStateParams,
  ) {
    this.#safeUrl = redactRedisUrl(options.url);
    this.#prefix = `${options.keyPrefix ?? 'vigil:'}gw:`;
    this.#clock = options.clock ?? systemClock;
    this.#redis = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 3_000,
      commandTimeout: options.commandTimeoutMs ?? 2_000,
      connectionName: 'vigil-gateway',
      ...redisSecurityOptions(options.url),
    });
    this.#redis.on('error', () => {}); // surfaced by the failing command as STATE_UNAVAILABLE
  }

  async open(): Promise<void> {
    try {
      if (this.#redis.status === 'wait') await this.#redis.connect();
      await this.#redis.ping();
      await this.#load();
    } catch (error) {
      this.#redis.disconnect();
      throw this.#unavailable('open', error);
    }
  }

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    const base = `${this.#prefix}{${request.deviceId}}:`;
    const keys = [`${base}bucket`, `${base}high`, `${base}bits`];
    const argv = [
      String(this.#clock.now()),
      String(this.params.ratePerSec),
      String(this.params.burst),
      String(request.cost),
      String(this.params.nonceTtlMs),
      String(this.params.sequenceTtlMs),
      request.owner,
    ];
    for (const claim of request.claims) {
      keys.push(`${base}nonce:${claim.nonce}`);
      argv.push(String(claim.sequence));
    }
    const reply = (await this.#eval('admit', () => this.#admitSha, keys, argv)) as string[];
    const head = reply[0] ?? '';
    if (head.startsWith('r')) return { admitted: false, retryAfterMs: Number(head.slice(1)) };
    if (head !== 'a') throw new VigilError('INTERNAL', 'gateway admit script returned an unknown reply');
    return {
      admitted: true,
      verdicts: reply.slice(1).map((v) => {
        const verdict = VERDICTS[v];
        if (!verdict) throw new VigilError('INTERNAL', 'gateway admit script returned an unknown verdict');
        return verdict;
      }),
    };
  }

  async release(deviceId: string, owner: string, claims: readonly ReplayClaim[]): Promise<void> {
    if (claims.length === 0) return;
    const base = `${this.#prefix}{${deviceId}}:`;
    const keys = [`${base}high`, `${base}bits`, ...claims.map((c) => `${base}nonce:${c.nonce}`)];
    await this.#eval('release', () => this.#releaseSha, keys, [owner, ...claims.map((c) => String(c.sequence))]);
  }

  async close(): Promise<void> {
    try {
      if (this.#redis.status === 'ready') await this.#redis.quit();
      else this.#redis.disconnect();
    } catch {
      this.#redis.disconnect();
    }
  }

  async #load(): Promise<void> {
    this.#admitSha = (await this.#redis.script('LOAD', GATEWAY_ADMIT_LUA)) as string;
    this.#releaseSha = (await this.#redis.script('LOAD', GATEWAY_RELEASE_LUA)) as string;
  }

  async #eval(operation: string, sha: () => string, keys: string[], argv: string[]): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#redis.evalsha(sha(), keys.length, ...keys, ...argv);
      } catch (error) {
        // Redis restarted (or SCRIPT FLUSH): load the scripts again and rerun once.
        if (attempt === 0 && error instanceof Error && error.message.startsWith('NOSCRIPT')) {
          try {
            await this.#load();
          } catch (reload) {
            throw this.#unavailable(operation, reload);
          }
          continue;
        }
        throw this.#unavailable(operation, error);
      }
    }
  }

  /** Never the command's arguments (device ids, nonces) in the message: only the words of the error. */
  #unavailable(operation: string, error: unknown): VigilError {
    const words = error instanceof Error ? error.message.split(/[:.]/)[0] : 'error';
    return new VigilError(
      'STATE_UNAVAILABLE',
      `Redis gateway state at ${this.#safeUrl}: ${operation} failed: ${words}`,
    );
  }
}
