/**
 * Builds the drift reference of `news2@1.0.0`: `models/news2/1.0.0/reference.json`, the histograms detect-drift
 * measures every window against, and registers it (file and sha256) in the version's manifest.
 *
 *   npm run models:reference                  # writes models/news2/1.0.0/reference.json, updates manifest.json
 *   npm run models:reference -- --check       # exits 1 if the committed reference is not what this builds
 *   npm run models:reference -- --root DIR    # a different model store (tests)
 *
 * The sample: an UNBIASED simulated fleet (simulator/, `biasedFirmware: null`, no duplicates, replays or faults),
 * every vital-signs event, scored by the model itself (the verified ONNX artifact through the same model store the
 * score operator uses), so the score histogram is exactly what the pipeline produces. The fleet is larger than the
 * demo's and uses its own seed, so the reference is a different draw of patients from the same population.
 *
 * Deterministic: the simulator, the model and the binning are, so the same seed and sizes give byte-identical JSON.
 * The manifest is read, its `reference` field replaced, and written back; nothing else in it changes.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODELS_ROOT, OnnxModelStore, RUNTIME } from '../adapters/onnx/index.ts';
import { buildReference, type ReferenceSample, serialiseReference } from '../operators/detect-drift/reference.ts';
import { NEWS2_WIDTH, news2Features } from '../operators/score/features.ts';
import { payloadOf, type VitalSigns } from '../schemas/types.ts';
import { simulateFleet } from '../simulator/index.ts';

const MODEL = 'news2';
const VERSION = '1.0.0';
const SCRIPT = 'scripts/build-drift-reference.ts';
/** Bump when this script changes what it writes. */
const GENERATOR_VERSION = '1.0.0';
const REFERENCE_FILE = 'reference.json';

/** The reference sample. Its own seed: never the demo's. */
const SAMPLE = {
  seed: 'drift-reference/news2@1.0.0',
  devices: 5000,
  events: 250_000,
  sites: 20,
  startTime: Date.UTC(2026, 0, 5, 6, 0, 0),
};

const BATCH = 8192;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { check: { type: 'boolean', default: false }, root: { type: 'string' } },
    strict: true,
  });
  const root = resolve(values.root ?? DEFAULT_MODELS_ROOT);
  const dir = join(root, MODEL, VERSION);

  // 1. The unbiased sample: every valid vital-signs event of a clean simulated fleet.
  const vitals: VitalSigns[] = [];
  for (const record of simulateFleet({
    devices: SAMPLE.devices,
    events: SAMPLE.events,
    sites: SAMPLE.sites,
    seed: SAMPLE.seed,
    startTime: SAMPLE.startTime,
    biasedFirmware: null,
    duplicateRate: 0,
    replayRate: 0,
    malformedRate: 0,
  })) {
    if (record.kind !== 'envelope' || record.truth !== 'valid' || record.envelope.event_type !== 'vital_signs')
      continue;
    const payload = payloadOf(record.envelope.payload);
    if (payload?.type === 'vital_signs') vitals.push(payload.data);
  }

  // 2. Scores from the model itself (verified against its manifest), batched like the score operator.
  const store = new OnnxModelStore({ root });
  const model = await store.load(MODEL, VERSION);
  const scores: (number | null)[] = new Array(vitals.length).fill(null);
  try {
    const rows: number[] = [];
    const features: number[] = [];
    const flush = async () => {
      if (rows.length === 0) return;
      const input = new Float32Array(features);
      const out = await model.run({ features: { data: input, dims: [rows.length, NEWS2_WIDTH] } });
      const score = out['score']?.data;
      if (!(score instanceof Float32Array)) throw new Error('the model returned no float32 `score` output');
      rows.forEach((row, i) => {
        const value = score[i]!;
        scores[row] = Number.isFinite(value) ? value : null;
      });
      rows.length = 0;
      features.length = 0;
    };
    for (let i = 0; i < vitals.length; i++) {
      const vector = news2Features(vitals[i]!);
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
    model: { name: MODEL, version: VERSION },
    generator: {
      script: SCRIPT,
      version: GENERATOR_VERSION,
      sampler: 'simulator simulateFleet (biasedFirmware null, no duplicates, replays or faults)',
      scorer: `${MODEL}@${VERSION} model.onnx sha256 ${model.artifactSha256} on ${RUNTIME.name}`,
    },
    sample: {
      seed: SAMPLE.seed,
      devices: SAMPLE.devices,
      events: SAMPLE.events,
      sites: SAMPLE.sites,
      start_time: new Date(SAMPLE.startTime).toISOString(),
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
  if (values.check) {
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
      process.exit(1);
    }
    process.stdout.write(`${referencePath} is up to date (sha256 ${sha256})\n`);
    return;
  }
  writeFileSync(referencePath, text);
  manifest['reference'] = { file: REFERENCE_FILE, sha256 };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const summary = reference.features.map((f) => `${f.name} ${f.kind} ${f.labels.length} bins`).join(', ');
  process.stdout.write(
    `wrote ${referencePath} (${samples.length} vital-signs records, sha256 ${sha256})\n  ${summary}\n` +
      `registered it in ${manifestPath}\n`,
  );
}

await main();
