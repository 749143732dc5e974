/**
 * What the stack needs on the machine before it can start anything: Debian packages (installed by `.ci/run` or by
 * hand, never by the CLI), a JDK new enough for each Java service, and the Java artifacts that Maven resolves from
 * infra/local/pom.xml into the stack directory (re-resolved whenever the pom changes).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { VigilError } from '../../runtime/errors.ts';
import type { StackConfig } from './config.ts';

/** Each command the stack relies on, and the Debian package that ships it. */
export const DEBIAN_TOOLS = {
  'redis-server': 'redis-server',
  'clickhouse-server': 'clickhouse-server',
  promtool: 'prometheus',
  kcat: 'kcat',
  mvn: 'maven',
  tar: 'tar',
} as const;
export type DebianTool = keyof typeof DEBIAN_TOOLS;

const EXTRA_BIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of an executable on PATH (or in the sbin dirs Debian puts servers in), else undefined. */
export function which(command: string, envPath = process.env.PATH ?? ''): string | undefined {
  const dirs = [...envPath.split(path.delimiter).filter(Boolean), ...EXTRA_BIN_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Fails naming every missing package and the one apt command that installs them all. */
export function requireTools(tools: readonly DebianTool[]): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const tool of tools) {
    const at = which(tool);
    if (at) found[tool] = at;
    else missing.push(DEBIAN_TOOLS[tool]);
  }
  if (missing.length > 0) {
    const packages = [...new Set(missing)].join(' ');
    throw new VigilError(
      'STACK_SERVICE_FAILED',
      `missing Debian package(s): ${packages}. Install with: apt-get install -y --no-install-recommends ${packages} ` +
        '(bash .ci/run does this on a fresh machine)',
    );
  }
  return found;
}

// ---- Java ---------------------------------------------------------------------------------------------------------

export interface Jdk {
  readonly home: string;
  readonly major: number;
  readonly java: string;
}

function jdkAt(home: string): Jdk | undefined {
  try {
    const release = readFileSync(path.join(home, 'release'), 'utf8');
    const version = /^JAVA_VERSION="([^"]+)"/m.exec(release)?.[1];
    if (!version) return undefined;
    const parts = version.split('.');
    const major = Number(parts[0] === '1' ? parts[1] : parts[0]);
    const java = path.join(home, 'bin', 'java');
    accessSync(java, constants.X_OK);
    return Number.isInteger(major) ? { home: realpathSync(home), major, java } : undefined;
  } catch {
    return undefined;
  }
}

/** JDKs on this machine: JAVA_HOME first, then the one `java` on PATH belongs to, then /usr/lib/jvm (newest first). */
export function installedJdks(env: NodeJS.ProcessEnv = process.env, jvmDir = '/usr/lib/jvm'): Jdk[] {
  const preferred: Jdk[] = [];
  if (env.JAVA_HOME) {
    const jdk = jdkAt(env.JAVA_HOME);
    if (jdk) preferred.push(jdk);
  }
  const onPath = which('java', env.PATH ?? '');
  if (onPath) {
    const jdk = jdkAt(path.resolve(path.dirname(realpathSync(onPath)), '..'));
    if (jdk) preferred.push(jdk);
  }
  let others: Jdk[] = [];
  try {
    others = readdirSync(jvmDir)
      .map((entry) => jdkAt(path.join(jvmDir, entry)))
      .filter((jdk): jdk is Jdk => jdk !== undefined)
      .sort((a, b) => b.major - a.major);
  } catch {
    // no /usr/lib/jvm
  }
  const seen = new Set<string>();
  return [...preferred, ...others].filter((jdk) => !seen.has(jdk.home) && seen.add(jdk.home));
}

/**
 * The first JDK (in `installedJdks` order) of at least `minMajor`.
 *
 * @example
 * findJdk(21, 'Apicurio Registry 3.x').java // '/usr/lib/jvm/temurin-25-jdk-amd64/bin/java'
 */
export function findJdk(minMajor: number, forWhat: string, env: NodeJS.ProcessEnv = process.env): Jdk {
  const jdk = installedJdks(env).find((candidate) => candidate.major >= minMajor);
  if (jdk) return jdk;
  throw new VigilError(
    'STACK_SERVICE_FAILED',
    `${forWhat} needs Java ${minMajor}+; none found (looked at JAVA_HOME, java on PATH, /usr/lib/jvm/*). ` +
      `Install a JDK ${minMajor}+ or set JAVA_HOME to one.`,
  );
}

// ---- Maven artifacts ----------------------------------------------------------------------------------------------

export const KAFKA_MIN_JAVA = 17;
export const APICURIO_MIN_JAVA = 21;

function pomPath(config: StackConfig): string {
  return path.join(config.repoDir, 'infra', 'local', 'pom.xml');
}

/** Changes whenever the pom does: a new Kafka or Apicurio version re-resolves its artifacts. */
export function pomStamp(config: StackConfig): string {
  return createHash('sha256')
    .update(readFileSync(pomPath(config)))
    .digest('hex');
}

function stampMatches(file: string, stamp: string): boolean {
  try {
    return readFileSync(file, 'utf8').trim() === stamp;
  } catch {
    return false;
  }
}

export function run(command: string, args: readonly string[], options: { cwd?: string; logFile: string }) {
  return new Promise<void>((resolve, reject) => {
    mkdirSync(path.dirname(options.logFile), { recursive: true });
    const chunks: Buffer[] = [];
    const child = spawn(command, [...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      const output = Buffer.concat(chunks).toString('utf8');
      writeFileSync(options.logFile, `$ ${command} ${args.join(' ')}\n${output}\n`, { flag: 'a' });
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code}: ${output.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

async function mvn(config: StackConfig, goal: string): Promise<void> {
  const logFile = path.join(config.logDir, 'maven.log');
  try {
    await run(
      'mvn',
      ['-B', '-q', '--no-transfer-progress', '-f', pomPath(config), `-Dstack.dir=${config.stackDir}`, goal],
      { logFile },
    );
  } catch (error) {
    throw new VigilError('STACK_SERVICE_FAILED', `Maven could not resolve the stack's artifacts (see ${logFile})`, {
      cause: error,
    });
  }
}

export function kafkaLibDir(config: StackConfig): string {
  return path.join(config.stackDir, 'kafka', 'libs');
}

export function apicurioDistDir(config: StackConfig): string {
  return path.join(config.stackDir, 'apicurio', 'dist');
}

/** Kafka's jars in .vigil/stack/kafka/libs, fetched by Maven when missing or older than the pom. */
export async function ensureKafkaLibs(config: StackConfig): Promise<{ fetched: boolean }> {
  const libs = kafkaLibDir(config);
  const stampFile = path.join(libs, '.vigil-stamp');
  const stamp = pomStamp(config);
  if (stampMatches(stampFile, stamp)) return { fetched: false };
  rmSync(libs, { recursive: true, force: true });
  await mvn(config, 'dependency:copy-dependencies');
  if (!readdirSync(libs).some((file) => /^kafka_2\.13-.*\.jar$/.test(file))) {
    throw new VigilError('STACK_SERVICE_FAILED', `Maven ran but ${libs} holds no kafka_2.13 jar`);
  }
  writeFileSync(stampFile, `${stamp}\n`);
  return { fetched: true };
}

/** Apicurio's Quarkus distribution extracted to .vigil/stack/apicurio/dist (from the Maven `all` tarball). */
export async function ensureApicurioDist(config: StackConfig): Promise<{ fetched: boolean }> {
  const dist = apicurioDistDir(config);
  const stampFile = path.join(dist, '.vigil-stamp');
  const stamp = pomStamp(config);
  if (stampMatches(stampFile, stamp) && existsSync(path.join(dist, 'quarkus-run.jar'))) return { fetched: false };
  const downloads = path.join(config.stackDir, 'downloads');
  rmSync(downloads, { recursive: true, force: true });
  await mvn(config, 'dependency:copy@apicurio');
  const tarball = readdirSync(downloads).find((file) => /^apicurio-registry-app-.*\.tar\.gz$/.test(file));
  if (!tarball) throw new VigilError('STACK_SERVICE_FAILED', `Maven ran but ${downloads} holds no Apicurio tarball`);
  const staging = `${dist}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  await run('tar', ['-xzf', path.join(downloads, tarball), '-C', staging], {
    logFile: path.join(config.logDir, 'maven.log'),
  });
  if (!existsSync(path.join(staging, 'quarkus-run.jar'))) {
    throw new VigilError('STACK_SERVICE_FAILED', `${tarball} holds no quarkus-run.jar`);
  }
  writeFileSync(path.join(staging, '.vigil-stamp'), `${stamp}\n`);
  rmSync(dist, { recursive: true, force: true });
  renameSync(staging, dist);
  // Maven keeps its own copy in ~/.m2; the 150 MB tarball here is no longer needed.
  rmSync(downloads, { recursive: true, force: true });
  return { fetched: true };
}
