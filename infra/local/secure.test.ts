import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VigilError } from '../../runtime/errors.ts';
import { secureMode, stackConfig } from './config.ts';
import { ensureSecureMaterial, secureEnv, securePaths } from './secure.ts';
import { kafkaDataDir, kafkaServerProperties, SERVICES, secureRedisConfig } from './services.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'vigil-secure-stack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = stackConfig({ VIGIL_STACK_DIR: dir, VIGIL_STACK_PORT_OFFSET: '500', VIGIL_STACK_SECURE: '1' });
const mode = (file: string) => statSync(file).mode & 0o777;

describe('secured stack material', () => {
  const paths = ensureSecureMaterial(config);

  it('a dev CA and a broker certificate for 127.0.0.1 it signs; keys and passwords are 0600 in a 0700 directory', () => {
    expect(mode(paths.dir)).toBe(0o700);
    for (const secret of [paths.caKey, paths.brokerKey, paths.brokerKeystore, paths.clientPassword, paths.envFile]) {
      expect(mode(secret), secret).toBe(0o600);
    }
    const verify = execFileSync('openssl', ['verify', '-CAfile', paths.caCert, paths.brokerCert], { encoding: 'utf8' });
    expect(verify.trim()).toBe(`${paths.brokerCert}: OK`);
    const text = execFileSync('openssl', ['x509', '-in', paths.brokerCert, '-noout', '-ext', 'subjectAltName'], {
      encoding: 'utf8',
    });
    expect(text).toContain('IP Address:127.0.0.1');
  });

  it('is generated once: a second call keeps the CA and the passwords (formatted into Kafka storage)', () => {
    const before = [paths.caCert, paths.clientPassword].map((f) => readFileSync(f, 'utf8'));
    ensureSecureMaterial(config);
    expect([paths.caCert, paths.clientPassword].map((f) => readFileSync(f, 'utf8'))).toEqual(before);
  });

  it("secure.env names the clients' settings and holds no password", () => {
    const env = readFileSync(paths.envFile, 'utf8');
    expect(env).toContain('KAFKA_SECURITY_PROTOCOL=SASL_SSL\n');
    expect(env).toContain('KAFKA_SASL_MECHANISM=SCRAM-SHA-512\n');
    expect(env).toContain(`KAFKA_SASL_PASSWORD_FILE=${paths.clientPassword}\n`);
    expect(env).toContain(`KAFKA_SSL_CA_FILE=${paths.caCert}\n`);
    expect(env).not.toContain(readFileSync(paths.clientPassword, 'utf8').trim());
    expect(secureEnv(config).KAFKA_SASL_USERNAME).toBe('vigil');
    expect(env).toContain(`REDIS_URL=rediss://127.0.0.1:${config.ports.redis}\n`);
    // Sourcing it does not make the stack take its own Redis for an external one.
    const sourced = stackConfig({ ...secureEnv(config), VIGIL_STACK_DIR: dir, VIGIL_STACK_PORT_OFFSET: '500' });
    expect(sourced.external.redis).toBe(false);
    expect(sourced.secure).toBe(true);
    expect(stackConfig({ REDIS_URL: 'rediss://10.0.0.9:6379' }).external.redis).toBe(true);
    // Plain mode: a variable naming the local port still means external (compose.yaml's services).
    expect(stackConfig({ REDIS_URL: 'redis://127.0.0.1:16379' }).external.redis).toBe(true);
  });

  it('the broker: one SASL_SSL client listener on the stack port, PEM keystore, its own data directory', () => {
    const properties = kafkaServerProperties(config);
    expect(properties).toContain(`listeners=SASL_SSL://127.0.0.1:${config.ports.kafka},CONTROLLER://127.0.0.1:`);
    expect(properties).toContain('listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT');
    expect(properties).toContain('sasl.enabled.mechanisms=SCRAM-SHA-512');
    expect(properties).toContain(`ssl.keystore.location=${paths.brokerKeystore}`);
    expect(properties).not.toContain('PLAINTEXT://');
    expect(kafkaDataDir(config)).toBe(path.join(dir, 'kafka', 'data-secure'));
    const plain = stackConfig({ VIGIL_STACK_DIR: dir });
    expect(kafkaServerProperties(plain)).toContain(`listeners=PLAINTEXT://127.0.0.1:${plain.ports.kafka},`);
    expect(kafkaDataDir(plain)).toBe(path.join(dir, 'kafka', 'data'));
  });

  it('Redis: TLS port only, with the password from its config file', () => {
    const redis = secureRedisConfig(config);
    expect(redis).toContain('port 0\n');
    expect(redis).toContain(`tls-port ${config.ports.redis}\n`);
    expect(redis).toContain(`requirepass ${readFileSync(securePaths(config).redisPassword, 'utf8').trim()}\n`);
    expect(config.endpoints.redis).toBe(`rediss://127.0.0.1:${config.ports.redis}`);
  });
});

describe('secured ClickHouse server', () => {
  it('HTTPS only on the stack HTTP port, one user with a SHA-256 password, plain config unchanged', () => {
    ensureSecureMaterial(config);
    const { files } = SERVICES['clickhouse-server'].plan(config);
    const dir = path.join(config.stackDir, 'clickhouse-server');
    const xml = files[path.join(dir, 'config.xml')]!;
    expect(xml).toContain(`<https_port>${config.ports.clickhouseHttp}</https_port>`);
    expect(xml).not.toContain('<http_port>');
    const users = files[path.join(dir, 'users.xml')]!;
    const password = readFileSync(securePaths(config).clickhousePassword, 'utf8').trim();
    expect(users).toContain(`<password_sha256_hex>${createHash('sha256').update(password).digest('hex')}<`);
    expect(users).not.toContain(password);
    expect(users).not.toMatch(/<!--[^>]*--[^>]*-->/); // `--` inside an XML comment stops the server at start-up
    expect(config.endpoints['clickhouse-server']).toBe(`https://127.0.0.1:${config.ports.clickhouseHttp}`);
    const plain = SERVICES['clickhouse-server'].plan(stackConfig({ VIGIL_STACK_DIR: dir }));
    expect(Object.values(plain.files).join('')).toContain('<http_port>');
  });
});

describe('secureMode (VIGIL_STACK_SECURE)', () => {
  it('reads 1/true and 0/false/unset, and refuses anything else', () => {
    expect([secureMode('1'), secureMode('true'), secureMode(undefined), secureMode('0'), secureMode('')]).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(() => secureMode('yes please')).toThrow(VigilError);
  });
});
