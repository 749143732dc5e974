/**
 * The model report's charts as hand-written SVG strings: pure functions of the report's figures (types.ts), no I/O and
 * no dependency. The same string is inlined in the HTML page and rasterised to a PNG (png.ts), so the page and the
 * images never disagree.
 *
 * Every chart's root <svg> carries `id="chart-<id>"` and `data-chart="<kind>"`; every plotted element carries its
 * figures as data- attributes (a reliability point its bin, count, mean predicted and observed rate), so a test — or a
 * reader with the browser's inspector — can check a number against where it was drawn.
 */
import type { CalibrationRow, DriftSeries, ReliabilityBin, RolloutSpan, ScoreHistogram } from './types.ts';

export type ChartKind = 'reliability' | 'scores' | 'drift' | 'rollouts';

export interface Chart {
  /** Unique within a report; also the PNG's file name (`<id>.png`). */
  readonly id: string;
  readonly kind: ChartKind;
  readonly title: string;
  readonly width: number;
  readonly height: number;
  readonly svg: string;
}

/** A moment to mark on a time axis (a rollout, rollback or promotion of the version). */
export interface TimeMarker {
  readonly at: number;
  readonly label: string;
}

// --- shared -----------------------------------------------------------------------------------------------------------

const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';
const SERIES_COLOURS = ['#1f77b4', '#2ca02c', '#9467bd', '#17becf', '#8c564b', '#e377c2', '#bcbd22', '#ff7f0e'];
export const MODE_COLOURS: Readonly<Record<string, string>> = {
  live: '#1b7837',
  canary: '#e08214',
  shadow: '#7b3294',
};

export function colourOf(index: number): string {
  return SERIES_COLOURS[index % SERIES_COLOURS.length]!;
}

/** Cohort colours: the rollout modes keep their own colour everywhere; other cohorts take the palette in order. */
function cohortColour(by: 'rollout' | 'site', cohort: string, index: number): string {
  return by === 'rollout' ? (MODE_COLOURS[cohort] ?? colourOf(index)) : colourOf(index);
}

export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** Pixel coordinates to 2 decimals: short paths, and the numbers tests compare stay exact. */
function px(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** A figure as a data- attribute value (up to 6 decimals). */
function figure(value: number | null): string {
  return value === null ? '' : String(Math.round(value * 1e6) / 1e6);
}

/** A name usable in an id: letters, digits, '.', '_' and '-' (anything else becomes '_'). */
export function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_');
}

function svgOpen(id: string, kind: ChartKind, width: number, height: number, extra = ''): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" id="chart-${escapeXml(id)}" data-chart="${kind}"${extra} ` +
    `width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="11">` +
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`
  );
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${px(x)}" y="${px(y)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(content)}</text>`;
}

function title(width: number, content: string): string {
  return text(width / 2, 20, content, 'text-anchor="middle" font-size="13" font-weight="bold"');
}

/** A linear scale [d0, d1] -> [r0, r1]. */
export function linear(d0: number, d1: number, r0: number, r1: number): (value: number) => number {
  const span = d1 - d0 === 0 ? 1 : d1 - d0;
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}

interface Frame {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** Axes with grid lines at the given ticks. */
function axes(
  frame: Frame,
  x: (v: number) => number,
  y: (v: number) => number,
  xTicks: readonly { value: number; label: string }[],
  yTicks: readonly { value: number; label: string }[],
  xLabel: string,
  yLabel: string,
): string {
  const bottom = frame.top + frame.height;
  const right = frame.left + frame.width;
  const parts: string[] = [`<g class="axes" stroke="#cccccc" stroke-width="1">`];
  for (const t of xTicks)
    parts.push(`<line x1="${px(x(t.value))}" y1="${frame.top}" x2="${px(x(t.value))}" y2="${bottom}"/>`);
  for (const t of yTicks)
    parts.push(`<line x1="${frame.left}" y1="${px(y(t.value))}" x2="${right}" y2="${px(y(t.value))}"/>`);
  parts.push(
    `<rect x="${frame.left}" y="${frame.top}" width="${frame.width}" height="${frame.height}" fill="none" stroke="#444444"/>`,
    '</g>',
  );
  for (const t of xTicks) parts.push(text(x(t.value), bottom + 14, t.label, 'text-anchor="middle" fill="#333333"'));
  for (const t of yTicks) parts.push(text(frame.left - 6, y(t.value) + 4, t.label, 'text-anchor="end" fill="#333333"'));
  if (xLabel !== '') parts.push(text(frame.left + frame.width / 2, bottom + 32, xLabel, 'text-anchor="middle"'));
  const midY = frame.top + frame.height / 2;
  parts.push(
    `<text x="${px(frame.left - 42)}" y="${px(midY)}" text-anchor="middle" transform="rotate(-90 ${px(frame.left - 42)} ${px(midY)})">${escapeXml(yLabel)}</text>`,
  );
  return parts.join('');
}

function ticks(
  d0: number,
  d1: number,
  count: number,
  format: (v: number) => string,
): { value: number; label: string }[] {
  const out: { value: number; label: string }[] = [];
  for (let i = 0; i <= count; i++) {
    const value = d0 + ((d1 - d0) * i) / count;
    out.push({ value, label: format(value) });
  }
  return out;
}

function legend(x: number, y: number, items: readonly { colour: string; label: string }[]): string {
  return items
    .map(
      (item, i) =>
        `<g class="legend-item"><rect x="${px(x)}" y="${px(y + i * 16 - 9)}" width="10" height="10" fill="${item.colour}"/>` +
        `${text(x + 14, y + i * 16, item.label)}</g>`,
    )
    .join('');
}

const utcTime = (ms: number) => new Date(ms).toISOString().slice(5, 16).replace('T', ' ');

// --- reliability diagram ----------------------------------------------------------------------------------------------

/** The reliability diagram's plot frame: predicted 0..1 across 400 px from x=60, observed 0..1 up 300 px from y=340. */
export const RELIABILITY_FRAME: Frame = { left: 60, top: 40, width: 400, height: 300 };
const RELIABILITY_COUNTS = { top: 385, height: 45 };

/**
 * One version's reliability diagram: per rollout mode, the 15 bins' mean predicted probability (x) against the
 * observed event rate (y), each point sized by its count, joined in bin order; the diagonal is perfect calibration.
 * Below, the bins' counts (all rollouts together) as bars.
 *
 * @example
 * const chart = reliabilityChart('2.0.0', report.calibration.filter((r) => r.version === '2.0.0'));
 * chart.svg; // '<svg ... id="chart-reliability-2.0.0" data-chart="reliability" ...'
 */
export function reliabilityChart(version: string, rows: readonly CalibrationRow[]): Chart {
  const width = 480;
  const height = 470;
  const f = RELIABILITY_FRAME;
  const x = linear(0, 1, f.left, f.left + f.width);
  const y = linear(0, 1, f.top + f.height, f.top);
  const fraction = (v: number) => v.toFixed(1);
  const id = `reliability-${slug(version)}`;
  const parts = [
    svgOpen(id, 'reliability', width, height, ` data-version="${escapeXml(version)}"`),
    title(width, `Reliability: ${version}`),
    axes(f, x, y, ticks(0, 1, 5, fraction), ticks(0, 1, 5, fraction), '', 'observed event rate'),
    `<line class="diagonal" x1="${px(x(0))}" y1="${px(y(0))}" x2="${px(x(1))}" y2="${px(y(1))}" stroke="#888888" stroke-dasharray="4 3"/>`,
  ];
  const maxN = Math.max(1, ...rows.flatMap((r) => r.metrics.bins.map((b) => b.n)));
  rows.forEach((row, index) => {
    const colour = MODE_COLOURS[row.rollout] ?? colourOf(index);
    const plotted = row.metrics.bins.filter(
      (b): b is ReliabilityBin & { mean_predicted: number; observed_rate: number } =>
        b.n > 0 && b.mean_predicted !== null && b.observed_rate !== null,
    );
    const d = plotted
      .map((b, i) => `${i === 0 ? 'M' : 'L'}${px(x(b.mean_predicted))} ${px(y(b.observed_rate))}`)
      .join(' ');
    parts.push(`<g class="series" data-rollout="${escapeXml(row.rollout)}" data-n="${row.metrics.n}">`);
    if (d !== '')
      parts.push(`<path class="reliability-line" d="${d}" fill="none" stroke="${colour}" stroke-width="1.5"/>`);
    for (const b of plotted) {
      const r = 2.5 + 4.5 * Math.sqrt(b.n / maxN);
      parts.push(
        `<circle class="bin" cx="${px(x(b.mean_predicted))}" cy="${px(y(b.observed_rate))}" r="${px(r)}" fill="${colour}" ` +
          `fill-opacity="0.75" data-lo="${figure(b.lo)}" data-hi="${figure(b.hi)}" data-n="${b.n}" ` +
          `data-mean-predicted="${figure(b.mean_predicted)}" data-observed-rate="${figure(b.observed_rate)}">` +
          `<title>${escapeXml(`${row.rollout} [${b.lo.toFixed(3)}, ${b.hi.toFixed(3)}): n=${b.n}, predicted ${b.mean_predicted.toFixed(3)}, observed ${b.observed_rate.toFixed(3)}`)}</title></circle>`,
      );
    }
    parts.push('</g>');
  });
  // Counts per bin over every rollout of the version: where the points rest on few inferences.
  const totals = new Map<string, { lo: number; hi: number; n: number }>();
  for (const row of rows) {
    for (const b of row.metrics.bins) {
      const key = `${b.lo}|${b.hi}`;
      const held = totals.get(key);
      totals.set(key, { lo: b.lo, hi: b.hi, n: (held?.n ?? 0) + b.n });
    }
  }
  const maxTotal = Math.max(1, ...[...totals.values()].map((t) => t.n));
  const c = RELIABILITY_COUNTS;
  parts.push(`<g class="counts">`);
  parts.push(text(f.left - 6, c.top + c.height, '0', 'text-anchor="end" fill="#333333"'));
  parts.push(text(f.left - 6, c.top + 8, String(maxTotal), 'text-anchor="end" fill="#333333"'));
  for (const t of totals.values()) {
    const h = (t.n / maxTotal) * c.height;
    parts.push(
      `<rect class="count" x="${px(x(t.lo) + 0.5)}" y="${px(c.top + c.height - h)}" width="${px(Math.max(0, x(t.hi) - x(t.lo) - 1))}" ` +
        `height="${px(h)}" fill="#999999" data-lo="${figure(t.lo)}" data-n="${t.n}"/>`,
    );
  }
  parts.push('</g>');
  parts.push(
    text(
      f.left + f.width / 2,
      height - 12,
      'mean predicted probability (bars: inferences per bin)',
      'text-anchor="middle"',
    ),
  );
  parts.push(
    legend(
      f.left + 10,
      f.top + 16,
      rows.map((r, i) => ({
        colour: MODE_COLOURS[r.rollout] ?? colourOf(i),
        label: `${r.rollout} (n=${r.metrics.n})`,
      })),
    ),
  );
  parts.push('</svg>');
  return { id, kind: 'reliability', title: `Reliability diagram, ${version}`, width, height, svg: parts.join('') };
}

// --- score distributions ----------------------------------------------------------------------------------------------

export const SCORES_FRAME: Frame = { left: 60, top: 40, width: 400, height: 220 };

/**
 * Score distributions of one version split by one cohort dimension: one step line per cohort, as shares of the
 * cohort's inferences (so a 10% canary and the live population compare), its count in the legend.
 *
 * @example
 * const chart = scoresChart('2.0.0', 'site', report.scores.filter((s) => s.version === '2.0.0' && s.by === 'site'));
 */
export function scoresChart(version: string, by: 'rollout' | 'site', histograms: readonly ScoreHistogram[]): Chart {
  // The legend sits right of the plot, one line per cohort: a tall legend makes the chart taller, never overlaps it.
  const width = 640;
  const height = Math.max(310, SCORES_FRAME.top + 16 * histograms.length + 10);
  const f = SCORES_FRAME;
  const first = histograms[0];
  const lo = first?.lo ?? 0;
  const binWidth = first?.width ?? 1;
  const bins = Math.max(1, ...histograms.map((h) => h.counts.length));
  const hi = lo + binWidth * bins;
  const shares = histograms.map((h) => {
    const total = h.counts.reduce((a, b) => a + b, 0);
    return { h, total, shares: h.counts.map((c) => (total > 0 ? c / total : 0)) };
  });
  const top = Math.max(0.05, ...shares.flatMap((s) => s.shares)) * 1.1;
  const x = linear(lo, hi, f.left, f.left + f.width);
  const y = linear(0, top, f.top + f.height, f.top);
  const id = `scores-${by}-${slug(version)}`;
  const xFormat = (v: number) => (binWidth >= 1 ? String(Math.round(v)) : v.toFixed(1));
  const parts = [
    svgOpen(id, 'scores', width, height, ` data-version="${escapeXml(version)}" data-by="${by}"`),
    title(width, `Scores by ${by}: ${version}`),
    axes(
      f,
      x,
      y,
      ticks(lo, hi, 5, xFormat),
      ticks(0, top, 4, (v) => `${Math.round(v * 100)}%`),
      'score',
      'share of inferences',
    ),
  ];
  shares.forEach(({ h, total, shares: s }, index) => {
    const colour = cohortColour(by, h.cohort, index);
    const steps: string[] = [`M${px(x(lo))} ${px(y(0))}`];
    s.forEach((share, i) => {
      steps.push(`L${px(x(lo + i * binWidth))} ${px(y(share))}`, `L${px(x(lo + (i + 1) * binWidth))} ${px(y(share))}`);
    });
    steps.push(`L${px(x(lo + s.length * binWidth))} ${px(y(0))}`);
    parts.push(
      `<path class="distribution" d="${steps.join(' ')}" fill="none" stroke="${colour}" stroke-width="1.5" ` +
        `data-cohort="${escapeXml(h.cohort)}" data-n="${total}" data-counts="${h.counts.join(',')}"/>`,
    );
  });
  parts.push(
    legend(
      f.left + f.width + 14,
      f.top + 10,
      shares.map(({ h, total }, i) => ({ colour: cohortColour(by, h.cohort, i), label: `${h.cohort} (n=${total})` })),
    ),
  );
  parts.push('</svg>');
  return { id, kind: 'scores', title: `Score distribution by ${by}, ${version}`, width, height, svg: parts.join('') };
}

// --- drift over time --------------------------------------------------------------------------------------------------

export const DRIFT_FRAME: Frame = { left: 60, top: 40, width: 520, height: 220 };

/**
 * Drift of one version over time: per feature, the largest Jensen-Shannon distance of the window over its firmware x
 * site groups; the manifest's threshold dashed; a drifted point ringed in red, a window whose data set drifted marked
 * red above the plot; the version's rollouts, rollbacks and promotions as vertical lines.
 *
 * @example
 * const chart = driftChart(report.drift[0], [{ at: rollback.at, label: 'rollback' }]);
 */
export function driftChart(series: DriftSeries, markers: readonly TimeMarker[] = []): Chart {
  const width = 720;
  const height = 320;
  const f = DRIFT_FRAME;
  const times = series.points.map((p) => p.window_start);
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (!Number.isFinite(t0)) [t0, t1] = [0, 3_600_000];
  if (t0 === t1) [t0, t1] = [t0 - 1_800_000, t1 + 1_800_000];
  const maxJs = Math.max(0, ...series.points.map((p) => p.js_distance));
  const top = Math.min(1, Math.max(0.1, maxJs * 1.15, (series.js_threshold ?? 0) * 1.3));
  const x = linear(t0, t1, f.left, f.left + f.width);
  const y = linear(0, top, f.top + f.height, f.top);
  const id = `drift-${slug(series.version)}`;
  const parts = [
    svgOpen(id, 'drift', width, height, ` data-version="${escapeXml(series.version)}"`),
    title(width, `Drift over time: ${series.version}`),
    axes(
      f,
      x,
      y,
      ticks(t0, t1, 4, utcTime),
      ticks(0, top, 4, (v) => v.toFixed(2)),
      'window start (UTC)',
      'JS distance',
    ),
  ];
  if (series.js_threshold !== null) {
    parts.push(
      `<line class="threshold" x1="${f.left}" y1="${px(y(series.js_threshold))}" x2="${f.left + f.width}" y2="${px(y(series.js_threshold))}" ` +
        `stroke="#d62728" stroke-dasharray="6 4" data-threshold="${figure(series.js_threshold)}"/>`,
      text(
        f.left + f.width - 4,
        y(series.js_threshold) - 4,
        `manifest threshold ${series.js_threshold}`,
        'text-anchor="end" fill="#d62728" font-size="10"',
      ),
    );
  }
  for (const window of series.dataset_drifted_windows) {
    parts.push(
      `<rect class="dataset-drifted" x="${px(x(window) - 3)}" y="${f.top - 8}" width="6" height="6" fill="#d62728" data-window="${window}"/>`,
    );
  }
  for (const marker of markers) {
    if (marker.at < t0 || marker.at > t1) continue;
    parts.push(
      `<g class="marker"><line x1="${px(x(marker.at))}" y1="${f.top}" x2="${px(x(marker.at))}" y2="${f.top + f.height}" stroke="#555555" stroke-dasharray="2 2"/>` +
        `${text(x(marker.at) + 3, f.top + 12, marker.label, 'fill="#555555" font-size="10"')}</g>`,
    );
  }
  const features = [...new Set(series.points.map((p) => p.feature))].sort();
  features.forEach((feature, index) => {
    const points = series.points.filter((p) => p.feature === feature).sort((a, b) => a.window_start - b.window_start);
    const colour = colourOf(index);
    const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(x(p.window_start))} ${px(y(p.js_distance))}`).join(' ');
    parts.push(`<g class="feature" data-feature="${escapeXml(feature)}">`);
    parts.push(`<path class="drift-line" d="${d}" fill="none" stroke="${colour}" stroke-width="1.5"/>`);
    for (const p of points.filter((q) => q.drifted)) {
      parts.push(
        `<circle class="drifted" cx="${px(x(p.window_start))}" cy="${px(y(p.js_distance))}" r="4" fill="none" stroke="#d62728" stroke-width="1.5" ` +
          `data-window="${p.window_start}" data-js="${figure(p.js_distance)}"/>`,
      );
    }
    parts.push('</g>');
  });
  parts.push(
    legend(
      f.left + f.width + 12,
      f.top + 10,
      features.map((feature, i) => ({ colour: colourOf(i), label: feature })),
    ),
  );
  parts.push('</svg>');
  return { id, kind: 'drift', title: `Drift over time, ${series.version}`, width, height, svg: parts.join('') };
}

// --- rollout timeline -------------------------------------------------------------------------------------------------

/**
 * The rollout history as lanes, one per version: a bar for each stretch the version ran live, canary or shadow (from
 * `rolloutSpans`), up to `now` for what still runs.
 *
 * @example
 * const chart = rolloutsChart(rolloutSpans(report.history), report.generated_at);
 */
export function rolloutsChart(spans: readonly RolloutSpan[], now: number): Chart {
  const versions = [...new Set(spans.map((s) => s.version))];
  const lane = 30;
  const f: Frame = { left: 90, top: 40, width: 590, height: Math.max(1, versions.length) * lane };
  const width = 720;
  const height = f.top + f.height + 60;
  const starts = spans.map((s) => s.from);
  let t0 = Math.min(...starts);
  let t1 = Math.max(now, ...spans.map((s) => s.to ?? now));
  if (!Number.isFinite(t0)) [t0, t1] = [now - 3_600_000, now];
  if (t0 >= t1) t1 = t0 + 3_600_000;
  const x = linear(t0, t1, f.left, f.left + f.width);
  const parts = [svgOpen('rollouts', 'rollouts', width, height), title(width, 'Rollout history')];
  parts.push(`<rect x="${f.left}" y="${f.top}" width="${f.width}" height="${f.height}" fill="none" stroke="#444444"/>`);
  for (const t of ticks(t0, t1, 4, utcTime)) {
    parts.push(
      `<line x1="${px(x(t.value))}" y1="${f.top}" x2="${px(x(t.value))}" y2="${f.top + f.height}" stroke="#dddddd"/>`,
    );
    parts.push(text(x(t.value), f.top + f.height + 14, t.label, 'text-anchor="middle" fill="#333333"'));
  }
  versions.forEach((version, i) => {
    const laneTop = f.top + i * lane;
    parts.push(text(f.left - 6, laneTop + lane / 2 + 4, version, 'text-anchor="end"'));
    for (const span of spans.filter((s) => s.version === version)) {
      const x0 = x(span.from);
      const x1 = x(span.to ?? now);
      parts.push(
        `<rect class="span" x="${px(x0)}" y="${px(laneTop + 6)}" width="${px(Math.max(2, x1 - x0))}" height="${lane - 12}" ` +
          `fill="${MODE_COLOURS[span.mode] ?? '#999999'}" fill-opacity="0.8" data-version="${escapeXml(version)}" ` +
          `data-mode="${span.mode}" data-from="${span.from}" data-to="${span.to ?? ''}">` +
          `<title>${escapeXml(`${version} ${span.mode}${span.detail ? ` ${span.detail}` : ''}`)}</title></rect>`,
      );
    }
  });
  const modes = ['live', 'canary', 'shadow'];
  modes.forEach((mode, i) => {
    const lx = f.left + i * 90;
    const ly = f.top + f.height + 36;
    parts.push(
      `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${MODE_COLOURS[mode]}"/>${text(lx + 14, ly, mode)}`,
    );
  });
  parts.push('</svg>');
  return { id: 'rollouts', kind: 'rollouts', title: 'Rollout history', width, height, svg: parts.join('') };
}
