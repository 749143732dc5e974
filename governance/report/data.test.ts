/**
 * The pure parts of the report's loading: drift per feature and window out of detect-drift's per-group reports, the
 * score bins a version gets, where a version is routed in words, version order.
 */
import { describe, expect, it } from 'vitest';
import type { DriftReportRow } from '../../operators/detect-drift/report.ts';
import type { ModelRoute } from '../../runtime/models.ts';
import { sampleManifest } from '../testing.ts';
import { compareVersions, driftSeriesOf, largestSites, MAX_SITE_SERIES, routingOf, scoreBinsFor } from './data.ts';

function report(overrides: Partial<DriftReportRow>): DriftReportRow {
  return {
    pipeline: 'vitals@1',
    model_name: 'deterioration',
    model_version: '1.0.0',
    firmware_version: '5.12.1',
    site_id: 'site-A',
    window_start: 0,
    window_end: 3_600_000,
    feature: 'spo2',
    kind: 'continuous',
    reference_sha256: 'e'.repeat(64),
    bin_labels: ['a', 'b'],
    bin_counts: [5, 5],
    ref_proportions: [0.5, 0.5],
    n: 100,
    missing: 0,
    out_of_range: 0,
    missing_rate: 0,
    ref_missing_rate: 0,
    out_of_range_rate: 0,
    js_distance: 0.1,
    psi: 0,
    psi_level: 'ok',
    sufficient: true,
    devices: 0,
    chance_js: null,
    drifted: false,
    dataset_share: 0.5,
    allowed_lateness_ms: 0,
    features_drifted: 0,
    features_total: 1,
    dataset_drifted: false,
    watermark: 0,
    complete: true,
    ...overrides,
  };
}

describe('driftSeriesOf', () => {
  it('takes the largest JS distance of a window over its groups, drifted when any group drifted', () => {
    const series = driftSeriesOf(
      '1.0.0',
      [
        report({ site_id: 'site-A', js_distance: 0.12 }),
        report({ site_id: 'site-B', js_distance: 0.31, drifted: true, dataset_drifted: true }),
        // Too few values for a verdict: left out, however large.
        report({ site_id: 'site-C', js_distance: 0.9, sufficient: false }),
        // The device sketch is not a feature.
        report({ feature: '_devices', js_distance: 0.8 }),
        report({ window_start: 3_600_000, js_distance: 0.05 }),
        report({ feature: 'heart_rate', js_distance: null }),
      ],
      0.2,
    );
    expect(series).toEqual({
      version: '1.0.0',
      js_threshold: 0.2,
      points: [
        { version: '1.0.0', feature: 'spo2', window_start: 0, js_distance: 0.31, drifted: true },
        { version: '1.0.0', feature: 'spo2', window_start: 3_600_000, js_distance: 0.05, drifted: false },
      ],
      dataset_drifted_windows: [0],
    });
  });
});

describe('scoreBinsFor', () => {
  it('bins probabilities in twentieths of [0, 1]', () => {
    expect(scoreBinsFor(sampleManifest(), 0.01, 0.93)).toEqual({ lo: 0, width: 0.05, count: 20 });
    // Without a manifest, scores within [0, 1] are taken for probabilities.
    expect(scoreBinsFor(undefined, 0, 1)).toEqual({ lo: 0, width: 0.05, count: 20 });
  });

  it('gives NEWS2 points one bin each, and caps wide ranges at 40 bins', () => {
    const news2 = sampleManifest('news2', '1.0.0', {
      output: { kind: 'news2', score_tensor: 'score', subscores_tensor: 'subscores', band_tensor: 'band' },
    });
    expect(scoreBinsFor(news2, 0, 20)).toEqual({ lo: 0, width: 1, count: 21 });
    expect(scoreBinsFor(undefined, 0, 399)).toEqual({ lo: 0, width: 10, count: 40 });
  });
});

describe('routingOf', () => {
  const route: ModelRoute = {
    model: 'deterioration',
    live: { version: '1.0.0', rollout_id: 'x', approved: true },
    canary: {
      version: '2.0.0',
      rollout_id: 'y',
      approved: true,
      percent: 10,
      cohort: { sites: ['A'] },
      cohort_expr: 'site=A',
    },
    shadows: [{ version: '3.0.0', rollout_id: 'z', approved: false }],
  };
  it('says where the registry routes each version', () => {
    expect(['1.0.0', '2.0.0', '3.0.0', '0.9.0'].map((v) => routingOf(v, route))).toEqual([
      'live',
      'canary 10% of site=A',
      'shadow',
      null,
    ]);
    expect(routingOf('1.0.0', undefined)).toBeNull();
  });
});

it('orders versions numerically where they are numbers, a pre-release before its release', () => {
  expect(['1.10.0', '1.9.0', '2.0.0', '1.9.0-rc1'].sort(compareVersions)).toEqual([
    '1.9.0-rc1',
    '1.9.0',
    '1.10.0',
    '2.0.0',
  ]);
});

it('draws the largest sites and sums the others into one series', () => {
  const sites = Array.from({ length: 10 }, (_, i) => ({
    version: '1.0.0',
    by: 'site' as const,
    cohort: `site-${String(i).padStart(2, '0')}`,
    lo: 0,
    width: 0.5,
    counts: [i, 1],
  }));
  const drawn = largestSites(sites);
  expect(drawn).toHaveLength(MAX_SITE_SERIES);
  expect(drawn.map((h) => h.cohort)).toEqual([
    'site-09',
    'site-08',
    'site-07',
    'site-06',
    'site-05',
    'site-04',
    'site-03',
    'other sites (3)',
  ]);
  // site-00..02: counts [0,1] + [1,1] + [2,1].
  expect(drawn.at(-1)?.counts).toEqual([3, 3]);
  expect(largestSites(sites.slice(0, 3))).toEqual(sites.slice(0, 3));
});
