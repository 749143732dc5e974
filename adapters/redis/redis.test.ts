import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { VigilError } from '../../runtime/errors.ts';
import { redactRedisUrl, redisState } from './index.ts';

/** A loopback port nobody listens on: bind one, then release it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('Redis state backend without a server', () => {
  it('fails open() at once with STATE_UNAVAILABLE, naming the URL without credentials and what to check', async () => {
    const port = await closedPort();
    const backend = redisState({ url: `redis://vigil:s3cret-pw@127.0.0.1:${port}/2`, connectTimeoutMs: 1000 });
    const started = Date.now();
    const error = await backend.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1500);
    expect(error).toBeInstanceOf(VigilError);
    const vigil = error as VigilError;
    expect(vigil.code).toBe('STATE_UNAVAILABLE');
    expect(vigil.retriable).toBe(true);
    expect(vigil.message).toContain(`redis://***@127.0.0.1:${port}/2`);
    expect(vigil.message).toContain('ECONNREFUSED');
    expect(vigil.message).toMatch(/Check that Redis is running/);
    expect(vigil.message).not.toContain('s3cret');
    expect(String((vigil.cause as Error).message)).not.toContain('s3cret');
    // Trying again is allowed (the runtime retries open with backoff) and fails the same way.
    await expect(backend.open()).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE' });
    await backend.close();
  });

  it('refuses to run a script before open()', async () => {
    const backend = redisState({ url: `redis://127.0.0.1:${await closedPort()}` });
    await expect(backend.claim({ name: 'x', ttlMs: 1000 }, [{ key: 'k', owner: '0:0' }])).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    await expect(backend.get({ name: 's', ttlMs: 1000 }, [{ key: 'k' }])).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
    });
    await backend.close();
  });

  it('rejects a URL or a chunk size that cannot work, before connecting', () => {
    expect(() => redisState({ url: 'not a url' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => redisState({ url: 'redis://127.0.0.1:1', maxKeysPerScript: 1 })).toThrow(VigilError);
  });

  it('redacts credentials and query strings from URLs', () => {
    expect(redactRedisUrl('redis://user:pw@host:6379/0?password=x')).toBe('redis://***@host:6379/0');
    expect(redactRedisUrl('rediss://:pw@host:6380')).toBe('rediss://***@host:6380');
    expect(redactRedisUrl('redis://127.0.0.1:16379')).toBe('redis://127.0.0.1:16379');
    expect(redactRedisUrl('::')).toBe('(unparseable Redis URL)');
  });
});
