/**
 * The `score` operator's configuration: the one place its options are defined, parsed, defaulted and documented.
 * Strict: an unknown key is an error, so a typo fails at start-up instead of being ignored.
 */
import { z } from 'zod';
import { type OperatorCodes, VigilError } from '../../runtime/errors.ts';

const pathSegment = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const scoreConfigSchema = z
  .strictObject({
    model: z
      .string()
      .regex(pathSegment, 'a model name is a plain folder name under models/ (letters, digits, ".", "_", "-")')
      .meta({
        description: 'Model name in the model store: the folder models/<model>/.',
        examples: ['news2'],
      }),
    version: z
      .string()
      .regex(pathSegment, 'a model version is a plain folder name under models/<model>/')
      .meta({
        description:
          'Model version to load: the folder models/<model>/<version>/, verified against its manifest before use.',
        examples: ['1.0.0'],
      }),
    rollout: z
      .enum(['live', 'shadow', 'canary'])
      .default('live')
      .meta({
        description:
          'How this model version is routed; copied onto every inference. Shadow inferences are stored, never alerted.',
        examples: ['live', 'shadow'],
      }),
    pipeline: z
      .string()
      .min(1)
      .optional()
      .meta({
        description:
          'Pipeline name and version that prefix each inference\'s transformation_version ("<pipeline>/score/<model>@<version>"). ' +
          'Default: the pipeline the runtime opens the operator in.',
        examples: ['vitals@1'],
      }),
  })
  .meta({
    description: 'score: runs a verified ONNX model over complete vital-signs records, one batched call per batch.',
  });

/** What a pipeline author writes (defaults may be left out). */
export type ScoreConfigInput = z.input<typeof scoreConfigSchema>;
/** The parsed configuration, defaults filled in. */
export type ScoreConfig = z.output<typeof scoreConfigSchema>;

export function parseScoreConfig(input: unknown): ScoreConfig {
  const parsed = scoreConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new VigilError('CONFIG_INVALID', `score: invalid configuration:\n${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * The stage score files its dead letters under and every reason code it may reject a record with. Checked by
 * `npm run check` against runtime/errors.ts, the README's table and the codes the operator's source emits.
 */
export const scoreCodes = { stage: 'score', reasonCodes: ['SCORING_FAILED'] } as const satisfies OperatorCodes;
