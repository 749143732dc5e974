/**
 * The Redis StateBackend (distributed mode), over ioredis.
 *
 * - One round trip per call: a Lua script (SCRIPT LOAD at open, EVALSHA after) classifies the whole batch in order
 *   and returns the verdicts. A batch larger than `maxKeysPerScript` is split into several script calls sent in ONE
 *   pipeline: still one round trip, but Redis serves other clients between the scripts instead of blocking on one long
 *   script. A retry after a partial failure is safe: every write carries the owner token, so re-running a batch
 *   classifies it exactly as before.
 * - Keys: `vigil:<state name>:<key>` for claims, `vigil:<state name>:high:<stream>` and
 *   `vigil:<state name>:seq:<stream>:<sequence>` for replay windows, `vigil:meta:<key>` for metadata; every one with
 *   a TTL (PX). `keyPrefix` replaces `vigil:` when independent logs share one Redis. Device ids live in keys
 *   (Redis is a data store); they never reach a log line or an error message.
 * - Failure is immediate, never silently queued: `lazyConnect`, `enableOfflineQueue: false`, no per-request retries.
 *   Connection and command errors become VigilError STATE_UNAVAILABLE (retriable); the runtime retries the batch.
 * - Capacity: `StateDescriptor.maxEntries` is an in-memory notion; Redis memory is bounded by the TTLs. Run Redis with
 *   `maxmemory-policy noeviction`: under memory pressure a write then fails (STATE_UNAVAILABLE, visible) instead of
 *   dedupe state being silently evicted.
 * - Topology: a single Redis (or a primary behind Sentinel). Keys of one batch span many hash slots, so Redis Cluster
 *   would need per-slot chunking, which this backend does not do.
 */
import { Redis } from 'ioredis';
import { VigilError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import { assertSequence, assertWindow } from '../../runtime/state/args.ts';
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
import { CLAIM_LUA, SEQUENCE_LUA } from './scripts.ts';
import { redisSecurityOptions } from './security.ts';

export interface RedisStateOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). e.g. `redis://127.0.0.1:16379` */
  readonly url: string;
  /** Most keys one script call may touch; larger batches are split (one pipeline, still one round trip). */
  readonly maxKeysPerScript?: number;
  /** A command (or script) that takes longer fails with STATE_UNAVAILABLE. */
  readonly commandTimeoutMs?: number;
  /** How long `open()` waits for the TCP connection. */
  readonly connectTimeoutMs?: number;
  /** Connection problems are logged here (message and code only). */
  readonly log?: Logger;
  /**
   * Prefix of every key. The default `vigil:` gives `vigil:<state name>:<key>`; a deployment (or a test run) that
   * shares one Redis between independent pipelines or topic incarnations gives each its own, e.g. `vigil:staging:`,
   * because owner tokens (`partition:offset`) only mean something within one log.
   */
  readonly keyPrefix?: string;
}

export const REDIS_STATE_DEFAULTS = {
  keyPrefix: 'vigil:',
  maxKeysPerScript: 2000,
  commandTimeoutMs: 5000,
  connectTimeoutMs: 3000,
} as const;

const CLAIMED: ClaimResult = Object.freeze({ status: 'claimed' });
const OWN: ClaimResult = Object.freeze({ status: 'own' });
const NEW: SequenceResult = Object.freeze({ status: 'new' });

type Args = (string | number)[];

/** The URL without credentials (and without query parameters, which may carry them): safe for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const auth = parsed.username || parsed.password ? '***@' : '';
    return `${parsed.protocol}//${auth}${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(unparseable Redis URL)';
  }
}

/** ioredis errors may carry the command and its arguments (device ids in keys): keep only the words. */
function sanitise(error: unknown): Error {
  if (error instanceof Error) {
    const clean = new Error(error.message);
    clean.name = error.name;
    return clean;
  }
  return new Error(String(error));
}

export class RedisStateBackend implements StateBackend {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #safeUrl: string;
  readonly #maxKeys: number;
  readonly #log: Logger | undefined;
  readonly #prefix: string;
  #claimSha = '';
  #sequenceSha = '';
  #degraded = false;
  /** The last connection error ioredis reported (its connect() rejection only says "Connection is closed"). */
  #lastError: unknown;

  constructor(options: RedisStateOptions) {
    this.#safeUrl = redactRedisUrl(options.url);
    try {
      new URL(options.url);
    } catch (error) {
      throw new VigilError('CONFIG_INVALID', `Redis URL ${this.#safeUrl} is not a URL: use redis://host:port`, {
        cause: sanitise(error),
      });
    }
    const maxKeys = options.maxKeysPerScript ?? REDIS_STATE_DEFAULTS.maxKeysPerScript;
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 2) {
      throw new VigilError('CONFIG_INVALID', 'Redis state: maxKeysPerScript must be an integer >= 2');
    }
    this.#maxKeys = maxKeys;
    this.#log = options.log;
    this.#prefix = options.keyPrefix ?? REDIS_STATE_DEFAULTS.keyPrefix;
    this.#redis = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: options.connectTimeoutMs ?? REDIS_STATE_DEFAULTS.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs ?? REDIS_STATE_DEFAULTS.commandTimeoutMs,
      connectionName: 'vigil-state',
      ...redisSecurityOptions(options.url),
    });
    // Without a listener ioredis prints every reconnect error itself. Log one line per outage, not one per attempt.
    this.#redis.on('error', (error: unknown) => {
      this.#lastError = error;
      if (this.#degraded) return;
      this.#degraded = true;
      this.#log?.warn({ url: this.#safeUrl, err: sanitise(error).message }, 'redis state backend connection error');
    });
    this.#redis.on('ready', () => {
      if (!this.#degraded) return;
      this.#degraded = false;
      this.#log?.info({ url: this.#safeUrl }, 'redis state backend reconnected');
    });
  }

  /** Connects, pings and loads the scripts; fails with what to check when Redis cannot be used. Idempotent. */
  async open(): Promise<void> {
    const status = this.#redis.status;
    if (status === 'wait' || status === 'end' || status === 'close') {
      this.#lastError = undefined;
      try {
        await this.#redis.connect();
      } catch (error) {
        this.#redis.disconnect(); // stop background reconnects: open() reports, the caller decides to retry
        throw this.#unavailable('connect', this.#lastError ?? error, true);
      }
    }
    try {
      await this.#redis.ping();
      await this.#loadScripts();
    } catch (error) {
      throw this.#unavailable('open', error, true);
    }
  }

  async claim(state: StateDescriptor, requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    if (requests.length === 0) return [];
    const prefix = `${this.#prefix}${state.name}:`;
    const ttl = String(Math.max(1, Math.ceil(state.ttlMs)));
    const calls: Args[] = [];
    for (let start = 0; start < requests.length; start += this.#maxKeys) {
      const end = Math.min(requests.length, start + this.#maxKeys);
      const keys: string[] = [];
      const argv: string[] = [ttl];
      for (let i = start; i < end; i++) {
        const request = requests[i]!;
        keys.push(prefix + request.key);
        argv.push(request.owner);
      }
      calls.push([keys.length, ...keys, ...argv]);
    }
    const verdicts = await this.#run('claim', () => this.#claimSha, calls);
    return verdicts.map((v): ClaimResult => {
      if (v === 'c') return CLAIMED;
      if (v === 'o') return OWN;
      if (v.startsWith('t')) return { status: 'taken', heldBy: v.slice(1) };
      throw new VigilError('INTERNAL', 'Redis claim script returned an unknown verdict');
    });
  }

  async advanceSequences(
    state: StateDescriptor,
    window: number,
    requests: readonly SequenceRequest[],
  ): Promise<SequenceResult[]> {
    assertWindow(window);
    if (requests.length === 0) return [];
    const prefix = `${this.#prefix}${state.name}:`;
    const ttl = String(Math.max(1, Math.ceil(state.ttlMs)));
    const perScript = Math.floor(this.#maxKeys / 2);
    const calls: Args[] = [];
    for (let start = 0; start < requests.length; start += perScript) {
      const end = Math.min(requests.length, start + perScript);
      const keys: string[] = [];
      const argv: string[] = [ttl, String(window)];
      for (let i = start; i < end; i++) {
        const { stream, sequence, owner } = requests[i]!;
        assertSequence(sequence);
        const seq = String(sequence);
        keys.push(`${prefix}high:${stream}`, `${prefix}seq:${stream}:${seq}`);
        argv.push(seq, owner);
      }
      calls.push([keys.length, ...keys, ...argv]);
    }
    const verdicts = await this.#run('advanceSequences', () => this.#sequenceSha, calls);
    return verdicts.map((v): SequenceResult => {
      if (v === 'n') return NEW;
      if (v.startsWith('d')) return { status: 'duplicate', heldBy: v.slice(1) };
      if (v.startsWith('o')) return { status: 'too_old', highest: Number(v.slice(1)) };
      throw new VigilError('INTERNAL', 'Redis sequence script returned an unknown verdict');
    });
  }

  async get(state: StateDescriptor, requests: readonly ValueRequest[]): Promise<(string | null)[]> {
    if (requests.length === 0) return [];
    try {
      return await this.#redis.mget(requests.map((r) => this.#valueKey(state, r.key)));
    } catch (error) {
      throw this.#unavailable('get', error);
    }
  }

  async put(state: StateDescriptor, writes: readonly ValueWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const ttl = Math.max(1, Math.ceil(state.ttlMs));
    const batch = this.#redis.multi();
    for (const { key, value } of writes) {
      if (value === null) batch.del(this.#valueKey(state, key));
      else batch.set(this.#valueKey(state, key), value, 'PX', ttl);
    }
    try {
      const replies = await batch.exec();
      const failed = replies?.find(([error]) => error);
      if (!replies || failed) throw failed?.[0] ?? new Error('transaction discarded');
    } catch (error) {
      throw this.#unavailable('put', error);
    }
  }

  #valueKey(state: StateDescriptor, key: string): string {
    return `${this.#prefix}${state.name}:v:${key}`;
  }

  async close(): Promise<void> {
    if (this.#redis.status === 'ready') {
      try {
        await this.#redis.quit();
        return;
      } catch {
        // fall through: drop the connection
      }
    }
    this.#redis.disconnect();
  }

  /** The underlying client, for tests and diagnostics only (operators never see it). */
  get client(): Redis {
    return this.#redis;
  }

  async #loadScripts(): Promise<void> {
    this.#claimSha = (await this.#redis.script('LOAD', CLAIM_LUA)) as string;
    this.#sequenceSha = (await this.#redis.script('LOAD', SEQUENCE_LUA)) as string;
  }

  /** Runs the script calls (one EVALSHA, or one pipeline of them) and concatenates their verdicts, in order. */
  async #run(operation: string, sha: () => string, calls: Args[]): Promise<string[]> {
    if (sha() === '') throw new VigilError('INTERNAL', `Redis state backend: ${operation} before open()`);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#exec(sha(), calls);
      } catch (error) {
        // Redis restarted (or SCRIPT FLUSH): load the scripts again and rerun; replays are classified identically.
        if (attempt === 0 && error instanceof Error && error.message.startsWith('NOSCRIPT')) {
          try {
            await this.#loadScripts();
          } catch (reload) {
            throw this.#unavailable(operation, reload);
          }
          continue;
        }
        throw this.#unavailable(operation, error);
      }
    }
  }

  async #exec(sha: string, calls: Args[]): Promise<string[]> {
    if (calls.length === 1) return (await this.#redis.evalsha(sha, ...(calls[0] as [number, ...string[]]))) as string[];
    const pipeline = this.#redis.pipeline();
    for (const call of calls) pipeline.evalsha(sha, ...(call as [number, ...string[]]));
    const replies = await pipeline.exec();
    if (replies === null) throw new Error('pipeline was discarded');
    const out: string[] = [];
    for (const [error, reply] of replies) {
      if (error) throw error;
      for (const verdict of reply as string[]) out.push(verdict);
    }
    return out;
  }

  #unavailable(operation: string, error: unknown, opening = false): VigilError {
    const cause = sanitise(error);
    const hint = opening
      ? ' Check that Redis is running and reachable (local stack: `node bin/vigil.js stack status`, ' +
        '`redis-cli -p 16379 ping`), that the URL, password and TLS scheme are right, or set REDIS_URL.'
      : ' The batch will be retried.';
    return new VigilError(
      'STATE_UNAVAILABLE',
      `Redis state backend at ${this.#safeUrl}: ${operation} failed: ${cause.message.replace(/\.$/, '')}.${hint}`,
      { cause },
    );
  }
}
