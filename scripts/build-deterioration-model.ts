/**
 * Builds the second real model, `deterioration`: a logistic regression of "an escalation, ICU transfer or confirmed
 * deterioration within 12 hours" on one set of vital signs, trained on simulated patients and their ground-truth
 * outcomes, written as ONNX with a full v2 manifest. Two versions, so canary and shadow have something to compare:
 *
 *   deterioration@1.0.0  the seven NEWS2 vitals; patients of sites site-01..site-10 of the training fleet
 *   deterioration@1.1.0  the same vitals plus the patient's age band (envelope.patient_subgroup, ordinal), every site
 *
 *   npm run models:build                  # writes models/deterioration/{1.0.0,1.1.0}/{model.onnx,manifest.json}
 *   npm run models:build -- --out DIR     # writes DIR/deterioration/... instead (the reproducibility test uses this)
 *   npm run models:reference              # then the drift references (scripts/build-drift-reference.ts)
 *
 * Data: the simulator's own physiology and device model (simulator/fleet.ts patients, simulator/device.ts readings,
 * with sensor noise and rounding) over a 48-hour run, and simulator/outcomes.ts outcomes for the same patients. Each
 * patient contributes one full vital-signs reading per 30 minutes; a reading is labelled y=1 when the patient's
 * outcome occurs within 12 h after it. Readings after the outcome (the patient is in other hands) and readings whose
 * 12-hour window reaches past the run's end (the label is not known) are left out. A held-out fleet (another seed,
 * another month) gives the discrimination and calibration figures written into the manifest's `build`.
 *
 * Fit: standardised inputs, Newton-Raphson (IRLS) with a tiny ridge (1e-4, not on the intercept) for a fixed number
 * of iterations; only IEEE double arithmetic in a fixed order, so every run gives the same weights, bytes and hashes.
 * The network folds the standardisation into the weights for the score and keeps it for the contributions:
 *   features [N,k] --MatMul(w/sd [k,1])--> + (b - sum(w*mean/sd)) --> Sigmoid --> probability [N,1]
 *   features --Sub(mean)--> Mul(1/sd) --> Mul(w) --> contributions [N,k]   (sum(contributions) + b = the logit)
 *
 * Risk thresholds: chosen on the training readings so that each band flags the same share of readings as the NEWS2
 * band at or above it does on the same readings (high: the share NEWS2 scores >= 7, medium: >= 5, low_medium: any
 * single 3 or >= 5), i.e. the model changes who is flagged, not how many. Rounded to 4 decimals.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EXTRACTED, FeatureExtractor } from '../operators/score/extract.ts';
import { news2Reference } from '../operators/score/news2-reference.ts';
import type { ModelInput, ModelManifest, RiskThresholds } from '../runtime/models.ts';
import type { Envelope } from '../schemas/types.ts';
import { DeviceSim } from '../simulator/device.ts';
import { buildFleet, DEFAULT_BIASED_FIRMWARE } from '../simulator/fleet.ts';
import { type OutcomeKind, patientOutcome } from '../simulator/outcomes.ts';
import { AGE_BANDS } from '../simulator/physiology.ts';
import { NEWS2_INPUTS } from './build-news2-model.ts';
import { encodeModel, float32Tensor, IR_VERSION, node, OPSET, sha256Hex, valueInfo } from './onnx-proto.ts';

export const MODEL_NAME = 'deterioration';
/** Bump when this script changes what it writes. */
const BUILDER_VERSION = '1.0.0';
const SCRIPT = 'scripts/build-deterioration-model.ts';
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_MODELS_ROOT = join(repoRoot, 'models');

const HOUR = 3_600_000;
export const OUTCOME_HORIZON_MS = 12 * HOUR;
export const OUTCOME_KINDS: readonly OutcomeKind[] = ['icu_transfer', 'confirmed_deterioration', 'escalation'];
/** One reading per patient per this interval enters the data set (consecutive minute readings are near copies). */
const SAMPLE_EVERY_MS = 30 * 60_000;
const RIDGE = 1e-4;
const NEWTON_ITERATIONS = 30;

/** A simulated cohort: a fleet, its run window and its seed. */
export interface CohortSpec {
  readonly id: string;
  readonly seed: string;
  readonly devices: number;
  readonly sites: number;
  readonly startTime: number;
  /** The run's length: readings and outcomes come from [startTime, startTime + horizonMs). */
  readonly horizonMs: number;
  /** The fleet's episode time scale (simulator/fleet.ts horizonMs: episodes last 0.2-0.6 of it). */
  readonly episodeScaleMs: number;
}

export const TRAINING: CohortSpec = {
  id: 'vigil-sim-deterioration-train-2025-10',
  seed: 'deterioration/training/2025-10',
  devices: 3000,
  sites: 20,
  startTime: Date.UTC(2025, 9, 6, 6),
  horizonMs: 48 * HOUR,
  episodeScaleMs: 48 * HOUR,
};

export const HOLDOUT: CohortSpec = {
  id: 'vigil-sim-deterioration-holdout-2025-11',
  seed: 'deterioration/holdout/2025-11',
  devices: 1500,
  sites: 20,
  startTime: Date.UTC(2025, 10, 3, 6),
  horizonMs: 48 * HOUR,
  episodeScaleMs: 48 * HOUR,
};

/** The age band as an ordinal: the fleet's subgroups are `age:<band>`. */
export const AGE_BAND_INPUT: ModelInput = {
  name: 'age_band',
  field: 'envelope.patient_subgroup',
  unit: '1',
  min: 0,
  max: AGE_BANDS.length - 1,
  encode: Object.fromEntries(AGE_BANDS.map((band, i) => [`age:${band}`, i])),
};

export interface VersionSpec {
  readonly version: string;
  readonly inputs: readonly ModelInput[];
  /** Training patients: those of these sites (null: every site). */
  readonly sites: readonly string[] | null;
  readonly pccp: ModelManifest['pccp'];
  readonly autoRollback: boolean;
  readonly description: string;
}

const siteIds = (n: number) => Array.from({ length: n }, (_, i) => `site-${String(i + 1).padStart(2, '0')}`);

export const VERSIONS: readonly VersionSpec[] = [
  {
    version: '1.0.0',
    inputs: NEWS2_INPUTS,
    sites: siteIds(10),
    pccp: {
      modification_id: 'deterioration-initial-release',
      description: 'First release: logistic regression on the seven NEWS2 vital signs, trained on ten sites.',
    },
    autoRollback: false,
    description: 'the seven NEWS2 vital signs; trained on the patients of sites site-01..site-10',
  },
  {
    version: '1.1.0',
    inputs: [...NEWS2_INPUTS, AGE_BAND_INPUT],
    sites: null,
    pccp: {
      modification_id: 'deterioration-retrain-add-age-band',
      description:
        'Pre-specified modification: retrain on data from more sites and add the age band (ordinal, from the ' +
        "envelope's patient_subgroup) as an input; same outcome, horizon and model family; released after a shadow " +
        'period meeting the acceptance criteria.',
    },
    autoRollback: true,
    description: 'the seven NEWS2 vital signs plus the age band; trained on the patients of every site',
  },
];

/** One labelled reading. */
export interface Observation {
  readonly envelope: Envelope;
  readonly y: 0 | 1;
}

const extractors = new WeakMap<readonly ModelInput[], FeatureExtractor>();

/**
 * The input row of an envelope as the score operator reads it (operators/score/extract.ts: field paths, encode
 * maps, ranges), or null when any input is missing or out of range.
 */
export function inputRow(envelope: Envelope, inputs: readonly ModelInput[]): number[] | null {
  let extractor = extractors.get(inputs);
  if (extractor === undefined) {
    extractor = new FeatureExtractor(inputs, SCRIPT);
    extractors.set(inputs, extractor);
  }
  const row = new Float32Array(extractor.width);
  const values = new Float64Array(extractor.width);
  return extractor.extract(envelope, row, values, 0) === EXTRACTED ? Array.from(values) : null;
}

function fleetOf(spec: CohortSpec) {
  return buildFleet({
    devices: spec.devices,
    sites: spec.sites,
    seed: spec.seed,
    startTime: spec.startTime,
    horizonMs: spec.episodeScaleMs,
    candidateFirmware: DEFAULT_BIASED_FIRMWARE,
    biasOn: false,
    candidateFraction: 0,
  });
}

/** The labelled readings of a simulated cohort, patient by patient (device order), each patient in time order. */
export function simulateObservations(spec: CohortSpec): Observation[] {
  const endTime = spec.startTime + spec.horizonMs;
  const window = { seed: spec.seed, startTime: spec.startTime, endTime };
  const lastLabelled = endTime - OUTCOME_HORIZON_MS;
  const out: Observation[] = [];
  for (const device of fleetOf(spec).devices) {
    const outcome = patientOutcome(device, window);
    const counts = outcome !== null && OUTCOME_KINDS.includes(outcome.kind) ? outcome.occurred_at : null;
    const sim = new DeviceSim(device, spec.seed, spec.startTime);
    let lastKept = Number.NEGATIVE_INFINITY;
    for (;;) {
      const envelope = sim.next();
      const t = envelope.observed_at;
      if (t >= lastLabelled || (counts !== null && t >= counts)) break;
      if (envelope.event_type !== 'vital_signs' || t - lastKept < SAMPLE_EVERY_MS) continue;
      if (inputRow(envelope, NEWS2_INPUTS) === null) continue;
      lastKept = t;
      out.push({ envelope, y: counts !== null && counts - t <= OUTCOME_HORIZON_MS ? 1 : 0 });
    }
  }
  return out;
}

/** A fitted logistic regression on standardised inputs. */
export interface LogisticFit {
  readonly mean: readonly number[];
  readonly sd: readonly number[];
  /** Weights of the standardised inputs. */
  readonly weights: readonly number[];
  readonly intercept: number;
  readonly iterations: number;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Solves A x = b (A symmetric positive definite, n x n row-major) by Cholesky; A and b are not modified. */
function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(s) : s / l[j * n + j]!;
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!;
    y[i] = s / l[i * n + i]!;
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k]!;
    x[i] = s / l[i * n + i]!;
  }
  return x;
}

/**
 * Logistic regression by Newton-Raphson on an intercept column plus `x` (n rows of k), a fixed number of iterations
 * (stops early only once a step no longer changes any coefficient). Returns [intercept, ...weights].
 */
export function newtonLogistic(x: Float64Array, y: ArrayLike<number>, k: number, ridge = RIDGE): number[] {
  const n = y.length;
  const m = k + 1;
  const beta = new Float64Array(m);
  const row = new Float64Array(m);
  for (let iteration = 0; iteration < NEWTON_ITERATIONS; iteration++) {
    const h = new Float64Array(m * m);
    const g = new Float64Array(m);
    for (let r = 0; r < n; r++) {
      row[0] = 1;
      for (let j = 0; j < k; j++) row[j + 1] = x[r * k + j]!;
      let z = 0;
      for (let j = 0; j < m; j++) z += row[j]! * beta[j]!;
      const p = sigmoid(z);
      const w = p * (1 - p);
      const resid = y[r]! - p;
      for (let i = 0; i < m; i++) {
        g[i] = g[i]! + row[i]! * resid;
        const wi = w * row[i]!;
        for (let j = 0; j <= i; j++) h[i * m + j] = h[i * m + j]! + wi * row[j]!;
      }
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < i; j++) h[j * m + i] = h[i * m + j]!;
      if (i > 0) {
        h[i * m + i] = h[i * m + i]! + ridge * n;
        g[i] = g[i]! - ridge * n * beta[i]!;
      }
    }
    const step = solveSpd(h, g, m);
    let changed = false;
    for (let i = 0; i < m; i++) {
      const next = beta[i]! + step[i]!;
      if (next !== beta[i]) changed = true;
      beta[i] = next;
    }
    if (!changed) break;
  }
  return Array.from(beta);
}

/** Standardises the rows (population mean and sd per column) and fits. */
export function fitLogistic(rows: readonly (readonly number[])[], y: readonly (0 | 1)[]): LogisticFit {
  const k = rows[0]!.length;
  const n = rows.length;
  const mean = new Array<number>(k).fill(0);
  const sd = new Array<number>(k).fill(0);
  for (const r of rows) for (let j = 0; j < k; j++) mean[j]! += r[j]!;
  for (let j = 0; j < k; j++) mean[j] = mean[j]! / n;
  for (const r of rows) for (let j = 0; j < k; j++) sd[j]! += (r[j]! - mean[j]!) ** 2;
  for (let j = 0; j < k; j++) sd[j] = Math.sqrt(sd[j]! / n) || 1;
  const x = new Float64Array(n * k);
  rows.forEach((r, i) => {
    for (let j = 0; j < k; j++) x[i * k + j] = (r[j]! - mean[j]!) / sd[j]!;
  });
  const beta = newtonLogistic(x, y, k);
  return { mean, sd, weights: beta.slice(1), intercept: beta[0]!, iterations: NEWTON_ITERATIONS };
}

/** The network's parameters as float32 values (what the artifact holds). */
export function networkParameters(fit: LogisticFit) {
  const f32 = (v: readonly number[]) => Float32Array.from(v);
  const folded = fit.weights.map((w, j) => w / fit.sd[j]!);
  const bias = fit.intercept - fit.weights.reduce((s, w, j) => s + (w * fit.mean[j]!) / fit.sd[j]!, 0);
  return {
    mean: f32(fit.mean),
    invSd: f32(fit.sd.map((s) => 1 / s)),
    weights: f32(fit.weights),
    folded: f32(folded),
    bias: f32([bias]),
  };
}

/** The probability the network computes, in double precision from its float32 parameters (the test's twin). */
export function predict(fit: LogisticFit, row: readonly number[]): number {
  const p = networkParameters(fit);
  let z = p.bias[0]!;
  for (let j = 0; j < row.length; j++) z += row[j]! * p.folded[j]!;
  return sigmoid(z);
}

/** Contributions (standardised input x weight) in double precision from the float32 parameters. */
export function contributions(fit: LogisticFit, row: readonly number[]): number[] {
  const p = networkParameters(fit);
  return row.map((v, j) => (v - p.mean[j]!) * p.invSd[j]! * p.weights[j]!);
}

/** The ONNX bytes of a fitted version. */
export function buildNetwork(spec: VersionSpec, fit: LogisticFit, description: string): Uint8Array {
  const k = spec.inputs.length;
  const p = networkParameters(fit);
  const names = spec.inputs.map((i) => i.name);
  const graph = {
    name: `${MODEL_NAME}_${spec.version.replaceAll('.', '_')}`,
    doc_string: description,
    input: [valueInfo('features', ['N', k], `float32 inputs in order: ${names.join(', ')}`)],
    output: [
      valueInfo('probability', ['N', 1], `P(outcome within ${OUTCOME_HORIZON_MS / HOUR} h)`),
      valueInfo('contributions', ['N', k], 'standardised input x weight, in input order (their sum + b = logit)'),
    ],
    initializer: [
      float32Tensor('mean', [k], p.mean),
      float32Tensor('inv_sd', [k], p.invSd),
      float32Tensor('weights', [k], p.weights),
      float32Tensor('folded', [k, 1], p.folded),
      float32Tensor('bias', [1], p.bias),
    ],
    node: [
      node('MatMul', ['features', 'folded'], ['linear']),
      node('Add', ['linear', 'bias'], ['logit']),
      node('Sigmoid', ['logit'], ['probability']),
      node('Sub', ['features', 'mean'], ['centred']),
      node('Mul', ['centred', 'inv_sd'], ['standardised']),
      node('Mul', ['standardised', 'weights'], ['contributions']),
    ],
  };
  return encodeModel({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'vigil',
    producer_version: BUILDER_VERSION,
    domain: 'org.vigil.models',
    model_version: Number(spec.version.split('.')[0]) * 10_000 + Number(spec.version.split('.')[1]) * 100,
    doc_string: description,
    graph,
    metadata_props: [
      { key: 'model', value: `${MODEL_NAME}@${spec.version}` },
      { key: 'features', value: names.join(',') },
      { key: 'outcome', value: `${OUTCOME_KINDS.join('|')} within ${OUTCOME_HORIZON_MS} ms` },
      { key: 'build_script', value: SCRIPT },
    ],
  });
}

/** Discrimination and calibration of predictions against labels. */
export interface Evaluation {
  readonly n: number;
  readonly events: number;
  readonly auroc: number;
  readonly brier: number;
  /** Observed rate minus mean predicted. */
  readonly citl: number;
  /** Logistic recalibration slope: y ~ a + b * logit(p). */
  readonly slope: number;
  /** Expected calibration error over 15 equal-width bins. */
  readonly ece: number;
}

/** AUROC by the rank-sum (ties get average ranks). */
export function auroc(p: readonly number[], y: readonly (0 | 1)[]): number {
  const order = p.map((_, i) => i).sort((a, b) => p[a]! - p[b]! || a - b);
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && p[order[j + 1]!] === p[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (y[order[t]!] === 1) {
        rankSumPos += rank;
        pos++;
      }
    }
    i = j + 1;
  }
  const neg = order.length - pos;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function evaluate(p: readonly number[], y: readonly (0 | 1)[]): Evaluation {
  const n = p.length;
  let events = 0;
  let brier = 0;
  let meanP = 0;
  for (let i = 0; i < n; i++) {
    events += y[i]!;
    brier += (p[i]! - y[i]!) ** 2;
    meanP += p[i]!;
  }
  const logit = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const q = Math.min(1 - 1e-12, Math.max(1e-12, p[i]!));
    logit[i] = Math.log(q / (1 - q));
  }
  const slope = newtonLogistic(logit, y, 1, 0)[1]!;
  const bins = Array.from({ length: 15 }, () => ({ n: 0, p: 0, y: 0 }));
  for (let i = 0; i < n; i++) {
    const b = bins[Math.min(14, Math.floor(p[i]! * 15))]!;
    b.n++;
    b.p += p[i]!;
    b.y += y[i]!;
  }
  const ece = bins.reduce((s, b) => s + (b.n === 0 ? 0 : (b.n / n) * Math.abs(b.y / b.n - b.p / b.n)), 0);
  return { n, events, auroc: auroc(p, y), brier: brier / n, citl: events / n - meanP / n, slope, ece };
}

/** The threshold whose share of `p` at or above it is `share` (the lower nearest rank). */
function thresholdForShare(sortedDesc: readonly number[], share: number): number {
  const index = Math.max(0, Math.min(sortedDesc.length - 1, Math.ceil(share * sortedDesc.length) - 1));
  return sortedDesc[index]!;
}

/** Thresholds that flag the same shares of the training readings as NEWS2's bands do (see the header). */
export function thresholdsFor(p: readonly number[], rows: readonly (readonly number[])[]): RiskThresholds {
  let high = 0;
  let medium = 0;
  let lowMedium = 0;
  for (const row of rows) {
    const band = news2Reference(row.slice(0, NEWS2_INPUTS.length)).band;
    if (band >= 3) high++;
    if (band >= 2) medium++;
    if (band >= 1) lowMedium++;
  }
  const sorted = [...p].sort((a, b) => b - a);
  const round = (x: number) => Math.round(x * 10_000) / 10_000;
  const t = {
    high: round(thresholdForShare(sorted, high / rows.length)),
    medium: round(thresholdForShare(sorted, medium / rows.length)),
    low_medium: round(thresholdForShare(sorted, lowMedium / rows.length)),
  };
  // Strictly increasing bands, whatever the shares.
  const medium_ = Math.min(t.medium, t.high - 0.0001);
  return { low_medium: Math.min(t.low_medium, medium_ - 0.0001), medium: medium_, high: t.high };
}

/** sha256 of the training rows as the fit saw them: one line per row, inputs then y, comma-separated. */
export function rowsSha256(rows: readonly (readonly number[])[], y: readonly (0 | 1)[]): string {
  return sha256Hex(rows.map((r, i) => `${r.join(',')},${y[i]}\n`).join(''));
}

export interface BuiltVersion {
  readonly spec: VersionSpec;
  readonly fit: LogisticFit;
  readonly bytes: Uint8Array;
  readonly manifest: ModelManifest;
  readonly training: Evaluation;
  readonly holdout: Evaluation;
  /** NEWS2's aggregate score as a ranking of the same held-out readings (the live model to beat). */
  readonly holdoutNews2Auroc: number;
}

const fmt = (x: number) => x.toFixed(4);

function isoRange(spec: CohortSpec) {
  return {
    from: new Date(spec.startTime).toISOString(),
    to: new Date(spec.startTime + spec.horizonMs).toISOString(),
  };
}

/** Fits, evaluates and writes the manifest of one version from labelled training and held-out readings. */
export function buildVersion(
  spec: VersionSpec,
  training: readonly Observation[],
  holdout: readonly Observation[],
  reference: ModelManifest['reference'] = null,
): BuiltVersion {
  const chosen = training.filter((o) => spec.sites === null || spec.sites.includes(o.envelope.site_id));
  const rows: number[][] = [];
  const y: (0 | 1)[] = [];
  for (const o of chosen) {
    const row = inputRow(o.envelope, spec.inputs);
    if (row === null) continue;
    rows.push(row);
    y.push(o.y);
  }
  const fit = fitLogistic(rows, y);
  const trainP = rows.map((r) => predict(fit, r));
  const thresholds = thresholdsFor(trainP, rows);
  const heldRows: number[][] = [];
  const heldY: (0 | 1)[] = [];
  for (const o of holdout) {
    const row = inputRow(o.envelope, spec.inputs);
    if (row === null) continue;
    heldRows.push(row);
    heldY.push(o.y);
  }
  const heldP = heldRows.map((r) => predict(fit, r));
  const holdoutEval = evaluate(heldP, heldY);
  const trainingEval = evaluate(trainP, y);
  const news2Scores = heldRows.map((r) => news2Reference(r.slice(0, NEWS2_INPUTS.length)).score);
  const holdoutNews2Auroc = auroc(news2Scores, heldY);
  const sites = [...new Set(chosen.map((o) => o.envelope.site_id))].sort();
  const names = spec.inputs.map((i) => i.name);

  const description =
    `Probability of ${OUTCOME_KINDS.join(', ')} within ${OUTCOME_HORIZON_MS / HOUR} h of one set of vital signs: ` +
    `logistic regression on ${spec.description}. Input \`features\` float32 [N,${names.length}] in order ` +
    `${names.join(', ')} (units and encodings in \`inputs\`). Outputs float32: \`probability\` [N,1], ` +
    `\`contributions\` [N,${names.length}] (standardised input x weight; their sum plus the intercept is the logit). ` +
    'A non-finite input makes its row NaN. Trained on simulated patients (Vigil simulator), not on patient data: ' +
    'for testing model governance, never for care.';
  const bytes = buildNetwork(spec, fit, description);
  const manifest: ModelManifest = {
    manifest_version: 2,
    name: MODEL_NAME,
    version: spec.version,
    description,
    artifact: { file: 'model.onnx', sha256: sha256Hex(bytes) },
    input_tensor: 'features',
    inputs: spec.inputs,
    features: names,
    output: {
      kind: 'probability',
      score_tensor: 'probability',
      contributions_tensor: 'contributions',
      thresholds,
      outcome: { kinds: [...OUTCOME_KINDS], horizon_ms: OUTCOME_HORIZON_MS },
    },
    intended_use:
      'Demonstration and test of model governance in Vigil (shadow, canary, promotion, calibration and drift ' +
      'monitoring): a probability that an adult monitored at home deteriorates (escalation of care, ICU transfer ' +
      'or confirmed deterioration) within 12 hours of a full set of vital signs. Trained on simulated data only: ' +
      'not for clinical decisions.',
    population: {
      description:
        'Adults monitored by hospital-at-home wearables and monitors with complete vital-sign sets (respiratory ' +
        'rate, SpO2 on scale 1, oxygen, systolic BP, pulse, ACVPU, temperature), as simulated by Vigil.',
      age_bands: [...AGE_BANDS],
      settings: ['hospital_at_home'],
    },
    training_data: {
      dataset_id: `${TRAINING.id}${spec.sites === null ? '' : `/sites-${spec.sites.length}`}`,
      time_range: isoRange(TRAINING),
      sites,
      sha256: rowsSha256(rows, y),
      rows: rows.length,
    },
    reference,
    pccp: spec.pccp,
    acceptance_criteria: {
      min_inferences: 5000,
      min_agreement_with_live: 0.8,
      calibration: { min_outcome_events: 50, citl_abs_max: 0.05, slope_min: 0.8, slope_max: 1.2, ece_max: 0.05 },
      subgroup_brier_margin: 0.02,
    },
    drift: { js_threshold: 0.1, dataset_share: 0.5, auto_rollback: spec.autoRollback },
    build: {
      script: SCRIPT,
      builder_version: BUILDER_VERSION,
      opset: String(OPSET),
      ir_version: String(IR_VERSION),
      writer: 'protobufjs (scripts/onnx-proto.ts)',
      simulator: `simulator/fleet.ts + device.ts + outcomes.ts, seed ${TRAINING.seed}, ${TRAINING.devices} patients`,
      episode_scale: `${TRAINING.episodeScaleMs / HOUR} h (simulator fleet horizonMs): calibration holds for simulated runs at this scale, not for much shorter ones`,
      sampling: `one full vital-signs set per patient per ${SAMPLE_EVERY_MS / 60_000} min; no readings after the outcome or within ${OUTCOME_HORIZON_MS / HOUR} h of the run's end`,
      fit: `logistic regression, standardised inputs, Newton-Raphson ${NEWTON_ITERATIONS} iterations max, ridge ${RIDGE}`,
      coefficients: JSON.stringify({
        intercept: Number(fit.intercept.toPrecision(8)),
        weights: Object.fromEntries(names.map((nm, j) => [nm, Number(fit.weights[j]!.toPrecision(8))])),
      }),
      thresholds_rule: 'each band flags the share of training readings NEWS2 flags at or above the same band',
      training_events: String(trainingEval.events),
      holdout_dataset: `${HOLDOUT.id} (seed ${HOLDOUT.seed}, ${HOLDOUT.devices} patients, ${isoRange(HOLDOUT).from}/${isoRange(HOLDOUT).to})`,
      holdout_rows: String(holdoutEval.n),
      holdout_events: String(holdoutEval.events),
      holdout_auroc: fmt(holdoutEval.auroc),
      holdout_brier: fmt(holdoutEval.brier),
      holdout_citl: fmt(holdoutEval.citl),
      holdout_slope: fmt(holdoutEval.slope),
      holdout_ece15: fmt(holdoutEval.ece),
      holdout_news2_auroc: fmt(holdoutNews2Auroc),
    },
  };
  return { spec, fit, bytes, manifest, training: trainingEval, holdout: holdoutEval, holdoutNews2Auroc };
}

/** Builds every version (the simulations run once and are shared). */
export function buildDeteriorationModels(): BuiltVersion[] {
  const training = simulateObservations(TRAINING);
  const holdout = simulateObservations(HOLDOUT);
  return VERSIONS.map((spec) => buildVersion(spec, training, holdout));
}

/** Writes `<root>/deterioration/<version>/{model.onnx,manifest.json}`, keeping a `reference` already registered. */
export function writeDeteriorationModels(root = DEFAULT_MODELS_ROOT): BuiltVersion[] {
  const built = buildDeteriorationModels();
  return built.map((b) => {
    const dir = join(root, MODEL_NAME, b.spec.version);
    mkdirSync(dir, { recursive: true });
    const manifestPath = join(dir, 'manifest.json');
    let reference: ModelManifest['reference'] = null;
    try {
      reference = (JSON.parse(readFileSync(manifestPath, 'utf8')) as Partial<ModelManifest>).reference ?? null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    // A reference built for other bytes is stale: the drift script must rebuild it.
    const previous = readArtifactSha(join(dir, 'model.onnx'));
    if (previous !== b.manifest.artifact.sha256) reference = null;
    const manifest = { ...b.manifest, reference };
    writeFileSync(join(dir, 'model.onnx'), b.bytes);
    writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    return { ...b, manifest };
  });
}

function readArtifactSha(path: string): string | null {
  try {
    return sha256Hex(readFileSync(path));
  } catch {
    return null;
  }
}

function main(argv: readonly string[]): void {
  const at = argv.indexOf('--out');
  const root = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && !root) throw new Error('--out needs a directory');
  for (const b of writeDeteriorationModels(root ? resolve(root) : DEFAULT_MODELS_ROOT)) {
    const h = b.holdout;
    process.stdout.write(
      `${MODEL_NAME}@${b.spec.version}: ${b.manifest.training_data.rows} training rows (${b.training.events} events), ` +
        `sha256 ${b.manifest.artifact.sha256}\n  held out: ${h.n} rows, ${h.events} events, AUROC ${fmt(h.auroc)} ` +
        `(NEWS2 ${fmt(b.holdoutNews2Auroc)}), Brier ${fmt(h.brier)}, CITL ${fmt(h.citl)}, slope ${fmt(h.slope)}, ` +
        `ECE ${fmt(h.ece)}; thresholds ${JSON.stringify((b.manifest.output as { thresholds: RiskThresholds }).thresholds)}\n`,
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2));
}
