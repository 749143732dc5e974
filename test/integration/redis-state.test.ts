/**
 * The Redis state backend against the local stack's real Redis (127.0.0.1:16379, or REDIS_URL): the shared
 * conformance suite, plus what only Redis has — key layout and TTLs (PTTL), one script call per batch, chunking,
 * immediate failure as STATE_UNAVAILABLE and recovery. Every key lives under a namespace unique to this run and is
 * deleted afterwards; nothing here flushes or pauses the shared server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisStateBackend, redisState } from '../../adapters/redis/index.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { stateBackendConformance } from '../conformance/state-backend.ts';

const url = resolveEndpoints().redisUrl;
const namespace = `test-${process.pid}-${Date.now().toString(36)}`;

async function deleteNamespace(admin: Redis): Promise<void> {
  for (const pattern of [`vigil:${namespace}*`, `vigil:meta:${namespace}*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
  }
}

// Small chunks, so the conformance suite's large batches cross several script calls.
stateBackendConformance('redis', {
  make: async () => {
    const backend = redisState({ url, maxKeysPerScript: 500 });
    await backend.open();
    return backend;
  },
  elapse: (ms) => sleep(ms),
  ttlMs: 400,
  namespace,
  cleanup: async (backend) => {
    const admin = new Redis(url);
    await deleteNamespace(admin);
    await admin.quit();
    await backend.close();
  },
});

describe('Redis state backend specifics', () => {
  let backend: RedisStateBackend;
  let admin: Redis;
  const s = (suffix: string, ttlMs = 60_000) => ({ name: `${namespace}.${suffix}`, ttlMs });

  beforeAll(async () => {
    admin = new Redis(url);
    backend = redisState({ url, maxKeysPerScript: 100 });
    await backend.open();
  });
  afterAll(async () => {
    await deleteNamespace(admin);
    await admin.quit();
    await backend.close();
  });

  it('opens twice without harm (idempotent)', async () => {
    await backend.open();
    expect(await backend.claim(s('idem'), [{ key: 'k', owner: '0:0' }])).toEqual([{ status: 'claimed' }]);
  });

  it('keeps claims under vigil:<state>:<key> with the owner token as value and the TTL as PX', async () => {
    await backend.claim(s('layout', 60_000), [{ key: '01JGZ5Q8V3K9M2N4P6R8S0T2W4', owner: '7:1234' }]);
    const key = `vigil:${namespace}.layout:01JGZ5Q8V3K9M2N4P6R8S0T2W4`;
    expect(await admin.get(key)).toBe('7:1234');
    const pttl = await admin.pttl(key);
    expect(pttl).toBeGreaterThan(55_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('keeps windows as a high key per stream and an owner key per (stream, sequence), all with TTLs', async () => {
    const state = s('windows', 45_000);
    await backend.advanceSequences(state, 64, [
      { stream: 'dev:42', sequence: 9_007_199_254_740_000, owner: '1:1' },
      { stream: 'dev:42', sequence: 9_007_199_254_739_990, owner: '1:2' },
    ]);
    const prefix = `vigil:${namespace}.windows:`;
    expect(await admin.get(`${prefix}high:dev:42`)).toBe('9007199254740000');
    expect(await admin.get(`${prefix}seq:dev:42:9007199254740000`)).toBe('1:1');
    expect(await admin.get(`${prefix}seq:dev:42:9007199254739990`)).toBe('1:2');
    for (const key of [`${prefix}high:dev:42`, `${prefix}seq:dev:42:9007199254739990`]) {
      const pttl = await admin.pttl(key);
      expect(pttl).toBeGreaterThan(40_000);
      expect(pttl).toBeLessThanOrEqual(45_000);
    }
  });

  it('puts every key under keyPrefix when one is given, so independent logs sharing a Redis never meet', async () => {
    const other = redisState({ url, keyPrefix: `vigil:${namespace}.other:` });
    await other.open();
    const state = s('prefixed');
    await backend.claim(state, [{ key: 'k', owner: '0:1' }]);
    // The same owner token in another log is a different record: with its own prefix it claims afresh.
    expect(await other.claim(state, [{ key: 'k', owner: '0:2' }])).toEqual([{ status: 'claimed' }]);
    await other.advanceSequences(state, 64, [{ stream: 'd', sequence: 1, owner: '0:2' }]);
    await other.put(state, [{ key: 'm', value: 'x' }]);
    expect(await admin.get(`vigil:${namespace}.other:${namespace}.prefixed:k`)).toBe('0:2');
    expect(await admin.get(`vigil:${namespace}.other:${namespace}.prefixed:seq:d:1`)).toBe('0:2');
    expect(await admin.get(`vigil:${namespace}.other:${namespace}.prefixed:v:m`)).toBe('x');
    await other.close();
  });

  it('keeps keyed values under vigil:<state>:v:<key> with the state TTL', async () => {
    await backend.put({ name: `${namespace}.values`, ttlMs: 30_000 }, [{ key: 'm', value: 'v' }]);
    expect(await admin.get(`vigil:${namespace}.values:v:m`)).toBe('v');
    expect(await admin.pttl(`vigil:${namespace}.values:v:m`)).toBeGreaterThan(25_000);
  });

  it('sends one EVALSHA per call, and one per chunk (pipelined) when a batch exceeds maxKeysPerScript', async () => {
    const info = await backend.client.client('INFO');
    const addr = /\baddr=(\S+)/.exec(String(info))![1]!;
    const monitor = await admin.duplicate().monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source.endsWith(addr)) commands.push(String(args[0]).toLowerCase());
    });
    await sleep(50);
    await backend.claim(
      s('count'),
      Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, owner: `0:${i}` })),
    );
    await backend.claim(
      s('count'),
      Array.from({ length: 250 }, (_, i) => ({ key: `k${i}`, owner: `0:${i}` })),
    );
    await backend.advanceSequences(
      s('count-seq'),
      64,
      Array.from({ length: 50 }, (_, i) => ({ stream: 'd', sequence: i, owner: `0:${i}` })),
    );
    await sleep(100);
    monitor.disconnect();
    // 100 keys: 1 script; 250 keys at 100 per script: 3 scripts in one pipeline; 50 sequences = 100 keys: 1 script.
    expect(commands).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'evalsha']);
  });

  it('fails fast with a retriable STATE_UNAVAILABLE when a call times out, and a retry is classified the same', async () => {
    const slow = redisState({ url, commandTimeoutMs: 100 });
    await slow.open();
    const state = s('timeout');
    // Block only this backend's own connection for 600 ms (a BLPOP on a key nobody pushes to): the claim queues
    // behind it and times out on the client, while Redis still runs it once the BLPOP ends.
    slow.client.blpop(`vigil:${namespace}.nothing`, 0.6).catch(() => {});
    const started = Date.now();
    const error = await slow.claim(state, [{ key: 'k', owner: '0:1' }]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(500);
    expect(error).toBeInstanceOf(VigilError);
    expect(error).toMatchObject({ code: 'STATE_UNAVAILABLE', retriable: true });
    expect((error as Error).message).toContain(url.replace(/^redis:\/\/[^@]*@/, 'redis://'));
    await sleep(800);
    // The timed-out script did run; the retry (same owner) recognises its own write: own, i.e. passes as before.
    expect(await slow.claim(state, [{ key: 'k', owner: '0:1' }])).toEqual([{ status: 'own' }]);
    expect(await slow.claim(state, [{ key: 'k', owner: '0:2' }])).toEqual([{ status: 'taken', heldBy: '0:1' }]);
    await slow.close();
  });

  it('fails immediately (never queues) while the connection is down, and works again once it is back', async () => {
    const fragile = redisState({ url });
    await fragile.open();
    const id = await fragile.client.client('ID');
    await admin.client('KILL', 'ID', String(id));
    await sleep(20);
    const started = Date.now();
    await expect(fragile.claim(s('drop'), [{ key: 'k', owner: '0:1' }])).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
      retriable: true,
    });
    expect(Date.now() - started).toBeLessThan(200);
    // ioredis reconnects in the background; the runtime's retry then succeeds.
    for (let i = 0; i < 50 && fragile.client.status !== 'ready'; i++) await sleep(50);
    expect(fragile.client.status).toBe('ready');
    expect(await fragile.claim(s('drop'), [{ key: 'k', owner: '0:1' }])).toEqual([{ status: 'claimed' }]);
    await fragile.close();
  });
});
