/**
 * Routing: governance/routing.ts deciding which versions of a model run on one event, per event, on the simulator's
 * checked events (run: `node --import tsx bench/micro/routing.bench.ts`). The same routes as score.bench.ts's
 * routing scenarios: none (the pipeline default), live only, live + shadow, live + a 10% canary + shadow, and the
 * canary restricted to a site cohort (most events outside it). `decideRoutes` is the public one-call form;
 * `compileRoute` is what the score operator calls per record, compiled once per routing-table revision.
 */
import { parseCohort } from '../../governance/cohort.ts';
import { compileRoute, decideRoutes, type RoutingKey } from '../../governance/routing.ts';
import type { ModelRoute } from '../../runtime/models.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const inputs = await stageInputs(40_000);
const keys: RoutingKey[] = inputs.checked.map((r) => r.value.envelope);

const live = { version: '1.0.0', rollout_id: 'R-LIVE', approved: true };
const shadow = { version: '1.1.0', rollout_id: 'R-SHADOW', approved: false };
const canaryOf = (cohortExpr: string) => ({
  version: '1.0.1',
  rollout_id: 'R-CANARY',
  approved: true,
  percent: 10,
  cohort: parseCohort(cohortExpr),
  cohort_expr: cohortExpr,
});
const scenarios: readonly (readonly [string, ModelRoute | undefined])[] = [
  ['routes nothing', undefined],
  ['live', { model: 'news2', live, canary: null, shadows: [] }],
  ['live + shadow', { model: 'news2', live, canary: null, shadows: [shadow] }],
  ['live + canary 10% + shadow', { model: 'news2', live, canary: canaryOf(''), shadows: [shadow] }],
  [
    'live + canary 10% of site-01 + shadow',
    { model: 'news2', live, canary: canaryOf(`site=${keys[0]!.site_id}`), shadows: [shadow] },
  ],
];

const size = 2000;
let sink = 0;
for (const [name, route] of scenarios) {
  report(
    await measure('routing', `decideRoutes, ${name}`, size, (i) => {
      for (const key of slice(keys, size, i)) sink += decideRoutes('news2', route, '1.0.0', key).length;
    }),
  );
  const compiled = compileRoute('news2', route, '1.0.0');
  report(
    await measure('routing', `compileRoute, ${name}`, size, (i) => {
      for (const key of slice(keys, size, i)) sink += compiled(key).length;
    }),
  );
}
if (sink === 0) throw new Error('routing bench: no decision made');
