/**
 * How Vigil's clients reach secured services: one strict configuration for Kafka (TLS, SASL SCRAM/PLAIN, OAUTHBEARER
 * over OIDC), the schema registry (basic or bearer, a private CA), Redis (`rediss://`, a password) and ClickHouse
 * (HTTPS, a user, a role). Where the services are stays in runtime/endpoints.ts (KAFKA_BROKERS, ...); this module
 * says how to authenticate to them and how to trust them.
 *
 * Settings come from a JSON file named by `VIGIL_CONFIG` and from the environment, the environment winning key by key
 * (a ConfigMap holds the file, the pod's env overrides one setting). Secret VALUES never come from the file (it is
 * configuration, often world-readable) nor from the command line (argv is visible in `ps` and shell history): only a
 * file path (`*_FILE`, e.g. a mounted Kubernetes secret) or, for the few that allow it, an environment variable.
 * Secrets are held as `Secret`s, which print as `[redacted]` everywhere (JSON, util.inspect, template strings), so a
 * stray log line cannot leak one; `describeConnections` is the start-up log's view.
 *
 * This is core: it imports no client library. Each adapter translates the loaded `Connections` into its client's
 * options in one function (adapters/kafka/security.ts, adapters/registry/security.ts, adapters/redis/security.ts,
 * adapters/clickhouse/security.ts). The reference is docs/reference/connections.md; SETTINGS below is the one list of
 * names it documents (a test keeps the two in step).
 */
import { readFileSync, statSync } from 'node:fs';
import { inspect } from 'node:util';
import { z } from 'zod';
import { resolveEndpoints } from './endpoints.ts';
import { VigilError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';

/** A secret value: `reveal()` is the only way to read it; every printing path shows `[redacted]`. */
export class Secret {
  readonly #value: string;
  /** Where it came from (`file /run/secrets/x` or `env KAFKA_SASL_PASSWORD`): safe to log. */
  readonly origin: string;

  constructor(value: string, origin: string) {
    this.#value = value;
    this.origin = origin;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return `Secret([redacted] from ${this.origin})`;
  }
}

export const KAFKA_SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
/** PLAIN is there for Confluent Cloud's API keys (SASL_SSL + PLAIN); SCRAM for MSK, Redpanda and self-managed. */
export const KAFKA_SASL_MECHANISMS = ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'PLAIN', 'OAUTHBEARER'] as const;
export type KafkaSecurityProtocol = (typeof KAFKA_SECURITY_PROTOCOLS)[number];
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/** One setting: its environment name, its key in the VIGIL_CONFIG file (null: environment only), what it holds. */
export interface ConnectionSetting {
  readonly env: string;
  /** Dotted path in the file (`kafka.ssl.caFile`); null for secret values, which a file never holds. */
  readonly key: string | null;
  /** `path`: a file the process reads; `secret-file`: a file holding a secret; `secret`: a secret value (env only). */
  readonly kind: 'value' | 'path' | 'secret-file' | 'secret';
  readonly doc: string;
  readonly example: string;
}

/** Every setting, in the order the reference lists them. Other helpers and the Helm chart rely on these env names. */
export const SETTINGS: readonly ConnectionSetting[] = [
  {
    env: 'KAFKA_SECURITY_PROTOCOL',
    key: 'kafka.securityProtocol',
    kind: 'value',
    doc: 'PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL',
    example: 'SASL_SSL',
  },
  {
    env: 'KAFKA_SSL_CA_FILE',
    key: 'kafka.ssl.caFile',
    kind: 'path',
    doc: "PEM bundle of the CAs that sign the brokers' certificates (default: the system trust store)",
    example: '/etc/vigil/kafka/ca.pem',
  },
  {
    env: 'KAFKA_SSL_CERT_FILE',
    key: 'kafka.ssl.certFile',
    kind: 'path',
    doc: "the client's certificate (PEM), for mutual TLS; needs KAFKA_SSL_KEY_FILE",
    example: '/etc/vigil/kafka/client.pem',
  },
  {
    env: 'KAFKA_SSL_KEY_FILE',
    key: 'kafka.ssl.keyFile',
    kind: 'path',
    doc: "the client certificate's private key (PEM)",
    example: '/run/secrets/kafka/client.key',
  },
  {
    env: 'KAFKA_SSL_KEY_PASSWORD_FILE',
    key: 'kafka.ssl.keyPasswordFile',
    kind: 'secret-file',
    doc: 'a file holding the passphrase of an encrypted KAFKA_SSL_KEY_FILE',
    example: '/run/secrets/kafka/client.key.password',
  },
  {
    env: 'KAFKA_SASL_MECHANISM',
    key: 'kafka.sasl.mechanism',
    kind: 'value',
    doc: 'SCRAM-SHA-512, SCRAM-SHA-256, PLAIN or OAUTHBEARER; needs a SASL_* protocol',
    example: 'SCRAM-SHA-512',
  },
  {
    env: 'KAFKA_SASL_USERNAME',
    key: 'kafka.sasl.username',
    kind: 'value',
    doc: 'the SCRAM or PLAIN user (Confluent Cloud: the API key)',
    example: 'vigil-worker',
  },
  {
    env: 'KAFKA_SASL_PASSWORD_FILE',
    key: 'kafka.sasl.passwordFile',
    kind: 'secret-file',
    doc: "a file holding the SCRAM or PLAIN password (Confluent Cloud: the API key's secret)",
    example: '/run/secrets/kafka/password',
  },
  {
    env: 'KAFKA_SASL_PASSWORD',
    key: null,
    kind: 'secret',
    doc: 'the password itself, when a file cannot be mounted (never both)',
    example: '(from a secret store)',
  },
  {
    env: 'KAFKA_OAUTH_TOKEN_ENDPOINT',
    key: 'kafka.oauth.tokenEndpoint',
    kind: 'value',
    doc: "the identity provider's OAuth 2.0 token endpoint (client-credentials grant; librdkafka's OIDC method)",
    example: 'https://login.example.org/oauth2/token',
  },
  {
    env: 'KAFKA_OAUTH_CLIENT_ID',
    key: 'kafka.oauth.clientId',
    kind: 'value',
    doc: 'the OAuth client id',
    example: 'vigil-worker',
  },
  {
    env: 'KAFKA_OAUTH_CLIENT_SECRET_FILE',
    key: 'kafka.oauth.clientSecretFile',
    kind: 'secret-file',
    doc: 'a file holding the OAuth client secret',
    example: '/run/secrets/kafka/oauth-client-secret',
  },
  {
    env: 'KAFKA_OAUTH_CLIENT_SECRET',
    key: null,
    kind: 'secret',
    doc: 'the client secret itself (never both)',
    example: '(from a secret store)',
  },
  {
    env: 'KAFKA_OAUTH_SCOPE',
    key: 'kafka.oauth.scope',
    kind: 'value',
    doc: 'the scope(s) to ask for, space-separated (optional)',
    example: 'kafka',
  },
  {
    env: 'SCHEMA_REGISTRY_USERNAME',
    key: 'schemaRegistry.username',
    kind: 'value',
    doc: 'HTTP basic user (Confluent Cloud: the registry API key)',
    example: 'vigil',
  },
  {
    env: 'SCHEMA_REGISTRY_PASSWORD_FILE',
    key: 'schemaRegistry.passwordFile',
    kind: 'secret-file',
    doc: 'a file holding the basic-auth password',
    example: '/run/secrets/registry/password',
  },
  {
    env: 'SCHEMA_REGISTRY_PASSWORD',
    key: null,
    kind: 'secret',
    doc: 'the basic-auth password itself (never both)',
    example: '(from a secret store)',
  },
  {
    env: 'SCHEMA_REGISTRY_TOKEN_FILE',
    key: 'schemaRegistry.tokenFile',
    kind: 'secret-file',
    doc: 'a file holding a bearer token (instead of basic auth); read again when it changes, for rotated tokens',
    example: '/run/secrets/registry/token',
  },
  {
    env: 'SCHEMA_REGISTRY_CA_FILE',
    key: 'schemaRegistry.caFile',
    kind: 'path',
    doc: "PEM bundle of a private CA for an https:// SCHEMA_REGISTRY_URL (default: Node's trust store)",
    example: '/etc/vigil/registry/ca.pem',
  },
  {
    env: 'REDIS_PASSWORD_FILE',
    key: 'redis.passwordFile',
    kind: 'secret-file',
    doc: 'a file holding the Redis AUTH password (ElastiCache: the auth token)',
    example: '/run/secrets/redis/password',
  },
  {
    env: 'REDIS_PASSWORD',
    key: null,
    kind: 'secret',
    doc: 'the password itself (never both)',
    example: '(from a secret store)',
  },
  {
    env: 'REDIS_USERNAME',
    key: 'redis.username',
    kind: 'value',
    doc: 'an ACL user (Redis 6+), with the password above; default: the default user',
    example: 'vigil',
  },
  {
    env: 'REDIS_CA_FILE',
    key: 'redis.caFile',
    kind: 'path',
    doc: "PEM bundle of a private CA for a rediss:// REDIS_URL (default: Node's trust store)",
    example: '/etc/vigil/redis/ca.pem',
  },
  {
    env: 'CLICKHOUSE_USERNAME',
    key: 'clickhouse.username',
    kind: 'value',
    doc: 'the ClickHouse user (default: the one in CLICKHOUSE_URL, else `default`)',
    example: 'vigil_writer',
  },
  {
    env: 'CLICKHOUSE_PASSWORD_FILE',
    key: 'clickhouse.passwordFile',
    kind: 'secret-file',
    doc: "a file holding the user's password",
    example: '/run/secrets/clickhouse/password',
  },
  {
    env: 'CLICKHOUSE_PASSWORD',
    key: null,
    kind: 'secret',
    doc: 'the password itself (never both)',
    example: '(from a secret store)',
  },
  {
    env: 'CLICKHOUSE_ROLE',
    key: 'clickhouse.role',
    kind: 'value',
    doc: 'role(s) to act with, comma-separated (the RBAC roles of the evidence issue, e.g. vigil_writer)',
    example: 'vigil_writer',
  },
  {
    env: 'CLICKHOUSE_CA_FILE',
    key: 'clickhouse.caFile',
    kind: 'path',
    doc: "PEM bundle of a private CA for an https:// CLICKHOUSE_URL (default: Node's trust store)",
    example: '/etc/vigil/clickhouse/ca.pem',
  },
];

const path = z.string().trim().min(1);
const name = z.string().trim().min(1);

/** The VIGIL_CONFIG file: strict (a misspelt key is an error), no secret values. Env values are parsed the same way. */
export const ConnectionsFileSchema = z.strictObject({
  kafka: z
    .strictObject({
      securityProtocol: z.enum(KAFKA_SECURITY_PROTOCOLS).optional(),
      ssl: z
        .strictObject({
          caFile: path.optional(),
          certFile: path.optional(),
          keyFile: path.optional(),
          keyPasswordFile: path.optional(),
        })
        .optional(),
      sasl: z
        .strictObject({
          mechanism: z.enum(KAFKA_SASL_MECHANISMS).optional(),
          username: name.optional(),
          passwordFile: path.optional(),
        })
        .optional(),
      oauth: z
        .strictObject({
          tokenEndpoint: z.url({ protocol: /^https?$/ }).optional(),
          clientId: name.optional(),
          clientSecretFile: path.optional(),
          scope: name.optional(),
        })
        .optional(),
    })
    .optional(),
  schemaRegistry: z
    .strictObject({
      username: name.optional(),
      passwordFile: path.optional(),
      tokenFile: path.optional(),
      caFile: path.optional(),
    })
    .optional(),
  redis: z
    .strictObject({ username: name.optional(), passwordFile: path.optional(), caFile: path.optional() })
    .optional(),
  clickhouse: z
    .strictObject({
      username: name.optional(),
      passwordFile: path.optional(),
      role: name.optional(),
      caFile: path.optional(),
    })
    .optional(),
});
export type ConnectionsFile = z.infer<typeof ConnectionsFileSchema>;

export type KafkaSasl =
  | {
      readonly mechanism: 'SCRAM-SHA-512' | 'SCRAM-SHA-256' | 'PLAIN';
      readonly username: string;
      readonly password: Secret;
    }
  | {
      readonly mechanism: 'OAUTHBEARER';
      readonly tokenEndpoint: string;
      readonly clientId: string;
      readonly clientSecret: Secret;
      readonly scope?: string;
    };

/** The loaded, checked configuration every adapter translates. Secrets are read already (files once, at load). */
export interface Connections {
  readonly kafka: {
    readonly securityProtocol: KafkaSecurityProtocol;
    readonly ssl: {
      readonly caFile?: string;
      readonly certFile?: string;
      readonly keyFile?: string;
      readonly keyPassword?: Secret;
    };
    readonly sasl?: KafkaSasl;
  };
  readonly schemaRegistry: {
    readonly auth?:
      | { readonly kind: 'basic'; readonly username: string; readonly password: Secret }
      /** The file is named so a rotated token is read again (adapters/registry/security.ts). */
      | { readonly kind: 'bearer'; readonly token: Secret; readonly tokenFile?: string };
    readonly caFile?: string;
  };
  readonly redis: { readonly username?: string; readonly password?: Secret; readonly caFile?: string };
  readonly clickhouse: {
    readonly username?: string;
    readonly password?: Secret;
    readonly roles?: readonly string[];
    readonly caFile?: string;
  };
  /** Things that work but should be fixed (a world-readable secret file, an unknown variable): log them at start. */
  readonly warnings: readonly string[];
  /** The VIGIL_CONFIG file read, if any. */
  readonly file?: string;
}

/** Plaintext everywhere, nothing to authenticate: the local stack (what an empty environment loads). */
export const PLAINTEXT_CONNECTIONS: Connections = {
  kafka: { securityProtocol: 'PLAINTEXT', ssl: {} },
  schemaRegistry: {},
  redis: {},
  clickhouse: {},
  warnings: [],
};

/** How the loader touches the file system (tests give their own). */
export interface ConnectionsIo {
  readonly readFile: (file: string) => string;
  /** The file's permission bits, or null when it does not exist. */
  readonly mode: (file: string) => number | null;
}

const nodeIo: ConnectionsIo = {
  readFile: (file) => readFileSync(file, 'utf8'),
  mode: (file) => {
    try {
      const stat = statSync(file);
      return stat.isFile() ? stat.mode & 0o777 : null;
    } catch {
      return null;
    }
  },
};

/** Env prefixes that belong to this configuration: a variable under them that is not a setting is probably a typo. */
const OWNED_PREFIXES = [
  'KAFKA_SSL_',
  'KAFKA_SASL_',
  'KAFKA_OAUTH_',
  'KAFKA_SECURITY_',
  'SCHEMA_REGISTRY_',
  'REDIS_',
  // Another naming scheme (a chart's or a runbook's) would be ignored silently without this.
  'VIGIL_KAFKA_',
  'VIGIL_REGISTRY_',
  'VIGIL_SCHEMA_REGISTRY_',
  'VIGIL_REDIS_',
  'VIGIL_CLICKHOUSE_',
];

/** The setting an unknown variable probably meant (`VIGIL_KAFKA_SASL_MECHANISM` -> `KAFKA_SASL_MECHANISM`). */
function likelyMeant(variable: string): string | undefined {
  const bare = variable
    .replace(/^VIGIL_/, '')
    .replace(/^REGISTRY_/, 'SCHEMA_REGISTRY_')
    .replace(/_USER$/, '_USERNAME');
  const candidates = [bare, bare.replace(/^KAFKA_(CA|CERT|KEY)_FILE$/, 'KAFKA_SSL_$1_FILE')];
  return candidates.find((name) => SETTINGS.some((s) => s.env === name) || name === 'CLICKHOUSE_URL');
}
const OTHER_KNOWN_ENV = new Set(['SCHEMA_REGISTRY_URL', 'REDIS_URL']);

function labelOf(setting: ConnectionSetting): string {
  return setting.key ? `${setting.env} (or ${setting.key} in VIGIL_CONFIG)` : setting.env;
}

function settingByKey(key: string): ConnectionSetting {
  const found = SETTINGS.find((s) => s.key === key || s.env === key);
  if (!found) throw new Error(`no connection setting ${key}`);
  return found;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts.at(-1) as string] = value;
}

function getPath(source: unknown, dotted: string): unknown {
  let node = source;
  for (const part of dotted.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/**
 * Loads and checks the connection configuration: the VIGIL_CONFIG file (JSON) if named, the environment over it,
 * secret files read, every file checked. Throws CONFIG_INVALID with every problem found, each naming what to set.
 *
 * @example
 * const connections = loadConnections();            // process.env
 * log.info({ connections: describeConnections(connections) }, 'connections');
 * for (const warning of connections.warnings) log.warn(warning);
 */
export function loadConnections(env: NodeJS.ProcessEnv = process.env, io: ConnectionsIo = nodeIo): Connections {
  const problems: string[] = [];
  const warnings: string[] = [];
  const configFile = env.VIGIL_CONFIG?.trim() || undefined;

  let fromFile: unknown = {};
  if (configFile) {
    if (!/\.json$/i.test(configFile)) {
      throw new VigilError('CONFIG_INVALID', `VIGIL_CONFIG=${configFile}: only JSON is read (name it *.json)`);
    }
    if (io.mode(configFile) === null) {
      throw new VigilError('CONFIG_INVALID', `VIGIL_CONFIG=${configFile}: no such file`);
    }
    try {
      fromFile = JSON.parse(io.readFile(configFile));
    } catch (error) {
      throw new VigilError('CONFIG_INVALID', `VIGIL_CONFIG=${configFile}: not JSON: ${(error as Error).message}`);
    }
  }

  // The environment over the file, key by key.
  const merged = structuredClone(fromFile ?? {}) as Record<string, unknown>;
  const envSecrets = new Map<string, Secret>();
  for (const setting of SETTINGS) {
    const raw = env[setting.env];
    if (raw === undefined || raw.trim() === '') continue;
    if (setting.kind === 'secret') envSecrets.set(setting.env, new Secret(raw, `env ${setting.env}`));
    else if (setting.key && typeof merged === 'object' && merged !== null) setPath(merged, setting.key, raw.trim());
  }
  for (const variable of Object.keys(env)) {
    if (OTHER_KNOWN_ENV.has(variable) || SETTINGS.some((s) => s.env === variable)) continue;
    if (OWNED_PREFIXES.some((prefix) => variable.startsWith(prefix))) {
      const meant = likelyMeant(variable);
      warnings.push(
        `${variable} is not a connection setting and is ignored (${meant ? `did you mean ${meant}? ` : ''}see docs/reference/connections.md)`,
      );
    }
  }

  const parsed = ConnectionsFileSchema.safeParse(merged);
  if (!parsed.success) {
    const where = configFile ? ` (VIGIL_CONFIG=${configFile} and the environment)` : '';
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path.join('.');
      const setting = SETTINGS.find((s) => s.key === key);
      const unknown = issue.code === 'unrecognized_keys' ? `: ${issue.keys.join(', ')}` : '';
      return `${setting ? labelOf(setting) : key || 'the configuration'}: ${issue.message}${unknown}`;
    });
    throw new VigilError('CONFIG_INVALID', `connection settings${where}:\n  ${lines.join('\n  ')}`);
  }
  const file = parsed.data;
  const value = (key: string): string | undefined => getPath(file, key) as string | undefined;

  /** A file the process must be able to read; returns the path or undefined. */
  const readablePath = (key: string): string | undefined => {
    const p = value(key);
    if (p === undefined) return undefined;
    if (io.mode(p) === null) problems.push(`${labelOf(settingByKey(key))}=${p}: no such file`);
    return p;
  };
  /** A secret from its file or its env variable (never both). */
  const secret = (fileKey: string, envName: string | null): Secret | undefined => {
    const p = value(fileKey);
    const fromEnv = envName ? envSecrets.get(envName) : undefined;
    const fileSetting = settingByKey(fileKey);
    if (p !== undefined && fromEnv) {
      problems.push(`${fileSetting.env} and ${envName} are both set: keep one (the file is preferred)`);
      return undefined;
    }
    if (fromEnv) return fromEnv;
    if (p === undefined) return undefined;
    const mode = io.mode(p);
    if (mode === null) {
      problems.push(`${labelOf(fileSetting)}=${p}: no such file`);
      return undefined;
    }
    // Warn, not refuse: Kubernetes mounts secrets 0644 by default and the container is the boundary there; the
    // warning says how to tighten it (defaultMode 0400, or chmod 600) without breaking a default deployment.
    if (mode & 0o004) {
      warnings.push(`${fileSetting.env}=${p} is readable by every user (mode ${mode.toString(8)}): chmod 600 it`);
    }
    let text: string;
    try {
      text = io.readFile(p);
    } catch (error) {
      problems.push(
        `${labelOf(fileSetting)}=${p}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
      return undefined;
    }
    const trimmed = text.replace(/\r?\n$/, '');
    if (trimmed === '') {
      problems.push(`${labelOf(fileSetting)}=${p}: the file is empty`);
      return undefined;
    }
    return new Secret(trimmed, `file ${p}`);
  };

  // Kafka.
  const protocol = (value('kafka.securityProtocol') ?? 'PLAINTEXT') as KafkaSecurityProtocol;
  const tls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const saslOn = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
  const ssl = {
    caFile: readablePath('kafka.ssl.caFile'),
    certFile: readablePath('kafka.ssl.certFile'),
    keyFile: readablePath('kafka.ssl.keyFile'),
    keyPassword: secret('kafka.ssl.keyPasswordFile', null),
  };
  if (!tls && Object.values(ssl).some((v) => v !== undefined)) {
    problems.push(
      `KAFKA_SSL_* settings are given but KAFKA_SECURITY_PROTOCOL=${protocol}: set it to SSL or SASL_SSL (they would be ignored)`,
    );
  }
  if ((ssl.certFile === undefined) !== (ssl.keyFile === undefined)) {
    problems.push('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS needs both)');
  }
  if (ssl.keyPassword && !ssl.keyFile) problems.push('KAFKA_SSL_KEY_PASSWORD_FILE is set without KAFKA_SSL_KEY_FILE');

  const mechanism = value('kafka.sasl.mechanism') as KafkaSaslMechanism | undefined;
  const username = value('kafka.sasl.username');
  const password = secret('kafka.sasl.passwordFile', 'KAFKA_SASL_PASSWORD');
  const oauth = {
    tokenEndpoint: value('kafka.oauth.tokenEndpoint'),
    clientId: value('kafka.oauth.clientId'),
    clientSecret: secret('kafka.oauth.clientSecretFile', 'KAFKA_OAUTH_CLIENT_SECRET'),
    scope: value('kafka.oauth.scope'),
  };
  const oauthGiven = Object.values(oauth).some((v) => v !== undefined);
  let sasl: KafkaSasl | undefined;
  if (saslOn && !mechanism) {
    problems.push(
      `KAFKA_SECURITY_PROTOCOL=${protocol} needs KAFKA_SASL_MECHANISM (${KAFKA_SASL_MECHANISMS.join(', ')})`,
    );
  } else if (!saslOn && (mechanism || username || password || oauthGiven)) {
    problems.push(
      `SASL settings are given but KAFKA_SECURITY_PROTOCOL=${protocol}: set it to SASL_SSL (SASL_PLAINTEXT only on a trusted network)`,
    );
  } else if (mechanism === 'OAUTHBEARER') {
    if (username || password) {
      problems.push('KAFKA_SASL_MECHANISM=OAUTHBEARER takes KAFKA_OAUTH_*, not KAFKA_SASL_USERNAME/PASSWORD');
    }
    if (!oauth.tokenEndpoint) problems.push('KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_OAUTH_TOKEN_ENDPOINT');
    if (!oauth.clientId) problems.push('KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_OAUTH_CLIENT_ID');
    if (!oauth.clientSecret) {
      problems.push(
        'KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_OAUTH_CLIENT_SECRET_FILE (or KAFKA_OAUTH_CLIENT_SECRET)',
      );
    }
    if (oauth.tokenEndpoint && oauth.clientId && oauth.clientSecret) {
      sasl = {
        mechanism,
        tokenEndpoint: oauth.tokenEndpoint,
        clientId: oauth.clientId,
        clientSecret: oauth.clientSecret,
        ...(oauth.scope ? { scope: oauth.scope } : {}),
      };
    }
  } else if (mechanism) {
    if (oauthGiven) problems.push(`KAFKA_OAUTH_* settings need KAFKA_SASL_MECHANISM=OAUTHBEARER, not ${mechanism}`);
    if (!username) problems.push(`KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_USERNAME`);
    if (!password)
      problems.push(`KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_PASSWORD_FILE (or KAFKA_SASL_PASSWORD)`);
    if (username && password) sasl = { mechanism, username, password };
  }
  if (protocol === 'SASL_PLAINTEXT' && mechanism === 'PLAIN') {
    warnings.push('KAFKA_SASL_MECHANISM=PLAIN over SASL_PLAINTEXT sends the password in clear: use SASL_SSL');
  }

  // Endpoints decide whether TLS is on for the HTTP services and Redis: a CA for a plain URL is a mistake.
  const endpoints = resolveEndpoints(env);

  // Schema registry.
  const registryUser = value('schemaRegistry.username');
  const registryPassword = secret('schemaRegistry.passwordFile', 'SCHEMA_REGISTRY_PASSWORD');
  const registryToken = secret('schemaRegistry.tokenFile', null);
  let registryAuth: Connections['schemaRegistry']['auth'];
  if (registryToken && (registryUser || registryPassword)) {
    problems.push('SCHEMA_REGISTRY_TOKEN_FILE (bearer) and SCHEMA_REGISTRY_USERNAME/PASSWORD (basic): keep one');
  } else if (registryToken) {
    registryAuth = { kind: 'bearer', token: registryToken, tokenFile: value('schemaRegistry.tokenFile') };
  } else if (registryUser && registryPassword) {
    registryAuth = { kind: 'basic', username: registryUser, password: registryPassword };
  } else if (registryUser || registryPassword) {
    problems.push(
      'SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD_FILE (or SCHEMA_REGISTRY_PASSWORD) go together',
    );
  }
  const registryCa = readablePath('schemaRegistry.caFile');
  if (registryCa && !endpoints.schemaRegistryUrl.startsWith('https://')) {
    problems.push('SCHEMA_REGISTRY_CA_FILE is set but SCHEMA_REGISTRY_URL is not https://');
  }
  if (registryAuth && endpoints.schemaRegistryUrl.startsWith('http://') && !isLoopback(endpoints.schemaRegistryUrl)) {
    warnings.push('schema registry credentials are sent over http:// to a remote host: use https://');
  }

  // Redis.
  const redisPassword = secret('redis.passwordFile', 'REDIS_PASSWORD');
  const redisCa = readablePath('redis.caFile');
  if (redisCa && !endpoints.redisUrl.startsWith('rediss://')) {
    problems.push('REDIS_CA_FILE is set but REDIS_URL is not rediss:// (TLS)');
  }
  if (redisPassword && safeUrl(endpoints.redisUrl)?.password) {
    problems.push(
      'REDIS_URL carries a password and REDIS_PASSWORD(_FILE) is set too: keep the file, drop it from the URL',
    );
  }

  // ClickHouse.
  const clickhousePassword = secret('clickhouse.passwordFile', 'CLICKHOUSE_PASSWORD');
  const clickhouseCa = readablePath('clickhouse.caFile');
  if (clickhouseCa && !endpoints.clickhouseUrl.startsWith('https://')) {
    problems.push('CLICKHOUSE_CA_FILE is set but CLICKHOUSE_URL is not https://');
  }
  const roles = value('clickhouse.role')
    ?.split(',')
    .map((r) => r.trim())
    .filter(Boolean);

  if (problems.length > 0) {
    throw new VigilError('CONFIG_INVALID', `connection settings:\n  ${problems.join('\n  ')}`);
  }
  return {
    kafka: { securityProtocol: protocol, ssl: dropUndefined(ssl), ...(sasl ? { sasl } : {}) },
    schemaRegistry: dropUndefined({ auth: registryAuth, caFile: registryCa }),
    redis: dropUndefined({ username: value('redis.username'), password: redisPassword, caFile: redisCa }),
    clickhouse: dropUndefined({
      username: value('clickhouse.username'),
      password: clickhousePassword,
      roles: roles && roles.length > 0 ? roles : undefined,
      caFile: clickhouseCa,
    }),
    warnings,
    ...(configFile ? { file: configFile } : {}),
  };
}

function dropUndefined<T extends Record<string, unknown>>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as T;
}

function safeUrl(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

function isLoopback(url: string): boolean {
  const host = safeUrl(url)?.hostname ?? '';
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

/** A URL with any `user:password@` replaced, for messages and logs. */
export function redactUrl(url: string): string {
  const parsed = safeUrl(url);
  if (!parsed || (!parsed.username && !parsed.password)) return url;
  parsed.username = parsed.username ? '[redacted]' : '';
  parsed.password = parsed.password ? '[redacted]' : '';
  return parsed.toString();
}

/**
 * What the configuration says, for a start-up log line: protocols, mechanisms, users, file paths, and for each secret
 * only where it comes from. Never a secret value.
 *
 * @example
 * log.info({ connections: describeConnections(loadConnections()) }, 'connection security');
 */
export function describeConnections(connections: Connections): Record<string, unknown> {
  const secretFrom = (s: Secret | undefined): string | undefined => (s ? `[redacted] (${s.origin})` : undefined);
  const { kafka, schemaRegistry, redis, clickhouse } = connections;
  const sasl = kafka.sasl;
  return {
    ...(connections.file ? { file: connections.file } : {}),
    kafka: dropUndefined({
      securityProtocol: kafka.securityProtocol,
      caFile: kafka.ssl.caFile,
      certFile: kafka.ssl.certFile,
      keyFile: kafka.ssl.keyFile,
      keyPassword: secretFrom(kafka.ssl.keyPassword),
      saslMechanism: sasl?.mechanism,
      ...(sasl && sasl.mechanism !== 'OAUTHBEARER'
        ? { saslUsername: sasl.username, saslPassword: secretFrom(sasl.password) }
        : {}),
      ...(sasl && sasl.mechanism === 'OAUTHBEARER'
        ? {
            oauthTokenEndpoint: sasl.tokenEndpoint,
            oauthClientId: sasl.clientId,
            oauthClientSecret: secretFrom(sasl.clientSecret),
            oauthScope: sasl.scope,
          }
        : {}),
    }),
    schemaRegistry: dropUndefined({
      auth: schemaRegistry.auth?.kind ?? 'none',
      username: schemaRegistry.auth?.kind === 'basic' ? schemaRegistry.auth.username : undefined,
      password: schemaRegistry.auth?.kind === 'basic' ? secretFrom(schemaRegistry.auth.password) : undefined,
      token: schemaRegistry.auth?.kind === 'bearer' ? secretFrom(schemaRegistry.auth.token) : undefined,
      caFile: schemaRegistry.caFile,
    }),
    redis: dropUndefined({ username: redis.username, password: secretFrom(redis.password), caFile: redis.caFile }),
    clickhouse: dropUndefined({
      username: clickhouse.username,
      password: secretFrom(clickhouse.password),
      roles: clickhouse.roles?.join(','),
      caFile: clickhouse.caFile,
    }),
  };
}

let processWide: Connections | undefined;

/**
 * The process's configuration, loaded from process.env on first use and kept: every adapter's default, so a client
 * created anywhere (a runner, the CLI, the simulator) gets the same settings. A bad configuration throws here, at the
 * first client a process creates, before anything connects.
 *
 * @example
 * const producer = new Kafka.Producer({ ...base, ...kafkaSecurityConfig(processConnections()) });
 */
export function processConnections(): Connections {
  if (!processWide) {
    processWide = loadConnections(process.env);
    logAtStartup(processWide, createLogger('connections'));
  }
  return processWide;
}

/**
 * One line saying how the process connects (when anything is configured) and one per warning: every process that
 * creates a client logs it once, without each runner having to remember to.
 */
export function logAtStartup(connections: Connections, log: Pick<Logger, 'info' | 'warn'>): void {
  const configured =
    connections.file !== undefined ||
    connections.kafka.securityProtocol !== 'PLAINTEXT' ||
    [connections.schemaRegistry, connections.redis, connections.clickhouse].some((c) => Object.keys(c).length > 0);
  if (configured) log.info({ connections: describeConnections(connections) }, 'connection security');
  for (const warning of connections.warnings) log.warn(warning);
}
