/**
 * The secured local stack (`vigil stack up --secure`, issue 13): Kafka's only client listener speaks TLS + SASL
 * SCRAM-SHA-512, Redis TLS with a password, the ClickHouse server HTTPS with a user's password, and the clients take
 * their settings from the env file the stack writes.
 *
 * On its own instance (its own VIGIL_STACK_DIR, ports 500 above the shared stack's; VIGIL_SECURE_PORT_OFFSET moves it)
 * with fresh credentials each run, it checks: the broker refuses a plaintext client; the vitals pipeline runs
 * distributed against it with the secured settings (the simulator producing, a worker, balanced output topics); a wrong
 * password and an untrusted CA each stop a worker at start-up with a message that says what to fix; no password ever
 * appears in any output; and after `down` no process of that stack survives.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StackConfig, stackConfig } from '../../infra/local/config.ts';
import { ensureTopicNamespace } from '../../infra/local/create-topics.ts';
import { kafkaHealthy } from '../../infra/local/health.ts';
import { adminKafkaSecurity, secureEnv, securePaths } from '../../infra/local/secure.ts';
import { stackDown, stackUp } from '../../infra/local/stack.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { REPO } from '../support/process.ts';
import { lastJsonLine, type Spawned, spawnVigil } from './helpers.ts';

const STACK_ENV = {
  VIGIL_STACK_DIR: path.join(REPO, '.vigil', 'secure-it', 'stack'),
  VIGIL_STACK_PORT_OFFSET: process.env.VIGIL_SECURE_PORT_OFFSET ?? '500',
  VIGIL_STACK_SECURE: '1',
} as const;
const ENDPOINT_VARS = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'REDIS_URL', 'CLICKHOUSE_URL'] as const;

const scratch = mkdtempSync(path.join(tmpdir(), 'vigil-secure-it-'));
let config: StackConfig;
/** Every child's environment: this stack's endpoints and the settings from its secure.env. */
let clientEnv: Record<string, string>;
let passwords: string[];
/** Everything the children printed, searched for passwords at the end. */
const printed: string[] = [];

function freshConfig(): StackConfig {
  const env: NodeJS.ProcessEnv = { ...process.env, ...STACK_ENV };
  for (const name of ENDPOINT_VARS) delete env[name];
  return stackConfig(env);
}

/** Every live process whose working directory or command line lies under `dir` (from /proc). */
function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (state === 'Z' || state === 'X') continue;
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cwd.startsWith(dir) || cmdline.includes(dir)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

async function finished(child: Spawned, timeoutMs: number) {
  const timer = setTimeout(() => child.child.kill('SIGKILL'), timeoutMs);
  const done = await child.done;
  clearTimeout(timer);
  printed.push(done.stdout, done.stderr);
  return done;
}

/** Records on a topic, read with the clients' own login (read_committed), until idle. */
async function countTopic(topic: string, idleMs = 3_000): Promise<number> {
  const env = secureEnv(config);
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': config.endpoints.kafka,
      'security.protocol': 'sasl_ssl',
      'sasl.mechanisms': env.KAFKA_SASL_MECHANISM!,
      'sasl.username': env.KAFKA_SASL_USERNAME!,
      'sasl.password': readFileSync(env.KAFKA_SASL_PASSWORD_FILE!, 'utf8').trim(),
      'ssl.ca.location': env.KAFKA_SSL_CA_FILE!,
      'group.id': `secure-it-read-${ulid()}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
      log_level: 0,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 15_000 }, (e) => (e ? reject(e) : resolve())),
  );
  consumer.subscribe([topic]);
  let count = 0;
  let idleSince = Date.now();
  try {
    while (Date.now() - idleSince < idleMs) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(5_000, (e, m) => (e ? reject(e) : resolve(m))),
      );
      if (batch.length > 0) {
        count += batch.length;
        idleSince = Date.now();
      }
    }
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
  return count;
}

/** `SELECT 1` over HTTPS as the stack's ClickHouse user, trusting only the stack's CA. */
function clickhouseSelectOne(url: string, password: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    target.searchParams.set('query', 'SELECT 1');
    const request = https.get(target, { ca, auth: `${secureEnv(config).CLICKHOUSE_USERNAME}:${password}` }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
    });
    request.on('error', reject);
  });
}

const workerArgs = (group: string) => [
  'run',
  'pipelines/vitals.ts',
  '--group',
  group,
  '--metrics-port',
  '0',
  '--batch-size',
  '1000',
  '--stop-when-idle',
  '8000',
  '--json',
  // The simulator writes straight to Kafka, not through a gateway.
  '--accept-ungated',
];

beforeAll(async () => {
  config = freshConfig();
  // A left-over instance of this test is stopped, and the credentials are made afresh (the artifacts are kept).
  await stackDown(config);
  rmSync(securePaths(config).dir, { recursive: true, force: true });
  rmSync(securePaths(config).envFile, { force: true });
  rmSync(path.join(config.stackDir, 'kafka', 'data-secure'), { recursive: true, force: true });
  await stackUp(config);
  const paths = securePaths(config);
  passwords = [paths.adminPassword, paths.clientPassword, paths.redisPassword].map((f) =>
    readFileSync(f, 'utf8').trim(),
  );
  clientEnv = {
    ...STACK_ENV,
    KAFKA_BROKERS: config.endpoints.kafka,
    SCHEMA_REGISTRY_URL: config.endpoints.apicurio,
    ...secureEnv(config),
  };
}, 300_000);

afterAll(async () => {
  try {
    if (config) {
      await stackDown(config);
      // Nothing of the secured stack survives `down`.
      expect(processesUnder(config.stackDir)).toEqual([]);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}, 120_000);

describe('vigil stack up --secure', () => {
  it('the broker takes only TLS + SCRAM clients; Redis only TLS with its password; ClickHouse only HTTPS with a user', async () => {
    expect(await kafkaHealthy(config.endpoints.kafka, 5_000)).toBe(false); // a plaintext client
    expect(await kafkaHealthy(config.endpoints.kafka, 8_000, adminKafkaSecurity(config))).toBe(true);
    const secure = secureEnv(config);
    // `vigil stack env` prints the same settings (it follows the mode the last `up` started).
    const printedEnv = await finished(
      spawnVigil(['stack', 'env', '--json'], { ...STACK_ENV, VIGIL_STACK_SECURE: '' }),
      30_000,
    );
    expect(JSON.parse(printedEnv.stdout)).toEqual(secure);
    expect(readFileSync(securePaths(config).envFile, 'utf8')).toContain(
      `KAFKA_SASL_PASSWORD_FILE=${secure.KAFKA_SASL_PASSWORD_FILE}\n`,
    );

    const ca = readFileSync(secure.REDIS_CA_FILE!, 'utf8');
    const redis = (password?: string) =>
      new Redis(secure.REDIS_URL!, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        enableReadyCheck: false,
        tls: { ca },
        ...(password ? { password } : {}),
      });
    const anonymous = redis();
    anonymous.on('error', () => {});
    await anonymous.connect();
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    anonymous.disconnect();
    const client = redis(readFileSync(secure.REDIS_PASSWORD_FILE!, 'utf8').trim());
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    client.disconnect();

    // The ClickHouse server: HTTPS with the user's password; a wrong one is refused, and nothing answers plain HTTP.
    const clickhousePassword = readFileSync(secure.CLICKHOUSE_PASSWORD_FILE!, 'utf8').trim();
    expect(await clickhouseSelectOne(secure.CLICKHOUSE_URL!, clickhousePassword, ca)).toEqual({
      status: 200,
      body: '1',
    });
    expect((await clickhouseSelectOne(secure.CLICKHOUSE_URL!, 'wrong', ca)).status).toBe(401);
    const plainHttp = await fetch(`${secure.CLICKHOUSE_URL!.replace('https:', 'http:')}/ping`).catch(() => undefined);
    expect(plainHttp?.ok ?? false).toBe(false);
  });

  it('the vitals pipeline runs distributed against it with the secured settings: output topics balance', async () => {
    const prefix = `it-secure-${ulid().toLowerCase()}`;
    const name = await ensureTopicNamespace(config.endpoints.kafka, prefix, [], adminKafkaSecurity(config));
    const env = { ...clientEnv, VIGIL_TOPIC_PREFIX: prefix };

    const producer = await finished(
      spawnVigil(['simulate', '--kafka', '--events', '5000', '--devices', '100', '--seed', 'it-secure', '--json'], env),
      180_000,
    );
    expect(producer.code, producer.stderr).toBe(0);
    const truth = lastJsonLine<{
      records: number;
      valid: number;
      duplicates: number;
      replays: number;
      malformed: number;
    }>(producer.stdout);
    expect(truth.records).toBe(5000);

    const worker = await finished(spawnVigil(workerArgs(`${prefix}-workers`), env), 240_000);
    expect(worker.code, worker.stderr).toBe(0);
    const account = lastJsonLine<{ consumed: number; emitted: number; dead_lettered: number; duplicates: number }>(
      worker.stdout,
    );
    expect(account.consumed).toBe(truth.records);
    expect(account.consumed).toBe(account.emitted + account.dead_lettered + account.duplicates);

    const [normalised, deadLetters, duplicates] = await Promise.all([
      countTopic(name(TOPICS.normalised)),
      countTopic(name(TOPICS.deadLetter)),
      countTopic(name(TOPICS.duplicates)),
    ]);
    expect(normalised).toBe(truth.valid);
    expect(duplicates).toBe(truth.duplicates + truth.replays);
    expect(deadLetters).toBe(truth.malformed);
    expect(normalised + deadLetters + duplicates).toBe(truth.records);
  }, 480_000);

  it('a wrong password stops a worker at start-up, saying what to fix, without printing any password', async () => {
    const wrong = path.join(scratch, 'wrong.password');
    writeFileSync(wrong, 'not-the-password-4f1c\n', { mode: 0o600 });
    const result = await finished(
      spawnVigil(workerArgs(`secure-it-wrong-${ulid()}`), { ...clientEnv, KAFKA_SASL_PASSWORD_FILE: wrong }),
      120_000,
    );
    expect(result.code).not.toBe(0);
    expect(result.signal).toBeNull(); // it ended by itself, not by the test's deadline
    // The message names the settings to check, the password file's among them (librdkafka's own text does not).
    expect(result.stderr).toMatch(/KAFKA_SASL_PASSWORD(\(_FILE\)|_FILE)/);
    expect(result.stderr).toMatch(/KAFKA_UNAVAILABLE|authenticat/i);
    expect(result.stderr + result.stdout).not.toContain('not-the-password-4f1c');
  }, 150_000);

  it('an untrusted CA stops a worker at start-up, saying what to fix', async () => {
    const otherCa = path.join(scratch, 'other-ca');
    mkdirSync(otherCa);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        path.join(otherCa, 'ca.key'),
        '-out',
        path.join(otherCa, 'ca.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=Some other CA',
      ],
      { stdio: 'ignore' },
    );
    const result = await finished(
      spawnVigil(workerArgs(`secure-it-ca-${ulid()}`), {
        ...clientEnv,
        KAFKA_SSL_CA_FILE: path.join(otherCa, 'ca.pem'),
      }),
      120_000,
    );
    expect(result.code).not.toBe(0);
    expect(result.signal).toBeNull();
    expect(result.stderr).toMatch(/certificate|TLS|SSL/i);
    expect(result.stderr).toContain(`KAFKA_SSL_CA_FILE (${path.join(otherCa, 'ca.pem')})`);
  }, 150_000);

  it('no password of the stack appears in anything the clients printed, nor in the stack logs', () => {
    expect(printed.length).toBeGreaterThan(0);
    const logs = readdirSync(config.logDir).map((file) => readFileSync(path.join(config.logDir, file), 'utf8'));
    for (const password of passwords) {
      for (const text of [...printed, ...logs]) expect(text.includes(password)).toBe(false);
    }
  });
});
