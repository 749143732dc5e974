/**
 * Builds the drift references of model versions: `models/<name>/<version>/reference.json`, the histograms
 * detect-drift measures every window against, and registers each (file and sha256) in its version's manifest.
 *
 *   npm run models:reference                              # every version under models/ (news2, deterioration, ...)
 *   npm run models:reference -- --model news2 --version 1.0.0   # one version
 *   npm run models:reference -- --check                   # exits 1 if a committed reference is not what this builds
 *   npm run models:reference -- --root DIR                # a different model store (tests)
 *
 * The sample: an UNBIASED simulated fleet (simulator/, `biasedFirmware: null`, no duplicates, replays or faults),
 * every vital-signs event, scored by the model itself (the verified ONNX artifact through the same model store the
 * score operator uses; its input row read from the envelope as the manifest's `inputs` say, its score from the
 * manifest's `output.score_tensor`), so the score histogram is what the pipeline produces: the NEWS2 aggregate, or
 * a probability (binned as a continuous feature). Each version's fleet has its own seed
 * (`drift-reference/<name>@<version>`), never the demo's, so a reference is another draw of the same population.
 *
 * Deterministic: the simulator, the model and the binning are, so the same seed and sizes give byte-identical JSON.
 * The manifest is read, its `reference` field replaced, and written back; nothing else in it changes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODELS_ROOT, OnnxModelStore, RUNTIME } from '../adapters/onnx/index.ts';
import { buildReference, type ReferenceSample, serialiseReference } from '../operators/detect-drift/reference.ts';
import { type Envelope, payloadOf, type VitalSigns } from '../schemas/types.ts';
import { simulateFleet } from '../simulator/index.ts';
import { inputRow } from './build-deterioration-model.ts';

const SCRIPT = 'scripts/build-drift-reference.ts';
/** Bump when this script changes what it writes. */
const GENERATOR_VERSION = '1.0.0';
const REFERENCE_FILE = 'reference.json';

/** The reference sample of a version. Its own seed: never the demo's. */
const sampleOf = (model: string, version: string) => ({
  seed: `drift-reference/${model}@${version}`,
  devices: 5000,
  events: 250_000,
  sites: 20,
  startTime: Date.UTC(2026, 0, 5, 6, 0, 0),
});

const BATCH = 8192;

/** Every `<name>/<version>` under root that has a manifest, sorted. */
function versionsUnder(root: string): [string, string][] {
  const out: [string, string][] = [];
  for (const model of readdirSync(root, { withFileTypes: true })) {
    if (!model.isDirectory()) continue;
    for (const version of readdirSync(join(root, model.name), { withFileTypes: true })) {
      if (version.isDirectory() && existsSync(join(root, model.name, version.name, 'manifest.json'))) {
        out.push([model.name, version.name]);
      }
    }
  }
  return out.sort((a, b) => (a.join('/') < b.join('/') ? -1 : 1));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      check: { type: 'boolean', default: false },
      root: { type: 'string' },
      model: { type: 'string' },
      version: { type: 'string' },
    },
    strict: true,
  });
  const root = resolve(values.root ?? DEFAULT_MODELS_ROOT);
  if ((values.model === undefined) !== (values.version === undefined)) {
    throw new Error('--model and --version go together');
  }
  const targets: [string, string][] =
    values.model !== undefined && values.version !== undefined ? [[values.model, values.version]] : versionsUnder(root);
  let stale = false;
  for (const [model, version] of targets) {
    if (!(await buildOne(root, model, version, values.check))) stale = true;
  }
  if (stale) process.exit(1);
}

/** Builds (or, with check, compares) one version's reference; returns false when check finds it stale. */
async function buildOne(root: string, name: string, version: string, check: boolean): Promise<boolean> {
  const sample = sampleOf(name, version);
  const dir = join(root, name, version);
  const store = new OnnxModelStore({ root });

  // 1. The unbiased sample: every valid vital-signs event of a clean simulated fleet.
  const envelopes: Envelope[] = [];
  const vitals: VitalSigns[] = [];
  for (const record of simulateFleet({
    devices: sample.devices,
    events: sample.events,
    sites: sample.sites,
    seed: sample.seed,
    startTime: sample.startTime,
    biasedFirmware: null,
    duplicateRate: 0,
    replayRate: 0,
    malformedRate: 0,
  })) {
    if (record.kind !== 'envelope' || record.truth !== 'valid' || record.envelope.event_type !== 'vital_signs')
      continue;
    const payload = payloadOf(record.envelope.payload);
    if (payload?.type === 'vital_signs') {
      envelopes.push(record.envelope);
      vitals.push(payload.data);
    }
  }

  // 2. Scores from the model itself (verified against its manifest), batched like the score operator.
  const model = await store.load(name, version);
  const { inputs, input_tensor: inputTensor, output } = model.manifest;
  const width = inputs.length;
  const scores: (number | null)[] = new Array(vitals.length).fill(null);
  try {
    const rows: number[] = [];
    const features: number[] = [];
    const flush = async () => {
      if (rows.length === 0) return;
      const input = new Float32Array(features);
      const out = await model.run({ [inputTensor]: { data: input, dims: [rows.length, width] } });
      const score = out[output.score_tensor]?.data;
      if (!(score instanceof Float32Array)) {
        throw new Error(`the model returned no float32 \`${output.score_tensor}\` output`);
      }
      rows.forEach((row, i) => {
        const value = score[i]!;
        scores[row] = Number.isFinite(value) ? value : null;
      });
      rows.length = 0;
      features.length = 0;
    };
    for (let i = 0; i < envelopes.length; i++) {
      const vector = inputRow(envelopes[i]!, inputs);
      if (vector === null) continue;
      rows.push(i);
      features.push(...vector);
      if (rows.length === BATCH) await flush();
    }
    await flush();
  } finally {
    await model.close();
  }
  // 3. Bins and proportions.
  const samples: ReferenceSample[] = vitals.map((v, i) => ({ vitals: v, score: scores[i]! }));
  const reference = buildReference(samples, {
    model: { name: name, version: version },
    generator: {
      script: SCRIPT,
      version: GENERATOR_VERSION,
      sampler: 'simulator simulateFleet (biasedFirmware null, no duplicates, replays or faults)',
      scorer: `${name}@${version} model.onnx sha256 ${model.artifactSha256} on ${RUNTIME.name}`,
    },
    sample: {
      seed: sample.seed,
      devices: sample.devices,
      events: sample.events,
      sites: sample.sites,
      start_time: new Date(sample.startTime).toISOString(),
      biased_firmware: null,
      vital_signs_records: samples.length,
      scored_records: scores.filter((s) => s !== null).length,
    },
  });
  const text = serialiseReference(reference);
  const sha256 = createHash('sha256').update(text).digest('hex');

  const referencePath = join(dir, REFERENCE_FILE);
  const manifestPath = join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  if (check) {
    let committed = '';
    try {
      committed = readFileSync(referencePath, 'utf8');
    } catch {
      // absent: reported below
    }
    const registered = (manifest['reference'] as { sha256?: string } | null)?.sha256;
    if (committed !== text || registered !== sha256) {
      process.stderr.write(
        `${referencePath} or its manifest entry is not what ${SCRIPT} builds: run \`npm run models:reference\`\n`,
      );
      return false;
    }
    process.stdout.write(`${referencePath} is up to date (sha256 ${sha256})\n`);
    return true;
  }
  writeFileSync(referencePath, text);
  manifest['reference'] = { file: REFERENCE_FILE, sha256 };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const summary = reference.features.map((f) => `${f.name} ${f.kind} ${f.labels.length} bins`).join(', ');
  process.stdout.write(
    `wrote ${referencePath} (${samples.length} vital-signs records, sha256 ${sha256})\n  ${summary}\n` +
      `registered it in ${manifestPath}\n`,
  );
  return true;
}

await main();
