/**
 * Shared pieces of the integration tests: spawning the real CLI, reading topics back, namespaced topics per run.
 * Everything runs against the local stack (`vigil stack up`): no mocks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { ensureTopics } from '../../infra/local/create-topics.ts';
import { TOPIC_SPECS } from '../../infra/local/topics.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';

export const REPO = join(import.meta.dirname, '..', '..');
export const VIGIL = join(REPO, 'bin', 'vigil.js');

/** A topic prefix unique to this test run (VIGIL_TOPIC_PREFIX), and its topics created on the local broker. */
export async function isolatedTopics(label: string): Promise<{ prefix: string; name: (base: string) => string }> {
  const prefix = `it-${label}-${ulid().toLowerCase()}`;
  const name = (base: string) => `${prefix}.${base}`;
  const specs = Object.values(TOPIC_SPECS).map((s) => ({ ...s, name: name(s.name) }));
  await ensureTopics(resolveEndpoints().kafkaBrokers, { replicationFactor: 1, specs });
  return { prefix, name };
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  stdout(): string;
  stderr(): string;
}

export function spawnVigil(args: readonly string[], env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [VIGIL, ...args], {
    cwd: REPO,
    env: { ...process.env, VIGIL_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => {
      child.on('exit', (code, signal) => {
        // let the pipes drain
        setTimeout(() => resolve({ code, signal, stdout: out, stderr: err }), 50);
      });
    },
  );
  return { child, done, stdout: () => out, stderr: () => err };
}

/** The last line of a command's stdout, parsed as JSON. */
export function lastJsonLine<T>(stdout: string): T {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as T;
}

/** Sum of high watermarks over a topic's partitions (a progress gauge; counts transaction markers too). */
export async function highWatermarks(topic: string, partitions: number): Promise<number> {
  const consumer = new Kafka.KafkaConsumer(
    { 'metadata.broker.list': resolveEndpoints().kafkaBrokers, 'group.id': `wm-${ulid()}` },
    {},
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (e) => (e ? reject(e) : resolve())),
  );
  try {
    let sum = 0;
    for (let p = 0; p < partitions; p++) {
      sum += await new Promise<number>((resolve, reject) =>
        consumer.queryWatermarkOffsets(topic, p, 5_000, (e, w) => (e ? reject(e) : resolve(w.highOffset))),
      );
    }
    return sum;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

/** Every committed record of a topic (read_committed), read until the topic is idle for `idleMs`. */
export async function readTopic(topic: string, idleMs = 3_000): Promise<Kafka.Message[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': resolveEndpoints().kafkaBrokers,
      'group.id': `read-${ulid()}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (e) => (e ? reject(e) : resolve())),
  );
  consumer.subscribe([topic]);
  consumer.setDefaultConsumeTimeout(500);
  const messages: Kafka.Message[] = [];
  let idleSince = Date.now();
  try {
    while (Date.now() - idleSince < idleMs) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(10_000, (e, m) => (e ? reject(e) : resolve(m))),
      );
      if (batch.length > 0) {
        messages.push(...batch);
        idleSince = Date.now();
      }
    }
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
  return messages;
}
