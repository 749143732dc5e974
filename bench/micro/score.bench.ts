/**
 * Score: the NEWS2 ONNX model over checked events at several batch sizes (run: `vigil bench micro --only score`).
 * One tensor and one session run per batch; the per-record work around it (features, inference record, hashes) is
 * included. Batch size 1 is what a per-message consumer pays.
 */
import { score } from '../../operators/score/index.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const inputs = await stageInputs(40_000);
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
