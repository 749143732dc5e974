/**
 * `npm start`'s chain, embedded and small: a small fleet through the in-process gateway (mTLS, signed events, its
 * fault drills), the vitals pipeline on what the gateway accepted, the alerts pipeline chained on what it wrote plus
 * the simulator's scripted ward. The gateway's records equal the fleet's truth; what it accepted is exactly what the
 * pipeline consumed, and the pipeline's emitted and dead letters are the truth of those events; the ward's alerts,
 * counted from ClickHouse as the summary prints them, equal its truth by rule and band; the --json line keeps every
 * vitals key and adds `gateway` and `alerts`.
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
import { gatewayJson, linksJson, runJson, summariseLink } from '../summary.ts';
import { wardInputs, wardTruth } from './demo.ts';

const pipeline = (name: string) => fileURLToPath(new URL(`../../pipelines/${name}.ts`, import.meta.url));

describe('vigil demo: the fleet through the gateway, vitals, then alerts chained on its topics and the scripted ward', () => {
  it('accounts for every event from device to alert, and adds gateway and alerts keys to --json without touching the others', async () => {
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
          gateway: {},
          log: silentLogger,
          downstream: [{ definition: alerts, more: wardInputs }],
        },
        async ({ result, store, downstream, gateway }) => {
          // The gateway: its rejection records and what it accepted are the fleet's truth, drills included.
          expect(gateway?.matchesTruth).toBe(true);
          expect(gateway?.rejected).toEqual(gateway?.truth.rejected);
          for (const reason of ['NONCE_REPLAYED', 'MALFORMED', 'CERT_EXPIRED', 'DEVICE_REVOKED', 'RATE_LIMITED']) {
            expect(gateway?.rejected[reason], reason).toBeGreaterThan(0);
          }
          // Everything the gateway accepted, and nothing else, reached the pipeline: each once (no duplicates left for
          // dedupe), the valid ones emitted, the rest dead letters with the reason the truth gives.
          const v = result.accounting;
          expect(v.consumed).toBe(gateway?.accepted);
          expect(v.consumed).toBe(v.emitted + v.deadLettered + v.duplicates);
          expect(v.duplicates).toBe(0);
          expect(v.emitted).toBe(gateway?.truth.worker.valid);
          expect(result.deadLetters).toEqual(gateway?.truth.worker.deadLetters);

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

          const main = runJson(vitals, result, store.location, gateway);
          const line = linksJson(main, [link]) as Record<string, unknown> & { alerts: Record<string, unknown> };
          for (const [k, v] of Object.entries(main)) expect(line[k]).toEqual(v);
          for (const key of ['consumed', 'emitted', 'dead_lettered', 'duplicates', 'dlq', 'stored', 'balanced']) {
            expect(line).toHaveProperty(key);
          }
          expect(line.gateway).toEqual(gatewayJson(gateway!));
          expect(line.gateway).toMatchObject({ accepted: v.consumed, matches_truth: true });
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
  }, 180_000);
});
