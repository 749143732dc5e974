/**
 * `vigil models report` output: the page (index.html) and one PNG per chart (<chart id>.png) written into a folder.
 * The figures come from data.ts (loadReportData); this module only lays them out and writes files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderReportHtml, reportCharts } from './html.ts';
import { chartPng } from './png.ts';
import type { ReportData } from './types.ts';

export interface WrittenReport {
  readonly html: string;
  readonly pngs: readonly {
    readonly id: string;
    readonly path: string;
    readonly width: number;
    readonly height: number;
  }[];
}

/**
 * @example
 * const written = await writeReport(await loadReportData(store, log, { model: 'deterioration' }), 'reports/models/deterioration');
 * written.html; // 'reports/models/deterioration/index.html'
 */
export async function writeReport(data: ReportData, dir: string): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const charts = reportCharts(data);
  const pngs: WrittenReport['pngs'][number][] = [];
  for (const chart of charts) {
    const path = join(dir, `${chart.id}.png`);
    await writeFile(path, chartPng(chart));
    pngs.push({ id: chart.id, path, width: chart.width, height: chart.height });
  }
  const html = join(dir, 'index.html');
  await writeFile(html, renderReportHtml(data, charts));
  return { html, pngs };
}
