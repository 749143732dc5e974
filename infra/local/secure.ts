/**
 * The secured local stack (`vigil stack up --secure`): a dev CA and a broker certificate, SCRAM passwords, and the
 * environment a client needs to reach the stack over SASL_SSL, all generated once into `<stack dir>/secure/`
 * (directory 0700, secrets 0600) and kept between runs (the SCRAM credentials live in Kafka's formatted storage).
 *
 * What is secured locally: Kafka's client listener (TLS + SASL SCRAM-SHA-512; the controller listener stays PLAINTEXT
 * on loopback), Redis (TLS port only, `requirepass` from a 0600 config file), the old ClickHouse server's HTTP
 * interface (HTTPS only, a user with a password). Not secured: Apicurio (HTTP, in-process H2 storage, it never talks
 * to the broker), ClickHouse's native TCP port (plain on loopback, password required), chdb (embedded, in-process).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VigilError } from '../../runtime/errors.ts';
import type { StackConfig } from './config.ts';

/** The SCRAM mechanism of the broker's client listener (the clients' KAFKA_SASL_MECHANISM). */
export const SCRAM_MECHANISM = 'SCRAM-SHA-512';
/** The broker's own (inter-broker) and the stack's admin login (topic creation, health probe). */
export const ADMIN_USER = 'vigil-admin';
/** The login the workers, sinks, gateways and the simulator use (secure.env). */
export const CLIENT_USER = 'vigil';

export interface SecurePaths {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly brokerCert: string;
  readonly brokerKey: string;
  /** Private key + certificate in one PEM file: Kafka's `ssl.keystore.type=PEM` keystore. */
  readonly brokerKeystore: string;
  readonly adminPassword: string;
  readonly clientPassword: string;
  readonly redisPassword: string;
  readonly clickhousePassword: string;
  /** KEY=value lines for the clients (no secret inside: passwords are referenced by file). */
  readonly envFile: string;
}

export function securePaths(config: StackConfig): SecurePaths {
  const dir = path.join(config.stackDir, 'secure');
  return {
    dir,
    caCert: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca.key'),
    brokerCert: path.join(dir, 'broker.pem'),
    brokerKey: path.join(dir, 'broker.key'),
    brokerKeystore: path.join(dir, 'broker-keystore.pem'),
    adminPassword: path.join(dir, `${ADMIN_USER}.password`),
    clientPassword: path.join(dir, `${CLIENT_USER}.password`),
    redisPassword: path.join(dir, 'redis.password'),
    clickhousePassword: path.join(dir, 'clickhouse.password'),
    envFile: path.join(config.stackDir, 'secure.env'),
  };
}

function openssl(args: readonly string[], cwd: string): void {
  const result = spawnSync('openssl', [...args], { cwd, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new VigilError(
      'STACK_SERVICE_FAILED',
      `openssl ${args[0]} failed while generating the secured stack's certificates in ${cwd}: ` +
        `${(result.stderr || result.error?.message || '').trim().split('\n').slice(-3).join(' | ')} ` +
        '(is the openssl command installed? apt-get install -y openssl)',
    );
  }
}

function writeSecret(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Hex: no character the SCRAM `[name=...,password=...]` syntax or a properties file would read specially. */
function newPassword(): string {
  return randomBytes(24).toString('hex');
}

/**
 * Creates whatever of the secured stack's material is missing (idempotent): the dev CA (10 years), the broker's
 * certificate for 127.0.0.1/localhost signed by it (2 years), the passwords, and secure.env. Existing files are kept, so
 * clients configured once keep working and the SCRAM credentials formatted into Kafka's storage stay valid.
 *
 * @example
 * const paths = ensureSecureMaterial(stackConfig({ ...process.env, VIGIL_STACK_SECURE: '1' }));
 * readFileSync(paths.envFile, 'utf8'); // KAFKA_SECURITY_PROTOCOL=SASL_SSL ...
 */
export function ensureSecureMaterial(config: StackConfig): SecurePaths {
  const paths = securePaths(config);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  chmodSync(paths.dir, 0o700);
  if (!existsSync(paths.caCert) || !existsSync(paths.caKey)) {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        paths.caKey,
        '-out',
        paths.caCert,
        '-days',
        '3650',
        '-subj',
        '/O=Vigil/CN=Vigil local stack dev CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      paths.dir,
    );
    rmSync(paths.brokerCert, { force: true }); // a new CA: the broker certificate must be re-issued
  }
  if (!existsSync(paths.brokerCert) || !existsSync(paths.brokerKey) || !existsSync(paths.brokerKeystore)) {
    const csr = path.join(paths.dir, 'broker.csr');
    const extensions = path.join(paths.dir, 'broker.ext');
    writeFileSync(
      extensions,
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
    );
    openssl(
      [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        paths.brokerKey,
        '-out',
        csr,
        '-subj',
        '/O=Vigil/CN=localhost',
      ],
      paths.dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        paths.caCert,
        '-CAkey',
        paths.caKey,
        '-CAcreateserial',
        '-days',
        '730',
        '-extfile',
        extensions,
        '-out',
        paths.brokerCert,
      ],
      paths.dir,
    );
    rmSync(csr, { force: true });
    rmSync(extensions, { force: true });
    writeSecret(
      paths.brokerKeystore,
      `${readFileSync(paths.brokerKey, 'utf8').trim()}\n${readFileSync(paths.brokerCert, 'utf8').trim()}\n`,
    );
  }
  for (const key of [paths.caKey, paths.brokerKey, paths.brokerKeystore]) chmodSync(key, 0o600);
  for (const file of [paths.adminPassword, paths.clientPassword, paths.redisPassword, paths.clickhousePassword]) {
    if (!existsSync(file)) writeSecret(file, `${newPassword()}\n`);
    chmodSync(file, 0o600);
  }
  writeSecret(paths.envFile, formatEnv(secureEnv(config)));
  return paths;
}

export function readSecret(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new VigilError(
      'CONFIG_INVALID',
      `cannot read ${file}: run \`vigil stack up --secure\` to generate the secured stack's credentials`,
      { cause: error },
    );
  }
}

/**
 * The clients' security settings for this stack (the contract of the secured clients; passwords by file only).
 *
 * @example
 * secureEnv(config).KAFKA_SECURITY_PROTOCOL; // 'SASL_SSL'
 */
export function secureEnv(config: StackConfig): Record<string, string> {
  const paths = securePaths(config);
  return {
    // A shell that sourced this file works with the secured stack: `vigil stack up|status` need no --secure.
    VIGIL_STACK_SECURE: '1',
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SASL_MECHANISM: SCRAM_MECHANISM,
    KAFKA_SASL_USERNAME: CLIENT_USER,
    KAFKA_SASL_PASSWORD_FILE: paths.clientPassword,
    KAFKA_SSL_CA_FILE: paths.caCert,
    // The stack's own endpoint (stackConfig does not take it for an external Redis): the TLS scheme is the point.
    REDIS_URL: `rediss://127.0.0.1:${config.ports.redis}`,
    REDIS_PASSWORD_FILE: paths.redisPassword,
    REDIS_CA_FILE: paths.caCert,
    // Likewise the stack's own ClickHouse server, HTTPS only (chdb, the default store, is embedded: nothing to secure).
    CLICKHOUSE_URL: `https://127.0.0.1:${config.ports.clickhouseHttp}`,
    CLICKHOUSE_USERNAME: CLIENT_USER,
    CLICKHOUSE_PASSWORD_FILE: paths.clickhousePassword,
    CLICKHOUSE_CA_FILE: paths.caCert,
  };
}

export function formatEnv(env: Record<string, string>): string {
  return [
    '# Generated by `vigil stack up --secure` (infra/local/secure.ts): the secured local stack, for the clients.',
    "# Kafka's and the registry's endpoints come from VIGIL_STACK_PORT_OFFSET as usual; Redis is TLS-only (rediss://).",
    ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
    '',
  ].join('\n');
}

/** librdkafka settings for the stack's own admin connections (health probe, topic creation) to the secured broker. */
export function adminKafkaSecurity(config: StackConfig): Record<string, string> {
  const paths = securePaths(config);
  return {
    'security.protocol': 'sasl_ssl',
    'sasl.mechanisms': SCRAM_MECHANISM,
    'sasl.username': ADMIN_USER,
    'sasl.password': readSecret(paths.adminPassword),
    'ssl.ca.location': paths.caCert,
  };
}

/** The SCRAM credentials to format into Kafka's storage (`kafka-storage format --add-scram`). */
export function scramCredentials(config: StackConfig): { readonly name: string; readonly password: string }[] {
  const paths = securePaths(config);
  return [
    { name: ADMIN_USER, password: readSecret(paths.adminPassword) },
    { name: CLIENT_USER, password: readSecret(paths.clientPassword) },
  ];
}
