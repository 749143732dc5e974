/**
 * Outputs: what the worker does with a processed batch before Kafka (run: `vigil bench micro --only outputs`):
 * `materialise` (normalised values, inference values, dead letters, duplicates, raw plane) and the Avro encoding of
 * every output value in the Confluent wire format (the worker's RegistryValueEncoder, in-process registry ids).
 */
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { InProcessSchemaRegistry } from '../../adapters/registry/in-process.ts';
import gatedVitals from '../../pipelines/vitals.ts';
import { type BatchOutcome, Engine } from '../../runtime/engine.ts';
import { PipelineMetrics } from '../../runtime/metrics.ts';
import { materialise } from '../../runtime/outputs.ts';
import { RegistryValueEncoder } from '../../runtime/runners/encoder.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import { decodeBatch } from '../../runtime/source.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const BATCH = 2000;
// Simulator records are not gateway traffic: the chain without the gateway-provenance check.
const vitals = acceptUngated(gatedVitals);
const inputs = await stageInputs(40_000);
const engine = new Engine(vitals, new PipelineMetrics());
await engine.open(inputs.context);
const outcomes: BatchOutcome<unknown>[] = [];
for (let i = 0; i < Math.floor(inputs.raw.length / BATCH); i++) {
  outcomes.push(await engine.process(await decodeBatch(slice(inputs.raw, BATCH, i), inputs.decoder, Date.now())));
}
const registry = new InProcessSchemaRegistry();
const encoder = await RegistryValueEncoder.create(registry, loadSchemaRepo(), [
  'normalised',
  'inference',
  'drift-histogram',
  'dead-letter',
  'duplicate',
]);
report(
  await measure('outputs', 'materialise', BATCH, (i) =>
    materialise(vitals, outcomes[i % outcomes.length]!, Date.now()),
  ),
);
const emitted = outcomes.map((o) => materialise(vitals, o, Date.now()));
let values = 0;
for (const e of emitted) for (const o of e.outputs) values += o.values.length;
report({
  ...(await measure('outputs', 'avro encode of every output value', BATCH, (i) => {
    const e = emitted[i % emitted.length]!;
    for (const o of e.outputs) for (const v of o.values) encoder.encode(o.schema, v.value);
  })),
  output_values_per_record: Math.round((values / (emitted.length * BATCH)) * 100) / 100,
});
await engine.close();
