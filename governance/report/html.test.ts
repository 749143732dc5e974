/**
 * The report page from fixed figures: self-contained (nothing fetched), every chart inlined once, the header's
 * versions and hashes, the calibration table with out-of-bounds figures flagged, the history with actors and
 * reasons escaped; and the PNGs rasterised from the same charts are valid PNGs of each chart's size.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderReportHtml, reportCharts } from './html.ts';
import { writeReport } from './index.ts';
import { chartPng } from './png.ts';
import { fixtureReport, pngHeader, T0 } from './report.fixture.ts';

const data = fixtureReport();
const html = renderReportHtml(data);

describe('reportCharts', () => {
  it('lists reliability per calibrated version, scores by rollout and site, drift, and the rollout timeline', () => {
    expect(reportCharts(data).map((c) => c.id)).toEqual([
      'reliability-1.0.0',
      'reliability-2.0.0',
      'scores-rollout-1.0.0',
      'scores-site-1.0.0',
      'scores-rollout-2.0.0',
      'drift-1.0.0',
      'rollouts',
    ]);
  });

  it('marks the version’s rollouts on its drift chart', () => {
    const drift = reportCharts(data).find((c) => c.id === 'drift-1.0.0');
    // 1.0.0 went live at T0, the first window: the marker sits on the left edge.
    expect(drift?.svg).toContain('<g class="marker"><line x1="60"');
  });

  it('labels a drift rollback on the drift chart with its trigger', () => {
    const rollback = {
      kind: 'rollback' as const,
      change_id: '01E',
      model: 'deterioration',
      at: T0 + 3_600_000 / 2,
      actor: 'system:drift-guard',
      reason: 'spo2 drifted',
      version: '1.0.0',
      from_mode: 'live' as const,
      restored: null,
      trigger: 'drift' as const,
      evidence: { spo2: 0.5 },
    };
    const drift = reportCharts({ ...data, history: [...data.history, rollback] }).find((c) => c.id === 'drift-1.0.0');
    expect(drift?.svg).toContain('<g class="marker"><line x1="320"');
    expect(drift?.svg).toContain('>rollback (drift)</text>');
  });
});

describe('renderReportHtml', () => {
  it('is one self-contained document: inline style, no script, nothing fetched', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script|<link|<img|url\(|@import|src=/i);
    // The only URL is the SVG namespace, which is a name, not a fetch.
    const urls = [...html.matchAll(/https?:\/\/[^"\s]+/g)].map((m) => m[0]);
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
  });

  it('inlines every chart once, inside a figure named after its PNG', () => {
    for (const chart of reportCharts(data)) {
      expect(html.split(`id="chart-${chart.id}"`)).toHaveLength(2);
      expect(html).toContain(`<figure data-chart-id="${chart.id}">`);
      expect(html).toContain(`(${chart.id}.png)`);
    }
  });

  it('heads the page with the versions, their artifact hashes, intended use and acceptance criteria', () => {
    expect(html).toContain(`<td class="sha">${'a'.repeat(64)}</td>`);
    expect(html).toContain(`<td class="sha">${'b'.repeat(64)}</td>`);
    expect(html).toContain('Adult ward patients: probability of deterioration within 12 hours.');
    expect(html).toContain('<code>calibration.ece_max</code></td><td>0.05</td>');
    expect(html).toContain('dr-safety (clinical-safety-officer, 2026-11-01T07:30:00Z): VR-6');
  });

  it('tabulates calibration per version x rollout and flags figures outside the criteria', () => {
    const row = /<tr data-version="2.0.0" data-rollout="canary">(.*?)<\/tr>/.exec(html)?.[1] ?? '';
    expect(row).toContain('<td class="num out-of-bounds" data-figure="ece15">0.0900</td>');
    expect(row).toContain('<td class="num out-of-bounds" data-figure="slope">0.600</td>');
    expect(row).toContain('<td class="num" data-figure="auroc">0.812</td>');
    expect(row).toContain('<td class="num" data-figure="n">372</td>');
    const live = /<tr data-version="1.0.0" data-rollout="live">(.*?)<\/tr>/.exec(html)?.[1] ?? '';
    expect(live).not.toContain('out-of-bounds');
  });

  it('lists the rollout history with actors, reasons, approvals and promotion criteria, escaped', () => {
    expect(html).toContain('<td>dr-safety</td><td>validation report VR-7 &lt;reviewed&gt;</td>');
    expect(html).toContain('canary 2.0.0: 10% of site=site-A');
    // A rollout's approval names its approver; one not in this history keeps its bare id.
    expect(html).toContain('<td class="sha">dr-safety (clinical-safety-officer), 01B</td>');
    expect(html).toContain('<td class="sha">00A</td>');
    expect(html).toContain('calibration.ece_max: 0.021 (required &lt;= 0.05)');
    expect(html.match(/<tr data-kind=/g)).toHaveLength(4);
  });

  it('says what is missing instead of drawing empty charts', () => {
    const empty = renderReportHtml({
      ...data,
      calibration: [],
      scores: [],
      drift: [],
      history: [],
      notes: ['no outcomes table'],
    });
    expect(empty).not.toContain('<svg');
    expect(empty).toContain('No calibration figures');
    expect(empty).toContain('<li>no outcomes table</li>');
  });
});

describe('PNGs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rasterises each chart to a PNG of the chart’s size, and writes the page beside them', async () => {
    const written = await writeReport(data, dir);
    expect(written.pngs.map((p) => p.id)).toEqual(reportCharts(data).map((c) => c.id));
    for (const png of written.pngs) {
      const bytes = readFileSync(png.path);
      expect(pngHeader(bytes)).toEqual({ png: true, width: png.width, height: png.height });
      expect(bytes.length).toBeGreaterThan(1000);
    }
    expect(readFileSync(written.html, 'utf8')).toBe(html);
  });

  it('draws the chart, not a blank image', () => {
    const chart = reportCharts(data)[0]!;
    const blank = { ...chart, svg: chart.svg.replace(/<g class="series".*<\/svg>/, '</svg>') };
    expect(chartPng(chart).length).toBeGreaterThan(chartPng(blank).length);
  });
});
