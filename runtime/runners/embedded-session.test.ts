/**
 * The embedded session keeps the operators' reference data landed as routing changes: a model version first routed
 * while the session runs (deterioration@1.1.0 put in canary after the first batch, on a real registry folded from the
 * governance service's records) gets its drift reference bins in chdb before the batches it is measured on, beside
 * the versions landed at start; landing the same references again leaves what a FINAL reader sees unchanged.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileControlLog } from '../../adapters/file/control-log.ts';
import { DEFAULT_MODELS_ROOT } from '../../adapters/onnx/index.ts';
import { parseModelChange } from '../../governance/changes.ts';
import { readModelRegistry } from '../../governance/directory.ts';
import { addModel, approveModel, type GovernanceContext, rolloutModel } from '../../governance/service.ts';
import type { ModelChange } from '../../governance/types.ts';
import vitals from '../../pipelines/vitals.ts';
import type { Envelope } from '../../schemas/types.ts';
import { ManualClock, systemClock } from '../clock.ts';
import type { SourceBatch } from '../engine.ts';
import { silentLogger } from '../log.ts';
import type { ModelRollouts } from '../models.ts';
import { runEmbeddedSession, withEmbeddedStore } from './embedded-session.ts';
import { simulatorSource } from './embedded-sources.ts';
import { acceptUngated } from './ungated.ts';

const SIMULATION = {
  devices: 200,
  events: 6_000,
  seed: 'embedded-session-references',
  biasedFirmware: null,
  duplicateRate: 0,
  replayRate: 0,
  malformedRate: 0,
} as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-embedded-session-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('runEmbeddedSession reference tables', () => {
  it('a version routed mid-run gets its reference rows; re-landing changes nothing a FINAL reader sees', async () => {
    const log = new FileControlLog<ModelChange>(join(dir, 'control', 'model-rollouts.jsonl'), {
      parse: parseModelChange,
    });
    const ctx: GovernanceContext = {
      log,
      clock: new ManualClock(Date.UTC(2026, 0, 5, 5)),
      modelsRoot: join(dir, 'models'),
    };
    const by = { actor: 'ml-lead', reason: 'reference landing test' };
    await addModel(ctx, join(DEFAULT_MODELS_ROOT, 'news2', '1.0.0'), by); // in the store: its pipeline default runs
    for (const version of ['1.0.0', '1.1.0']) {
      await addModel(ctx, join(DEFAULT_MODELS_ROOT, 'deterioration', version), by);
      await approveModel(ctx, 'deterioration', version, { actor: 'dr-safety', role: 'cso', reason: 'ok' });
    }
    await rolloutModel(ctx, 'deterioration', '1.0.0', { ...by, mode: 'live' });
    // The registry the session routes by, folded here so the change lands between two batches, deterministically.
    const registry = await readModelRegistry(log);
    const rollouts: ModelRollouts = { current: () => registry.routingTable() };

    let batches = 0;
    const routedAfterFirstBatch = async function* (
      source: AsyncIterable<SourceBatch<Envelope>>,
    ): AsyncGenerator<SourceBatch<Envelope>> {
      for await (const batch of source) {
        if (batches++ === 1)
          registry.apply(await rolloutModel(ctx, 'deterioration', '1.1.0', { ...by, mode: 'canary', percent: 50 }));
        yield batch;
      }
    };

    try {
      await withEmbeddedStore({ dataDir: join(dir, 'clickhouse'), log: silentLogger }, async (store) => {
        const source = simulatorSource({ simulation: SIMULATION, clock: systemClock, batchSize: 1000 });
        await runEmbeddedSession(acceptUngated(vitals), routedAfterFirstBatch(source), store, silentLogger, {
          rollouts,
          modelsRoot: ctx.modelsRoot,
        });
        expect(batches).toBeGreaterThan(2);
        // FINAL: the versions landed at start were landed again on the routing change, and still read one row each.
        const versions = async (final: boolean) =>
          Object.fromEntries(
            (
              await store.query(
                `SELECT model_name || '@' || model_version AS v, count() AS n, uniqExact(feature) AS features
                 FROM drift_reference_bins ${final ? 'FINAL' : ''} GROUP BY v ORDER BY v`,
              )
            ).map((r) => [String(r['v']), { rows: Number(r['n']), features: Number(r['features']) }]),
          );
        const final = await versions(true);
        // The canary routed mid-run has its reference, one row per feature, beside the versions landed at start.
        expect(Object.keys(final)).toEqual(['deterioration@1.0.0', 'deterioration@1.1.0', 'news2@1.0.0']);
        for (const v of Object.values(final)) expect(v.rows).toBe(v.features);
        expect(final['deterioration@1.1.0']!.features).toBeGreaterThan(0);
        // And it was measured against it: its histograms join its reference bins.
        const [joined] = await store.query(
          `SELECT count() AS n FROM drift_reports WHERE model_name = 'deterioration' AND model_version = '1.1.0'`,
        );
        expect(Number(joined!['n'])).toBeGreaterThan(0);
      });
    } finally {
      await log.close();
    }
  }, 120_000);
});
