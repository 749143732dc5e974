/**
 * The `score` operator's configuration: the one place its options are defined, parsed, defaulted and documented.
 * Strict: an unknown key is an error, so a typo fails at start-up instead of being ignored.
 */
import { z } from 'zod';
import { type OperatorCodes, VigilError } from '../../runtime/errors.ts';

const pathSegment = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const modelSchema = z
  .strictObject({
    model: z
      .string()
      .regex(pathSegment, 'a model name is a plain folder name under models/ (letters, digits, ".", "_", "-")')
      .meta({
        description: 'Model name in the model store (the folder models/<model>/) and in the model registry.',
        examples: ['news2', 'deterioration'],
      }),
    version: z
      .string()
      .regex(pathSegment, 'a model version is a plain folder name under models/<model>/')
      .meta({
        description:
          "The pipeline's default live version (the folder models/<model>/<version>/, verified against its manifest " +
          'when the pipeline opens): it runs, live, while the model registry has no live version of the model (no ' +
          'route at all, or only shadows or a canary: then outside the canary). Once the registry has a live version ' +
          '(`vigil models rollout --mode live`), the registry alone decides which versions run.',
        examples: ['1.0.0'],
      }),
  })
  .meta({ description: 'One model the pipeline scores with, and its default version.' });

export const scoreConfigSchema = z
  .strictObject({
    models: z
      .array(modelSchema)
      .min(1, 'score needs at least one model')
      .refine((models) => new Set(models.map((m) => m.model)).size === models.length, {
        message: 'each model may be listed once (its versions are routed by the registry, not listed here)',
      })
      .meta({
        description:
          'The models to score every event with, each `{ model, version }`: `model` names the folder ' +
          "models/<model>/ and the model in the registry; `version` is the pipeline's default live version, run " +
          'while the registry has no live version of the model (once it has one, the registry alone decides). Every routed version ' +
          'of every model (live or canary, plus shadows) scores the event: one inference each.',
        examples: [
          [
            { model: 'news2', version: '1.0.0' },
            { model: 'deterioration', version: '1.0.0' },
          ],
        ],
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
    description:
      'score: runs verified ONNX models over events (inputs mapped to envelope fields by each manifest), every ' +
      'version the model registry routes (live, canary, shadow) on the same events, one batched call per version per batch.',
  });

/** What a pipeline author writes (defaults may be left out). */
export type ScoreConfigInput = z.input<typeof scoreConfigSchema>;
/** The parsed configuration, defaults filled in. */
export type ScoreConfig = z.output<typeof scoreConfigSchema>;
/** One configured model and its default version. */
export type ScoredModel = ScoreConfig['models'][number];

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
