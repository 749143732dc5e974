import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConnections, PLAINTEXT_CONNECTIONS } from '../../runtime/connections.ts';
import { createLogger } from '../../runtime/log.ts';
import { clickhouseSecurityOptions } from './security.ts';
import { openServerStore } from './server.ts';

const PASSWORD = 'clickhouse-Pa55-never-logged';
const dir = mkdtempSync(join(tmpdir(), 'vigil-clickhouse-security-'));
writeFileSync(join(dir, 'ca.pem'), 'PEM-BYTES');
writeFileSync(join(dir, 'password'), `${PASSWORD}\n`, { mode: 0o600 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('clickhouseSecurityOptions', () => {
  it('adds nothing for the local stack', () => {
    expect(clickhouseSecurityOptions(PLAINTEXT_CONNECTIONS)).toEqual({});
  });

  it('maps user, password file, roles and CA onto @clickhouse/client options', () => {
    const connections = loadConnections({
      CLICKHOUSE_URL: 'https://ch.example.org:8443',
      CLICKHOUSE_USERNAME: 'vigil_writer',
      CLICKHOUSE_PASSWORD_FILE: join(dir, 'password'),
      CLICKHOUSE_ROLE: 'vigil_writer',
      CLICKHOUSE_CA_FILE: join(dir, 'ca.pem'),
    });
    expect(clickhouseSecurityOptions(connections)).toEqual({
      username: 'vigil_writer',
      password: PASSWORD,
      role: 'vigil_writer',
      tls: { ca_cert: Buffer.from('PEM-BYTES') },
    });
    const twoRoles = loadConnections({ CLICKHOUSE_ROLE: 'vigil_reader,vigil_auditor' });
    expect(clickhouseSecurityOptions(twoRoles).role).toEqual(['vigil_reader', 'vigil_auditor']);
  });
});

describe('a secured ClickHouse client that cannot connect logs no secret', () => {
  const saved: Record<string, string | undefined> = {};
  const env = { CLICKHOUSE_USERNAME: 'vigil_writer', CLICKHOUSE_PASSWORD_FILE: join(dir, 'password') };
  beforeAll(() => {
    // openServerStore reads the process's configuration, as a sink does; restored for the next file in this worker.
    for (const [name, value] of Object.entries(env)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
  });
  afterAll(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('the error of a refused connection, logged, carries no password', async () => {
    const lines: string[] = [];
    const log = createLogger(
      'clickhouse-security-test',
      'info',
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const store = openServerStore({ url: 'http://127.0.0.1:1', requestTimeoutMs: 2_000 });
    const error = await store.command('SELECT 1').catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    log.error({ err: error }, 'clickhouse unavailable');
    await store.close();
    await new Promise((resolve) => setImmediate(resolve));
    const logged = lines.join('');
    expect(logged).toContain('clickhouse unavailable');
    expect(logged).not.toContain(PASSWORD);
  });
});
