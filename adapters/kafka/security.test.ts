import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Kafka from 'node-rdkafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeConnections, loadConnections, PLAINTEXT_CONNECTIONS } from '../../runtime/connections.ts';
import { createLogger } from '../../runtime/log.ts';
import { partitionCounts } from './admin.ts';
import { brokerCause, kafkaConnectHint, kafkaSecurityConfig } from './security.ts';

const PASSWORD = 'kafka-Scram-Pa55-do-not-log';
const dir = mkdtempSync(join(tmpdir(), 'vigil-kafka-security-'));
const passwordFile = join(dir, 'password');
writeFileSync(passwordFile, `${PASSWORD}\n`);
chmodSync(passwordFile, 0o600);

const scramEnv = {
  KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
  KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
  KAFKA_SASL_USERNAME: 'vigil-worker',
  KAFKA_SASL_PASSWORD_FILE: passwordFile,
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kafkaSecurityConfig', () => {
  it('adds nothing for PLAINTEXT: the local stack is unchanged', () => {
    expect(kafkaSecurityConfig(PLAINTEXT_CONNECTIONS)).toEqual({});
    expect(kafkaConnectHint(PLAINTEXT_CONNECTIONS)).toBe('');
  });

  it('maps SASL_SSL + SCRAM-SHA-512 with a CA and a client certificate onto librdkafka properties', () => {
    writeFileSync(join(dir, 'ca.pem'), 'PEM');
    writeFileSync(join(dir, 'cert.pem'), 'PEM');
    writeFileSync(join(dir, 'key.pem'), 'PEM');
    writeFileSync(join(dir, 'keypw'), 'key-pass');
    chmodSync(join(dir, 'keypw'), 0o600);
    const connections = loadConnections({
      ...scramEnv,
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SSL_CA_FILE: join(dir, 'ca.pem'),
      KAFKA_SSL_CERT_FILE: join(dir, 'cert.pem'),
      KAFKA_SSL_KEY_FILE: join(dir, 'key.pem'),
      KAFKA_SSL_KEY_PASSWORD_FILE: join(dir, 'keypw'),
    });
    expect(kafkaSecurityConfig(connections)).toEqual({
      'security.protocol': 'sasl_ssl',
      'ssl.ca.location': join(dir, 'ca.pem'),
      'ssl.certificate.location': join(dir, 'cert.pem'),
      'ssl.key.location': join(dir, 'key.pem'),
      'ssl.key.password': 'key-pass',
      'sasl.mechanisms': 'SCRAM-SHA-512',
      'sasl.username': 'vigil-worker',
      'sasl.password': PASSWORD,
    });
  });

  it('maps OAUTHBEARER onto the mechanism alone: the token is set on each client by ./oauth.ts', () => {
    const connections = loadConnections({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
      KAFKA_OAUTH_TOKEN_ENDPOINT: 'https://idp.example.org/oauth2/token',
      KAFKA_OAUTH_CLIENT_ID: 'vigil',
      KAFKA_OAUTH_CLIENT_SECRET: 'client-secret',
      KAFKA_OAUTH_SCOPE: 'kafka',
    });
    expect(kafkaSecurityConfig(connections)).toEqual({
      'security.protocol': 'sasl_ssl',
      'sasl.mechanisms': 'OAUTHBEARER',
    });
  });

  it('librdkafka (as built here) accepts the SCRAM and OAUTHBEARER properties: a client is created with each', () => {
    // librdkafka refuses an unknown property or value at construction (this build refuses sasl.oauthbearer.method=oidc,
    // having no libcurl): this catches a misspelt key or a build without SASL support.
    expect(Kafka.features).toEqual(expect.arrayContaining(['ssl', 'sasl_scram', 'sasl_oauthbearer']));
    const scram = kafkaSecurityConfig(loadConnections(scramEnv));
    const oidc = kafkaSecurityConfig(
      loadConnections({
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        KAFKA_OAUTH_TOKEN_ENDPOINT: 'https://idp.example.org/oauth2/token',
        KAFKA_OAUTH_CLIENT_ID: 'vigil',
        KAFKA_OAUTH_CLIENT_SECRET: 'client-secret',
      }),
    );
    for (const config of [scram, oidc]) {
      const producer = new Kafka.Producer({ 'metadata.broker.list': '127.0.0.1:1', ...config });
      expect(producer.isConnected()).toBe(false);
    }
  });

  it("brokerCause keeps librdkafka's authentication and TLS texts, nothing else", () => {
    const auth = 'SASL authentication error: Authentication failed during authentication due to invalid credentials';
    expect(brokerCause({ lastError: new Error(auth) })).toBe(`; the broker connection failed with: ${auth}`);
    expect(brokerCause({ lastError: new Error('Local: Message timed out') })).toBe('');
    expect(brokerCause({})).toBe('');
  });

  it('the connect hint names what to check, never the secret', () => {
    const hint = kafkaConnectHint(loadConnections(scramEnv));
    expect(hint).toContain('SASL_PLAINTEXT');
    expect(hint).toContain('SCRAM-SHA-512 user and KAFKA_SASL_PASSWORD(_FILE)');
    expect(hint).not.toContain(PASSWORD);
  });
});

describe('a secured client that cannot connect logs no secret', () => {
  const saved: Record<string, string | undefined> = {};
  beforeAll(() => {
    // The adapters read the process's configuration (processConnections), as a worker does; restored afterwards
    // because process.env outlives this file in the test worker.
    for (const [name, value] of Object.entries(scramEnv)) {
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

  it('partitionCounts against a closed port: the error and the log line name the fix, not the password', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger('security-test', 'info', sink);
    const failure = await partitionCounts('127.0.0.1:1', ['vigil.telemetry.raw'], 1_500).then(
      () => null,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toMatch(/cannot reach Kafka at 127\.0\.0\.1:1: .*secured connection: check/);
    // What an operator's start-up and failure logs would carry: the description, the error, even the client config.
    log.info({ connections: describeConnections(loadConnections(process.env)) }, 'connection security');
    log.error({ err: failure, config: kafkaSecurityConfig() }, 'kafka unavailable');
    await new Promise((resolve) => setImmediate(resolve));
    const logged = lines.join('');
    expect(logged).toContain('kafka unavailable');
    expect(logged).toContain('secured connection: check');
    expect(logged).toContain('[redacted]');
    expect(logged).not.toContain(PASSWORD);
  });
});
