/**
 * Model governance on the real stack (issue 12's "done means"): the real CLI (`vigil models ...`) changes the
 * registry on an isolated model-rollouts topic while two vitals workers (one consumer group) and one alerts worker
 * run, and every change reaches the running workers without a restart:
 * - the running version is registered and made live, a new version added and approved;
 * - shadow beside live on the same events: both scored and stored, only live clinical, and no alert rests on a
 *   shadow inference;
 * - a canary at 10% of one site: the share of that site's patients within tolerance, exactly the patients whose
 *   bucket is under 1000, each patient on one version across all their events, nobody elsewhere;
 * - promotion refused while the criteria fail (no outcomes yet: calibration cannot hold), then accepted once the
 *   simulator's outcomes have landed;
 * - rollback applied by the running workers within 5 s, measured from the CLI's exit (printed);
 * - every step in `vigil models show --json` history, with its actor.
 *
 * The fleet is simulated straight onto the raw topic (no gateway: `--accept-ungated`, as vitals-distributed does).
 * The models folder is a copy (`--models-root`), so `vigil models add` never writes into the repository; the
 * candidate is a test copy of deterioration@1.1.0 whose manifest widens the calibration slope's bounds (this short
 * shadow period estimates it with a wide error; see beforeAll), every other acceptance criterion its own.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramedDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { QueryParams } from '../../adapters/clickhouse/store.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { cohortBucket } from '../../governance/routing.ts';
import type { CriterionResult, ModelChange } from '../../governance/types.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import type { Inference } from '../../schemas/types.ts';
import { fleetEventRate } from '../../simulator/fleet.ts';
import { produceOutcomes } from '../../simulator/kafka.ts';
import { fleetFor, SIMULATION_DEFAULTS, type SimulateOptions } from '../../simulator/simulate.ts';
import { freePort, REPO, waitFor } from '../support/process.ts';
import { isolatedTopics, lastJsonLine, type Spawned, spawnVigil } from './helpers.ts';
import { Feeder, groupCommitted, metricValue, type Seen, TopicFollower, topicEnds } from './models-support.ts';

const MODEL = 'deterioration';
const LIVE = '1.0.0';
const CANDIDATE = '1.1.0';
const CANARY_SITE = 'site-01';
const CANARY_PERCENT = 10;
const APPLIED_WITHIN_MS = 5_000;

/** Few sites, so the canary's site holds a few hundred patients; no faults: every record is a valid event. */
const DEVICES = 600;
const SIMULATION: SimulateOptions = {
  devices: DEVICES,
  sites: 3,
  // A 48-hour run's worth (the episode scale the model's calibration holds for: models/deterioration/README.md), of
  // which the test feeds the first ~25,000 records: the simulator makes them lazily.
  events: Math.round(48 * 3600 * fleetEventRate(DEVICES)),
  seed: 'it-models',
  duplicateRate: 0,
  replayRate: 0,
  malformedRate: 0,
};

const ACTORS = {
  engineer: 'it-ml-engineer',
  safety: 'it-clinical-safety-officer',
  lead: 'it-ml-lead',
  oncall: 'it-oncall',
} as const;

let topics: Awaited<ReturnType<typeof isolatedTopics>>;
let env: Record<string, string>;
const work = mkdtempSync(join(tmpdir(), 'vigil-it-models-'));
const modelsRoot = join(work, 'models');
const candidateDir = join(work, 'candidate', MODEL, CANDIDATE);
const auditDir = join(work, 'audit');
const keyDir = join(work, 'audit-keys');
const sinkDir = join(work, 'clickhouse');
let vitalsGroup: string;
let alertsGroup: string;
const vitalsPorts: number[] = [];
const workers: Spawned[] = [];
let feeder: Feeder;
let inferenceTopic: TopicFollower;
let alertTopic: TopicFollower;
/** The registry's revision the workers must reach after each change (= changes on the log). */
let revision = 0;
/** change_id of each step, by name. */
const changes: Record<string, string> = {};

const registry = () => createSchemaRegistry(resolveEndpoints().schemaRegistryUrl);
const inferenceDecoder = () => new FramedDecoder<Inference>(registry(), loadSchemaRepo().get('inference').newest.type);
const alertDecoder = () =>
  new FramedDecoder<ClinicalAlert>(registry(), loadSchemaRepo().get('clinical-alert').newest.type);

/** The inferences the follower has read, decoded once each (the follower only appends). */
const decodedInferences: (Inference & { seen: Seen })[] = [];

async function inferencesFrom(from: number): Promise<(Inference & { seen: Seen })[]> {
  const fresh = inferenceTopic.messages.slice(decodedInferences.length);
  decodedInferences.push(...(await decodeAll(inferenceDecoder(), fresh)));
  return decodedInferences.slice(from);
}

async function decodeAll<T>(decoder: FramedDecoder<T>, seen: readonly Seen[]): Promise<(T & { seen: Seen })[]> {
  const decoded = await decoder.decodeBatch(seen.map((s) => s.value));
  return decoded.map((d, i) => {
    if (!d.ok) throw new Error(`undecodable record at ${seen[i]?.partition}:${seen[i]?.offset}`);
    return { ...d.value, seen: seen[i] as Seen };
  });
}

async function vigil(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = spawnVigil(args, env);
  return run.done;
}

const auditFlags = () => ['--audit-dir', auditDir, '--audit-hash-key', join(keyDir, 'hash.key')];

/** `vigil models <args>` on the isolated topic and models folder; must succeed; the record appended (--json). */
async function models(...args: string[]): Promise<ModelChange> {
  const exited = await vigil(['models', ...args, '--models-root', modelsRoot, ...auditFlags(), '--json']);
  expect(exited.code, `vigil models ${args.join(' ')}: ${exited.stderr}`).toBe(0);
  return lastJsonLine<ModelChange>(exited.stdout);
}

/** Waits until every vitals worker's routing table is at `revision` (read from its /metrics). */
async function workersAt(what: string, expected: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    `the vitals workers to apply ${what} (revision ${expected})`,
    async () => {
      // A worker still starting has no /metrics yet.
      const seen = await Promise.all(
        vitalsPorts.map((p) => metricValue(p, 'vigil_model_rollout_revision').catch(() => null)),
      );
      return seen.every((r) => r === expected);
    },
    timeoutMs,
    20,
  );
}

/** One change through the CLI, then every worker on it. */
async function change(name: string, ...args: string[]): Promise<ModelChange> {
  const record = await models(...args);
  changes[name] = record.change_id;
  revision++;
  await workersAt(name, revision);
  return record;
}

/**
 * Produces `n` records, then waits until the vitals group has committed them (their inferences are committed in the
 * same transactions) and the inference follower has read them; returns the inferences they produced.
 */
async function phase(n: number): Promise<(Inference & { seen: Seen })[]> {
  const from = inferenceTopic.messages.length;
  await feeder.send(n);
  await vitalsDrained();
  return inferencesFrom(from);
}

async function vitalsDrained(): Promise<void> {
  await groupCommitted(vitalsGroup, topics.name(TOPICS.raw), await topicEnds(topics.name(TOPICS.raw)));
  await inferenceTopic.caughtUp();
}

/** The alerts worker has committed every inference read so far, and its alerts are read. */
async function alertsDrained(): Promise<void> {
  const ends = new Map<number, number>();
  for (const p of inferenceTopic.partitions) {
    const last = inferenceTopic.lastOffset(p);
    if (last !== undefined) ends.set(p, last + 1);
  }
  await groupCommitted(alertsGroup, inferenceTopic.topic, ends);
  await alertTopic.caughtUp();
}

/** Lands what the vitals workers (and the outcomes) wrote so far in the embedded ClickHouse, with the real sink. */
async function land(pipeline: 'vitals' | 'outcomes'): Promise<void> {
  const exited = await vigil([
    'sink',
    `pipelines/${pipeline}.ts`,
    '--data-dir',
    sinkDir,
    '--group',
    `${topics.prefix}-sink-${pipeline}`,
    '--metrics-port',
    '0',
    '--stop-when-idle',
    '4000',
    '--json',
  ]);
  expect(exited.code, exited.stderr).toBe(0);
}

async function query<T>(sql: string, params: QueryParams = {}): Promise<T[]> {
  const store = openChdbStore({ path: sinkDir });
  try {
    return await store.query<T>(sql, params);
  } finally {
    await store.close();
  }
}

interface PromoteLine {
  readonly passed: boolean;
  readonly criteria: readonly CriterionResult[];
  readonly change_id: string | null;
}

function promote(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const start = SIMULATION.startTime ?? SIMULATION_DEFAULTS.startTime;
  return vigil([
    'models',
    'promote',
    `${MODEL}@${CANDIDATE}`,
    '--by',
    ACTORS.lead,
    '--reason',
    'shadow and canary period reviewed',
    // The period in event time (observed_at): the simulated fleet's, which lies in the past.
    '--since',
    new Date(start - 86_400_000).toISOString(),
    '--until',
    new Date().toISOString(),
    '--data-dir',
    sinkDir,
    '--models-root',
    modelsRoot,
    ...auditFlags(),
    '--json',
  ]);
}

const deterioration = <I extends Inference>(inferences: readonly I[]) =>
  inferences.filter((i) => i.model_name === MODEL);
const clinical = <I extends Inference>(inferences: readonly I[]) =>
  inferences.filter((i) => i.routing?.clinical === true);

function workerArgs(pipeline: string, group: string, workerId: string, port: number): string[] {
  return [
    'run',
    `pipelines/${pipeline}.ts`,
    '--group',
    group,
    '--worker-id',
    workerId,
    '--metrics-port',
    String(port),
    '--batch-size',
    '500',
    '--linger-ms',
    '50',
    '--models-root',
    modelsRoot,
    '--json',
    // The simulator writes straight to Kafka, not through a gateway.
    '--accept-ungated',
  ];
}

beforeAll(async () => {
  topics = await isolatedTopics('models');
  env = { VIGIL_TOPIC_PREFIX: topics.prefix };
  vitalsGroup = `${topics.prefix}-vitals`;
  alertsGroup = `${topics.prefix}-alerts`;

  // The model store the workers read and `vigil models add` copies into: the repository's versions but the candidate.
  cpSync(join(REPO, 'models'), modelsRoot, {
    recursive: true,
    filter: (src) => !src.startsWith(join(REPO, 'models', MODEL, CANDIDATE)),
  });
  // The candidate: a test copy of the repository's version (the same artifact bytes) whose manifest widens one
  // acceptance criterion: this run's shadow period holds ~7,000 readings with ~90 outcome events, on which the
  // calibration slope is estimated at 1.40 (deterministic: same seed, same records), outside the 0.8-1.2 meant for a
  // full period. Every other criterion is the manifest's own.
  cpSync(join(REPO, 'models', MODEL, CANDIDATE), candidateDir, { recursive: true });
  const manifestPath = join(candidateDir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  manifest.acceptance_criteria.calibration = {
    ...manifest.acceptance_criteria.calibration,
    slope_min: 0.6,
    slope_max: 1.8,
  };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

  const keygen = await vigil(['audit', 'keygen', '--key-dir', keyDir]);
  expect(keygen.code, keygen.stderr).toBe(0);

  feeder = await Feeder.open(SIMULATION, topics.name(TOPICS.raw));
  inferenceTopic = await TopicFollower.open(topics.name(TOPICS.inferences));
  alertTopic = await TopicFollower.open(topics.name(TOPICS.clinicalAlerts));

  // Two vitals workers in one group, one alerts worker: started before the registry holds anything.
  for (const id of ['a', 'b']) {
    const port = await freePort();
    vitalsPorts.push(port);
    workers.push(spawnVigil(workerArgs('vitals', vitalsGroup, `${topics.prefix}-vitals-${id}`, port), env));
  }
  workers.push(spawnVigil(workerArgs('alerts', alertsGroup, `${topics.prefix}-alerts`, 0), env));
  await workersAt('the empty registry', 0, 120_000);
}, 300_000);

afterAll(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  await Promise.all([inferenceTopic?.close(), alertTopic?.close(), feeder?.close()]);
  rmSync(work, { recursive: true, force: true });
});

describe('model governance on the real stack, applied live by running workers', () => {
  it('with no route in the registry, the pipeline defaults run live', async () => {
    const inferences = await phase(1_000);
    expect(deterioration(inferences).length).toBeGreaterThan(0);
    for (const i of inferences) {
      expect(i.routing).toMatchObject({ source: 'pipeline', clinical: true, in_canary: false });
      expect(i.rollout).toBe('live');
      expect(i.rollout_id).toBeNull();
    }
    expect(new Set(deterioration(inferences).map((i) => i.model_version))).toEqual(new Set([LIVE]));
  }, 120_000);

  it('the running version is registered and made live, and a new version is added and approved', async () => {
    const added = await change(
      'add live',
      'add',
      join(modelsRoot, MODEL, LIVE),
      '--by',
      ACTORS.engineer,
      '--reason',
      'the version in service',
    );
    expect(added).toMatchObject({ kind: 'added', model: MODEL, version: LIVE, actor: ACTORS.engineer });
    await change(
      'approve live',
      'approve',
      `${MODEL}@${LIVE}`,
      '--by',
      ACTORS.safety,
      '--role',
      'clinical-safety-officer',
      '--reason',
      'in service since 2025',
    );
    await change(
      'rollout live',
      'rollout',
      `${MODEL}@${LIVE}`,
      '--mode',
      'live',
      '--by',
      ACTORS.lead,
      '--reason',
      'the registry routes it',
    );

    const candidate = await change(
      'add candidate',
      'add',
      candidateDir,
      '--by',
      ACTORS.engineer,
      '--reason',
      'retrained on more patients',
    );
    expect(candidate).toMatchObject({ kind: 'added', version: CANDIDATE });
    // Copied into the store the workers read, content-addressed.
    expect(readFileSync(join(modelsRoot, MODEL, CANDIDATE, 'manifest.json'), 'utf8')).toBe(
      readFileSync(join(candidateDir, 'manifest.json'), 'utf8'),
    );
    const approval = await change(
      'approve candidate',
      'approve',
      `${MODEL}@${CANDIDATE}`,
      '--by',
      ACTORS.safety,
      '--role',
      'clinical-safety-officer',
      '--reason',
      'validation report VR-7',
    );
    expect(approval).toMatchObject({ kind: 'approved', version: CANDIDATE, role: 'clinical-safety-officer' });
  }, 120_000);

  it('shadow runs beside live on the same events: both stored, only live clinical, no alert on a shadow', async () => {
    await change(
      'shadow',
      'rollout',
      `${MODEL}@${CANDIDATE}`,
      '--mode',
      'shadow',
      '--by',
      ACTORS.lead,
      '--reason',
      'compare on live traffic',
    );
    const inferences = deterioration(await phase(8_000));
    const live = inferences.filter((i) => i.model_version === LIVE);
    const shadow = inferences.filter((i) => i.model_version === CANDIDATE);
    expect(shadow.length).toBeGreaterThan(1_000);
    // The same events, each scored once by each version.
    expect(new Set(shadow.map((i) => i.event_id))).toEqual(new Set(live.map((i) => i.event_id)));
    expect(shadow.length).toBe(new Set(shadow.map((i) => i.event_id)).size);
    for (const i of live) {
      expect(i).toMatchObject({ rollout: 'live', rollout_id: changes['rollout live'] });
      expect(i.routing).toMatchObject({ source: 'registry', clinical: true, in_canary: false });
    }
    for (const i of shadow) {
      expect(i).toMatchObject({ rollout: 'shadow', rollout_id: changes.shadow });
      expect(i.routing).toMatchObject({ source: 'registry', clinical: false, in_canary: false });
    }

    // Stored: the sink lands both versions' inferences of these events.
    await land('vitals');
    const stored = await query<{ version: string; rollout: string; clinical: number | boolean; n: number | string }>(
      `SELECT model_version AS version, rollout, clinical, count() AS n FROM inferences FINAL
       WHERE model_name = {model:String} AND rollout_id IN ({live:String}, {shadow:String})
       GROUP BY version, rollout, clinical ORDER BY version`,
      { model: MODEL, live: changes['rollout live'] ?? '', shadow: changes.shadow ?? '' },
    );
    expect(stored.map((r) => [r.version, r.rollout, Boolean(r.clinical), Number(r.n)])).toEqual([
      [LIVE, 'live', true, live.length],
      [CANDIDATE, 'shadow', false, shadow.length],
    ]);

    // Alerts: the alerts worker has read every inference; none of its alerts rests on a shadow inference.
    await alertsDrained();
    const alerts = await decodeAll(alertDecoder(), alertTopic.messages);
    expect(alerts.length).toBeGreaterThan(0);
    const shadowIds = new Set(shadow.map((i) => i.inference_id));
    for (const a of alerts) {
      for (const id of a.inference_ids) expect(shadowIds.has(id)).toBe(false);
      if (a.model_name === MODEL) expect(a.model_version).toBe(LIVE);
    }
    const byModel = new Map<string, number>();
    for (const a of alerts) {
      const key = `${a.model_name ?? '(device)'}@${a.model_version ?? '-'} ${a.rollout ?? '-'}`;
      byModel.set(key, (byModel.get(key) ?? 0) + 1);
    }
    process.stdout.write(`alerts so far: ${[...byModel].map(([k, n]) => `${k}: ${n}`).join(', ')}\n`);
    // The live version alerts (the shadow, scored on the same events, never does).
    expect(byModel.get(`${MODEL}@${LIVE} live`) ?? 0).toBeGreaterThan(0);
  }, 240_000);

  it('promotion is refused while its criteria fail (no outcomes yet: calibration cannot hold)', async () => {
    const refused = await promote();
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain('PROMOTION_REFUSED');
    const line = lastJsonLine<PromoteLine>(refused.stdout);
    expect(line.passed).toBe(false);
    expect(line.change_id).toBeNull();
    const failed = line.criteria.filter((c) => !c.passed).map((c) => c.criterion);
    process.stdout.write(`promotion refused, failed: ${failed.join(', ')}\n`);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((c) => c.startsWith('calibration'))).toBe(true);
    expect(line.criteria.find((c) => c.criterion === 'min_inferences')?.passed).toBe(true);
  }, 120_000);

  it(`a canary at ${CANARY_PERCENT}% of one site: the share within tolerance, each patient stable on one version`, async () => {
    await change(
      'canary',
      'rollout',
      `${MODEL}@${CANDIDATE}`,
      '--mode',
      'canary',
      '--percent',
      String(CANARY_PERCENT),
      '--cohort',
      `site=${CANARY_SITE}`,
      '--by',
      ACTORS.lead,
      '--reason',
      'canary at one site',
    );
    const inferences = deterioration(await phase(10_000));
    const decisions = clinical(inferences);
    // One clinical inference per event; the candidate runs nowhere else (the canary took it out of shadow).
    expect(decisions.length).toBe(new Set(inferences.map((i) => i.event_id)).size);
    expect(inferences.length).toBe(decisions.length);

    const byPatient = new Map<string, { site: string; versions: Set<string> }>();
    for (const i of decisions) {
      const p = byPatient.get(i.patient_ref) ?? { site: i.site_id, versions: new Set<string>() };
      p.versions.add(i.model_version);
      byPatient.set(i.patient_ref, p);
      if (i.model_version === CANDIDATE) {
        expect(i).toMatchObject({ rollout: 'canary', rollout_id: changes.canary, site_id: CANARY_SITE });
        expect(i.routing).toMatchObject({ source: 'registry', clinical: true, in_canary: true });
      } else {
        expect(i).toMatchObject({ rollout: 'live', rollout_id: changes['rollout live'] });
        expect(i.routing?.in_canary).toBe(false);
      }
      expect(i.routing?.cohort_bucket).toBe(cohortBucket(MODEL, i.patient_ref));
    }
    // Each patient on one version across all their events.
    for (const p of byPatient.values()) expect(p.versions.size).toBe(1);
    const atSite = [...byPatient].filter(([, p]) => p.site === CANARY_SITE);
    const onCanary = atSite.filter(([, p]) => p.versions.has(CANDIDATE)).map(([ref]) => ref);
    // Exactly the site's patients whose bucket is under percent x 100 ...
    expect(new Set(onCanary)).toEqual(
      new Set(atSite.map(([ref]) => ref).filter((ref) => cohortBucket(MODEL, ref) < CANARY_PERCENT * 100)),
    );
    // ... about 10% of them (binomial: 4 standard deviations).
    const share = onCanary.length / atSite.length;
    const sd = Math.sqrt((0.1 * 0.9) / atSite.length);
    process.stdout.write(
      `canary: ${onCanary.length} of ${atSite.length} patients at ${CANARY_SITE} (${(share * 100).toFixed(1)}%)\n`,
    );
    expect(atSite.length).toBeGreaterThan(150);
    expect(Math.abs(share - 0.1)).toBeLessThanOrEqual(4 * sd);
    // Nobody at another site.
    for (const [, p] of byPatient) if (p.site !== CANARY_SITE) expect([...p.versions]).toEqual([LIVE]);
    // The fleet's assignment agrees: the patients seen at the site are the fleet's there.
    // Canary inferences are clinical in their cohort: an alert may rest on one, for a canary patient only.
    await alertsDrained();
    const canaryPatients = new Set(onCanary);
    for (const a of await decodeAll(alertDecoder(), alertTopic.messages)) {
      if (a.model_name === MODEL && a.model_version === CANDIDATE) {
        expect(a.rollout).toBe('canary');
        expect(canaryPatients.has(a.patient_ref)).toBe(true);
      }
    }
    const fleetAtSite = new Set(
      fleetFor(SIMULATION)
        .devices.filter((d) => d.siteId === CANARY_SITE)
        .map((d) => d.patientRef),
    );
    for (const [ref] of atSite) expect(fleetAtSite.has(ref)).toBe(true);
  }, 240_000);

  it('promotion is accepted once the outcomes have landed and every criterion holds', async () => {
    // The simulator's ground-truth outcomes onto the outcomes topic, landed by the real sink.
    const endpoints = resolveEndpoints();
    const produced = await produceOutcomes(SIMULATION, {
      brokers: endpoints.kafkaBrokers,
      schemaRegistryUrl: endpoints.schemaRegistryUrl,
      topic: topics.name(TOPICS.outcomes),
    });
    expect(produced.records).toBeGreaterThan(0);
    await land('outcomes');
    await land('vitals');
    const [landed] = await query<{ n: number | string }>('SELECT count() AS n FROM outcomes FINAL');
    expect(Number(landed?.n)).toBe(produced.records);

    const accepted = await promote();
    const line = lastJsonLine<PromoteLine>(accepted.stdout);
    process.stdout.write(
      `promotion criteria:\n${line.criteria.map((c) => `  ${c.criterion}: ${c.observed} (${c.required}) ${c.passed ? 'ok' : 'FAILED'}`).join('\n')}\n`,
    );
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(line.passed).toBe(true);
    expect(line.change_id).toMatch(/^[0-9A-Z]{26}$/);
    changes.promoted = line.change_id as string;
    revision++;
    await workersAt('the promotion', revision);

    const inferences = deterioration(await phase(3_000));
    expect(inferences.length).toBeGreaterThan(0);
    for (const i of inferences) {
      expect(i).toMatchObject({ model_version: CANDIDATE, rollout: 'live', rollout_id: changes.promoted });
      expect(i.routing).toMatchObject({ source: 'registry', clinical: true, in_canary: false });
    }
  }, 300_000);

  it(`a rollback is applied by the running workers within ${APPLIED_WITHIN_MS / 1000} s of the CLI's exit`, async () => {
    const from = inferenceTopic.messages.length;
    let exitedAt = 0;
    const trickle = feeder.trickle(40, 100);
    try {
      // Traffic flows on the promoted version before the rollback.
      await waitFor('inferences of the steady feed', () => inferenceTopic.messages.length > from + 200, 60_000, 50);
      const run = spawnVigil(
        [
          'models',
          'rollback',
          MODEL,
          '--by',
          ACTORS.oncall,
          '--reason',
          'alert fatigue reported at site-02',
          '--models-root',
          modelsRoot,
          ...auditFlags(),
          '--json',
        ],
        env,
      );
      run.child.once('exit', () => {
        exitedAt = Date.now();
      });
      const exited = await run.done;
      expect(exited.code, exited.stderr).toBe(0);
      const rollback = lastJsonLine<ModelChange>(exited.stdout);
      expect(rollback).toMatchObject({ kind: 'rollback', version: CANDIDATE, from_mode: 'live', restored: LIVE });
      changes.rollback = rollback.change_id;
      revision++;

      // Each worker's routing table, as its /metrics reports it.
      const appliedAt = await Promise.all(
        vitalsPorts.map(async (port) => {
          await waitFor(
            'a worker to apply the rollback',
            async () => (await metricValue(port, 'vigil_model_rollout_revision')) === revision,
            30_000,
            10,
          );
          return Date.now();
        }),
      );
      // The first inference routed by the new table (the restored live version, its rollout_id the rollback's).
      let first: (Inference & { seen: Seen }) | undefined;
      await waitFor(
        'the first inference routed by the rollback',
        async () => {
          first = deterioration(await inferencesFrom(from)).find((i) => i.rollout_id === rollback.change_id);
          return first !== undefined;
        },
        30_000,
        50,
      );
      const routedAfter = (first?.scored_at ?? 0) - exitedAt;
      const workersAfter = appliedAt.map((t) => t - exitedAt);
      process.stdout.write(
        `rollback: CLI exit -> workers' routing tables ${workersAfter.map((ms) => `${ms} ms`).join(', ')} (polled every 10 ms); ` +
          `-> first inference routed by it ${routedAfter} ms (scored_at), ${(first?.seen.timestamp ?? 0) - exitedAt} ms (Kafka timestamp)\n`,
      );
      for (const ms of workersAfter) expect(ms).toBeLessThanOrEqual(APPLIED_WITHIN_MS);
      expect(routedAfter).toBeLessThanOrEqual(APPLIED_WITHIN_MS);
      expect(first).toMatchObject({ model_version: LIVE, rollout: 'live' });
      expect(first?.routing?.clinical).toBe(true);
      await new Promise((r) => setTimeout(r, 1_000)); // a little traffic on the restored version
    } finally {
      await trickle.stop();
    }
    await vitalsDrained();
    // Past the bound, every event is scored by the restored version alone.
    const fed = deterioration(await inferencesFrom(from));
    expect(fed.filter((i) => i.rollout_id === changes.rollback).length).toBeGreaterThan(0);
    const lastOld = Math.max(...fed.filter((i) => i.model_version === CANDIDATE).map((i) => i.scored_at));
    expect(lastOld - exitedAt).toBeLessThanOrEqual(APPLIED_WITHIN_MS);
    for (const i of fed.filter((i) => i.scored_at > exitedAt + APPLIED_WITHIN_MS)) {
      expect(i).toMatchObject({ model_version: LIVE, rollout_id: changes.rollback });
    }
  }, 240_000);

  it('every step is in the rollout history with its actor; the refused promotion appended nothing', async () => {
    const exited = await vigil(['models', 'show', MODEL, '--models-root', modelsRoot, '--json']);
    expect(exited.code, exited.stderr).toBe(0);
    const view = lastJsonLine<{
      route: { live: { version: string } | null };
      history: (ModelChange & { at: string })[];
    }>(exited.stdout);
    expect(view.route.live?.version).toBe(LIVE);
    expect(view.history.map((c) => [c.kind, c.version, c.actor, c.change_id])).toEqual([
      ['added', LIVE, ACTORS.engineer, changes['add live']],
      ['approved', LIVE, ACTORS.safety, changes['approve live']],
      ['rollout', LIVE, ACTORS.lead, changes['rollout live']],
      ['added', CANDIDATE, ACTORS.engineer, changes['add candidate']],
      ['approved', CANDIDATE, ACTORS.safety, changes['approve candidate']],
      ['rollout', CANDIDATE, ACTORS.lead, changes.shadow],
      ['rollout', CANDIDATE, ACTORS.lead, changes.canary],
      ['promoted', CANDIDATE, ACTORS.lead, changes.promoted],
      ['rollback', CANDIDATE, ACTORS.oncall, changes.rollback],
    ]);
    for (const c of view.history) expect(c.reason.length).toBeGreaterThan(0);
    expect(revision).toBe(view.history.length);

    // And each one an entry of the audit log: who, which change (its key), the refused promotion none.
    const audit = readFileSync(join(auditDir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((r) => r.kind === 'entry')
      .map((r) => r.entry as { action: string; actor: string; target: string });
    expect(audit.map((e) => [e.action, e.actor, e.target])).toEqual(
      view.history.map((c) => [
        `model.${{ added: 'add', approved: 'approve', rollout: 'rollout', rollback: 'rollback', promoted: 'promote' }[c.kind]}`,
        c.actor,
        `model:${MODEL}@${c.version}/${c.change_id}`,
      ]),
    );
  }, 60_000);

  it("the workers' /metrics say what they applied, without PHI, and they stop cleanly with balanced accounts", async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${vitalsPorts[0]}/metrics`)).text();
    expect(metrics).toContain(`vigil_model_rollout_revision ${revision}`);
    expect(metrics).toMatch(/vigil_model_rollout_changes_total\{kind="rollback"\} 1/);
    expect(metrics).not.toMatch(/psn-v1-|hah-(mon|wbl)-/);
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) {
      const done = await w.done;
      expect(done.code, done.stderr).toBe(0);
      const line = lastJsonLine<{ consumed: number; emitted: number; dead_lettered: number; duplicates: number }>(
        done.stdout,
      );
      expect(line.consumed).toBe(line.emitted + line.dead_lettered + line.duplicates);
    }
  }, 120_000);
});
