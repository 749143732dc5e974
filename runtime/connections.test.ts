import { readdirSync, readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  type ConnectionsIo,
  describeConnections,
  loadConnections,
  logAtStartup,
  PLAINTEXT_CONNECTIONS,
  redactUrl,
  SETTINGS,
  Secret,
} from './connections.ts';
import { VigilError } from './errors.ts';

/** An in-memory file system: path -> [content, mode]. */
function memoryIo(files: Record<string, string | [string, number]>): ConnectionsIo {
  const entry = (file: string): [string, number] | undefined => {
    const value = files[file];
    if (value === undefined) return undefined;
    return typeof value === 'string' ? [value, 0o600] : value;
  };
  return {
    readFile: (file) => {
      const found = entry(file);
      if (!found) throw Object.assign(new Error(`ENOENT ${file}`), { code: 'ENOENT' });
      return found[0];
    },
    mode: (file) => entry(file)?.[1] ?? null,
  };
}

const SCRAM_PASSWORD = 'scram-Pa55-never-logged';

const scramEnv = {
  KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
  KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
  KAFKA_SASL_USERNAME: 'vigil-worker',
  KAFKA_SASL_PASSWORD_FILE: '/run/secrets/kafka/password',
  KAFKA_SSL_CA_FILE: '/etc/vigil/ca.pem',
};
const scramFiles = { '/run/secrets/kafka/password': `${SCRAM_PASSWORD}\n`, '/etc/vigil/ca.pem': 'PEM' };

function problemsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VigilError);
    expect((error as VigilError).code).toBe('CONFIG_INVALID');
    return (error as Error).message;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('loadConnections: the environment', () => {
  it('an empty environment is plaintext everywhere, nothing to authenticate (the local stack)', () => {
    const connections = loadConnections({}, memoryIo({}));
    expect(connections.kafka).toEqual({ securityProtocol: 'PLAINTEXT', ssl: {} });
    expect(connections.schemaRegistry).toEqual({});
    expect(connections.redis).toEqual({});
    expect(connections.clickhouse).toEqual({});
    expect(connections.warnings).toEqual([]);
  });

  it('reads SASL_SSL + SCRAM-SHA-512 with the password from its file (trailing newline dropped)', () => {
    const connections = loadConnections(scramEnv, memoryIo(scramFiles));
    expect(connections.kafka.securityProtocol).toBe('SASL_SSL');
    expect(connections.kafka.ssl.caFile).toBe('/etc/vigil/ca.pem');
    const sasl = connections.kafka.sasl;
    expect(sasl?.mechanism).toBe('SCRAM-SHA-512');
    if (sasl?.mechanism !== 'SCRAM-SHA-512') throw new Error('unreachable');
    expect(sasl.username).toBe('vigil-worker');
    expect(sasl.password.reveal()).toBe(SCRAM_PASSWORD);
    expect(sasl.password.origin).toBe('file /run/secrets/kafka/password');
  });

  it('takes a password from the environment when no file is named', () => {
    const env = { ...scramEnv, KAFKA_SASL_PASSWORD_FILE: undefined, KAFKA_SASL_PASSWORD: 'from-env' };
    const sasl = loadConnections(env, memoryIo(scramFiles)).kafka.sasl;
    expect(sasl?.mechanism !== 'OAUTHBEARER' && sasl?.password.reveal()).toBe('from-env');
  });

  it('reads OAUTHBEARER (OIDC client credentials)', () => {
    const connections = loadConnections(
      {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        KAFKA_OAUTH_TOKEN_ENDPOINT: 'https://idp.example.org/oauth2/token',
        KAFKA_OAUTH_CLIENT_ID: 'vigil',
        KAFKA_OAUTH_CLIENT_SECRET_FILE: '/s/oauth',
        KAFKA_OAUTH_SCOPE: 'kafka',
      },
      memoryIo({ '/s/oauth': 'client-secret' }),
    );
    expect(connections.kafka.sasl).toMatchObject({
      mechanism: 'OAUTHBEARER',
      tokenEndpoint: 'https://idp.example.org/oauth2/token',
      clientId: 'vigil',
      scope: 'kafka',
    });
  });

  it('reads the registry, Redis and ClickHouse settings against TLS endpoints', () => {
    const connections = loadConnections(
      {
        SCHEMA_REGISTRY_URL: 'https://registry.example.org',
        SCHEMA_REGISTRY_TOKEN_FILE: '/s/token',
        SCHEMA_REGISTRY_CA_FILE: '/ca/registry.pem',
        REDIS_URL: 'rediss://cache.example.org:6379',
        REDIS_PASSWORD_FILE: '/s/redis',
        REDIS_CA_FILE: '/ca/redis.pem',
        CLICKHOUSE_URL: 'https://ch.example.org:8443',
        CLICKHOUSE_USERNAME: 'vigil_writer',
        CLICKHOUSE_PASSWORD_FILE: '/s/ch',
        CLICKHOUSE_ROLE: 'vigil_writer, vigil_reader',
        CLICKHOUSE_CA_FILE: '/ca/ch.pem',
      },
      memoryIo({
        '/s/token': 'tok',
        '/s/redis': 'redis-pw',
        '/s/ch': 'ch-pw',
        '/ca/registry.pem': 'P',
        '/ca/redis.pem': 'P',
        '/ca/ch.pem': 'P',
      }),
    );
    expect(connections.schemaRegistry.auth?.kind).toBe('bearer');
    expect(connections.schemaRegistry.caFile).toBe('/ca/registry.pem');
    expect(connections.redis.password?.reveal()).toBe('redis-pw');
    expect(connections.clickhouse).toMatchObject({ username: 'vigil_writer', roles: ['vigil_writer', 'vigil_reader'] });
    expect(connections.clickhouse.password?.reveal()).toBe('ch-pw');
  });
});

describe('loadConnections: the VIGIL_CONFIG file and precedence', () => {
  const file = {
    kafka: {
      securityProtocol: 'SASL_SSL',
      ssl: { caFile: '/etc/vigil/ca.pem' },
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'from-file', passwordFile: '/run/secrets/kafka/password' },
    },
    clickhouse: { username: 'file-user', role: 'vigil_reader' },
  };
  const files = { ...scramFiles, '/etc/vigil/connections.json': JSON.stringify(file) };

  it('reads the file alone', () => {
    const connections = loadConnections({ VIGIL_CONFIG: '/etc/vigil/connections.json' }, memoryIo(files));
    expect(connections.kafka.sasl).toMatchObject({ mechanism: 'SCRAM-SHA-256', username: 'from-file' });
    expect(connections.clickhouse).toMatchObject({ username: 'file-user', roles: ['vigil_reader'] });
    expect(connections.file).toBe('/etc/vigil/connections.json');
  });

  it('the environment wins key by key, the rest of the file stays', () => {
    const connections = loadConnections(
      { VIGIL_CONFIG: '/etc/vigil/connections.json', KAFKA_SASL_USERNAME: 'from-env', CLICKHOUSE_ROLE: 'vigil_admin' },
      memoryIo(files),
    );
    expect(connections.kafka.sasl).toMatchObject({ mechanism: 'SCRAM-SHA-256', username: 'from-env' });
    expect(connections.clickhouse).toMatchObject({ username: 'file-user', roles: ['vigil_admin'] });
  });

  it('refuses a misspelt key and a secret value in the file, naming them', () => {
    const bad = { kafka: { sasl: { mechanism: 'SCRAM-SHA-512', password: 'inline', usrname: 'x' } } };
    const message = problemsOf(() =>
      loadConnections({ VIGIL_CONFIG: '/c.json' }, memoryIo({ '/c.json': JSON.stringify(bad) })),
    );
    expect(message).toMatch(/kafka\.sasl.*password/);
    expect(message).toMatch(/usrname/);
    expect(message).not.toContain('inline');
  });

  it('refuses a missing, non-JSON or YAML-named file', () => {
    expect(problemsOf(() => loadConnections({ VIGIL_CONFIG: '/nope.json' }, memoryIo({})))).toMatch(/no such file/);
    expect(problemsOf(() => loadConnections({ VIGIL_CONFIG: '/c.json' }, memoryIo({ '/c.json': '{' })))).toMatch(
      /not JSON/,
    );
    expect(problemsOf(() => loadConnections({ VIGIL_CONFIG: '/c.yaml' }, memoryIo({ '/c.yaml': 'a: 1' })))).toMatch(
      /only JSON/,
    );
  });

  it('refuses an unknown protocol value, naming the variable', () => {
    const message = problemsOf(() => loadConnections({ KAFKA_SECURITY_PROTOCOL: 'TLS' }, memoryIo({})));
    expect(message).toContain('KAFKA_SECURITY_PROTOCOL');
    expect(message).toContain('SASL_SSL');
  });
});

describe('loadConnections: start-up checks say what to fix', () => {
  const cases: [string, Record<string, string>, Record<string, string>, RegExp][] = [
    [
      'SASL without a mechanism',
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' },
      {},
      /KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM/,
    ],
    [
      'a mechanism on a plaintext protocol',
      { KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' },
      {},
      /KAFKA_SECURITY_PROTOCOL=PLAINTEXT: set it to SASL_SSL/,
    ],
    [
      'a missing CA file',
      { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: '/missing/ca.pem' },
      {},
      /KAFKA_SSL_CA_FILE .*=\/missing\/ca\.pem: no such file/,
    ],
    [
      'a missing password file',
      { ...scramEnv, KAFKA_SASL_PASSWORD_FILE: '/missing/pw' },
      scramFiles,
      /KAFKA_SASL_PASSWORD_FILE .*=\/missing\/pw: no such file/,
    ],
    ['an empty password file', scramEnv, { ...scramFiles, '/run/secrets/kafka/password': '\n' }, /the file is empty/],
    ['SCRAM without a user', { ...scramEnv, KAFKA_SASL_USERNAME: '' }, scramFiles, /needs KAFKA_SASL_USERNAME/],
    [
      'a password both in a file and the environment',
      { ...scramEnv, KAFKA_SASL_PASSWORD: 'x' },
      scramFiles,
      /KAFKA_SASL_PASSWORD_FILE and KAFKA_SASL_PASSWORD are both set/,
    ],
    [
      'a certificate without its key',
      { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERT_FILE: '/c.pem' },
      { '/c.pem': 'P' },
      /KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together/,
    ],
    [
      'TLS files on a plaintext protocol',
      { KAFKA_SSL_CA_FILE: '/c.pem' },
      { '/c.pem': 'P' },
      /KAFKA_SSL_\* settings are given but KAFKA_SECURITY_PROTOCOL=PLAINTEXT/,
    ],
    [
      'OAUTHBEARER without its endpoint',
      {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        KAFKA_OAUTH_CLIENT_ID: 'c',
        KAFKA_OAUTH_CLIENT_SECRET: 's',
      },
      {},
      /OAUTHBEARER needs KAFKA_OAUTH_TOKEN_ENDPOINT/,
    ],
    [
      'both bearer and basic for the registry',
      { SCHEMA_REGISTRY_TOKEN_FILE: '/t', SCHEMA_REGISTRY_USERNAME: 'u', SCHEMA_REGISTRY_PASSWORD: 'p' },
      { '/t': 'tok' },
      /keep one/,
    ],
    [
      'a registry user without a password',
      { SCHEMA_REGISTRY_USERNAME: 'u' },
      {},
      /SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD_FILE .* go together/,
    ],
    [
      'a Redis CA for a redis:// URL',
      { REDIS_URL: 'redis://cache:6379', REDIS_CA_FILE: '/c.pem' },
      { '/c.pem': 'P' },
      /REDIS_URL is not rediss:\/\//,
    ],
    [
      'a ClickHouse CA for an http:// URL',
      { CLICKHOUSE_URL: 'http://ch:8123', CLICKHOUSE_CA_FILE: '/c.pem' },
      { '/c.pem': 'P' },
      /CLICKHOUSE_URL is not https:\/\//,
    ],
  ];
  it.each(cases)('%s', (_name, env, files, expected) => {
    expect(problemsOf(() => loadConnections(env, memoryIo(files)))).toMatch(expected);
  });

  it('reports every problem at once', () => {
    const message = problemsOf(() =>
      loadConnections({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', SCHEMA_REGISTRY_USERNAME: 'u' }, memoryIo({})),
    );
    expect(message).toContain('KAFKA_SASL_MECHANISM');
    expect(message).toContain('SCHEMA_REGISTRY_PASSWORD_FILE');
  });

  it('warns (does not refuse) on a world-readable secret file: Kubernetes mounts secrets 0644 by default', () => {
    const connections = loadConnections(
      scramEnv,
      memoryIo({ ...scramFiles, '/run/secrets/kafka/password': [SCRAM_PASSWORD, 0o644] }),
    );
    expect(connections.warnings).toEqual([
      'KAFKA_SASL_PASSWORD_FILE=/run/secrets/kafka/password is readable by every user (mode 644): chmod 600 it',
    ]);
  });

  it('warns on a variable that looks like a setting but is none (a typo, or another naming)', () => {
    const connections = loadConnections(
      {
        KAFKA_SASL_PASWORD_FILE: '/x',
        REDIS_URL: 'redis://r:1',
        VIGIL_KAFKA_CA_FILE: '/ca.pem',
        VIGIL_CLICKHOUSE_USER: 'w',
        VIGIL_TOPIC_PREFIX: 'ci',
      },
      memoryIo({}),
    );
    expect(connections.warnings).toEqual([
      'KAFKA_SASL_PASWORD_FILE is not a connection setting and is ignored (see docs/reference/connections.md)',
      'VIGIL_KAFKA_CA_FILE is not a connection setting and is ignored (did you mean KAFKA_SSL_CA_FILE? see docs/reference/connections.md)',
      'VIGIL_CLICKHOUSE_USER is not a connection setting and is ignored (did you mean CLICKHOUSE_USERNAME? see docs/reference/connections.md)',
    ]);
  });
});

describe('secrets never print', () => {
  const everySecret = {
    ...scramEnv,
    KAFKA_SSL_CERT_FILE: '/c.pem',
    KAFKA_SSL_KEY_FILE: '/k.pem',
    KAFKA_SSL_KEY_PASSWORD_FILE: '/s/keypw',
    SCHEMA_REGISTRY_USERNAME: 'reg',
    SCHEMA_REGISTRY_PASSWORD: 'registry-Pa55',
    REDIS_PASSWORD: 'redis-Pa55',
    CLICKHOUSE_PASSWORD_FILE: '/s/ch',
  };
  const everyFile = { ...scramFiles, '/c.pem': 'P', '/k.pem': 'P', '/s/keypw': 'key-Pa55', '/s/ch': 'ch-Pa55' };
  const secretValues = [SCRAM_PASSWORD, 'registry-Pa55', 'redis-Pa55', 'key-Pa55', 'ch-Pa55'];

  it('describeConnections names every secret by origin, never by value', () => {
    const text = JSON.stringify(describeConnections(loadConnections(everySecret, memoryIo(everyFile))));
    for (const value of secretValues) expect(text).not.toContain(value);
    expect(text).toContain('[redacted] (file /run/secrets/kafka/password)');
    expect(text).toContain('[redacted] (env SCHEMA_REGISTRY_PASSWORD)');
    expect(text).toContain('"saslUsername":"vigil-worker"');
  });

  it('the loaded configuration itself prints no secret (JSON, inspect, template strings)', () => {
    const connections = loadConnections(everySecret, memoryIo(everyFile));
    const printed = [JSON.stringify(connections), inspect(connections, { depth: 10 }), `${connections.redis.password}`];
    for (const text of printed) for (const value of secretValues) expect(text).not.toContain(value);
    expect(new Secret('x', 'env X').reveal()).toBe('x');
  });

  it('logAtStartup logs the description once and every warning, never a secret; nothing for the local stack', () => {
    const lines: string[] = [];
    const log = {
      info: (object: unknown, message: string) => lines.push(`${message} ${JSON.stringify(object)}`),
      warn: (message: string) => lines.push(message),
    };
    logAtStartup(PLAINTEXT_CONNECTIONS, log as never);
    expect(lines).toEqual([]);
    const worldReadable = { ...everyFile, '/s/ch': ['ch-Pa55', 0o644] as [string, number] };
    logAtStartup(loadConnections(everySecret, memoryIo(worldReadable)), log as never);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^connection security .*"securityProtocol":"SASL_SSL"/);
    expect(lines[1]).toMatch(/CLICKHOUSE_PASSWORD_FILE=\/s\/ch is readable by every user/);
    for (const value of secretValues) expect(lines.join('\n')).not.toContain(value);
  });

  it('redactUrl hides credentials in a URL', () => {
    expect(redactUrl('rediss://user:Pa55@cache:6379/0')).toBe('rediss://%5Bredacted%5D:%5Bredacted%5D@cache:6379/0');
    expect(redactUrl('https://ch:8443')).toBe('https://ch:8443');
  });
});

describe('the reference documents every setting', () => {
  it('docs/reference/connections.md names each env variable and file key of SETTINGS', () => {
    const doc = readFileSync(new URL('../docs/reference/connections.md', import.meta.url), 'utf8');
    for (const setting of SETTINGS) {
      expect(doc, setting.env).toContain(`\`${setting.env}\``);
      if (setting.key) expect(doc, setting.key).toContain(`\`${setting.key}\``);
    }
  });
});

describe('no secret on the command line', () => {
  it('no vigil command has an option named like a password, secret, token value, API key or credential', async () => {
    // Every command module registers itself on a program (as cli/main.ts does); walk every command's options.
    const program = new Command();
    const dir = new URL('../cli/commands/', import.meta.url);
    const modules = readdirSync(dir).filter((file) => file.endsWith('.ts') && !file.includes('.test.'));
    for (const file of modules) {
      const module = (await import(new URL(file, dir).href)) as Record<string, unknown>;
      for (const [name, register] of Object.entries(module)) {
        if (/^register[A-Z]/.test(name) && typeof register === 'function') register(program);
      }
    }
    const flags: string[] = [];
    const walk = (command: Command): void => {
      for (const option of command.options) flags.push(option.long ?? option.short ?? '');
      command.commands.forEach(walk);
    };
    walk(program);
    expect(flags.length).toBeGreaterThan(50);
    // A token's id (--token-id) or a file holding a key (--audit-hash-key FILE) is not a secret value.
    const secretLike = flags.filter(
      (flag) => /pass(word|phrase)?\b|secret|credential|api-?key|token(?!-id)/i.test(flag) && !/-file$/.test(flag),
    );
    expect(secretLike).toEqual([]);
  }, 60_000);
});
