/**
 * Test scaffolding for the routing evidence (trace and the evidence bundle): a file model-rollouts log written
 * through governance/service.ts as `vigil models` writes it, and one event scored three ways in an embedded store
 * migrated by the real migrations. Imports no test framework; not used by production code.
 *
 * The registry: deterioration 1.0.0 added by ml-eng, approved by dr-jones (clinical-safety-officer), live; 1.1.0
 * approved by ml-lead (ml-lead), canary at 10% of site-a; 1.2.0 unapproved, in shadow. The event's patient is in the
 * canary: its inferences are deterioration 1.1.0 (canary, clinical), 1.2.0 (shadow, not clinical) and news2 1.0.0
 * (the pipeline's default: no route, no rollout record).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import { FileControlLog } from '../adapters/file/control-log.ts';
import { parseModelChange } from '../governance/changes.ts';
import { cohortBucket } from '../governance/routing.ts';
import { addModel, approveModel, type GovernanceContext, rolloutModel } from '../governance/service.ts';
import { sampleManifest } from '../governance/testing.ts';
import type { ModelChange } from '../governance/types.ts';
import type { ControlAudit } from '../identity/service.ts';
import { inferenceRow, normalisedEventRow } from '../pipelines/outputs.ts';
import { ManualClock } from '../runtime/clock.ts';
import type { Inference, NormalisedEvent } from '../schemas/types.ts';
import { inferenceFor, normalisedEvent, T0 } from '../test/fixtures/clickhouse.ts';

const HOUR = 3_600_000;
const sha256Hex = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');

export interface RoutedFixture {
  readonly event: NormalisedEvent;
  readonly inferences: { readonly canary: Inference; readonly shadow: Inference; readonly pipeline: Inference };
  readonly changes: {
    readonly approveLive: ModelChange;
    readonly live: ModelChange;
    readonly approveCanary: ModelChange;
    readonly canary: ModelChange;
    readonly shadow: ModelChange;
  };
  /** Epoch ms of the first change and of the event. */
  readonly t0: number;
}

/** A version folder as `vigil models add` takes it: a stand-in artifact and a valid manifest naming its sha256. */
function versionFolder(dir: string, version: string): string {
  const folder = join(dir, 'build', version);
  mkdirSync(folder, { recursive: true });
  const artifact = Buffer.from(`onnx bytes of deterioration ${version}`);
  writeFileSync(join(folder, 'model.onnx'), artifact);
  const manifest = sampleManifest('deterioration', version, {
    artifact: { file: 'model.onnx', sha256: sha256Hex(artifact) },
  });
  writeFileSync(join(folder, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return folder;
}

/** The registry on the file log `<controlDir>/model-rollouts.jsonl`, written through the governance service. */
async function writeRegistry(
  dir: string,
  controlDir: string,
  audit: ControlAudit | undefined,
): Promise<RoutedFixture['changes'] & { t0: number }> {
  const t0 = T0 - 48 * HOUR;
  const clock = new ManualClock(t0);
  const log = new FileControlLog(join(controlDir, 'model-rollouts.jsonl'), { parse: parseModelChange });
  const ctx: GovernanceContext = { log, clock, modelsRoot: join(dir, 'models'), ...(audit ? { audit } : {}) };
  const step = () => clock.advance(HOUR);
  try {
    await addModel(ctx, versionFolder(dir, '1.0.0'), { actor: 'ml-eng', reason: 'first release' });
    step();
    const approveLive = await approveModel(ctx, 'deterioration', '1.0.0', {
      actor: 'dr-jones',
      role: 'clinical-safety-officer',
      reason: 'validation report DR-11',
    });
    step();
    const live = await rolloutModel(ctx, 'deterioration', '1.0.0', {
      mode: 'live',
      actor: 'ml-lead',
      reason: 'go live',
    });
    step();
    await addModel(ctx, versionFolder(dir, '1.1.0'), { actor: 'ml-eng', reason: 'retrained on Q3 data' });
    step();
    const approveCanary = await approveModel(ctx, 'deterioration', '1.1.0', {
      actor: 'ml-lead',
      role: 'ml-lead',
      reason: 'offline metrics DR-12',
    });
    step();
    const canary = await rolloutModel(ctx, 'deterioration', '1.1.0', {
      mode: 'canary',
      percent: 10,
      cohortExpr: 'site=site-a',
      actor: 'ml-lead',
      reason: 'canary at one site',
    });
    step();
    await addModel(ctx, versionFolder(dir, '1.2.0'), { actor: 'ml-eng', reason: 'candidate' });
    step();
    const shadow = await rolloutModel(ctx, 'deterioration', '1.2.0', {
      mode: 'shadow',
      actor: 'ml-eng',
      reason: 'compare beside live',
    });
    return { approveLive, live, approveCanary, canary, shadow, t0 };
  } finally {
    await log.close();
  }
}

/** A patient of site-a whose deterioration bucket is inside a 10% canary (< 1000). */
function canaryEvent(): NormalisedEvent {
  for (let n = 1; n < 500; n++) {
    const event = normalisedEvent({ n, siteId: 'site-a', deviceId: `dev-routed-${n}` });
    if (cohortBucket('deterioration', event.patient_ref) < 1000) return event;
  }
  throw new Error('no patient in the canary among 500');
}

/**
 * Writes the registry under `controlDir` and lands the event and its three inferences in an embedded store at
 * `storePath` (migrated); with `audit`, every change is also an audit entry, as `vigil models` records it.
 *
 * @example
 * const fixture = await landRoutedEvent(dir, join(dir, 'control'), join(dir, 'store'));
 */
export async function landRoutedEvent(
  dir: string,
  controlDir: string,
  storePath: string,
  audit?: ControlAudit,
): Promise<RoutedFixture> {
  const { t0, ...changes } = await writeRegistry(dir, controlDir, audit);
  const event = canaryEvent();
  const bucket = cohortBucket('deterioration', event.patient_ref);
  const deterioration = (version: string, rollout: 'canary' | 'shadow', change: ModelChange): Inference => ({
    ...inferenceFor(event, { score: 0.31, band: 'high', modelVersion: version, rollout }),
    inference_id: sha256Hex(`${event.event_id}|deterioration|${version}`).slice(0, 32),
    model_name: 'deterioration',
    model_artifact_sha256: sha256Hex(`onnx bytes of deterioration ${version}`),
    transformation_version: `vitals@1/score/deterioration@${version}`,
    rollout_id: change.change_id,
    routing: { source: 'registry', cohort_bucket: bucket, in_canary: true, clinical: rollout === 'canary' },
  });
  const inferences = {
    canary: deterioration('1.1.0', 'canary', changes.canary),
    shadow: deterioration('1.2.0', 'shadow', changes.shadow),
    pipeline: {
      ...inferenceFor(event, { score: 5 }),
      transformation_version: 'vitals@1/score/news2@1.0.0',
      routing: {
        source: 'pipeline' as const,
        cohort_bucket: cohortBucket('news2', event.patient_ref),
        in_canary: false,
        clinical: true,
      },
    },
  };
  const store = openChdbStore({ path: storePath });
  try {
    await store.migrate();
    await store.insert('normalised_events', [normalisedEventRow(event)], { dedupToken: 'routed/normalised' });
    await store.insert('inferences', Object.values(inferences).map(inferenceRow), { dedupToken: 'routed/inferences' });
  } finally {
    await store.close();
  }
  return { event, inferences, changes, t0 };
}
