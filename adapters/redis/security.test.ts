import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConnections, PLAINTEXT_CONNECTIONS } from '../../runtime/connections.ts';
import { createLogger } from '../../runtime/log.ts';
import { redisSecurityOptions } from './security.ts';
import { RedisStateBackend } from './state.ts';

const PASSWORD = 'redis-Pa55-never-logged';
const dir = mkdtempSync(join(tmpdir(), 'vigil-redis-security-'));
writeFileSync(join(dir, 'ca.pem'), 'PEM-BYTES');
writeFileSync(join(dir, 'password'), `${PASSWORD}\n`, { mode: 0o600 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('redisSecurityOptions', () => {
  it('adds nothing for the local stack (redis://, no password)', () => {
    expect(redisSecurityOptions('redis://127.0.0.1:16379', PLAINTEXT_CONNECTIONS)).toEqual({});
  });

  it('rediss:// gets TLS with the host name for SNI, the private CA and the password from its file', () => {
    const url = 'rediss://cache.example.org:6379';
    const connections = loadConnections({
      REDIS_URL: url,
      REDIS_CA_FILE: join(dir, 'ca.pem'),
      REDIS_PASSWORD_FILE: join(dir, 'password'),
      REDIS_USERNAME: 'vigil',
    });
    const options = redisSecurityOptions(url, connections);
    expect(options.tls).toEqual({ ca: Buffer.from('PEM-BYTES'), servername: 'cache.example.org' });
    expect(options.username).toBe('vigil');
    expect(options.password).toBe(PASSWORD);
  });

  it('names no SNI server for an IP address (RFC 6066), still TLS', () => {
    const url = 'rediss://127.0.0.1:16879';
    const options = redisSecurityOptions(url, loadConnections({ REDIS_URL: url }));
    expect(options.tls).toEqual({});
  });
});

describe('a secured Redis client that cannot connect logs no secret', () => {
  it("the state backend's own log line and its error carry no password", async () => {
    const lines: string[] = [];
    const log = createLogger(
      'redis-security-test',
      'info',
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    // A password in the URL (the form the configuration refuses beside REDIS_PASSWORD_FILE, still accepted alone):
    // the worst case for a log line, since the URL is what the backend names.
    const state = new RedisStateBackend({
      url: `redis://vigil:${PASSWORD}@127.0.0.1:1`,
      log,
      connectTimeoutMs: 500,
    });
    const error = await state.open().catch((e: Error) => e);
    log.error({ err: error }, 'state backend unavailable');
    await state.close().catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
    const logged = lines.join('');
    expect(logged).toContain('state backend unavailable');
    expect(logged).not.toContain(PASSWORD);
  });
});
