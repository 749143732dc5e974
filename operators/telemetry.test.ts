/** Every operator of the vitals chain passes the runtime's telemetry compliance check (test/helpers/telemetry.ts). */
import { describe, it } from 'vitest';
import { OnnxModelStore } from '../adapters/onnx/index.ts';
import gatedVitals from '../pipelines/vitals.ts';
import { systemClock } from '../runtime/clock.ts';
import { Engine } from '../runtime/engine.ts';
import { silentLogger } from '../runtime/log.ts';
import { PipelineMetrics } from '../runtime/metrics.ts';
import type { InFlight } from '../runtime/record.ts';
import { simulatorSource } from '../runtime/runners/embedded-sources.ts';
import { acceptUngated } from '../runtime/runners/ungated.ts';
import { MemoryStateBackend } from '../runtime/state/memory.ts';
import { expectOperatorTelemetry, testContext } from '../test/helpers/telemetry.ts';

/** The simulator's records are not gateway traffic: the chain as `--accept-ungated` runs it. */
const vitals = acceptUngated(gatedVitals);

/** Records as each operator of the chain receives them, from one simulated batch with faults. */
async function stageInputs(): Promise<InFlight<unknown>[][]> {
  const engine = new Engine(vitals, new PipelineMetrics());
  await engine.open({
    pipeline: 'vitals',
    clock: systemClock,
    state: new MemoryStateBackend({ clock: systemClock }),
    log: silentLogger,
    models: new OnnxModelStore(),
  });
  const inputs: InFlight<unknown>[][] = [];
  for await (const batch of simulatorSource({
    simulation: { devices: 50, events: 3000, seed: 'telemetry', duplicateRate: 0.1, malformedRate: 0.05 },
    partitions: 1,
    batchSize: 3000,
    clock: systemClock,
  })) {
    let current: readonly InFlight<unknown>[] = batch.records;
    for (const operator of vitals.operators) {
      inputs.push([...current]);
      current = (await operator.process(current)).out;
    }
  }
  await engine.close();
  return inputs;
}

describe('operator telemetry', () => {
  it('every vitals operator reports records in/out, batch time, dead letters and duplicates', async () => {
    const inputs = await stageInputs();
    for (const [i, operator] of vitals.operators.entries()) {
      await expectOperatorTelemetry(operator, inputs[i] ?? [], testContext(new OnnxModelStore()));
    }
  }, 60_000);
});
