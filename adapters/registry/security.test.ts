import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki } from '../../identity/pki.ts';
import { loadConnections, PLAINTEXT_CONNECTIONS } from '../../runtime/connections.ts';
import { ConfluentSchemaRegistry } from './confluent.ts';
import { registrySecurity } from './security.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-registry-security-'));
const PASSWORD = 'registry-Pa55-never-logged';

/** Records each request's path and Authorization header; answers like a registry with nothing in it. */
function recordingHandler(seen: { path: string; authorization: string | undefined }[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error_code: 40401, message: 'not found' }));
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return String((server.address() as AddressInfo).port);
}

const seen: { path: string; authorization: string | undefined }[] = [];
const httpServer = createHttpServer(recordingHandler(seen));
let httpsServer: Server;
let httpUrl = '';
let httpsPort = '';

beforeAll(async () => {
  httpUrl = `http://127.0.0.1:${await listen(httpServer)}`;
  const pki = await initPki(join(dir, 'pki'));
  writeFileSync(join(dir, 'ca.pem'), pki.caCertPem);
  httpsServer = createHttpsServer({ cert: pki.gatewayCertPem, key: pki.gatewayKeyPem }, recordingHandler(seen));
  httpsPort = await listen(httpsServer);
});

afterAll(() => {
  httpServer.close();
  httpsServer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('registrySecurity', () => {
  it('sends nothing without configuration', () => {
    expect(registrySecurity(PLAINTEXT_CONNECTIONS).authorization()).toBeUndefined();
    expect(registrySecurity(PLAINTEXT_CONNECTIONS).agent).toBeUndefined();
  });

  it('basic auth reaches the registry on both client paths (schema by id, and the REST calls)', async () => {
    const connections = loadConnections({ SCHEMA_REGISTRY_USERNAME: 'vigil', SCHEMA_REGISTRY_PASSWORD: PASSWORD });
    const registry = new ConfluentSchemaRegistry({ url: httpUrl, security: registrySecurity(connections) });
    seen.length = 0;
    expect(await registry.getWriterType(7)).toBeNull(); // the @kafkajs client (404: unknown id)
    expect(await registry.getCompatibility('s-value')).toBeNull(); // the plain REST path
    const expected = `Basic ${Buffer.from(`vigil:${PASSWORD}`).toString('base64')}`;
    expect(seen.map((s) => [s.path, s.authorization])).toEqual([
      ['/schemas/ids/7', expected],
      ['/config/s-value', expected],
    ]);
  });

  it('a bearer token is read from its file on each request: a rotated token is used without a restart', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'token-1\n', { mode: 0o600 });
    const connections = loadConnections({ SCHEMA_REGISTRY_TOKEN_FILE: tokenFile });
    const registry = new ConfluentSchemaRegistry({ url: httpUrl, security: registrySecurity(connections) });
    seen.length = 0;
    await registry.getCompatibility('a');
    writeFileSync(tokenFile, 'token-2\n');
    await registry.getWriterType(8);
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
  });

  it('trusts a private CA from SCHEMA_REGISTRY_CA_FILE on both paths, and refuses the server without it', async () => {
    const url = `https://127.0.0.1:${httpsPort}`;
    const connections = loadConnections({ SCHEMA_REGISTRY_URL: url, SCHEMA_REGISTRY_CA_FILE: join(dir, 'ca.pem') });
    const trusting = new ConfluentSchemaRegistry({ url, security: registrySecurity(connections) });
    expect(await trusting.getCompatibility('s')).toBeNull();
    expect(await trusting.getWriterType(9)).toBeNull();
    const untrusting = new ConfluentSchemaRegistry({ url, security: registrySecurity(PLAINTEXT_CONNECTIONS) });
    await expect(untrusting.getCompatibility('s')).rejects.toThrow(/certificate/);
  });

  it('an unreachable registry fails without the password in the error', async () => {
    const connections = loadConnections({ SCHEMA_REGISTRY_USERNAME: 'vigil', SCHEMA_REGISTRY_PASSWORD: PASSWORD });
    const registry = new ConfluentSchemaRegistry({
      url: 'http://127.0.0.1:1',
      security: registrySecurity(connections),
    });
    const error = await registry.getCompatibility('s').catch((e: Error) => e);
    expect((error as Error).message).toMatch(/schema registry http:\/\/127\.0\.0\.1:1: GET \/config\/s/);
    expect(JSON.stringify({ message: (error as Error).message, cause: String((error as Error).cause) })).not.toContain(
      PASSWORD,
    );
  });
});
