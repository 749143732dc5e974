/**
 * Fault drills on the real stack (`npm run drills`; not part of `npm test`). Each drill streams a simulated fleet
 * (duplicates, replays, malformed records) through real workers and the real sink, injects one fault mid-stream, and
 * ends with the accounting checked against the simulator's truth on the topics and in ClickHouse:
 * count() FINAL = count() after OPTIMIZE ... FINAL = uniqExact(event_id) = truth.valid, duplicates = duplicates +
 * replays, dead letters by reason = truth, raw = every record.
 *
 * The drills run on their own stack (.vigil/drills/stack, ports +300: DRILL_STACK_ENV), started here and stopped at
 * the end, so killing its services never disturbs the shared stack. Recovery times are printed and written to
 * .vigil/drills/latest.json: from the service answering again (or from the kill, for a process) to the first batch
 * committed after it.
 *
 * Hunting a failure: VIGIL_DRILL_LOGS=<prefix> writes every child's stdout and stderr to `<prefix>-child-<n>.log` when
 * a drill ends (pass or fail) and, when the normalised topic does not hold exactly the valid events,
 * `<prefix>-lineage.json` (see writeLineage); VIGIL_DRILL_WORKER_LOG_LEVEL=debug makes the workers log every
 * committed batch's offset ranges and the consumer epoch.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramedDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import type { DeadLetter, Duplicate, Envelope, NormalisedEvent } from '../../schemas/types.ts';
import { envelopeSchemaId } from '../../simulator/kafka.ts';
import type { SimulateOptions, TruthSummary } from '../../simulator/simulate.ts';
import {
  alternateEnvelopeId,
  crash,
  DRILL_STACK_ENV,
  drillStackDown,
  drillStackUp,
  GroupProgress,
  insertInFlight,
  metricValue,
  type PacedOptions,
  producePaced,
  restart,
  storeCounts,
  tableDirs,
  useDrillStack,
} from '../support/drills.ts';
import { REPO, sleep, waitFor } from '../support/process.ts';
import { isolatedTopics, lastJsonLine, readTopic, type Spawned, spawnVigil } from './helpers.ts';

const simulation = (seed: string): SimulateOptions => ({
  devices: 400,
  events: 40_000,
  seed,
  duplicateRate: 0.03,
  replayRate: 0.01,
  malformedRate: 0.01,
});
/** 40 sends of 1,000 records about 0.6 s apart: a stream of ~30 s that the faults land in the middle of. */
const PACE = { chunk: 1000, pauseMs: 600 } as const;

interface DrillReport {
  drill: string;
  events: number;
  /** What was measured, in ms: e.g. workers: service back -> first committed transaction. */
  recoveryMs: Record<string, number | number[]>;
  notes: string[];
  counts?: { valid: number; duplicates: number; deadLetters: number; truth: Pick<TruthSummary, 'valid' | 'records'> };
}
const reports: DrillReport[] = [];

class Drill {
  readonly env: Record<string, string>;
  readonly sinkDir = mkdtempSync(join(tmpdir(), 'vigil-drill-sink-'));
  readonly workerGroup: string;
  readonly sinkGroup: string;
  readonly children: Spawned[] = [];
  truth!: TruthSummary;
  workersProgress!: GroupProgress;
  sinkProgress!: GroupProgress;

  constructor(readonly topics: Awaited<ReturnType<typeof isolatedTopics>>) {
    this.env = { VIGIL_TOPIC_PREFIX: topics.prefix, ...DRILL_STACK_ENV };
    this.workerGroup = `${topics.prefix}-workers`;
    this.sinkGroup = `${topics.prefix}-sink`;
  }

  static async open(label: string): Promise<Drill> {
    const drill = new Drill(await isolatedTopics(label));
    drill.workersProgress = await new GroupProgress(drill.workerGroup, [drill.raw]).connect();
    drill.sinkProgress = await new GroupProgress(drill.sinkGroup, [drill.raw]).connect();
    return drill;
  }

  get raw(): string {
    return this.topics.name(TOPICS.raw);
  }

  worker(id: string, metricsPort = 0): Spawned {
    const args = [
      'run',
      'pipelines/vitals.ts',
      '--group',
      this.workerGroup,
      '--worker-id',
      `${this.topics.prefix}-${id}`,
    ];
    // --accept-ungated: the drills produce straight to Kafka (the simulator), not through a gateway.
    const flags = ['--metrics-port', String(metricsPort), '--batch-size', '1000', '--json', '--accept-ungated'];
    const child = spawnVigil([...args, ...flags], {
      ...this.env,
      VIGIL_LOG_LEVEL: process.env.VIGIL_DRILL_WORKER_LOG_LEVEL ?? 'info',
    });
    this.children.push(child);
    return child;
  }

  sink(metricsPort = 0, extra: string[] = []): Spawned {
    const args = ['sink', 'pipelines/vitals.ts', '--data-dir', this.sinkDir, '--group', this.sinkGroup];
    const child = spawnVigil([...args, '--metrics-port', String(metricsPort), ...extra], {
      ...this.env,
      VIGIL_LOG_LEVEL: 'info',
    });
    this.children.push(child);
    return child;
  }

  async produce(seed: string, paced: Omit<PacedOptions, 'chunk' | 'pauseMs'>): Promise<TruthSummary> {
    this.truth = await producePaced(simulation(seed), this.raw, { ...PACE, ...paced });
    return this.truth;
  }

  /**
   * Waits for the workers to commit every raw record and the running sink to land them, stops both with SIGTERM (a
   * clean exit is part of riding through), lets a last sink drain the output topics, and checks everything.
   */
  async finish(workers: Spawned[], sink: Spawned | null, report: DrillReport): Promise<void> {
    const records = this.truth.records;
    await waitFor(
      'the workers to commit every raw record',
      async () => (await this.workersProgress.sum()) === records,
      240_000,
    );
    await Promise.all(workers.map((w) => w.child.kill('SIGTERM')));
    for (const w of workers) await expectCleanExit(w);
    if (sink) {
      await waitFor(
        'the sink to land every raw record',
        async () => (await this.sinkProgress.sum()) === records,
        240_000,
      );
      sink.child.kill('SIGTERM');
      const done = await sink.done;
      expect(done.code, done.stderr.slice(-4000)).toBe(0);
    }
    const last = await this.sink(0, ['--stop-when-idle', '5000', '--json']).done;
    expect(last.code, last.stderr.slice(-4000)).toBe(0);
    await this.verify(report);
  }

  async verify(report: DrillReport): Promise<void> {
    const truth = this.truth;
    const [normalised, deadLetters, duplicates] = await Promise.all([
      readTopic(this.topics.name(TOPICS.normalised)),
      readTopic(this.topics.name(TOPICS.deadLetter)),
      readTopic(this.topics.name(TOPICS.duplicates)),
    ]);
    const registry = createSchemaRegistry(resolveEndpoints().schemaRegistryUrl);
    const repo = loadSchemaRepo();
    const ids = (
      await new FramedDecoder<Envelope>(registry, repo.get('normalised').newest.type).decodeBatch(
        normalised.map((m) => m.value as Buffer),
      )
    ).map((d) => (d.ok ? d.value.event_id : 'undecodable'));
    const byReason: Record<string, number> = {};
    for (const d of await new FramedDecoder<DeadLetter>(registry, repo.get('dead-letter').newest.type).decodeBatch(
      deadLetters.map((m) => m.value as Buffer),
    )) {
      const reason = d.ok ? d.value.reason_code : 'undecodable';
      byReason[reason] = (byReason[reason] ?? 0) + 1;
    }
    const store = await storeCounts(this.sinkDir);
    report.counts = {
      valid: store.final,
      duplicates: store.duplicates,
      deadLetters: Object.values(store.deadLetters).reduce((a, b) => a + b, 0),
      truth: { valid: truth.valid, records: truth.records },
    };
    if (process.env.VIGIL_DRILL_LOGS && normalised.length !== truth.valid) {
      await writeLineage(`${process.env.VIGIL_DRILL_LOGS}-lineage.json`, normalised, duplicates);
    }
    // Exactly once in Kafka.
    expect(normalised.length).toBe(truth.valid);
    expect(new Set(ids).size).toBe(truth.valid);
    expect(duplicates.length).toBe(truth.duplicates + truth.replays);
    expect(byReason).toEqual(truth.deadLetters);
    // Effectively once in ClickHouse.
    expect(store).toEqual({
      final: truth.valid,
      plain: truth.valid,
      distinct: truth.valid,
      raw: truth.records,
      duplicates: truth.duplicates + truth.replays,
      deadLetters: truth.deadLetters,
    });
  }

  async close(): Promise<void> {
    const logs = process.env.VIGIL_DRILL_LOGS;
    if (logs) {
      for (const [i, c] of this.children.entries())
        writeFileSync(`${logs}-child-${i}.log`, `${c.stdout()}\n--- stderr ---\n${c.stderr()}`);
    }
    for (const c of this.children)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await this.workersProgress?.disconnect();
    await this.sinkProgress?.disconnect();
    rmSync(this.sinkDir, { recursive: true, force: true });
  }
}

/** A worker stopped with SIGTERM exits 0, its `--json` line balanced: consumed = emitted + dead-lettered + duplicates. */
async function expectCleanExit(worker: Spawned): Promise<void> {
  const done = await worker.done;
  expect(done.code, done.stderr.slice(-4000)).toBe(0);
  const line = lastJsonLine<{ consumed: number; emitted: number; dead_lettered: number; duplicates: number }>(
    done.stdout,
  );
  expect(line.consumed).toBe(line.emitted + line.dead_lettered + line.duplicates);
}

/**
 * What a hunt for an exactly-once failure needs (VIGIL_DRILL_LOGS): every event id the normalised topic holds more
 * than once, each copy with its source position and processing time, and every record of the duplicates topic.
 */
async function writeLineage(
  path: string,
  normalised: Awaited<ReturnType<typeof readTopic>>,
  duplicates: Awaited<ReturnType<typeof readTopic>>,
): Promise<void> {
  const registry = createSchemaRegistry(resolveEndpoints().schemaRegistryUrl);
  const repo = loadSchemaRepo();
  const events = await new FramedDecoder<NormalisedEvent>(registry, repo.get('normalised').newest.type).decodeBatch(
    normalised.map((m) => m.value as Buffer),
  );
  const copies = new Map<string, object[]>();
  for (const [i, d] of events.entries()) {
    if (!d.ok) continue;
    const e = d.value;
    const copy = {
      device: e.device_id,
      sequence: e.sequence,
      source: `${e.source_partition}:${e.source_offset}`,
      processedAt: e.processed_at,
      at: `${normalised[i]?.partition}:${normalised[i]?.offset}`,
    };
    copies.set(e.event_id, [...(copies.get(e.event_id) ?? []), copy]);
  }
  const dups = await new FramedDecoder<Duplicate>(registry, repo.get('duplicate').newest.type).decodeBatch(
    duplicates.map((m) => m.value as Buffer),
  );
  const twice = [...copies].filter(([, c]) => c.length > 1).map(([id, c]) => ({ id, copies: c }));
  const bigints = (_key: string, v: unknown) => (typeof v === 'bigint' ? String(v) : v);
  writeFileSync(path, JSON.stringify({ twice, duplicates: dups.map((d) => (d.ok ? d.value : null)) }, bigints));
}

/** Runs a drill, records its report whatever happens, and always stops its processes. */
async function drill(name: string, label: string, body: (d: Drill, report: DrillReport) => Promise<void>) {
  const report: DrillReport = { drill: name, events: simulation('x').events as number, recoveryMs: {}, notes: [] };
  reports.push(report);
  const d = await Drill.open(label);
  try {
    await body(d, report);
  } finally {
    await d.close();
  }
}

const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

beforeAll(async () => {
  useDrillStack();
  await drillStackUp();
}, 600_000);

afterAll(async () => {
  const out = join(REPO, '.vigil', 'drills');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(reports, null, 2)}\n`);
  for (const r of reports) {
    const rec = Object.entries(r.recoveryMs)
      .map(([k, v]) => `${k} ${Array.isArray(v) ? v.map(seconds).join(' / ') : seconds(v)}`)
      .join('; ');
    const c = r.counts;
    process.stdout.write(
      `drill ${r.drill}: ${r.events} events; recovery: ${rec || 'n/a'}` +
        (c
          ? `; stored ${c.valid}/${c.truth.valid} valid, ${c.duplicates} duplicates, ${c.deadLetters} dead letters`
          : '') +
        (r.notes.length ? `; ${r.notes.join('; ')}` : '') +
        '\n',
    );
  }
  if (process.env.VIGIL_DRILLS_KEEP_STACK !== '1') await drillStackDown();
}, 300_000);

describe.sequential('fault drills (isolated stack)', () => {
  it('Kafka broker SIGKILLed mid-stream and started again: workers and sink ride through', async () => {
    await drill('kafka-broker-sigkill', 'drill-kafka', async (d, report) => {
      const workers = [d.worker('a', 19_781), d.worker('b')];
      const sink = d.sink(19_782);
      let recovery: Promise<void> = Promise.resolve();
      await d.produce('drill-kafka', {
        hooks: [
          {
            at: 14_000,
            run: async () => {
              const before = { workers: (await d.workersProgress.sum()) ?? 0, sink: (await d.sinkProgress.sum()) ?? 0 };
              const killedAt = await crash('kafka');
              // Can be made longer than the transaction timeout (30 s). Measured: at 40 s librdkafka still rode it out
              // inside the clients (no worker restart), and the books balanced.
              await sleep(Number(process.env.VIGIL_DRILL_BROKER_DOWN_MS ?? 8_000));
              const { backAt, startMs } = await restart('kafka');
              report.notes.push(`broker down ${seconds(backAt - killedAt)} (restart ${seconds(startMs)})`);
              recovery = (async () => {
                const w = Math.max(before.workers, await d.workersProgress.current());
                const s = Math.max(before.sink, await d.sinkProgress.current());
                const [wAt, sAt] = await Promise.all([
                  d.workersProgress.advancedPast(w, 180_000),
                  d.sinkProgress.advancedPast(s, 180_000),
                ]);
                report.recoveryMs.workers = wAt - backAt;
                report.recoveryMs.sink = sAt - backAt;
              })();
            },
          },
        ],
      });
      await recovery;
      // They said so on /metrics while riding through.
      const sinkMetrics = await scrape(19_782);
      expect(metricValue(sinkMetrics, 'vigil_dependency_up', 'dependency="kafka"')).toBe(1);
      await d.finish(workers, sink, report);
    });
  }, 600_000);

  it('schema registry SIGKILLed and started again: ids survive, a cold worker waits, nothing is dead-lettered for it', async () => {
    await drill('schema-registry-sigkill', 'drill-registry', async (d, report) => {
      const subject = `${d.topics.prefix}-alt-value`;
      const baseId = await envelopeSchemaId(resolveEndpoints().schemaRegistryUrl);
      // The second half of the stream is framed with an id no process has cached: everyone meets it during the outage.
      const altId = await alternateEnvelopeId(subject);
      expect(altId).not.toBe(baseId);
      const workers = [d.worker('a', 19_783), d.worker('b')];
      const sink = d.sink(19_784);
      let fresh: Spawned | null = null;
      let back: Promise<{ backAt: number; startMs: number }> = Promise.reject(new Error('registry never killed'));
      back.catch(() => undefined);
      let killedAt = 0;
      await d.produce('drill-registry', {
        switchId: { from: 16_000, id: altId },
        hooks: [
          {
            at: 16_000,
            run: async () => {
              killedAt = await crash('apicurio');
              // A fresh worker while the registry is down: its caches are cold.
              fresh = d.worker('fresh');
              back = (async () => {
                await sleep(20_000);
                return restart('apicurio');
              })();
            },
          },
        ],
      });
      const stalled = await d.workersProgress.current();
      const { backAt, startMs } = await back;
      report.notes.push(`registry down ${seconds(backAt - killedAt)} (restart ${seconds(startMs)})`);
      expect((fresh as Spawned | null)?.child.exitCode).toBeNull(); // waited, did not exit
      const [wAt, sAt] = await Promise.all([
        d.workersProgress.advancedPast(Math.max(stalled, await d.workersProgress.current()), 180_000),
        d.sinkProgress.advancedPast((await d.sinkProgress.current()) - 0, 180_000),
      ]);
      report.recoveryMs.workers = wAt - backAt;
      report.recoveryMs.sink = sAt - backAt;
      // The ids survived the restart (durable storage): both still resolve.
      const registry = createSchemaRegistry(resolveEndpoints().schemaRegistryUrl);
      expect(await registry.getWriterType(baseId)).not.toBeNull();
      expect(await registry.getWriterType(altId)).not.toBeNull();
      const sinkMetrics = await scrape(19_784);
      expect(
        metricValue(sinkMetrics, 'vigil_dependency_retries_total', 'dependency="schema_registry"'),
      ).toBeGreaterThan(0);
      expect(metricValue(sinkMetrics, 'vigil_dependency_up', 'dependency="schema_registry"')).toBe(1);
      expect((fresh as unknown as Spawned).stderr()).toContain('schema registry unavailable at start-up');
      expect(workers[0]?.stderr()).toContain('REGISTRY_UNAVAILABLE');
      await d.finish([...workers, fresh as unknown as Spawned], sink, report);
      // verify() checked dead letters by reason equal the truth exactly: no good record became UNKNOWN_SCHEMA_ID.
    });
  }, 600_000);

  it('a worker SIGKILLed three times in one run, restarted each time', async () => {
    await drill('worker-sigkill-x3', 'drill-worker', async (d, report) => {
      let worker = d.worker('only', 19_785);
      const sink = d.sink();
      const recoveries: number[] = [];
      let previous: Promise<void> = Promise.resolve();
      const killAndRestart = async () => {
        await previous;
        const before = (await d.workersProgress.sum()) ?? 0;
        worker.child.kill('SIGKILL');
        expect((await worker.done).signal).toBe('SIGKILL');
        const killedAt = Date.now();
        // Restarted at once with the same identity, as a supervisor would: its producer fences the dead one's transaction.
        worker = d.worker('only', 19_785);
        previous = d.workersProgress.advancedPast(before, 180_000).then((at) => {
          recoveries.push(at - killedAt);
        });
      };
      await d.produce('drill-worker', {
        hooks: [8_000, 20_000, 32_000].map((at) => ({ at, run: killAndRestart })),
      });
      await previous;
      report.recoveryMs.worker = recoveries;
      expect(recoveries).toHaveLength(3);
      await d.finish([worker], sink, report);
    });
  }, 600_000);

  it('workers joining and leaving mid-stream: each rebalance hands the dedupe state over live', async () => {
    await drill('workers-join-and-leave', 'drill-scale', async (d, report) => {
      const running = new Map<string, Spawned>([['a', d.worker('a')]]);
      const left: Spawned[] = [];
      const join = (id: string) => async () => {
        running.set(id, d.worker(id));
      };
      // SIGTERM: the member finishes and commits its batch, leaves the group, and the others take its partitions.
      const leave = (id: string) => async () => {
        const worker = running.get(id) as Spawned;
        running.delete(id);
        worker.child.kill('SIGTERM');
        left.push(worker);
      };
      const sink = d.sink();
      await d.produce('drill-scale', {
        hooks: [
          { at: 6_000, run: join('b') },
          { at: 12_000, run: join('c') },
          { at: 20_000, run: leave('b') },
          { at: 26_000, run: join('d') },
          { at: 32_000, run: leave('a') },
        ],
      });
      for (const worker of left) await expectCleanExit(worker);
      const handedOver = [...left, ...running.values()]
        .flatMap((w) => w.stderr().split('\n'))
        .filter((line) => line.includes('partition state restored from changelog') && !line.includes('"records":0,'));
      report.notes.push(`${handedOver.length} partition restores from a non-empty changelog`);
      expect(handedOver.length).toBeGreaterThan(0);
      await d.finish([...running.values()], sink, report);
    });
  }, 600_000);

  it('the sink SIGKILLed during an insert and restarted', async () => {
    await drill('sink-sigkill-mid-insert', 'drill-sink', async (d, report) => {
      const workers = [d.worker('a'), d.worker('b')];
      let sink: Spawned | null = null;
      let killed: Promise<void> = Promise.resolve();
      await d.produce('drill-sink', {
        hooks: [
          {
            at: 24_000,
            run: async () => {
              // Started late, the sink has a backlog: big rounds, long inserts.
              const first = d.sink();
              killed = (async () => {
                let dirs: string[] = [];
                await waitFor(
                  'the sink to create its tables',
                  () => {
                    dirs = tableDirs(d.sinkDir);
                    return dirs.length >= 5;
                  },
                  60_000,
                );
                // A data insert of a round, not a migration at start-up: only after the first round committed.
                await d.sinkProgress.advancedPast(0, 120_000);
                dirs = dirs.filter((dir) => !/schema_migrations/.test(dir));
                let part: string | null = null;
                const until = Date.now() + 90_000;
                while (!part && Date.now() < until) {
                  part = insertInFlight(dirs);
                  if (!part) await new Promise((r) => setImmediate(r));
                }
                expect(part, 'no insert was seen in flight').not.toBeNull();
                const before = (await d.sinkProgress.sum()) ?? 0;
                first.child.kill('SIGKILL');
                const killedAt = Date.now();
                expect((await first.done).signal).toBe('SIGKILL');
                report.notes.push(`killed while writing part ${(part as string).split('/').slice(-2).join('/')}`);
                sink = d.sink();
                const at = await d.sinkProgress.advancedPast(before, 180_000);
                report.recoveryMs.sink = at - killedAt;
              })();
            },
          },
        ],
      });
      await killed;
      await d.finish(workers, sink, report);
    });
  }, 600_000);
});
