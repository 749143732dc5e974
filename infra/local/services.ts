/**
 * The four services of the local stack: how each is prepared (artifacts, generated config, storage format), the
 * command that runs it in the foreground (the stack detaches it), the ports it takes and how long it may take to
 * become healthy. Everything binds to 127.0.0.1 only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  APICURIO_MIN_JAVA,
  apicurioDistDir,
  type DebianTool,
  ensureApicurioDist,
  ensureKafkaLibs,
  findJdk,
  KAFKA_MIN_JAVA,
  kafkaLibDir,
  pomStamp,
  run,
  which,
} from './artifacts.ts';
import { logFile, type ServiceName, type StackConfig, serviceDir } from './config.ts';
import { ADMIN_USER, CLIENT_USER, readSecret, SCRAM_MECHANISM, scramCredentials, securePaths } from './secure.ts';

export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
}

/** What a service runs with, computed without touching anything. */
export interface Plan {
  readonly launch: Launch;
  /** Generated config files (absolute path -> content) that `prepare` writes. */
  readonly files: Readonly<Record<string, string>>;
  /** Identifies the artifacts (the pom's hash for the Java services). */
  readonly artifacts?: string;
}

export interface ServiceDef {
  readonly name: ServiceName;
  /** Loopback ports the service listens on (the first is the one clients use). */
  ports(config: StackConfig): readonly number[];
  /** Debian commands it needs on the machine. */
  readonly tools: readonly DebianTool[];
  readonly startTimeoutMs: number;
  /** How long SIGTERM gets before SIGKILL. */
  readonly stopGraceMs: number;
  plan(config: StackConfig): Plan;
  /** Fetch artifacts, write the plan's files, format storage. Idempotent; only while the service is stopped. */
  prepare(config: StackConfig, plan: Plan): Promise<void>;
}

/**
 * Changes whenever what a service would be started with changes (command, flags, environment, generated config,
 * artifact versions): `up` restarts a running service whose fingerprint differs from the one it was started with.
 */
export function fingerprint(plan: Plan): string {
  const files = Object.entries(plan.files).sort(([a], [b]) => a.localeCompare(b));
  return createHash('sha256')
    .update(JSON.stringify({ launch: plan.launch, files, artifacts: plan.artifacts ?? null }))
    .digest('hex');
}

/** Generated config is for the stack's user only: in the secured mode it holds the broker's own SCRAM password. */
function writeFiles(plan: Plan): void {
  for (const [file, content] of Object.entries(plan.files)) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
}

// ---- Kafka (KRaft, combined broker + controller) ----------------------------------------------------------------

/**
 * Kafka's data directory. The secured broker keeps its own: its storage is formatted with the SCRAM credentials, which
 * a KRaft cluster only takes at format time, and switching modes must never reformat (or mix) the other's data.
 */
export function kafkaDataDir(config: StackConfig): string {
  return path.join(serviceDir(config, 'kafka'), config.secure ? 'data-secure' : 'data');
}

/** Listener settings: PLAINTEXT, or (secured) one SASL_SSL listener for clients and the broker itself. */
function kafkaListenerProperties(config: StackConfig): string[] {
  const { kafka, kafkaController } = config.ports;
  if (!config.secure) {
    return [
      `listeners=PLAINTEXT://127.0.0.1:${kafka},CONTROLLER://127.0.0.1:${kafkaController}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${kafka}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    ];
  }
  const paths = securePaths(config);
  const admin = scramCredentials(config).find((c) => c.name === ADMIN_USER)!;
  return [
    // The controller listener stays PLAINTEXT: loopback only, and only this node's own broker talks to it.
    `listeners=SASL_SSL://127.0.0.1:${kafka},CONTROLLER://127.0.0.1:${kafkaController}`,
    `advertised.listeners=SASL_SSL://127.0.0.1:${kafka}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=SASL_SSL',
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT',
    `sasl.enabled.mechanisms=${SCRAM_MECHANISM}`,
    `sasl.mechanism.inter.broker.protocol=${SCRAM_MECHANISM}`,
    `listener.name.sasl_ssl.${SCRAM_MECHANISM.toLowerCase()}.sasl.jaas.config=` +
      `org.apache.kafka.common.security.scram.ScramLoginModule required username="${admin.name}" password="${admin.password}";`,
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${paths.brokerKeystore}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${paths.caCert}`,
    'ssl.client.auth=none',
    'ssl.enabled.protocols=TLSv1.3,TLSv1.2',
  ];
}

export function kafkaServerProperties(config: StackConfig): string {
  const { kafkaController } = config.ports;
  return [
    '# Generated by `vigil stack up` (infra/local/services.ts): edits here are overwritten.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${kafkaController}`,
    ...kafkaListenerProperties(config),
    `log.dirs=${kafkaDataDir(config)}`,
    // Topics are created by the project with explicit partitions and configs (infra/local/topics.ts).
    'auto.create.topics.enable=false',
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    // One node: internal topics cannot have three replicas. Fewer partitions than the default 50 keep the first
    // consumer group and the first transaction quick on a small machine.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=6',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=6',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'log.retention.check.interval.ms=300000',
    '',
  ].join('\n');
}

const KAFKA_LOG4J2 = `# Generated by \`vigil stack up\`: the broker logs to stdout, which the stack appends to logs/kafka.log.
Configuration:
  Appenders:
    Console:
      name: STDOUT
      target: SYSTEM_OUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.storage.internals.log
        level: WARN
      - name: state.change.logger
        level: WARN
`;

/**
 * A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what `kafka-storage random-uuid` prints). Like
 * Kafka's own `Uuid.randomUuid`, never one that starts with '-': the storage tool would read it as an option (one first
 * format in 64 failed with "argument --cluster-id/-t: expected one argument").
 */
export function newClusterId(random: () => Buffer = () => randomBytes(16)): string {
  for (;;) {
    const id = random().toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function kafkaJvmArgs(config: StackConfig): string[] {
  const log4j = path.join(serviceDir(config, 'kafka'), 'log4j2.yaml');
  return [
    '-Xms256m',
    '-Xmx1g',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${log4j}`,
    '-cp',
    `${kafkaLibDir(config)}/*`,
  ];
}

const kafka: ServiceDef = {
  name: 'kafka',
  ports: (config) => [config.ports.kafka, config.ports.kafkaController],
  tools: ['mvn'],
  startTimeoutMs: 90_000,
  stopGraceMs: 30_000,
  plan(config) {
    const jdk = findJdk(KAFKA_MIN_JAVA, 'Apache Kafka 4.x');
    const dir = serviceDir(config, 'kafka');
    const properties = path.join(dir, 'server.properties');
    const log4j = path.join(dir, 'log4j2.yaml');
    return {
      launch: { command: jdk.java, args: [...kafkaJvmArgs(config), 'kafka.Kafka', properties] },
      files: { [properties]: kafkaServerProperties(config), [log4j]: KAFKA_LOG4J2 },
      artifacts: pomStamp(config),
    };
  },
  async prepare(config, plan) {
    await ensureKafkaLibs(config);
    writeFiles(plan);
    const dir = serviceDir(config, 'kafka');
    if (existsSync(path.join(kafkaDataDir(config), 'meta.properties'))) return;
    // First start: format the metadata log (what `kafka-storage format` does).
    const properties = path.join(dir, 'server.properties');
    const format = ['kafka.tools.StorageTool', 'format', '--cluster-id', newClusterId(), '--config', properties];
    if (!config.secure) {
      await run(plan.launch.command, [...kafkaJvmArgs(config), ...format], {
        cwd: dir,
        logFile: logFile(config, 'kafka'),
      });
      return;
    }
    // SCRAM users exist only if formatted in. The passwords go through a 0600 java @argfile, removed afterwards, so
    // they are neither on a command line (ps) nor in the log (which records the command).
    for (const { name, password } of scramCredentials(config)) {
      format.push('--add-scram', `${SCRAM_MECHANISM}=[name=${name},password=${password}]`);
    }
    const argfile = path.join(securePaths(config).dir, 'storage-format.args');
    writeFileSync(argfile, format.map((arg) => `"${arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join('\n'), {
      mode: 0o600,
    });
    try {
      // The class path stays outside: the launcher does not expand wildcards read from an argfile.
      await run(plan.launch.command, [...kafkaJvmArgs(config), `@${argfile}`], {
        cwd: dir,
        logFile: logFile(config, 'kafka'),
      });
    } finally {
      rmSync(argfile, { force: true });
    }
  },
};

// ---- Apicurio Registry (Quarkus) --------------------------------------------------------------------------------

const apicurio: ServiceDef = {
  name: 'apicurio',
  ports: (config) => [config.ports.schemaRegistry, config.ports.schemaRegistryManagement],
  tools: ['mvn', 'tar'],
  startTimeoutMs: 120_000,
  stopGraceMs: 20_000,
  plan(config) {
    const jdk = findJdk(APICURIO_MIN_JAVA, 'Apicurio Registry 3.x');
    const dir = serviceDir(config, 'apicurio');
    const launch: Launch = {
      command: jdk.java,
      args: ['-Xms128m', '-Xmx512m', '-jar', path.join(apicurioDistDir(config), 'quarkus-run.jar')],
      env: {
        QUARKUS_HTTP_HOST: '127.0.0.1',
        QUARKUS_HTTP_PORT: String(config.ports.schemaRegistry),
        QUARKUS_HTTP_ACCESS_LOG_ENABLED: 'false',
        QUARKUS_MANAGEMENT_HOST: '127.0.0.1',
        QUARKUS_MANAGEMENT_PORT: String(config.ports.schemaRegistryManagement),
        // H2 in a file rather than in memory: schema ids survive a restart, so records already in Kafka still decode.
        APICURIO_DATASOURCE_URL: `jdbc:h2:file:${path.join(dir, 'data', 'registry')}`,
        APICURIO_REST_DELETION_GROUP_ENABLED: 'true',
        APICURIO_REST_DELETION_ARTIFACT_ENABLED: 'true',
        APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED: 'true',
      },
    };
    return { launch, files: {}, artifacts: pomStamp(config) };
  },
  async prepare(config) {
    await ensureApicurioDist(config);
    mkdirSync(path.join(serviceDir(config, 'apicurio'), 'data'), { recursive: true });
  },
};

// ---- Redis ------------------------------------------------------------------------------------------------------

const redis: ServiceDef = {
  name: 'redis',
  ports: (config) => [config.ports.redis],
  tools: ['redis-server'],
  startTimeoutMs: 20_000,
  stopGraceMs: 10_000,
  plan(config) {
    const dir = serviceDir(config, 'redis');
    if (config.secure) return secureRedisPlan(config);
    const launch: Launch = {
      command: which('redis-server') ?? 'redis-server',
      // No persistence: dedupe windows and similar state are rebuilt; `--logfile ""` logs to stdout (our log file).
      args: [
        '--bind',
        '127.0.0.1',
        '--port',
        String(config.ports.redis),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--logfile',
        '',
        '--protected-mode',
        'yes',
      ],
    };
    return { launch, files: {} };
  },
  async prepare(config, plan) {
    mkdirSync(serviceDir(config, 'redis'), { recursive: true });
    writeFiles(plan); // the secured config holds the password
  },
};

/**
 * Secured Redis: TLS only (`port 0`, the stack's Redis port is the TLS port, no client certificate asked) and a
 * password, both from a 0600 config file rather than the command line. Debian's redis-server is built with TLS.
 */
export function secureRedisConfig(config: StackConfig): string {
  const paths = securePaths(config);
  return [
    '# Generated by `vigil stack up --secure` (infra/local/services.ts): edits here are overwritten.',
    'bind 127.0.0.1',
    'protected-mode yes',
    'port 0',
    `tls-port ${config.ports.redis}`,
    `tls-cert-file ${paths.brokerCert}`,
    `tls-key-file ${paths.brokerKey}`,
    `tls-ca-cert-file ${paths.caCert}`,
    'tls-auth-clients no',
    `dir ${serviceDir(config, 'redis')}`,
    'save ""',
    'appendonly no',
    'daemonize no',
    'logfile ""',
    `requirepass ${readSecret(paths.redisPassword)}`,
    '',
  ].join('\n');
}

function secureRedisPlan(config: StackConfig): Plan {
  const file = path.join(serviceDir(config, 'redis'), 'redis-secure.conf');
  return {
    launch: { command: which('redis-server') ?? 'redis-server', args: [file] },
    files: { [file]: secureRedisConfig(config) },
  };
}

// ---- ClickHouse server (Debian 18.16; HTTP wire tests only, chdb is the default store) --------------------------

export function clickhouseConfigXml(config: StackConfig): string {
  const data = path.join(serviceDir(config, 'clickhouse-server'), 'data');
  return `<?xml version="1.0"?>
<!-- Generated by \`vigil stack up\` (infra/local/services.ts): edits here are overwritten. -->
<yandex>
  <logger>
    <level>information</level>
    <console>1</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${config.ports.clickhouseHttp}</http_port>
  <tcp_port>${config.ports.clickhouseNative}</tcp_port>
  <path>${data}/</path>
  <tmp_path>${data}/tmp/</tmp_path>
  <user_files_path>${data}/user_files/</user_files_path>
  <format_schema_path>${data}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <timezone>UTC</timezone>
</yandex>
`;
}

const CLICKHOUSE_USERS_XML = `<?xml version="1.0"?>
<!-- Generated by \`vigil stack up\`: user "default", no password, loopback only. -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>2000000000</max_memory_usage>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;

/**
 * Secured ClickHouse server: HTTPS only on the stack's HTTP port (the broker's certificate, same CA) and one user,
 * `vigil`, with a password (stored here as its SHA-256 only). The native TCP port stays plain on loopback (only
 * clickhouse-client would use it) but asks for the same password.
 */
function secureClickhouseConfigXml(config: StackConfig): string {
  const paths = securePaths(config);
  const tls = [
    `  <https_port>${config.ports.clickhouseHttp}</https_port>`,
    '  <openSSL>',
    '    <server>',
    `      <certificateFile>${paths.brokerCert}</certificateFile>`,
    `      <privateKeyFile>${paths.brokerKey}</privateKeyFile>`,
    '      <verificationMode>none</verificationMode>',
    '      <loadDefaultCAFile>false</loadDefaultCAFile>',
    '      <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>',
    '      <preferServerCiphers>true</preferServerCiphers>',
    '    </server>',
    '  </openSSL>',
  ].join('\n');
  return clickhouseConfigXml(config).replace(`  <http_port>${config.ports.clickhouseHttp}</http_port>`, tls);
}

function secureClickhouseUsersXml(config: StackConfig): string {
  const hash = createHash('sha256')
    .update(readSecret(securePaths(config).clickhousePassword))
    .digest('hex');
  return CLICKHOUSE_USERS_XML.replace(
    '<!-- Generated by `vigil stack up`: user "default", no password, loopback only. -->',
    `<!-- Generated by \`vigil stack up\` (secured mode): user "${CLIENT_USER}", password by SHA-256, loopback only. -->`,
  )
    .replace(
      '<default>\n      <password></password>',
      `<${CLIENT_USER}>\n      <password_sha256_hex>${hash}</password_sha256_hex>`,
    )
    .replace(
      '      <quota>default</quota>\n    </default>\n  </users>',
      `      <quota>default</quota>\n    </${CLIENT_USER}>\n  </users>`,
    );
}

const clickhouseServer: ServiceDef = {
  name: 'clickhouse-server',
  ports: (config) => [config.ports.clickhouseHttp, config.ports.clickhouseNative],
  tools: ['clickhouse-server'],
  startTimeoutMs: 30_000,
  stopGraceMs: 20_000,
  plan(config) {
    const dir = serviceDir(config, 'clickhouse-server');
    const configFile = path.join(dir, 'config.xml');
    return {
      launch: { command: which('clickhouse-server') ?? 'clickhouse-server', args: [`--config-file=${configFile}`] },
      files: config.secure
        ? {
            [configFile]: secureClickhouseConfigXml(config),
            [path.join(dir, 'users.xml')]: secureClickhouseUsersXml(config),
          }
        : { [configFile]: clickhouseConfigXml(config), [path.join(dir, 'users.xml')]: CLICKHOUSE_USERS_XML },
    };
  },
  async prepare(config, plan) {
    mkdirSync(path.join(serviceDir(config, 'clickhouse-server'), 'data'), { recursive: true });
    writeFiles(plan);
  },
};

export const SERVICES: Readonly<Record<ServiceName, ServiceDef>> = {
  kafka,
  apicurio,
  redis,
  'clickhouse-server': clickhouseServer,
};
