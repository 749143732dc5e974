/**
 * The `detect-drift` configuration: the one place its options, defaults and docs live. Strict: an unknown key is an
 * error, so a typo never silently falls back to a default.
 *
 * `models` names each model drift is measured for and its pipeline default version (as `score({ models })` does);
 * every version the model registry routes for those models (live, canary, shadow) is measured too, from its own
 * manifest and reference. `{ model, version }` is the shorthand for one model.
 *
 * @example
 * // Everything defaulted: 1-hour windows, every feature the references hold, JS 0.1, PSI 0.1 / 0.25, share 0.5.
 * parseDetectDriftConfig({ models: [{ model: 'news2', version: '1.0.0' }, { model: 'deterioration', version: '1.0.0' }] });
 * // One model (shorthand), daily windows on SpO2 and the score only, with a stricter JS threshold.
 * parseDetectDriftConfig({
 *   model: 'news2', version: '1.0.0', windowMs: 86_400_000, features: ['spo2', 'score'], thresholds: { js: 0.08 },
 * });
 */
import { z } from 'zod';
import { type OperatorCodes, VigilError } from '../../runtime/errors.ts';
import { FEATURES } from './features.ts';
import { DEFAULT_THRESHOLDS } from './metrics.ts';
import { DEFAULT_ALLOWED_LATENESS_MS } from './reference.ts';

const MINUTE = 60_000;
/** Model names and versions are folder names in the model store (the store's own rule). */
const MODEL_STORE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DAY = 86_400_000;

export const thresholdsSchema = z
  .strictObject({
    js: z
      .number()
      .gt(0)
      .max(1)
      .default(DEFAULT_THRESHOLDS.js)
      .meta({ description: 'Jensen–Shannon distance (base 2) at or above which a feature drifts.', examples: [0.1] }),
    psiWarn: z
      .number()
      .positive()
      .default(DEFAULT_THRESHOLDS.psiWarn)
      .meta({
        description: 'Population stability index at or above which a feature is flagged `warn`.',
        examples: [0.1],
      }),
    psiAlert: z
      .number()
      .positive()
      .default(DEFAULT_THRESHOLDS.psiAlert)
      .meta({
        description: 'Population stability index at or above which a feature is flagged `alert`.',
        examples: [0.25],
      }),
    datasetShare: z
      .number()
      .gt(0)
      .max(1)
      .default(DEFAULT_THRESHOLDS.datasetShare)
      .meta({ description: 'Share of drifted features at or above which a whole window drifts.', examples: [0.5] }),
    minCount: z
      .number()
      .int()
      .min(1)
      .default(DEFAULT_THRESHOLDS.minCount)
      .meta({
        description:
          'Fewest non-missing values a feature needs in a window before it may be called drifted: JS distance between ' +
          'samples of one distribution shrinks like sqrt(bins / n), so small windows look drifted by chance.',
        examples: [1000],
      }),
    noiseZ: z
      .number()
      .min(0)
      .max(6)
      .default(DEFAULT_THRESHOLDS.noiseZ)
      .meta({
        description:
          'Chance gate: a drifted JS distance must also exceed the distance a cohort of as many devices drawn from ' +
          'the reference population reaches only with this standard-normal tail (3.09: 1 in 1,000), ' +
          'sqrt(chi2_q(bins - 1) / (8 · devices · ln 2)). Readings of one patient are alike, so a site or a pilot ' +
          'firmware of a few dozen devices differs from the reference by patient mix alone. 0 turns the gate off.',
        examples: [3.09, 2.33],
      }),
  })
  .refine((t) => t.psiWarn <= t.psiAlert, { message: 'psiWarn must not exceed psiAlert', path: ['psiWarn'] });

const modelNameSchema = z
  .string()
  .regex(MODEL_STORE_SEGMENT, 'a model name is a folder name under models/ (letters, digits, ".", "_", "-")');
const modelVersionSchema = z
  .string()
  .regex(MODEL_STORE_SEGMENT, 'a model version is a folder name under models/<model>/');

export const driftModelSchema = z.strictObject({
  model: modelNameSchema.meta({
    description: 'Model whose versions drift is measured for (models/<model>/, the model in the registry).',
    examples: ['news2', 'deterioration'],
  }),
  version: modelVersionSchema.meta({
    description:
      "The pipeline's default live version (score's): measured while the registry routes nothing for the model; " +
      'once it does, every version it routes (live, canary, shadow) is measured instead, each against its own ' +
      '`reference.json`.',
    examples: ['1.0.0'],
  }),
});

export const detectDriftConfigSchema = z
  .strictObject({
    models: z
      .array(driftModelSchema)
      .min(1)
      .refine((models) => new Set(models.map((m) => m.model)).size === models.length, {
        message: 'a model must not appear twice in models',
      })
      .optional()
      .meta({
        description:
          'The models to measure, each `{ model, version }` with its default version. Every routed version of these ' +
          'models gets its own histograms, filed under its model and version. Give `models` or `model` + `version`.',
        examples: [
          [
            { model: 'news2', version: '1.0.0' },
            { model: 'deterioration', version: '1.0.0' },
          ],
        ],
      }),
    model: modelNameSchema.optional().meta({
      description: 'Shorthand for `models: [{ model, version }]` (one model).',
      examples: ['news2'],
    }),
    version: modelVersionSchema
      .optional()
      .meta({ description: "The shorthand's default version (with `model`).", examples: ['1.0.0'] }),
    windowMs: z
      .number()
      .int()
      .min(MINUTE)
      .max(7 * DAY)
      .default(3_600_000)
      .meta({
        description: 'Tumbling event-time window (on observed_at, aligned to the Unix epoch), in milliseconds.',
        examples: [3_600_000, 86_400_000],
      }),
    allowedLatenessMs: z
      .number()
      .int()
      .min(0)
      .max(7 * DAY)
      .default(DEFAULT_ALLOWED_LATENESS_MS)
      .meta({
        description:
          'How long after a window ends its report may still change: a window is `complete` once the watermark (the ' +
          'latest observed_at seen) passes window end + this. Late events are never dropped; they join their window. ' +
          "Match it to validate's maximum event age.",
        examples: [3_600_000],
      }),
    features: z
      .array(z.enum(FEATURES))
      .min(1)
      .refine((list) => new Set(list).size === list.length, 'features must not repeat')
      .optional()
      .meta({
        description:
          "Features to monitor, in every version (default: every feature of a version's reference that its manifest " +
          'reads, and the score).',
        examples: [['spo2', 'pulse', 'score']],
      }),
    thresholds: thresholdsSchema
      .prefault({})
      .meta({ description: 'Drift verdict thresholds.', examples: [{ js: 0.1 }] }),
  })
  .superRefine((c, ctx) => {
    const shorthand = c.model !== undefined || c.version !== undefined;
    if (c.models !== undefined && shorthand) {
      ctx.addIssue({ code: 'custom', message: 'give either models or model + version, not both', path: ['models'] });
    } else if (c.models === undefined && (c.model === undefined || c.version === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'models is required (or the shorthand model + version)',
        path: [c.model === undefined ? 'model' : 'version'],
      });
    }
  })
  .transform(({ models, model, version, ...rest }) => {
    const resolved = models ?? [{ model: model!, version: version! }];
    // `model`/`version` stay on the resolved configuration as the first model's: readers of one-model configurations
    // (cli/summary.ts's drift section) keep working.
    return { ...rest, models: resolved, model: resolved[0]!.model, version: resolved[0]!.version };
  });

/** What a pipeline author writes. */
/** One measured model and its default version. */
export type DriftModel = z.output<typeof driftModelSchema>;
export type DetectDriftConfig = z.input<typeof detectDriftConfigSchema>;
/** The configuration with every default filled in. */
export type ResolvedDetectDriftConfig = z.output<typeof detectDriftConfigSchema>;

/** Parses a configuration; throws VigilError CONFIG_INVALID naming each bad field. */
export function parseDetectDriftConfig(input: unknown): ResolvedDetectDriftConfig {
  const parsed = detectDriftConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new VigilError('CONFIG_INVALID', `detect-drift config: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/**
 * The stage detect-drift files its dead letters under, and the reason codes it may reject a record with: none (every
 * record passes through; drift never rejects an event). Checked by `npm run check` against runtime/errors.ts, the
 * README's table and the codes the operator's source emits.
 */
export const detectDriftCodes = { stage: 'detect_drift', reasonCodes: [] } as const satisfies OperatorCodes;
