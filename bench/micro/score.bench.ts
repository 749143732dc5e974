/**
 * Score: the NEWS2 ONNX model over checked events at several batch sizes (run: `vigil bench micro --only score`),
 * then NEWS2 + deterioration (the vitals pipeline's two models) at 1000 and 2000.
 * One tensor and one session run per batch; the per-record work around it (routing, features, inference record,
 * hashes) is included. Batch size 1 is what a per-message consumer pays.
 *
 * Then the same at batch 1000 and 2000 under the routing tables a registry serves: one that routes nothing (the
 * pipeline default runs), news2 live only, live + a shadow, live + a 10% canary + a shadow. The shadow and canary are
 * copies of news2@1.0.0 under other version numbers in a temporary model store, so each routed version costs what the
 * real one does; a shadow doubles the model and inference work per record, so compare a scenario before and after a
 * change, not scenarios with each other. `--routing-only` runs just the routing scenarios.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { parseCohort } from '../../governance/cohort.ts';
import { staticRollouts } from '../../governance/routing.ts';
import { score } from '../../operators/score/index.ts';
import type { ModelRoute, RoutingTable } from '../../runtime/models.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const routingOnly = process.argv.includes('--routing-only');
const inputs = await stageInputs(40_000);

if (!routingOnly) {
  const op = score({ models: [{ model: 'news2', version: '1.0.0' }] });
  await op.open(inputs.context);
  for (const size of [1, 10, 100, 1000, 2000]) {
    const batches = size === 1 ? 2000 : Math.max(5, Math.floor(20_000 / size));
    report(
      await measure('score', `news2 onnx, batch ${size}`, size, (i) => op.process(slice(inputs.checked, size, i)), {
        batches,
        warmup: Math.min(batches, 50),
      }),
    );
  }
  await op.close();
  // What the vitals pipeline scores per event: NEWS2 and the deterioration model (the same seven inputs).
  const both = score({
    models: [
      { model: 'news2', version: '1.0.0' },
      { model: 'deterioration', version: '1.0.0' },
    ],
  });
  await both.open(inputs.context);
  for (const size of [1000, 2000]) {
    const batches = Math.max(5, Math.floor(20_000 / size));
    report(
      await measure(
        'score',
        `news2 + deterioration onnx, batch ${size}`,
        size,
        (i) => both.process(slice(inputs.checked, size, i)),
        { batches, warmup: Math.min(batches, 50) },
      ),
    );
  }
  await both.close();
}

/** A model store holding news2@1.0.0 and two copies of it (1.0.1, 1.1.0) for the canary and the shadow. */
async function storeWithCopies(): Promise<{ store: OnnxModelStore; dispose(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'vigil-score-bench-'));
  const source = new OnnxModelStore().root;
  for (const version of ['1.0.0', '1.0.1', '1.1.0']) {
    const dir = join(root, 'news2', version);
    await cp(join(source, 'news2', '1.0.0'), dir, { recursive: true });
    const manifestPath = join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { version: string };
    manifest.version = version;
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  }
  return { store: new OnnxModelStore({ root }), dispose: () => rm(root, { recursive: true, force: true }) };
}

const live = { version: '1.0.0', rollout_id: 'R-LIVE', approved: true };
const shadow = { version: '1.1.0', rollout_id: 'R-SHADOW', approved: false };
const canary = {
  version: '1.0.1',
  rollout_id: 'R-CANARY',
  approved: true,
  percent: 10,
  cohort: parseCohort(''),
  cohort_expr: '',
};
const tableOf = (route: ModelRoute | undefined): RoutingTable => ({ revision: 1, route: () => route });
const scenarios: readonly (readonly [string, RoutingTable])[] = [
  ['routes nothing', tableOf(undefined)],
  ['live', tableOf({ model: 'news2', live, canary: null, shadows: [] })],
  ['live + shadow', tableOf({ model: 'news2', live, canary: null, shadows: [shadow] })],
  ['live + canary 10% + shadow', tableOf({ model: 'news2', live, canary, shadows: [shadow] })],
];

const { store, dispose } = await storeWithCopies();
try {
  for (const [name, table] of scenarios) {
    const op = score({ models: [{ model: 'news2', version: '1.0.0' }] });
    await op.open({ ...inputs.context, models: store, rollouts: staticRollouts(table) });
    for (const size of [1000, 2000]) {
      const batches = Math.max(5, Math.floor(20_000 / size));
      report(
        await measure(
          'score',
          `news2 ${name}, batch ${size}`,
          size,
          (i) => op.process(slice(inputs.checked, size, i)),
          {
            batches,
            warmup: Math.min(batches, 50),
          },
        ),
      );
    }
    await op.close();
  }
} finally {
  await dispose();
}
