/**
 * The report page in a real browser: headless Chromium (Debian's `chromium`, installed by CI) loads the page from
 * disk and lays it out. A probe script, added to a copy of the page only for this test, measures what the browser
 * drew — each chart's box, the length of its paths, its points — and the test reads the measurements back from the
 * dumped DOM. A screenshot of the page itself is a valid PNG of the window's size. Skipped, saying so, only when no
 * chromium is on the PATH.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCharts } from './html.ts';
import { writeReport } from './index.ts';
import { fixtureReport, pngHeader } from './report.fixture.ts';

const run = promisify(execFile);

function findChromium(): string | null {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim() || null;
    } catch {}
  }
  return null;
}

const chromium = findChromium();
if (chromium === null) {
  console.warn('report browser test skipped: no `chromium` on the PATH (Debian package `chromium`; CI installs it)');
}

/** Runs in the page: what the browser laid out for every chart. */
const PROBE = `<script>
const charts = [...document.querySelectorAll('svg[data-chart]')].map((svg) => {
  const box = svg.getBoundingClientRect();
  const paths = [...svg.querySelectorAll('path')];
  return {
    id: svg.id,
    kind: svg.dataset.chart,
    width: Math.round(box.width),
    height: Math.round(box.height),
    paths: paths.length,
    drawnPaths: paths.filter((p) => p.getTotalLength() > 0).length,
    points: svg.querySelectorAll('circle.bin').length,
    spans: svg.querySelectorAll('rect.span').length,
  };
});
const probe = document.createElement('pre');
probe.id = 'probe';
probe.textContent = JSON.stringify({ title: document.title, charts });
document.body.append(probe);
</script>`;

interface Probe {
  readonly title: string;
  readonly charts: readonly {
    id: string;
    kind: string;
    width: number;
    height: number;
    paths: number;
    drawnPaths: number;
    points: number;
    spans: number;
  }[];
}

describe.skipIf(chromium === null)('the report page in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-report-browser-'));
  const data = fixtureReport();
  const browserArgs = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    `--user-data-dir=${join(dir, 'profile')}`,
  ];
  let probe: Probe;

  beforeAll(async () => {
    const written = await writeReport(data, join(dir, 'out'));
    const page = readFileSync(written.html, 'utf8');
    const probed = join(dir, 'probed.html');
    writeFileSync(probed, page.replace('</body>', `${PROBE}</body>`));
    const { stdout } = await run(chromium!, [...browserArgs, '--dump-dom', pathToFileURL(probed).href], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    });
    const text = /<pre id="probe">(.*?)<\/pre>/s.exec(stdout)?.[1];
    if (text === undefined) throw new Error(`no probe in Chromium's DOM dump: ${stdout.slice(0, 500)}`);
    probe = JSON.parse(
      text.replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&'),
    );
  }, 180_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('renders every chart at its size, with every path drawn (non-zero length)', () => {
    expect(probe.title).toBe('Model report: deterioration');
    const expected = reportCharts(data);
    expect(probe.charts.map((c) => c.id)).toEqual(expected.map((c) => `chart-${c.id}`));
    for (const [i, chart] of probe.charts.entries()) {
      expect([chart.width, chart.height]).toEqual([expected[i]!.width, expected[i]!.height]);
      // Every chart plots lines (paths) except the rollout timeline, which plots stretches (rects).
      expect(chart.kind === 'rollouts' ? chart.spans : chart.paths).toBeGreaterThan(0);
      expect(chart.drawnPaths).toBe(chart.paths);
    }
  });

  it('draws the reliability points, the score lines and the rollout stretches', () => {
    const byId = new Map(probe.charts.map((c) => [c.id, c]));
    expect(byId.get('chart-reliability-1.0.0')?.points).toBe(3);
    expect(byId.get('chart-scores-site-1.0.0')?.drawnPaths).toBe(2);
    expect(byId.get('chart-drift-1.0.0')?.drawnPaths).toBe(2);
    expect(byId.get('chart-rollouts')?.spans).toBe(3);
  });

  it('takes a screenshot of the page as it is (no probe): a PNG of the window size', async () => {
    const shot = join(dir, 'page.png');
    const page = pathToFileURL(join(dir, 'out', 'index.html')).href;
    await run(
      chromium!,
      [...browserArgs, `--screenshot=${shot}`, '--window-size=1280,2000', '--hide-scrollbars', page],
      {
        timeout: 120_000,
      },
    );
    expect(pngHeader(readFileSync(shot))).toEqual({ png: true, width: 1280, height: 2000 });
  }, 180_000);
});
