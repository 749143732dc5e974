/**
 * The model report page: a pure function of the report's figures (types.ts) to one self-contained HTML document —
 * inline CSS, the charts inlined as SVG, no script and nothing fetched — that an ML team can open from disk, attach to
 * a change record, or print. `reportCharts` lists the charts once, for the page and for the PNGs (index.ts).
 */
import type { AcceptanceCriteria } from '../../runtime/models.ts';
import type { ModelChange } from '../types.ts';
import {
  type Chart,
  driftChart,
  escapeXml,
  reliabilityChart,
  rolloutsChart,
  scoresChart,
  type TimeMarker,
} from './charts.ts';
import { describeChange, rolloutSpans } from './history.ts';
import type { CalibrationFigures, CalibrationRow, ReportData, VersionSummary } from './types.ts';

/**
 * Every chart of the report, in page order: reliability per version (probability models with labelled inferences),
 * score distributions per version by rollout and by site, drift per version, the rollout timeline.
 *
 * @example
 * for (const chart of reportCharts(data)) writeFileSync(`${chart.id}.svg`, chart.svg);
 */
export function reportCharts(data: ReportData): Chart[] {
  const charts: Chart[] = [];
  for (const v of data.versions) {
    const rows = data.calibration.filter((r) => r.version === v.version);
    if (rows.length > 0) charts.push(reliabilityChart(v.version, rows));
  }
  for (const v of data.versions) {
    for (const by of ['rollout', 'site'] as const) {
      const histograms = data.scores.filter((s) => s.version === v.version && s.by === by);
      if (histograms.length > 0) charts.push(scoresChart(v.version, by, histograms));
    }
  }
  for (const series of data.drift) {
    if (series.points.length > 0) charts.push(driftChart(series, markersOf(data.history, series.version)));
  }
  const spans = rolloutSpans(data.history);
  if (spans.length > 0) charts.push(rolloutsChart(spans, data.generated_at));
  return charts;
}

function markersOf(history: readonly ModelChange[], version: string): TimeMarker[] {
  return history
    .filter((c) => c.version === version && (c.kind === 'rollout' || c.kind === 'rollback' || c.kind === 'promoted'))
    .map((c) => ({
      at: c.at,
      label: c.kind === 'rollout' ? c.mode : c.kind === 'rollback' ? `rollback (${c.trigger})` : c.kind,
    }));
}

const CSS = `
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; border-bottom: 1px solid #ccc; padding-bottom: 4px;
margin-top: 32px; } h3 { font-size: 14px; margin: 18px 0 6px; }
.meta { color: #555; font-size: 12px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.out-of-bounds { background: #fde0dc; color: #a50f15; font-weight: bold; }
code, .sha { font-family: "DejaVu Sans Mono", monospace; font-size: 11px; word-break: break-all; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; border: 1px solid #e5e5e5; padding: 4px; } figcaption { font-size: 11px; color: #555; }
.notes li { color: #8a4b00; }
.mode-live { color: #1b7837; } .mode-canary { color: #e08214; } .mode-shadow { color: #7b3294; }
`;

/**
 * @example
 * const html = renderReportHtml(data); // '<!DOCTYPE html>...'
 */
export function renderReportHtml(data: ReportData, charts: readonly Chart[] = reportCharts(data)): string {
  const byKind = (kind: Chart['kind']) => charts.filter((c) => c.kind === kind);
  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(`Model report: ${data.model}`)}</title>`,
    `<style>${CSS}</style></head><body>`,
    `<h1>Model report: ${esc(data.model)}</h1>`,
    `<p class="meta">Generated ${esc(iso(data.generated_at))} from ${esc(data.sources.store)} and ${esc(data.sources.control_log)}.</p>`,
    notes(data.notes),
    '<h2 id="versions">Versions</h2>',
    versionsTable(data.versions),
    ...data.versions.filter((v) => v.intended_use !== null || v.acceptance_criteria !== null).map(versionDetails),
    '<h2 id="calibration">Calibration</h2>',
    calibrationTable(data.calibration, data.versions),
    section(
      'Reliability diagrams',
      'reliability',
      byKind('reliability'),
      'No labelled inferences of a probability model yet.',
    ),
    section('Score distributions', 'scores', byKind('scores'), 'No inferences stored for this model.'),
    section('Drift over time', 'drift', byKind('drift'), 'No drift reports for this model.'),
    '<h2 id="history">Rollout history</h2>',
    figures(byKind('rollouts')),
    historyTable(data.history),
    '</body></html>',
  ];
  return `${parts.join('\n')}\n`;
}

function esc(text: string): string {
  return escapeXml(text);
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function fixed(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

function notes(items: readonly string[]): string {
  if (items.length === 0) return '';
  return `<ul class="notes">${items.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`;
}

function figures(charts: readonly Chart[]): string {
  if (charts.length === 0) return '';
  const inner = charts
    .map(
      (c) =>
        `<figure data-chart-id="${esc(c.id)}">${c.svg}<figcaption>${esc(c.title)} (${esc(c.id)}.png)</figcaption></figure>`,
    )
    .join('\n');
  return `<div class="charts">\n${inner}\n</div>`;
}

function section(heading: string, id: string, charts: readonly Chart[], empty: string): string {
  return `<h2 id="${id}">${esc(heading)}</h2>\n${charts.length > 0 ? figures(charts) : `<p class="meta">${esc(empty)}</p>`}`;
}

function versionsTable(versions: readonly VersionSummary[]): string {
  if (versions.length === 0) return '<p class="meta">No version of this model is registered or stored.</p>';
  const rows = versions.map((v) => {
    const approvals =
      v.approvals.length === 0
        ? 'none'
        : v.approvals.map((a) => `${esc(a.actor)} (${esc(a.role)}, ${esc(iso(a.at))}): ${esc(a.reason)}`).join('<br>');
    const routing = v.routing === null ? 'not routed' : v.routing;
    return (
      `<tr data-version="${esc(v.version)}"><td>${esc(v.version)}</td><td class="mode-${esc(routing.split(' ')[0] ?? '')}">${esc(routing)}</td>` +
      `<td class="sha">${esc(v.artifact_sha256 ?? 'not in the registry')}</td><td class="sha">${esc(v.manifest_sha256 ?? '–')}</td>` +
      `<td>${v.added === null ? '–' : `${esc(v.added.actor)}, ${esc(iso(v.added.at))}`}</td><td>${approvals}</td>` +
      `<td class="num">${v.inferences}</td></tr>`
    );
  });
  return (
    '<table class="versions"><thead><tr><th>version</th><th>routing now</th><th>artifact sha256</th>' +
    '<th>manifest sha256</th><th>added</th><th>approvals</th><th>inferences</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}

function versionDetails(v: VersionSummary): string {
  const parts = [`<h3>${esc(v.version)}</h3>`];
  if (v.intended_use !== null) parts.push(`<p><strong>Intended use.</strong> ${esc(v.intended_use)}</p>`);
  if (v.acceptance_criteria !== null) parts.push(criteriaTable(v.acceptance_criteria));
  return parts.join('\n');
}

function criteriaTable(c: AcceptanceCriteria): string {
  const rows: [string, string][] = [
    ['min_inferences', String(c.min_inferences)],
    ['min_agreement_with_live', String(c.min_agreement_with_live)],
  ];
  if (c.calibration !== null) {
    rows.push(
      ['calibration.min_outcome_events', String(c.calibration.min_outcome_events)],
      ['calibration.citl_abs_max', String(c.calibration.citl_abs_max)],
      ['calibration.slope', `${c.calibration.slope_min} .. ${c.calibration.slope_max}`],
      ['calibration.ece_max', String(c.calibration.ece_max)],
    );
  }
  if (c.subgroup_brier_margin !== null) rows.push(['subgroup_brier_margin', String(c.subgroup_brier_margin)]);
  return (
    '<table class="criteria"><thead><tr><th>acceptance criterion</th><th>required</th></tr></thead><tbody>' +
    rows.map(([k, v]) => `<tr><td><code>${esc(k)}</code></td><td>${esc(v)}</td></tr>`).join('') +
    '</tbody></table>'
  );
}

/** Which figures fall outside the version's calibration criteria (flagged in the table). */
function outOfBounds(m: CalibrationFigures, c: AcceptanceCriteria | null): Set<string> {
  const out = new Set<string>();
  const bounds = c?.calibration;
  if (!bounds) return out;
  if (m.events < bounds.min_outcome_events) out.add('events');
  if (m.citl !== null && Math.abs(m.citl) > bounds.citl_abs_max) out.add('citl');
  if (m.slope !== null && (m.slope < bounds.slope_min || m.slope > bounds.slope_max)) out.add('slope');
  if (m.ece15 !== null && m.ece15 > bounds.ece_max) out.add('ece15');
  return out;
}

function calibrationTable(rows: readonly CalibrationRow[], versions: readonly VersionSummary[]): string {
  if (rows.length === 0) {
    return '<p class="meta">No calibration figures: no probability version has inferences whose outcome window has closed.</p>';
  }
  const criteria = new Map(versions.map((v) => [v.version, v.acceptance_criteria]));
  const body = rows.map((r) => {
    const m = r.metrics;
    const flagged = outOfBounds(m, criteria.get(r.version) ?? null);
    const cell = (key: string, value: string) =>
      `<td class="num${flagged.has(key) ? ' out-of-bounds' : ''}" data-figure="${key}">${value}</td>`;
    return (
      `<tr data-version="${esc(r.version)}" data-rollout="${esc(r.rollout)}"><td>${esc(r.version)}</td>` +
      `<td class="mode-${esc(r.rollout)}">${esc(r.rollout)}</td>${cell('n', String(m.n))}${cell('events', String(m.events))}` +
      `${cell('citl', fixed(m.citl, 3))}${cell('slope', fixed(m.slope, 3))}${cell('ece15', fixed(m.ece15, 4))}` +
      `${cell('brier', fixed(m.brier, 4))}${cell('auroc', fixed(m.auroc, 3))}</tr>`
    );
  });
  return (
    '<table class="calibration"><thead><tr><th>version</th><th>rollout</th><th>n</th><th>events</th>' +
    '<th>CITL</th><th>slope</th><th>ECE (15 bins)</th><th>Brier</th><th>AUROC</th></tr></thead>' +
    `<tbody>${body.join('')}</tbody></table>` +
    '<p class="meta">CITL: calibration-in-the-large (observed rate minus mean predicted; 0 is ideal). Red: outside the ' +
    "version's acceptance criteria.</p>"
  );
}

function historyTable(history: readonly ModelChange[]): string {
  if (history.length === 0) return '<p class="meta">No record of this model on the model-rollouts control log.</p>';
  // An approval id says little to a reader: name who approved, in which role, beside it.
  const approvals = new Map(history.flatMap((c) => (c.kind === 'approved' ? [[c.change_id, c] as const] : [])));
  const approvalOf = (id: string | null) => {
    if (id === null) return 'none (shadow)';
    const approval = approvals.get(id);
    return approval === undefined ? id : `${approval.actor} (${approval.role}), ${id}`;
  };
  const rows = history.map((c) => {
    const approval = c.kind === 'rollout' || c.kind === 'promoted' ? approvalOf(c.approval_id) : '';
    const evidence =
      c.kind === 'promoted'
        ? c.criteria
            .map((r) => `${r.criterion}: ${r.observed} (required ${r.required})${r.passed ? '' : ' FAILED'}`)
            .join('; ')
        : c.kind === 'rollback' && c.evidence !== null
          ? JSON.stringify(c.evidence)
          : '';
    return (
      `<tr data-kind="${c.kind}"><td>${esc(iso(c.at))}</td><td>${esc(c.kind)}</td><td>${esc(c.version)}</td>` +
      `<td>${esc(describeChange(c))}</td><td>${esc(c.actor)}</td><td>${esc(c.reason)}</td>` +
      `<td class="sha">${esc(approval)}</td><td>${esc(evidence)}</td></tr>`
    );
  });
  return (
    '<table class="history"><thead><tr><th>at (UTC)</th><th>change</th><th>version</th><th>what</th><th>actor</th>' +
    '<th>reason</th><th>approval</th><th>evidence</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>`
  );
}
