/**
 * Drift update: detect-drift's per-batch partial histograms over scored events (run: `vigil bench micro --only
 * drift`). Reports the partial rows emitted per record too: they are what the outputs and the sink pay for later.
 */
import { detectDrift } from '../../operators/detect-drift/index.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const inputs = await stageInputs(40_000);
const op = detectDrift({ model: 'news2', version: '1.0.0', windowMs: 3_600_000 });
await op.open(inputs.context);
for (const size of [500, 2000]) {
  let rows = 0;
  let records = 0;
  const c = await measure('drift', `detect-drift, batch ${size}`, size, (i) => {
    const batch = slice(inputs.scored, size, i);
    const out = op.process(batch);
    rows += out.side.driftHistograms?.length ?? 0;
    records += batch.length;
    return out;
  });
  report({ ...c, partial_rows_per_record: Math.round((rows / records) * 1000) / 1000 });
}
