/**
 * A registry that takes a request and never answers must not hold a caller forever: both client paths (the
 * `@kafkajs/confluent-schema-registry` calls for registering and schemas by id, and Vigil's own REST calls) give up
 * after `timeoutMs` per attempt and fail with REGISTRY_UNAVAILABLE. Found in CI: `vigil schemas register` waited
 * past its test's 120 s on one registration POST that Apicurio never answered.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type avsc from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAINTEXT_CONNECTIONS } from '../../runtime/connections.ts';
import { ConfluentSchemaRegistry } from './confluent.ts';
import { registrySecurity } from './security.ts';

const TIMEOUT_MS = 300;
const SCHEMA: avsc.Schema = {
  type: 'record',
  name: 'Reading',
  namespace: 'vigil.test',
  fields: [{ name: 'level', type: 'int' }],
};

/** Answers the compatibility lookups like an empty registry; every other request is held open unanswered. */
const held: ServerResponse[] = [];
const requests: string[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  requests.push(`${req.method} ${req.url}`);
  if (req.method === 'GET' && req.url?.startsWith('/config/')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error_code: 40401, message: 'not found' }));
    return;
  }
  // The first registration under the reset subject has its connection dropped; the next one is answered.
  if (req.method === 'POST' && req.url === '/subjects/vigil.test.reset-value/versions' && resetPosts++ === 0) {
    req.socket.destroy();
    return;
  }
  if (req.method === 'POST' && req.url === '/subjects/vigil.test.reset-value/versions') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 8 }));
    return;
  }
  // The first registration under the flaky subject is lost in the registry; the next one is answered.
  if (req.method === 'POST' && req.url === '/subjects/vigil.test.flaky-value/versions' && flakyPosts++ > 0) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 7 }));
    return;
  }
  held.push(res);
});
let flakyPosts = 0;
let resetPosts = 0;
let url = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const registry = () =>
  new ConfluentSchemaRegistry({ url, timeoutMs: TIMEOUT_MS, security: registrySecurity(PLAINTEXT_CONNECTIONS) });

describe('a registry that never answers', () => {
  it('fails a registration with REGISTRY_UNAVAILABLE after the timeout of each attempt, instead of waiting forever', async () => {
    requests.length = 0;
    const started = Date.now();
    await expect(registry().register('vigil.test.stalled-value', SCHEMA)).rejects.toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
    });
    // Registering is idempotent, so a registration that timed out is tried again: 3 attempts, each one timeout long.
    const posts = requests.filter((r) => r === 'POST /subjects/vigil.test.stalled-value/versions').length;
    expect(posts).toBe(3);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(3 * TIMEOUT_MS);
    expect(elapsed).toBeLessThan(3 * TIMEOUT_MS + 5_000);
  }, 30_000);

  it('registers on the next attempt when one registration was lost', async () => {
    expect(await registry().register('vigil.test.flaky-value', SCHEMA)).toBe(7);
    expect(flakyPosts).toBe(2);
  }, 30_000);

  it('registers on the next attempt when the connection was dropped mid-request', async () => {
    expect(await registry().register('vigil.test.reset-value', SCHEMA)).toBe(8);
    expect(resetPosts).toBe(2);
  }, 30_000);

  it('fails a schema-by-id lookup the same way (the decoder path)', async () => {
    await expect(registry().getWriterType(42)).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
  }, 30_000);

  it("fails Vigil's own REST calls the same way", async () => {
    await expect(registry().lookup('vigil.test.stalled-value', SCHEMA)).rejects.toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
    });
  }, 30_000);
});
