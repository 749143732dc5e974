/**
 * `vigil models report` end to end on the embedded store (chdb, every migration applied) and the file control log:
 * two versions of a probability model (1.0.0 live, 2.0.0 canary on one site) with inferences and outcomes landed, the
 * registry's records on `<dir>/model-rollouts.jsonl`. The command writes the page and one valid PNG per chart; the
 * page's calibration table holds calibrationMetrics of the same labelled inferences computed in memory, its header
 * the versions' artifact hashes, its history the actors.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { toDateTime64 } from '../../adapters/clickhouse/tables.ts';
import { FileControlLog } from '../../adapters/file/control-log.ts';
import { calibrationMetrics, labelInferences } from '../../governance/calibration.ts';
import { parseModelChange } from '../../governance/changes.ts';
import { pngHeader } from '../../governance/report/report.fixture.ts';
import { sampleManifest } from '../../governance/testing.ts';
import type { ModelChange } from '../../governance/types.ts';
import { landOutcomes, type Outcome } from '../../pipelines/outcomes.ts';
import { inferenceRow } from '../../pipelines/outputs.ts';
import type { Inference } from '../../schemas/types.ts';
import { inferenceFor, normalisedEvent, sha256Hex } from '../../test/fixtures/clickhouse.ts';
import { MODEL_ROLLOUTS_FILE } from './models.ts';
import { registerModelsReport } from './models-report.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 2, 1);
const MODEL = 'deterioration';

/** A seeded generator (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const next = random(12);
const inferences: Inference[] = [];
const outcomes: Outcome[] = [];
for (let i = 0; i < 30; i++) {
  const patient = { ref: `pt:v1:${sha256Hex(`report-${i}`).slice(0, 24)}`, site: i % 2 === 0 ? 'site-A' : 'site-B' };
  const risk = next() * 0.7;
  for (let k = 0; k < 8; k++) {
    const n = i * 100 + k;
    const event = {
      ...normalisedEvent({ n, siteId: patient.site, observedAt: T0 + k * 6 * HOUR + i * 1000 }),
      patient_ref: patient.ref,
    };
    // 2.0.0 runs as canary on site-A only; 1.0.0 is live everywhere.
    const versions: [string, 'live' | 'canary'][] = [['1.0.0', 'live']];
    if (patient.site === 'site-A') versions.push(['2.0.0', 'canary']);
    for (const [version, rollout] of versions) {
      inferences.push({
        ...inferenceFor(event, {
          score: Math.min(0.99, Math.max(0.01, risk + (next() - 0.5) * 0.2)),
          modelVersion: version,
          rollout,
        }),
        model_name: MODEL,
        inference_id: sha256Hex(`${event.event_id}|${version}`).slice(0, 32),
      });
    }
  }
  if (next() < risk) {
    outcomes.push({
      outcome_id: `out-${i}`,
      patient_ref: patient.ref,
      site_id: patient.site,
      kind: 'icu_transfer',
      occurred_at: T0 + Math.floor(next() * 48) * HOUR + 1,
      recorded_at: T0 + 60 * HOUR,
      source: 'test-ward',
    });
  }
}

/** A ULID-shaped change id (the log's records are parsed strictly). */
const id = (name: string) => `01HZ${name.padStart(22, '0')}`;

function changes(): ModelChange[] {
  const base = (name: string, at: number, actor: string, reason: string) => ({
    change_id: id(name),
    model: MODEL,
    at,
    actor,
    reason,
  });
  const out: ModelChange[] = [];
  for (const [i, version] of ['1.0.0', '2.0.0'].entries()) {
    const manifest = sampleManifest(MODEL, version);
    const sha = manifest.artifact.sha256.replace(/^./, String(i));
    out.push(
      {
        ...base(`A${i}`, T0 - 10 * HOUR + i, 'ml-lead', 'built'),
        kind: 'added',
        version,
        artifact_sha256: sha,
        manifest_sha256: 'f'.repeat(64),
        manifest: { ...manifest, artifact: { ...manifest.artifact, sha256: sha } },
      },
      {
        ...base(`B${i}`, T0 - 9 * HOUR + i, 'dr-safety', `validation VR-${i}`),
        kind: 'approved',
        version,
        artifact_sha256: sha,
        role: 'clinical-safety-officer',
      },
    );
  }
  out.push(
    {
      ...base('C0', T0 - 8 * HOUR, 'ml-lead', 'first live'),
      kind: 'rollout',
      version: '1.0.0',
      mode: 'live',
      percent: 100,
      cohort: {},
      cohort_expr: '',
      approval_id: id('B0'),
    },
    {
      ...base('C1', T0 - 7 * HOUR, 'ml-lead', 'canary at site-A'),
      kind: 'rollout',
      version: '2.0.0',
      mode: 'canary',
      percent: 100,
      cohort: { sites: ['site-A'] },
      cohort_expr: 'site=site-A',
      approval_id: id('B1'),
    },
  );
  return out;
}

/**
 * Drift of 1.0.0 as detect-drift stores it: a reference for spo2 (two bins, half and half) and one partial histogram
 * per hourly window at site-A; the third window leans 10/90, far past the 0.2 threshold.
 */
const DRIFT_WINDOWS: [number, number][] = [
  [50, 50],
  [45, 55],
  [10, 90],
];

async function landDrift(store: Pick<ClickHouseStore, 'insert'>): Promise<void> {
  const reference = {
    model_name: MODEL,
    model_version: '1.0.0',
    feature: 'spo2',
    reference_sha256: 'e'.repeat(64),
    kind: 'continuous',
    bin_labels: ['<95', '>=95'],
    bin_edges: [95],
    ref_counts: [500, 500],
    ref_proportions: [0.5, 0.5],
    ref_n: 1000,
    ref_missing_rate: 0,
    epsilon: 1e-4,
    js_threshold: 0.2,
    psi_warn: 0.1,
    psi_alert: 0.25,
    min_count: 10,
    noise_z: 0,
    dataset_share: 0.5,
    allowed_lateness_ms: 0,
    loaded_at: toDateTime64(T0),
  };
  await store.insert('drift_reference_bins', [reference], { dedupToken: 'report-reference' });
  const rows = DRIFT_WINDOWS.map((counts, w) => ({
    pipeline: 'vitals@1',
    model_name: MODEL,
    model_version: '1.0.0',
    site_id: 'site-A',
    firmware_version: '5.12.1',
    window_start: toDateTime64(T0 + w * HOUR),
    window_end: toDateTime64(T0 + (w + 1) * HOUR),
    feature: 'spo2',
    bin_counts: counts,
    n: counts[0] + counts[1],
    missing: 0,
    out_of_range: 0,
    source_topic: 'vigil.telemetry.raw',
    source_partition: 0,
    first_offset: w * 100,
    last_offset: w * 100 + 99,
  }));
  await store.insert('drift_histograms', rows, { dedupToken: 'report-drift' });
}

let dir: string;
let stdout: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-models-report-'));
  const store = openChdbStore({ path: join(dir, 'store') });
  await store.migrate();
  await store.insert('inferences', inferences.map(inferenceRow), { dedupToken: 'report-inferences' });
  await landOutcomes(store, outcomes);
  await landDrift(store);
  await store.close();
  const log = new FileControlLog<ModelChange>(join(dir, 'control', MODEL_ROLLOUTS_FILE), { parse: parseModelChange });
  for (const change of changes()) await log.append(`${MODEL}/${change.change_id}`, change);
  await log.close();

  const program = new Command().exitOverride();
  registerModelsReport(program.command('models'));
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(
      [
        'models',
        'report',
        MODEL,
        '--data-dir',
        join(dir, 'store'),
        '--control-dir',
        join(dir, 'control'),
        '--out',
        join(dir, 'out'),
        '--json',
      ],
      { from: 'user' },
    );
    stdout = write.mock.calls.map((c) => String(c[0])).join('');
  } finally {
    write.mockRestore();
  }
}, 120_000);

afterAll(async () => {
  if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
  else console.log(dir);
});

describe('vigil models report', () => {
  it('writes the page and one valid PNG per chart', async () => {
    const out = JSON.parse(stdout) as {
      html: string;
      pngs: { id: string; path: string; width: number; height: number }[];
    };
    expect(out.html).toBe(join(dir, 'out', 'index.html'));
    expect(out.pngs.map((p) => p.id)).toEqual([
      'reliability-1.0.0',
      'reliability-2.0.0',
      'scores-rollout-1.0.0',
      'scores-site-1.0.0',
      'scores-rollout-2.0.0',
      'scores-site-2.0.0',
      'drift-1.0.0',
      'rollouts',
    ]);
    for (const png of out.pngs) {
      expect(pngHeader(await readFile(png.path))).toEqual({ png: true, width: png.width, height: png.height });
    }
  });

  it('tabulates calibrationMetrics of the labelled inferences per version x rollout', async () => {
    const html = await readFile(join(dir, 'out', 'index.html'), 'utf8');
    const now = T0 + 60 * HOUR; // the data's clock: the latest recorded outcome
    for (const [version, rollout] of [
      ['1.0.0', 'live'],
      ['2.0.0', 'canary'],
    ] as const) {
      const mine = inferences.filter((i) => i.model_version === version);
      const want = calibrationMetrics(
        labelInferences(mine, outcomes, 86_400_000, ['icu_transfer', 'confirmed_deterioration'], now),
      );
      const row =
        new RegExp(`<tr data-version="${version}" data-rollout="${rollout}">(.*?)</tr>`).exec(html)?.[1] ?? '';
      expect(row).toContain(`data-figure="n">${want.n}</td>`);
      expect(row).toContain(`data-figure="events">${want.events}</td>`);
      expect(row).toContain(`data-figure="brier">${want.brier?.toFixed(4)}</td>`);
      expect(row).toContain(`data-figure="auroc">${want.auroc?.toFixed(3)}</td>`);
      expect(want.n).toBeGreaterThan(0);
    }
  });

  it('draws drift over time from detect-drift’s reports: one point per window, the third drifted', async () => {
    const html = await readFile(join(dir, 'out', 'index.html'), 'utf8');
    const drift = /<svg[^>]*id="chart-drift-1.0.0".*?<\/svg>/s.exec(html)?.[0] ?? '';
    expect(drift).toContain('data-feature="spo2"');
    expect(/<path class="drift-line" d="([^"]*)"/.exec(drift)?.[1]?.split(' L')).toHaveLength(3);
    expect([...drift.matchAll(/<circle class="drifted"[^>]*data-window="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([
      T0 + 2 * HOUR,
    ]);
    // The line is the manifest's threshold (the drift guard's); the verdicts are detect-drift's (its reference's 0.2).
    expect(drift).toContain('data-threshold="0.1"');
  });

  it('heads the page with the registry’s versions and lists the history with its actors', async () => {
    const html = await readFile(join(dir, 'out', 'index.html'), 'utf8');
    expect(html).toContain(`<td class="sha">0${'a'.repeat(63)}</td>`);
    expect(html).toContain('canary 100% of site=site-A');
    expect(html).toContain('<td>dr-safety</td><td>validation VR-1</td>');
    expect(html.match(/<tr data-kind=/g)).toHaveLength(6);
    // Score distributions count every stored inference of the version by site.
    expect(html).toContain(
      `data-cohort="site-A" data-n="${inferences.filter((i) => i.model_version === '1.0.0' && i.site_id === 'site-A').length}"`,
    );
  });
});
