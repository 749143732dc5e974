/**
 * The report's charts from fixed figures: numbers land on the right pixels (reliability frame: x 60..460 for 0..1,
 * y 340..40 for 0..1), every series is drawn, and the rollout history folds into the right stretches.
 */
import { describe, expect, it } from 'vitest';
import { driftChart, escapeXml, reliabilityChart, rolloutsChart, scoresChart } from './charts.ts';
import { rolloutSpans } from './history.ts';
import { fixtureReport, HISTORY, T0 } from './report.fixture.ts';

const data = fixtureReport();
const HOUR = 3_600_000;

/** The attributes of every element `<tag ...>` of a class in an SVG string. */
function elements(svg: string, tag: string, className: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const match of svg.matchAll(new RegExp(`<${tag} class="${className}"([^>]*)>`, 'g'))) {
    const attrs: Record<string, string> = {};
    for (const a of match[1]!.matchAll(/([\w-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    out.push(attrs);
  }
  return out;
}

describe('reliabilityChart', () => {
  const chart = reliabilityChart(
    '1.0.0',
    data.calibration.filter((r) => r.version === '1.0.0'),
  );

  it('places a bin at (mean predicted 0.3, observed 0.25) at x = 60 + 0.3 * 400, y = 340 - 0.25 * 300', () => {
    const bin = elements(chart.svg, 'circle', 'bin').find((b) => b['data-mean-predicted'] === '0.3');
    expect(bin).toMatchObject({ cx: '180', cy: '265', 'data-observed-rate': '0.25', 'data-n': '120' });
    expect(Number(bin?.['data-lo'])).toBeCloseTo(4 / 15, 6);
  });

  it('draws one point per non-empty bin, joined in bin order, the diagonal corner to corner, and the counts', () => {
    expect(elements(chart.svg, 'circle', 'bin')).toHaveLength(3);
    expect(elements(chart.svg, 'path', 'reliability-line')[0]?.['d']).toBe('M80 328 L180 265 L340 118');
    expect(elements(chart.svg, 'line', 'diagonal')[0]).toMatchObject({ x1: '60', y1: '340', x2: '460', y2: '40' });
    const counts = elements(chart.svg, 'rect', 'count');
    expect(counts).toHaveLength(15);
    // The fullest bin (900) is the full 45 px strip; the 120 bin is 120/900 of it.
    expect(counts.find((c) => c['data-n'] === '900')?.['height']).toBe('45');
    expect(counts.find((c) => c['data-n'] === '120')?.['height']).toBe('6');
    expect(chart.svg).toContain('id="chart-reliability-1.0.0" data-chart="reliability"');
    expect([chart.width, chart.height]).toEqual([480, 470]);
  });

  it('draws one series per rollout, coloured by mode', () => {
    const both = reliabilityChart('x', [data.calibration[0]!, { ...data.calibration[1]!, rollout: 'shadow' }]);
    expect(both.svg).toContain('data-rollout="live"');
    expect(both.svg).toContain('data-rollout="shadow"');
    expect(both.svg).toContain('stroke="#7b3294"');
  });
});

describe('scoresChart', () => {
  it('draws each cohort as shares of its own inferences, on one scale', () => {
    const chart = scoresChart(
      '1.0.0',
      'site',
      data.scores.filter((s) => s.by === 'site'),
    );
    const paths = elements(chart.svg, 'path', 'distribution');
    expect(paths.map((p) => [p['data-cohort'], p['data-n'], p['data-counts']])).toEqual([
      ['site-A', '4', '2,2'],
      ['site-B', '4', '3,1'],
    ]);
    // Top of the y axis = 1.1 x the largest share (0.75) = 0.825; share 0.75 -> 260 - 0.75/0.825 * 220 = 60.
    expect(paths[1]?.['d']).toBe('M60 260 L60 60 L260 60 L260 193.33 L460 193.33 L460 260');
    expect(chart.id).toBe('scores-site-1.0.0');
  });
});

describe('driftChart', () => {
  const chart = driftChart(data.drift[0]!, [{ at: T0 + HOUR / 2, label: 'rollback' }]);

  it('draws the threshold at its height, one line per feature, drifted windows ringed', () => {
    // y top = max(0.1, 1.15 x 0.5, 1.3 x 0.3) = 0.575; 0.3 -> 260 - 0.3/0.575 * 220.
    expect(elements(chart.svg, 'line', 'threshold')[0]?.['y1']).toBe('145.22');
    expect(elements(chart.svg, 'path', 'drift-line').map((p) => p['d'])).toEqual([
      'M60 221.74 L580 68.7',
      'M60 240.87 L580 229.39',
    ]);
    const drifted = elements(chart.svg, 'circle', 'drifted');
    expect(drifted).toEqual([expect.objectContaining({ cx: '580', 'data-js': '0.5' })]);
    expect(elements(chart.svg, 'rect', 'dataset-drifted')).toHaveLength(1);
    expect(chart.svg).toContain('>rollback</text>');
  });
});

describe('rolloutSpans and rolloutsChart', () => {
  it('folds the history into stretches per version and mode', () => {
    expect(rolloutSpans(HISTORY)).toEqual([
      { version: '1.0.0', mode: 'live', from: T0, to: T0 + 8 * HOUR, detail: '' },
      { version: '2.0.0', mode: 'canary', from: T0 + 3 * HOUR, to: T0 + 8 * HOUR, detail: '10% of site=site-A' },
      { version: '2.0.0', mode: 'live', from: T0 + 8 * HOUR, to: null, detail: '' },
    ]);
  });

  it('restores the previous live version on a rollback of the live one', () => {
    const rollback = {
      kind: 'rollback' as const,
      change_id: '01E',
      model: 'deterioration',
      at: T0 + 9 * HOUR,
      actor: 'system:drift-guard',
      reason: 'drift',
      version: '2.0.0',
      from_mode: 'live' as const,
      restored: '1.0.0',
      trigger: 'drift' as const,
      evidence: null,
    };
    const spans = rolloutSpans([...HISTORY, rollback]);
    expect(spans.filter((s) => s.to === null)).toEqual([
      { version: '1.0.0', mode: 'live', from: T0 + 9 * HOUR, to: null, detail: '' },
    ]);
  });

  it('draws a bar per stretch, open stretches up to now', () => {
    const chart = rolloutsChart(rolloutSpans(HISTORY), T0 + 10 * HOUR);
    const spans = elements(chart.svg, 'rect', 'span');
    expect(spans.map((s) => [s['data-version'], s['data-mode']])).toEqual([
      ['1.0.0', 'live'],
      ['2.0.0', 'canary'],
      ['2.0.0', 'live'],
    ]);
    // Time axis T0..T0+10h over x 90..680: the open live stretch of 2.0.0 runs from 8h (562) to now (680).
    expect(spans[2]).toMatchObject({ x: '562', width: '118' });
  });
});

it('escapes text placed in SVG', () => {
  expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});
