/**
 * detect-drift per model version: several configured models, each version's features read where its manifest says
 * and binned against its own reference, the routing table followed live (a canary's version loaded when routed,
 * counted for the population score routes to it, released when unrouted), a routed version without a reference
 * skipped with a log line while the run goes on.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { parseCohort } from '../../governance/cohort.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelRollouts, ModelRoute, ModelStore, RoutingTable } from '../../runtime/models.ts';
import type { OperatorContext } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import { type VitalSigns, wrapPayload } from '../../schemas/types.ts';
import { envelopeFor, inferenceFor, modelStoreWith, originFor, T0 } from '../../test/fixtures/detect-drift.ts';
import type { ScoredEvent } from '../types.ts';
import { type DriftHistogramRow, detectDrift } from './index.ts';
import { DEVICE_SKETCH_FEATURE } from './metrics.ts';
import { type DriftReference, serialiseReference } from './reference.ts';

/** A small reference (pulse, consciousness, score) for `model@version`. */
function referenceOf(model: string, version: string): DriftReference {
  return {
    format: 'vigil-drift-reference/1',
    model: { name: model, version },
    generator: { script: 'hand' },
    sample: {},
    binning: { continuousBins: 2, minCategoryShare: 0, quantileRule: 'hand' },
    features: [
      {
        name: 'pulse',
        kind: 'continuous',
        valueType: 'number',
        edges: [50, 70, 90],
        categories: [],
        labels: ['<50', '[50,70)', '[70,90]', '>90'],
        counts: [0, 5, 5, 0],
        proportions: [0, 0.5, 0.5, 0],
        n: 10,
        missing: 0,
      },
      {
        name: 'consciousness',
        kind: 'categorical',
        valueType: 'string',
        edges: [],
        categories: ['A'],
        labels: ['A', 'other'],
        counts: [10, 0],
        proportions: [1, 0],
        n: 10,
        missing: 0,
      },
      {
        name: 'score',
        kind: 'categorical',
        valueType: 'number',
        edges: [],
        categories: ['0', '1', '2'],
        labels: ['0', '1', '2', 'other'],
        counts: [6, 3, 1, 0],
        proportions: [0.6, 0.3, 0.1, 0],
        n: 10,
        missing: 0,
      },
    ],
  };
}

const VERSIONS = [
  ['news2', '1.0.0'],
  ['news2', '1.1.0'],
  ['other', '2.0.0'],
] as const;

let root: string;
let store: ModelStore;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vigil-drift-versions-'));
  for (const [model, version] of VERSIONS) {
    const one = await modelStoreWith(serialiseReference(referenceOf(model, version)), { model, version });
    await cp(join(one.root, model, version), join(root, model, version), { recursive: true });
    await one.cleanup();
  }
  store = new OnnxModelStore({ root });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Rollouts whose table the test swaps. */
class Rollouts implements ModelRollouts {
  table: RoutingTable = { revision: 0, route: () => undefined };
  set(revision: number, routes: Record<string, ModelRoute>): void {
    this.table = { revision, route: (model) => routes[model] };
  }
  current(): RoutingTable {
    return this.table;
  }
}

function context(extra: Partial<OperatorContext> = {}): OperatorContext {
  const clock = new ManualClock(T0);
  return {
    pipeline: 'vitals@1',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: store,
    ...extra,
  };
}

interface Spec {
  readonly site: string;
  readonly pulse: number;
  /** The inferences the record carries: `<model>@<version>` -> score. */
  readonly scores: Readonly<Record<string, number>>;
}

function record(spec: Spec, offset: number): InFlight<ScoredEvent> {
  const vitals: VitalSigns = {
    respiratory_rate: 16,
    spo2: 97,
    on_oxygen: false,
    systolic_bp: 120,
    pulse: spec.pulse,
    consciousness: 'A',
    temperature_c: 37,
  };
  const envelope = envelopeFor(
    { deviceId: `dev-${offset}`, observedAt: T0 + offset * 1_000, vitals, score: null },
    offset,
    { site: spec.site },
  );
  const inferences = Object.entries(spec.scores).map(([key, score]) => {
    const [model, version] = key.split('@') as [string, string];
    return inferenceFor(envelope, score, { model, version });
  });
  return { value: { envelope, flags: [], inferences }, origin: originFor(offset) };
}

/** Rows of one version, one feature. */
const rowsOf = (rows: readonly DriftHistogramRow[], key: string, feature: string) =>
  rows.filter((r) => `${r.model_name}@${r.model_version}` === key && r.feature === feature);

describe('detect-drift: several models', () => {
  it('measures each configured model against its own reference, filed under its own name and version', async () => {
    const operator = detectDrift({
      models: [
        { model: 'news2', version: '1.0.0' },
        { model: 'other', version: '2.0.0' },
      ],
    });
    await operator.open(context());
    expect(operator.versions.map((v) => `${v.model}@${v.version}`)).toEqual(['news2@1.0.0', 'other@2.0.0']);
    const batch = [
      record({ site: 's', pulse: 60, scores: { 'news2@1.0.0': 1, 'other@2.0.0': 2 } }, 0),
      record({ site: 's', pulse: 80, scores: { 'news2@1.0.0': 0 } }, 1),
    ];
    const rows = (await operator.process(batch)).side.driftHistograms ?? [];
    // Both records count for both models (no registry: each model's default runs for everybody).
    for (const key of ['news2@1.0.0', 'other@2.0.0']) {
      expect(rowsOf(rows, key, 'pulse')[0]).toMatchObject({ bin_counts: [0, 1, 1, 0], n: 2, missing: 0 });
      expect(rowsOf(rows, key, DEVICE_SKETCH_FEATURE)[0]!.n).toBe(2);
    }
    // Each score from the version's own inference; the record other@2.0.0 did not score counts as missing.
    expect(rowsOf(rows, 'news2@1.0.0', 'score')[0]).toMatchObject({ bin_counts: [1, 1, 0, 0], n: 2, missing: 0 });
    expect(rowsOf(rows, 'other@2.0.0', 'score')[0]).toMatchObject({ bin_counts: [0, 0, 1, 0], n: 1, missing: 1 });
    // Reference rows for both, each with its reference's sha256.
    const references = operator.referenceRows(T0);
    expect(new Set(references.map((r) => `${r.model_name}@${r.model_version}`))).toEqual(
      new Set(['news2@1.0.0', 'other@2.0.0']),
    );
  });

  it("reads each feature where the version's manifest says, and measures only what the manifest reads", async () => {
    // news2@1.1.0 without a pulse input: pulse is not measured by default, and refused when asked for.
    const manifestPath = join(root, 'news2', '1.1.0', 'manifest.json');
    const original = await readFile(manifestPath, 'utf8');
    const manifest = JSON.parse(original) as { inputs: { name: string }[]; features: string[] };
    manifest.inputs = manifest.inputs.filter((input) => input.name !== 'pulse');
    manifest.features = manifest.inputs.map((input) => input.name);
    await writeFile(manifestPath, JSON.stringify(manifest));
    try {
      const operator = detectDrift({ model: 'news2', version: '1.1.0' });
      await operator.open(context());
      const [measured] = operator.versions;
      // consciousness: the manifest's input consciousness_not_alert reads vital_signs.consciousness.
      expect(measured!.features.map((f) => f.name)).toEqual(['consciousness', 'score']);
      expect(measured!.unmeasured).toEqual(['respiratory_rate', 'spo2', 'on_oxygen', 'systolic_bp', 'temperature_c']);
      const asked = detectDrift({ model: 'news2', version: '1.1.0', features: ['pulse'] });
      await expect(asked.open(context())).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/reads no input for feature pulse/),
      });
    } finally {
      await writeFile(manifestPath, original);
    }
  });

  it('names the inputs a shipped version reads that its reference has no histogram for', async () => {
    const operator = detectDrift({ model: 'deterioration', version: '1.1.0' });
    await operator.open(context({ models: new OnnxModelStore() }));
    expect(operator.versions[0]!.features.map((f) => f.name)).toEqual([
      'respiratory_rate',
      'spo2',
      'on_oxygen',
      'systolic_bp',
      'pulse',
      'consciousness',
      'temperature_c',
      'score',
    ]);
    expect(operator.versions[0]!.unmeasured).toEqual(['age_band']);
  });
});

describe('detect-drift: the routing table', () => {
  const live = { version: '1.0.0', rollout_id: 'r-live', approved: true };
  const canary = (percent: number) => ({
    version: '1.1.0',
    rollout_id: 'r-canary',
    approved: true,
    percent,
    cohort: parseCohort('site=site-1'),
    cohort_expr: 'site=site-1',
  });

  it("loads a routed canary's reference, counts the population routed to it, and releases it when unrouted", async () => {
    const rollouts = new Rollouts();
    const operator = detectDrift({ model: 'news2', version: '1.0.0' });
    await operator.open(context({ rollouts }));
    expect(operator.versions.map((v) => v.version)).toEqual(['1.0.0']);

    // Revision 1: 1.1.0 a canary for everyone at site-1.
    rollouts.set(1, { news2: { model: 'news2', live, canary: canary(100), shadows: [] } });
    const batch = [
      record({ site: 'site-1', pulse: 60, scores: { 'news2@1.1.0': 2 } }, 0),
      record({ site: 'site-1', pulse: 95, scores: {} }, 1), // not scored: routed by its cohort to the canary
      record({ site: 'site-2', pulse: 80, scores: { 'news2@1.0.0': 0 } }, 2),
      record({ site: 'site-2', pulse: 45, scores: {} }, 3), // not scored: the live version
    ];
    const pending = operator.process(batch);
    expect(pending).toBeInstanceOf(Promise); // a routing change loads references first
    const rows = (await pending).side.driftHistograms ?? [];
    expect(operator.versions.map((v) => v.version)).toEqual(['1.0.0', '1.1.0']);
    const site = (r: DriftHistogramRow) => r.site_id;
    expect(rowsOf(rows, 'news2@1.1.0', 'pulse').map(site)).toEqual(['site-1']);
    expect(rowsOf(rows, 'news2@1.1.0', 'pulse')[0]).toMatchObject({ bin_counts: [0, 1, 0, 1], out_of_range: 1 });
    expect(rowsOf(rows, 'news2@1.1.0', 'score')[0]).toMatchObject({ bin_counts: [0, 0, 1, 0], missing: 1 });
    expect(rowsOf(rows, 'news2@1.0.0', 'pulse').map(site)).toEqual(['site-2']);
    expect(rowsOf(rows, 'news2@1.0.0', 'pulse')[0]).toMatchObject({ bin_counts: [1, 0, 1, 0] });
    expect(new Set(operator.referenceRows(T0).map((r) => r.model_version))).toEqual(new Set(['1.0.0', '1.1.0']));

    // A runner re-landing references after the change gets both versions' rows.
    const [table] = await operator.referenceTables(context({ rollouts }));
    expect(new Set(table!.rows.map((r) => r['model_version']))).toEqual(new Set(['1.0.0', '1.1.0']));

    // The same table again: synchronous, the same rows.
    const again = operator.process(batch);
    expect(again).not.toBeInstanceOf(Promise);
    expect((await again).side.driftHistograms).toEqual(rows);

    // Revision 2: the canary rolled back. 1.1.0 is released; everybody counts for 1.0.0.
    rollouts.set(2, { news2: { model: 'news2', live, canary: null, shadows: [] } });
    const [released] = await operator.referenceTables(context({ rollouts }));
    expect(new Set(released!.rows.map((r) => r['model_version']))).toEqual(new Set(['1.0.0']));
    const after = (await operator.process(batch)).side.driftHistograms ?? [];
    expect(operator.versions.map((v) => v.version)).toEqual(['1.0.0']);
    expect(new Set(after.map((r) => r.model_version))).toEqual(new Set(['1.0.0']));
    expect(rowsOf(after, 'news2@1.0.0', DEVICE_SKETCH_FEATURE).reduce((n, r) => n + r.n, 0)).toBe(4);
  });

  it('counts a shadow for everybody, and a canary at 0% for nobody it did not score', async () => {
    const rollouts = new Rollouts();
    rollouts.set(1, { news2: { model: 'news2', live, canary: null, shadows: [{ ...live, version: '1.1.0' }] } });
    const operator = detectDrift({ model: 'news2', version: '1.0.0' });
    await operator.open(context({ rollouts }));
    const batch = [record({ site: 'site-1', pulse: 60, scores: {} }, 0)];
    const rows = (await operator.process(batch)).side.driftHistograms ?? [];
    expect(new Set(rows.map((r) => r.model_version))).toEqual(new Set(['1.0.0', '1.1.0']));

    rollouts.set(2, { news2: { model: 'news2', live, canary: canary(0), shadows: [] } });
    const none = (await operator.process(batch)).side.driftHistograms ?? [];
    expect(new Set(none.map((r) => r.model_version))).toEqual(new Set(['1.0.0']));
  });

  it('skips a routed version without a usable reference, says so in the log, and goes on', async () => {
    const lines: { msg: string; version?: string; code?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const rollouts = new Rollouts();
    rollouts.set(1, { news2: { model: 'news2', live, canary: null, shadows: [{ ...live, version: '9.9.9' }] } });
    const operator = detectDrift({ model: 'news2', version: '1.0.0' });
    await operator.open(context({ rollouts, log }));
    expect(operator.versions.map((v) => v.version)).toEqual(['1.0.0']);
    expect(lines.find((l) => l.version === '9.9.9')).toMatchObject({
      code: 'MODEL_NOT_FOUND',
      msg: expect.stringMatching(/no usable drift reference/),
    });
    const rows = (await operator.process([record({ site: 'site-1', pulse: 60, scores: {} }, 0)])).side;
    expect(new Set(rows.driftHistograms?.map((r) => r.model_version))).toEqual(new Set(['1.0.0']));
  });
});

it('uses the same payload branch the envelope carries (vital_signs)', () => {
  // Guards the fixture: a vital-signs payload is what detect-drift reads.
  expect(Object.keys(wrapPayload('vital_signs', {} as VitalSigns))).toEqual(['vigil.telemetry.payload.VitalSigns']);
});
