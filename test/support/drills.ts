/**
 * Fault-drill scaffolding (test/integration/drills.test.ts): an isolated local stack whose services the drills may kill,
 * a paced producer that runs hooks at chosen points of the stream, consumer-group progress from the committed offsets,
 * and ClickHouse counts read by a child process (chdb holds one data directory per process).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { PlainProducer } from '../../adapters/kafka/producer.ts';
import type { ServiceName } from '../../infra/local/config.ts';
import { stackConfig } from '../../infra/local/config.ts';
import { stackDown, stackKill, stackUp } from '../../infra/local/stack.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { envelopeSchemaId } from '../../simulator/kafka.ts';
import {
  recordBytes,
  type SimulateOptions,
  simulateFleet,
  type TruthSummary,
  TruthTally,
} from '../../simulator/simulate.ts';
import { REPO, sleep, spawnNode, waitFor } from './process.ts';

/** The drills' own stack: its own directory (artifacts kept between runs) and ports 300 above the shared stack's. */
export const DRILL_STACK_ENV = {
  VIGIL_STACK_DIR: join(REPO, '.vigil', 'drills', 'stack'),
  VIGIL_STACK_PORT_OFFSET: process.env.VIGIL_DRILLS_PORT_OFFSET ?? '300',
} as const;

/** Points this process (endpoints are resolved per call) and every child it spawns at the drill stack. */
export function useDrillStack(): void {
  Object.assign(process.env, DRILL_STACK_ENV);
  for (const v of ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'REDIS_URL', 'CLICKHOUSE_URL']) delete process.env[v];
}

const config = () => stackConfig({ ...process.env, ...DRILL_STACK_ENV });

export async function drillStackUp(): Promise<void> {
  await stackUp(config());
}

export async function drillStackDown(): Promise<void> {
  await stackDown(config());
}

/** SIGKILL one service of the drill stack; resolves when it is gone. */
export async function crash(service: ServiceName): Promise<number> {
  const result = await stackKill(config(), service, 'SIGKILL');
  if (result.action !== 'killed') throw new Error(`${service}: ${result.action}`);
  return Date.now();
}

/** `stack up` again (restarts what is down, on its data); resolves with the time it answered its health probe. */
export async function restart(service: ServiceName): Promise<{ backAt: number; startMs: number }> {
  const result = await stackUp(config());
  const s = result.services[service];
  if (s.action !== 'started') throw new Error(`${service} was not restarted: ${s.action}`);
  return { backAt: Date.now(), startMs: s.startMs ?? 0 };
}

// ---- a paced fleet -------------------------------------------------------------------------------------------------

export interface PacedOptions {
  /** Records per send (each acknowledged before the next). */
  readonly chunk: number;
  /** Pause between sends: the stream lasts about events / chunk * pauseMs. */
  readonly pauseMs: number;
  /** Run before the record with this index is produced (the producer waits for it). */
  readonly hooks?: readonly { readonly at: number; readonly run: () => Promise<void> }[];
  /** Registry id to frame valid envelopes with from this index on (raw-byte faults keep their bytes). */
  readonly switchId?: { readonly from: number; readonly id: number };
}

/**
 * The simulation onto `topic`, paced, with its ground truth. Same records as `produceSimulation` (same seed, same
 * bytes), so truth.valid / duplicates / replays / deadLetters hold whatever happens to the stream.
 */
export async function producePaced(
  simulation: SimulateOptions,
  topic: string,
  paced: PacedOptions,
): Promise<TruthSummary> {
  const { kafkaBrokers, schemaRegistryUrl } = resolveEndpoints();
  const schemaId = await envelopeSchemaId(schemaRegistryUrl);
  const type = loadSchemaRepo().get('envelope').newest.type;
  const tally = new TruthTally('kafka');
  const producer = new PlainProducer(kafkaBrokers, { 'message.timeout.ms': 300_000 });
  await producer.connect();
  const hooks = [...(paced.hooks ?? [])].sort((a, b) => a.at - b.at);
  try {
    let chunk: { topic: string; key: string; value: Buffer }[] = [];
    let index = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      await producer.send(chunk);
      chunk = [];
      await sleep(paced.pauseMs);
    };
    for (const record of simulateFleet({ ...simulation, schemaId })) {
      while (hooks.length > 0 && (hooks[0] as { at: number }).at <= index) {
        await flush();
        await (hooks.shift() as { run: () => Promise<void> }).run();
      }
      tally.add(record);
      const id =
        paced.switchId && index >= paced.switchId.from && record.kind === 'envelope' ? paced.switchId.id : schemaId;
      chunk.push({ topic, key: record.key, value: recordBytes(record, id, type) });
      index++;
      if (chunk.length >= paced.chunk) await flush();
    }
    await flush();
    for (const hook of hooks) await hook.run();
  } finally {
    await producer.disconnect();
  }
  return tally.summary();
}

/**
 * Registers the newest envelope schema under another subject with a `doc` added: the same binary encoding under a
 * registry id no process has cached yet.
 */
export async function alternateEnvelopeId(subject: string): Promise<number> {
  const { createSchemaRegistry } = await import('../../adapters/registry/index.ts');
  const schema = { ...(loadSchemaRepo().get('envelope').newest.schema as object), doc: `drill ${ulid()}` };
  return createSchemaRegistry(resolveEndpoints().schemaRegistryUrl).register(subject, schema as never);
}

// ---- progress: a consumer group's committed offsets ----------------------------------------------------------------

/** Sum of a group's committed offsets over topics (6 partitions each); null while Kafka does not answer. */
export class GroupProgress {
  readonly #consumer: Kafka.KafkaConsumer;
  readonly #toppars: { topic: string; partition: number }[];

  constructor(group: string, topics: readonly string[], partitions = 6) {
    this.#consumer = new Kafka.KafkaConsumer(
      { 'metadata.broker.list': resolveEndpoints().kafkaBrokers, 'group.id': group, 'enable.auto.commit': false },
      {},
    );
    this.#toppars = topics.flatMap((topic) =>
      Array.from({ length: partitions }, (_, partition) => ({ topic, partition })),
    );
  }

  async connect(): Promise<this> {
    await new Promise<void>((resolve, reject) =>
      this.#consumer.connect({ timeout: 15_000 }, (e) => (e ? reject(e) : resolve())),
    );
    return this;
  }

  sum(): Promise<number | null> {
    return new Promise((resolve) => {
      this.#consumer.committed(
        this.#toppars.map((p) => ({ ...p })),
        2_000,
        (err, result) => resolve(err ? null : result.reduce((s, r) => s + Math.max(0, r.offset ?? 0), 0)),
      );
    });
  }

  /** Polls until the sum exceeds `baseline`; resolves with when it did. */
  async advancedPast(baseline: number, timeoutMs: number): Promise<number> {
    let at = 0;
    await waitFor(
      `committed offsets past ${baseline}`,
      async () => {
        const s = await this.sum();
        if (s !== null && s > baseline) at = Date.now();
        return at > 0;
      },
      timeoutMs,
      100,
    );
    return at;
  }

  /** The sum once Kafka answers. */
  async current(timeoutMs = 60_000): Promise<number> {
    let value = 0;
    await waitFor(
      'committed offsets',
      async () => {
        value = (await this.sum()) ?? -1;
        return value >= 0;
      },
      timeoutMs,
      100,
    );
    return value;
  }

  disconnect(): Promise<void> {
    return new Promise((resolve) => this.#consumer.disconnect(() => resolve()));
  }
}

// ---- the sink's data directory ---------------------------------------------------------------------------------------

/** MergeTree part directories of tables under `dir` (those holding a format_version.txt). */
export function tableDirs(dir: string, depth = 5): string[] {
  const out: string[] = [];
  const walk = (d: string, left: number) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    if (entries.includes('format_version.txt')) out.push(d);
    if (left === 0) return;
    for (const e of entries) {
      const p = join(d, e);
      try {
        if (statSync(p).isDirectory() && !/^(all_|tmp_|detached)/.test(e)) walk(p, left - 1);
      } catch {
        // raced with a merge
      }
    }
  };
  walk(dir, depth);
  return out;
}

/** A part being written right now (`tmp_insert_*`) in any of `dirs`. */
export function insertInFlight(dirs: readonly string[]): string | null {
  for (const d of dirs) {
    try {
      const hit = readdirSync(d).find((e) => e.startsWith('tmp_insert'));
      if (hit) return join(d, hit);
    } catch {
      // table dir replaced
    }
  }
  return null;
}

export interface StoreCounts {
  final: number;
  plain: number;
  distinct: number;
  raw: number;
  duplicates: number;
  deadLetters: Record<string, number>;
}

/** The drills' ClickHouse checks, run in a child process on a sink data directory (after OPTIMIZE ... FINAL). */
export async function storeCounts(dir: string): Promise<StoreCounts> {
  const child = spawnNode(join(REPO, 'test', 'support', 'store-counts.ts'), [dir], {}, ['--import', 'tsx']);
  const done = await child.done;
  if (done.code !== 0) throw new Error(`store-counts failed: ${done.stderr}`);
  return JSON.parse(done.stdout.trim().split('\n').at(-1) ?? '{}') as StoreCounts;
}

/** One metric's value from a Prometheus text body (summed over label sets containing `labels`). */
export function metricValue(body: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of body.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
