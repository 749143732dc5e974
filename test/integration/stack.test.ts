/**
 * `vigil stack up|down|status` through the real CLI.
 *
 * The shared stack (the one every other integration test uses) is only brought up and inspected here, never taken
 * down. `down` is exercised on a second, isolated instance (its own VIGIL_STACK_DIR and ports shifted by
 * VIGIL_STACK_PORT_OFFSET), and the test checks from /proc that none of that instance's processes survive, and that
 * the shared stack kept running with the same pids.
 *
 * Topics are checked with kafkajs, a client independent of the node-rdkafka code that created them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOPIC_LIST } from '../../infra/local/topics.ts';
import { ENDPOINT_ENV, LOCAL_PORTS } from '../../runtime/endpoints.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function vigil(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO, 'bin', 'vigil.js'), ...args],
      { cwd: REPO, env, timeout: 280_000, maxBuffer: 10 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function vigilJson<T>(args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number; body: T }> {
  const result = await vigil([...args, '--json'], env);
  try {
    return { code: result.code, body: JSON.parse(result.stdout) as T };
  } catch {
    throw new Error(`vigil ${args.join(' ')} --json printed no JSON (exit ${result.code}): ${result.stderr}`);
  }
}

type State = 'healthy' | 'down' | 'unhealthy' | 'foreign' | 'external';
interface StatusJson {
  stackDir: string;
  healthy: boolean;
  services: Record<string, { state: State; endpoint: string; reachable: boolean; pid?: number }>;
  topics?: Record<string, number | null>;
}
interface UpJson {
  services: Record<string, { action: 'started' | 'running' | 'external'; endpoint: string; pid?: number }>;
  topics: { name: string; partitions: number; outcome: string }[];
}
type DownJson = Record<string, { action: 'stopped' | 'killed' | 'not-running' | 'external'; pid?: number }>;

const SERVICES = ['kafka', 'apicurio', 'redis', 'clickhouse-server'];

function localPids(status: StatusJson): Record<string, number | undefined> {
  return Object.fromEntries(
    Object.entries(status.services)
      .filter(([, s]) => s.state !== 'external')
      .map(([name, s]) => [name, s.pid]),
  );
}

/** Running (not a zombie), read straight from /proc. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Every live process whose working directory or command line lies under `dir`. */
function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || !running(Number(entry))) continue;
    let cwd = '';
    let cmdline = '';
    try {
      cwd = readlinkSync(`/proc/${entry}/cwd`);
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    if (cwd.startsWith(dir) || cmdline.includes(dir)) found.push(`${entry}: ${cmdline}`);
  }
  return found;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('the shared local stack', () => {
  let first: UpJson;

  beforeAll(async () => {
    const up = await vigilJson<UpJson>(['stack', 'up']);
    expect(up.code).toBe(0);
    first = up.body;
  });

  it('a second `stack up` finds every service running with the same pids and changes nothing', async () => {
    const before = await vigilJson<StatusJson>(['stack', 'status']);
    const second = await vigilJson<UpJson>(['stack', 'up']);
    expect(second.code).toBe(0);
    for (const name of SERVICES) {
      const service = second.body.services[name]!;
      if (service.action === 'external') continue;
      expect(service.action, name).toBe('running');
      expect(service.pid, name).toBe(first.services[name]!.pid);
      expect(service.pid, name).toBe(before.body.services[name]!.pid);
    }
    expect(second.body.topics.map((t) => t.outcome)).not.toContain('created');
    expect(second.body.topics.map((t) => t.name).sort()).toEqual(TOPIC_LIST.map((t) => t.name).sort());
  });

  it('`status --json` reports every service healthy (or external and reachable) and every topic', async () => {
    const status = await vigilJson<StatusJson>(['stack', 'status']);
    expect(status.code).toBe(0);
    expect(status.body.healthy).toBe(true);
    expect(Object.keys(status.body.services).sort()).toEqual([...SERVICES].sort());
    for (const [name, service] of Object.entries(status.body.services)) {
      expect(service.reachable, name).toBe(true);
      if (service.state !== 'external') {
        expect(service.state, name).toBe('healthy');
        expect(running(service.pid!), name).toBe(true);
      }
    }
    for (const spec of TOPIC_LIST) expect(status.body.topics?.[spec.name], spec.name).toBe(spec.partitions);
  });

  it('topics exist with their declared partitions and configs (seen by another client, kafkajs)', async () => {
    const status = await vigilJson<StatusJson>(['stack', 'status']);
    const brokers = status.body.services.kafka!.endpoint.split(',');
    const admin = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: TOPIC_LIST.map((t) => t.name) });
      const partitions = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
      for (const spec of TOPIC_LIST) expect(partitions.get(spec.name), spec.name).toBe(spec.partitions);

      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: TOPIC_LIST.map((spec) => ({
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: spec.name,
          configNames: Object.keys(spec.config),
        })),
      });
      for (const spec of TOPIC_LIST) {
        const resource = described.resources.find((r) => r.resourceName === spec.name);
        const actual = Object.fromEntries((resource?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
        expect(actual, spec.name).toEqual(spec.config);
      }
      const compacted = TOPIC_LIST.filter((spec) => spec.config['cleanup.policy'] === 'compact').map((s) => s.name);
      expect(compacted.sort()).toEqual(['vigil.control.device-identity', 'vigil.control.model-rollouts']);

      if (status.body.services.kafka!.state !== 'external') {
        const broker = await admin.describeConfigs({
          includeSynonyms: false,
          resources: [
            { type: kafkajs.ConfigResourceTypes.BROKER, name: '1', configNames: ['auto.create.topics.enable'] },
          ],
        });
        expect(broker.resources[0]!.configEntries[0]!.configValue).toBe('false');
      }
    } finally {
      await admin.disconnect();
    }
  });
});

describe('an isolated second stack (own directory and ports)', () => {
  const OFFSET = 200;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-stack-it-'));
    env = { ...process.env, VIGIL_STACK_DIR: dir, VIGIL_STACK_PORT_OFFSET: String(OFFSET) };
    // This instance runs its own services even when the shared one points at external ones.
    for (const name of Object.values(ENDPOINT_ENV)) delete env[name];
  });

  afterAll(async () => {
    if (!dir) return;
    await vigil(['stack', 'down', '--quiet'], env);
    rmSync(dir, { recursive: true, force: true });
  });

  it('up starts all four on shifted ports; down stops them and leaves no process of ours', async () => {
    const shared = await vigilJson<StatusJson>(['stack', 'status']);

    const up = await vigilJson<UpJson>(['stack', 'up'], env);
    expect(up.code).toBe(0);
    for (const name of SERVICES) expect(up.body.services[name]!.action, name).toBe('started');
    expect(up.body.services.kafka!.endpoint).toBe(`127.0.0.1:${LOCAL_PORTS.kafka + OFFSET}`);
    expect(up.body.services.redis!.endpoint).toBe(`redis://127.0.0.1:${LOCAL_PORTS.redis + OFFSET}`);

    const status = await vigilJson<StatusJson>(['stack', 'status'], env);
    expect(status.body.stackDir).toBe(dir);
    expect(status.body.healthy).toBe(true);
    const pids = Object.values(localPids(status.body)) as number[];
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(running(pid)).toBe(true);
    expect(processesUnder(dir).length).toBeGreaterThanOrEqual(4);

    const down = await vigilJson<DownJson>(['stack', 'down'], env);
    expect(down.code).toBe(0);
    for (const name of SERVICES) {
      expect(['stopped', 'killed'], name).toContain(down.body[name]!.action);
      expect(pids).toContain(down.body[name]!.pid);
    }
    for (const pid of pids) expect(running(pid), `pid ${pid}`).toBe(false);
    expect(processesUnder(dir)).toEqual([]);
    const ports = [...Object.values(LOCAL_PORTS), LOCAL_PORTS.schemaRegistry + 1].map((port) => port + OFFSET);
    for (const port of ports) expect(await portOpen(port), `port ${port}`).toBe(false);

    const after = await vigilJson<StatusJson>(['stack', 'status'], env);
    expect(after.code).toBe(1);
    expect(after.body.healthy).toBe(false);
    for (const name of SERVICES) expect(after.body.services[name]!.state, name).toBe('down');

    // The shared stack was not touched.
    const sharedAfter = await vigilJson<StatusJson>(['stack', 'status']);
    expect(sharedAfter.body.healthy).toBe(true);
    expect(localPids(sharedAfter.body)).toEqual(localPids(shared.body));
  }, 280_000);

  it('a port held by a process it did not start is reported foreign, refused by up, and left alone by down', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.end();
    });
    const port = LOCAL_PORTS.redis + OFFSET;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    try {
      const status = await vigilJson<StatusJson>(['stack', 'status'], env);
      expect(status.body.services.redis!.state).toBe('foreign');

      const up = await vigil(['stack', 'up', '--quiet'], env);
      expect(up.code).not.toBe(0);
      expect(up.stderr).toContain('redis');
      expect(up.stderr).toContain('did not start');
      // Refused before anything started.
      expect(processesUnder(dir)).toEqual([]);

      const down = await vigilJson<DownJson>(['stack', 'down'], env);
      expect(down.body.redis!.action).toBe('not-running');
      expect(await portOpen(port)).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
