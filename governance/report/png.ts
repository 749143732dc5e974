/**
 * PNGs of the report's charts, rasterised from the very SVG strings the page inlines (charts.ts) by resvg (a Rust SVG
 * renderer shipped as a prebuilt native module: no browser, no network). Text uses the system's fonts; where none is
 * installed the shapes still render.
 */
import { Resvg } from '@resvg/resvg-js';
import type { Chart } from './charts.ts';

/**
 * One chart as a PNG of the chart's own size (width x height pixels).
 *
 * @example
 * writeFileSync(`${chart.id}.png`, chartPng(chart));
 */
export function chartPng(chart: Chart): Buffer {
  const resvg = new Resvg(chart.svg, {
    fitTo: { mode: 'original' },
    background: '#ffffff',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
