/**
 * The embedded run's input through the gateway (`npm start`): the simulated fleet is enrolled into a temporary dev PKI
 * and an in-memory device registry, the gateway runs in-process on loopback (port 0, memory state), and each device
 * signs its events and sends them over its own mutual-TLS HTTP/2 session (simulator/gateway-fleet.ts), followed by the
 * gateway's own fault drills. The gateway's raw sink is an in-memory queue whose envelopes become the run's source
 * batches, framed and decoded exactly as a worker reads them from Kafka (framedSource: keyed by device over the
 * partitions; the alarm lane on the pipeline's priority source when it has one, else with the rest).
 *
 * Time: the gateway's clock is the simulation's (a ManualClock the driver advances to each upload window's end), so
 * hours of telemetry pass in seconds and every check — skew, nonce lifetime, token buckets, certificate validity —
 * sees simulated time. A deliberate choice for the demo; the distributed `vigil gateway` runs on the system clock.
 * The demo's skew bound is 2 h (the simulator's devices buffer up to ~90 min of readings while offline, which the
 * 5-minute default would refuse); the drills use whatever bound is set.
 *
 * Evidence (`evidence`): the PKI and the fleet's identity changes can outlive the run, as a device CA folder and the
 * file device-identity log `vigil devices --control-dir` reads, so `vigil trace <event_id> --verify --pki-dir ...
 * --control-dir ...` re-checks a stored event's signature afterwards. The gateway's rejection records come back in
 * the report, for the run to land in `gateway_rejections` (`landGatewayRejections`).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { type AcceptedEvent, startGateway } from '../../gateway/index.ts';
import { parseGatewayLimits, stateParamsOf } from '../../gateway/limits.ts';
import { MemoryGatewayState } from '../../gateway/state.ts';
import { initPki } from '../../identity/pki.ts';
import { changeKey } from '../../identity/records.ts';
import { DeviceRegistry } from '../../identity/registry.ts';
import type { IdentityChange, SigningAlgorithm } from '../../identity/types.ts';
import { GATEWAY_REJECTIONS_TABLE, gatewayRejectionRow } from '../../pipelines/gateway-rejections.ts';
import type { GatewayRejection } from '../../schemas/types.ts';
import { runGatewayDrills } from '../../simulator/gateway-drills.ts';
import { enrolSimulatedFleet } from '../../simulator/gateway-enrol.ts';
import { GatewayFleet, type ObservedAnswers } from '../../simulator/gateway-fleet.ts';
import { GatewayModel, type GatewayTruth, sortedCounts } from '../../simulator/gateway-truth.ts';
import { resolveSimulateOptions, type SimulateOptions, type TruthSummary } from '../../simulator/simulate.ts';
import { ManualClock, systemClock } from '../clock.ts';
import { TOPICS } from '../endpoints.ts';
import type { SourceBatch } from '../engine.ts';
import type { PipelineDefinition } from '../pipeline.ts';
import { framedSource, type SourceInput } from './embedded-sources.ts';

const DAY_MS = 86_400_000;

export interface GatewayRunOptions {
  readonly simulation: SimulateOptions;
  /** The fleet's signing algorithm (default EdDSA: a third of ES256's verification cost). */
  readonly algorithm?: SigningAlgorithm;
  /** The gateway's skew bound (default 2 h, see above). */
  readonly skewMs?: number;
  /** Records per partition batch (default 2000). */
  readonly batchSize?: number;
  readonly partitions?: number;
  /** Where the gateway and the fleet run: a worker thread beside the pipeline (default), or the caller's. */
  readonly thread?: 'worker' | 'main';
  /**
   * Keep the evidence a trace re-verifies with: the PKI in `pkiDir` (replaced) and the identity changes in the file
   * log `<controlDir>/device-identity.jsonl` (replaced). Absent: a temporary PKI, removed after the run.
   */
  readonly evidence?: GatewayEvidenceDirs;
}

/** Where a run keeps its PKI and its device-identity log (./gateway-source.ts `evidence`). */
export interface GatewayEvidenceDirs {
  readonly pkiDir: string;
  readonly controlDir: string;
}

/** The file device-identity log's name in a control dir (as cli/commands/devices.ts DEVICE_IDENTITY_FILE). */
export const DEVICE_IDENTITY_LOG = 'device-identity.jsonl';

/** What went through the gateway: its own records, the driver's truth and the answers the devices got. */
export interface GatewayRunReport {
  /** Events the gateway handed the raw sink, by lane. */
  readonly accepted: number;
  readonly lanes: { readonly raw: number; readonly priority: number };
  /** The gateway's rejection records, by reason. */
  readonly rejected: Record<string, number>;
  /** The rejection records themselves, in the order the gateway wrote them (no PHI: see schemas' gateway-rejection). */
  readonly rejections: readonly GatewayRejection[];
  readonly truth: GatewayTruth;
  readonly observed: ObservedAnswers;
  readonly simulator: TruthSummary | null;
  /** The gateway's records and answers equal the driver's truth (accepted, by lane, rejections by reason). */
  readonly matchesTruth: boolean;
  /** Requests the gateway left unanswered that the devices sent again (0 unless the machine starved its timers). */
  readonly retries: number;
  readonly algorithm: SigningAlgorithm;
  readonly elapsedMs: number;
}

/** A bounded queue between the gateway's raw sink (writes wait while it is full) and the source that reads it. */
class EventQueue implements AsyncIterable<SourceInput> {
  readonly #items: SourceInput[] = [];
  #head = 0;
  #closed = false;
  #failure: unknown = null;
  #wakeReader: (() => void) | null = null;
  readonly #wakeWriters: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.#items.length - this.#head;
  }

  async push(items: readonly SourceInput[]): Promise<void> {
    while (this.size >= this.capacity && !this.#closed) await new Promise<void>((r) => this.#wakeWriters.push(r));
    this.#items.push(...items);
    this.#wake();
  }

  close(failure: unknown = null): void {
    this.#closed = true;
    this.#failure = failure;
    this.#wake();
    for (const w of this.#wakeWriters.splice(0)) w();
  }

  #wake(): void {
    const r = this.#wakeReader;
    this.#wakeReader = null;
    r?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SourceInput> {
    for (;;) {
      if (this.size > 0) {
        const item = this.#items[this.#head++] as SourceInput;
        if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
          this.#items.splice(0, this.#head);
          this.#head = 0;
        }
        if (this.size < this.capacity) for (const w of this.#wakeWriters.splice(0)) w();
        yield item;
        continue;
      }
      if (this.#closed) {
        if (this.#failure) throw this.#failure;
        return;
      }
      await new Promise<void>((r) => {
        this.#wakeReader = r;
      });
    }
  }
}

/** What the gateway hands on: accepted events, by lane and device. */
export type AcceptedSink = (events: readonly AcceptedEvent[]) => Promise<void>;

/**
 * Enrols the fleet into a temporary PKI and an in-memory registry, starts the gateway on loopback on the simulation's
 * clock, drives the fleet and the drills through it, and returns the report; accepted events go to `sink` (the 202
 * waits for it). Runs on whichever thread calls it (./gateway-thread.ts runs it on a worker thread).
 *
 * @example
 * const report = await runGatewayFleet({ simulation: { devices: 50, events: 2000 } }, async (events) => keep(events));
 */
export async function runGatewayFleet(options: GatewayRunOptions, sink: AcceptedSink): Promise<GatewayRunReport> {
  const started = Date.now();
  const simulation = resolveSimulateOptions(options.simulation);
  const algorithm = options.algorithm ?? 'EdDSA';
  // The connection timers guard against slow-loris clients on a network; in-process on loopback on a busy machine
  // they would only cut off the fleet's own requests while the pipeline holds the CPU.
  const limits = parseGatewayLimits({
    skewMs: options.skewMs ?? 2 * 3_600_000,
    handshakeTimeoutMs: 120_000,
    headersTimeoutMs: 120_000,
    requestTimeoutMs: 120_000,
    idleTimeoutMs: 300_000,
  });
  const dir = await mkdtemp(join(tmpdir(), 'vigil-demo-pki-'));
  const lanes = { raw: 0, priority: 0 };
  const rejected = new Map<string, number>();
  const rejections: GatewayRejection[] = [];
  try {
    const validFrom = simulation.startTime - DAY_MS;
    const pkiDir = options.evidence?.pkiDir ?? join(dir, 'pki');
    if (options.evidence) await rm(pkiDir, { recursive: true, force: true });
    const pki = await initPki(pkiDir, { now: validFrom });
    const foreignPki = await initPki(join(dir, 'foreign'), { now: validFrom });
    const enrolled = await enrolSimulatedFleet({
      pki,
      foreignPki,
      simulation,
      algorithm,
      validFrom,
      validUntil: Math.max(Date.now(), simulation.startTime) + 30 * DAY_MS,
      actor: 'vigil-demo',
    });
    if (options.evidence)
      await writeIdentityLog(join(options.evidence.controlDir, DEVICE_IDENTITY_LOG), enrolled.changes);
    const registry = new DeviceRegistry();
    for (const change of enrolled.changes) registry.apply(change);
    const clock = new ManualClock(simulation.startTime);
    const gateway = await startGateway({
      id: 'gw-embedded',
      port: 0,
      tls: { certPem: pki.gatewayCertPem, keyPem: pki.gatewayKeyPem, caPem: pki.caCertPem },
      directory: registry,
      state: new MemoryGatewayState(stateParamsOf(limits), clock),
      raw: {
        write: (events: readonly AcceptedEvent[]) => {
          for (const e of events) lanes[e.lane]++;
          return sink(events);
        },
      },
      rejections: {
        write: async (records) => {
          for (const r of records) rejected.set(r.reason, (rejected.get(r.reason) ?? 0) + 1);
          rejections.push(...records);
        },
      },
      clock,
      limits,
    });
    const fleet = new GatewayFleet({
      url: gateway.url,
      caPem: pki.caCertPem,
      credentials: enrolled.credentials,
      simulation,
      model: new GatewayModel(limits),
      clock: { kind: 'simulated', clock },
      skewMs: limits.skewMs,
    });
    try {
      await fleet.run();
      await runGatewayDrills(fleet, enrolled.faults, limits);
    } finally {
      await fleet.close();
      await gateway.close(1000);
    }
    const { truth, observed, simulator, retries } = fleet.summary();
    const records = sortedCounts(rejected);
    const accepted = lanes.raw + lanes.priority;
    return {
      accepted,
      lanes: { ...lanes },
      rejected: records,
      rejections,
      truth,
      observed,
      simulator,
      matchesTruth:
        accepted === truth.accepted &&
        lanes.priority === truth.lanes.priority &&
        JSON.stringify(records) === JSON.stringify(truth.rejected),
      retries,
      algorithm,
      elapsedMs: Date.now() - started,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The identity changes as a file control log (adapters/file/control-log.ts's format: `{"key","value"}` per line, keyed
 * as on the topic), replacing any earlier one. Written whole and synced once: FileControlLog.append syncs every line,
 * about 2 ms each here, seconds for a fleet.
 */
async function writeIdentityLog(path: string, changes: readonly IdentityChange[]): Promise<void> {
  await rm(path, { force: true });
  await mkdir(dirname(path), { recursive: true });
  const file = await open(path, 'w', 0o640);
  try {
    await file.writeFile(changes.map((c) => `${JSON.stringify({ key: changeKey(c), value: c })}\n`).join(''));
    await file.sync();
  } finally {
    await file.close();
  }
}

const REJECTION_CHUNK = 5000;

/**
 * Lands a run's gateway rejection records in `gateway_rejections` with the landing definition's own row mapping
 * (pipelines/gateway-rejections.ts), as `vigil sink pipelines/gateway-rejections.ts` lands them from the topic; each
 * chunk carries a dedup token of its rejection ids, so a retried chunk lands once. Returns the rows written.
 *
 * @example
 * await landGatewayRejections(store, gatewayReport.rejections);
 */
export async function landGatewayRejections(
  store: Pick<ClickHouseStore, 'insert'>,
  rejections: readonly GatewayRejection[],
): Promise<number> {
  let rows = 0;
  for (let i = 0; i < rejections.length; i += REJECTION_CHUNK) {
    const chunk = rejections.slice(i, i + REJECTION_CHUNK);
    const ids = createHash('sha256');
    for (const r of chunk) ids.update(r.rejection_id);
    const dedupToken = `gateway-rejections|${TOPICS.gatewayRejections}|${i}-${i + chunk.length - 1}|${ids.digest('hex').slice(0, 16)}`;
    const result = await store.insert(
      GATEWAY_REJECTIONS_TABLE,
      chunk.map((r) => gatewayRejectionRow(r as unknown as Record<string, unknown>)),
      { dedupToken },
    );
    rows += result.rows;
  }
  return rows;
}

/**
 * The run's source batches, fed by the fleet through an in-process gateway; `onReport` gets the gateway's report
 * once the fleet is done (before the last batch is yielded). The gateway and the fleet run on a worker thread by
 * default, beside the pipeline on the main thread (`thread: 'main'` keeps them on it).
 *
 * @example
 * let gateway: GatewayRunReport | null = null;
 * const source = gatewaySource(definition, { simulation: { devices: 1000, events: 100_000 } }, (r) => { gateway = r; });
 * await runEmbeddedSession(definition, source, store, log);
 */
export async function* gatewaySource<I>(
  definition: Pick<PipelineDefinition<I>, 'sources' | 'schemaDirs'>,
  options: GatewayRunOptions,
  onReport: (report: GatewayRunReport) => void,
): AsyncGenerator<SourceBatch<I>> {
  const topics = new Set(definition.sources.map((s) => s.topic));
  const priorityTopic = topics.has(TOPICS.rawPriority) ? TOPICS.rawPriority : TOPICS.raw;
  const queue = new EventQueue(Math.max(10_000, 4 * (options.batchSize ?? 2000) * (options.partitions ?? 6)));
  const sink: AcceptedSink = (events) =>
    queue.push(
      events.map((e) => ({
        topic: e.lane === 'priority' ? priorityTopic : TOPICS.raw,
        key: e.key,
        value: e.envelope as unknown as Record<string, unknown>,
      })),
    );
  const run = (options.thread ?? 'worker') === 'worker' ? runOnWorkerThread : runGatewayFleet;
  const driving = run(options, sink).then(
    (report) => {
      onReport(report);
      queue.close();
    },
    (error: unknown) => queue.close(error),
  );
  try {
    yield* framedSource(definition, queue, {
      clock: systemClock,
      batchSize: options.batchSize ?? 2000,
      partitions: options.partitions ?? 6,
    });
    await driving;
  } finally {
    queue.close();
    await driving;
  }
}

/** Messages between ./gateway-thread.ts and this thread. */
export type GatewayThreadMessage =
  | { readonly kind: 'events'; readonly id: number; readonly events: readonly AcceptedEvent[] }
  | { readonly kind: 'report'; readonly report: GatewayRunReport }
  | { readonly kind: 'error'; readonly message: string; readonly stack?: string };

/** runGatewayFleet on a worker thread: accepted events come over as messages, each acknowledged once queued. */
function runOnWorkerThread(options: GatewayRunOptions, sink: AcceptedSink): Promise<GatewayRunReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./gateway-thread.mjs', import.meta.url), {
      workerData: { ...options, thread: 'main' },
    });
    let settled = false;
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      action();
      void worker.terminate();
    };
    worker.on('message', (message: GatewayThreadMessage) => {
      if (message.kind === 'events') {
        sink(message.events).then(
          () => worker.postMessage({ ack: message.id }),
          (error: unknown) => finish(() => reject(error)),
        );
      } else if (message.kind === 'report') finish(() => resolve(message.report));
      else finish(() => reject(Object.assign(new Error(message.message), { stack: message.stack })));
    });
    worker.on('error', (error) => finish(() => reject(error)));
    worker.on('exit', (code) =>
      finish(() => reject(new Error(`the gateway thread exited (${code}) before its report`))),
    );
  });
}
