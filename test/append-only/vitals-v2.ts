/**
 * The vitals pipeline as a newer version would deploy it: the same definition (sources, operators, outputs, taken
 * from pipelines/vitals.ts so it follows every change there) under VERSION '2', so every record it derives carries
 * transformation_version `vitals@2/...` (the normalised output's string, and the score operator's, which the runtime
 * prefixes with the pipeline's name@version). Used by test/integration/append-only.test.ts to re-derive a run's input
 * into the same store; pipelines/vitals.ts itself is never edited for it.
 */
import { normalisedOutput } from '../../pipelines/outputs.ts';
import vitals from '../../pipelines/vitals.ts';
import type { PipelineDefinition } from '../../runtime/pipeline.ts';

export const VERSION = '2';

/** pipelines/vitals.ts's normalised output names the operators before it: `<name>@<version>/validate/dedupe`. */
export const NORMALISED_TRANSFORMATION = `${vitals.name}@${VERSION}/validate/dedupe`;

const definition: PipelineDefinition<unknown, unknown> = {
  ...vitals,
  version: VERSION,
  outputs: {
    ...vitals.outputs,
    records: vitals.outputs.records.map((output) =>
      output.name === 'normalised' ? normalisedOutput(NORMALISED_TRANSFORMATION) : output,
    ),
  },
} as PipelineDefinition<unknown, unknown>;

export default definition;
