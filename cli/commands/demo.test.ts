/**
 * `npm start`'s chain, embedded and small: the vitals pipeline over a small fleet, the alerts pipeline chained on what
 * it wrote plus the simulator's scripted ward. The ward's alerts, counted from ClickHouse as the summary prints them,
 * equal its truth by rule and band; the --json line keeps every vitals key and adds `alerts`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TOPICS } from '../../runtime/endpoints.ts';
import { silentLogger } from '../../runtime/log.ts';
import { runEmbeddedPipeline } from '../../runtime/runners/embedded-run.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { alertScenarioTruth } from '../../simulator/alerts.ts';
import { linksJson, runJson, summariseLink } from '../summary.ts';
import { wardInputs, wardTruth } from './demo.ts';

const pipeline = (name: string) => fileURLToPath(new URL(`../../pipelines/${name}.ts`, import.meta.url));

describe('vigil demo: vitals, then alerts chained on its topics and the scripted ward', () => {
  it('raises the ward alerts its truth expects, and adds an alerts key to --json without touching the others', async () => {
    const vitals = await loadPipeline(pipeline('vitals'));
    const alerts = await loadPipeline(pipeline('alerts'));
    const dir = await mkdtemp(join(tmpdir(), 'vigil-demo-'));
    try {
      await runEmbeddedPipeline(
        vitals,
        {
          dataDir: dir,
          append: false,
          batchSize: 500,
          simulation: { devices: 40, events: 3000 },
          log: silentLogger,
          downstream: [{ definition: alerts, more: wardInputs }],
        },
        async ({ result, store, downstream }) => {
          expect(downstream).toHaveLength(1);
          const link = await summariseLink(downstream[0]!, store, wardTruth());
          // What the vitals run wrote to the two topics is what the alerts run read from them.
          expect(link.report.chained).toEqual({
            [TOPICS.inferences]: result.stored.inferences,
            [TOPICS.normalised]: result.stored.normalised_events,
          });
          const truth = alertScenarioTruth();
          const ward = truth.records + truth.inferences.live + truth.inferences.shadow;
          const a = link.report.result.accounting;
          expect(a.consumed).toBe(ward + (result.stored.inferences ?? 0) + (result.stored.normalised_events ?? 0));
          expect(a.consumed).toBe(a.emitted + a.deadLettered + a.duplicates);
          expect(a.deadLettered).toBe(0);

          const scenario = link.alerts?.scenario;
          expect(scenario?.raised).toEqual(wardTruth().expected);
          expect(scenario?.matches_truth).toBe(true);
          expect(scenario?.suppressed).toBeGreaterThan(0);

          const main = runJson(vitals, result, store.location);
          const line = linksJson(main, [link]) as Record<string, unknown> & { alerts: Record<string, unknown> };
          for (const [k, v] of Object.entries(main)) expect(line[k]).toEqual(v);
          expect(line.alerts).toMatchObject({ pipeline: 'alerts@1', balanced: true, suppressed: expect.any(Number) });
          for (const [rule, bands] of Object.entries(wardTruth().expected)) {
            for (const [band, n] of Object.entries(bands)) {
              expect(
                (line.alerts.raised as Record<string, Record<string, number>>)[rule]?.[band],
              ).toBeGreaterThanOrEqual(n);
            }
          }
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
