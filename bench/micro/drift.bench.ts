/**
 * Drift update: detect-drift's per-batch partial histograms over scored events (run: `vigil bench micro --only
 * drift`). Reports the partial rows emitted per record too: they are what the outputs and the sink pay for later.
 *
 * Three set-ups: news2@1.0.0 alone (the chain before drift was measured per routed version: its rows are unchanged);
 * the vitals pipeline's two models at their defaults (news2 and deterioration@1.0.0, no registry); and the same with a
 * registry routing deterioration@1.1.0 as a 10% canary of one site and as nothing else — the events re-scored by
 * score under that routing, so each record carries the inferences score would give it.
 */

import { parseCohort } from '../../governance/cohort.ts';
import { staticRollouts } from '../../governance/routing.ts';
import { type DetectDriftConfig, detectDrift } from '../../operators/detect-drift/index.ts';
import { score } from '../../operators/score/index.ts';
import type { ScoredEvent } from '../../operators/types.ts';
import type { RoutingTable } from '../../runtime/models.ts';
import type { InFlight } from '../../runtime/record.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const NEWS2 = { model: 'news2', version: '1.0.0' };
const DETERIORATION = { model: 'deterioration', version: '1.0.0' };
const inputs = await stageInputs(40_000);

/** deterioration: 1.0.0 live, 1.1.0 canary at 10% of site-01. */
const canaryTable: RoutingTable = {
  revision: 1,
  route: (model) =>
    model === 'deterioration'
      ? {
          model,
          live: { version: '1.0.0', rollout_id: 'bench-live', approved: true },
          canary: {
            version: '1.1.0',
            rollout_id: 'bench-canary',
            approved: true,
            percent: 10,
            cohort: parseCohort('site=site-01'),
            cohort_expr: 'site=site-01',
          },
          shadows: [],
        }
      : undefined,
};
const canaryContext = { ...inputs.context, rollouts: staticRollouts(canaryTable) };
const rescorer = score({ models: [NEWS2, DETERIORATION] });
await rescorer.open(canaryContext);
const canaryScored = (await rescorer.process(inputs.checked)).out as InFlight<ScoredEvent>[];
await rescorer.close();

const setups: { name: string; config: DetectDriftConfig; scored: InFlight<ScoredEvent>[]; canary: boolean }[] = [
  { name: 'news2', config: { models: [NEWS2] }, scored: inputs.scored, canary: false },
  { name: 'news2 + deterioration', config: { models: [NEWS2, DETERIORATION] }, scored: inputs.scored, canary: false },
  {
    name: 'news2 + deterioration, 1.1.0 canary',
    config: { models: [NEWS2, DETERIORATION] },
    scored: canaryScored,
    canary: true,
  },
];

for (const setup of setups) {
  const op = detectDrift({ ...setup.config, windowMs: 3_600_000 });
  await op.open(setup.canary ? canaryContext : inputs.context);
  for (const size of [500, 2000]) {
    let rows = 0;
    let records = 0;
    const c = await measure(
      'drift',
      `detect-drift ${setup.name} (${op.versions.length} versions), batch ${size}`,
      size,
      async (i) => {
        const batch = slice(setup.scored, size, i);
        const out = await op.process(batch);
        rows += out.side.driftHistograms?.length ?? 0;
        records += batch.length;
        return out;
      },
    );
    report({ ...c, partial_rows_per_record: Math.round((rows / records) * 1000) / 1000 });
  }
}
