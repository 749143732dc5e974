/**
 * The model manifest, format 2: the one strict schema every model version is validated against — when it enters the
 * registry (`vigil models add`), when the model store loads it (adapters/onnx/model-store.ts), when a report reads it.
 * It matches runtime/models.ts `ModelManifest` exactly (a compile-time check below keeps the two equal).
 *
 * Strict on purpose: an unknown key is an error (a typo in `acceptance_criteria` must not silently drop a criterion),
 * and the fields that must agree with each other (features and inputs, thresholds in order, ranges, time ranges) are
 * checked together, with a message naming the field.
 */
import { z } from 'zod';
import { VigilError } from '../runtime/errors.ts';
import type { ModelManifest, RiskThresholds } from '../runtime/models.ts';

const SHA256 = /^[0-9a-f]{64}$/;
/** Names and versions are path segments of the model store: a safe alphabet, so `../` can never reach outside. */
export const MODEL_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** `<payload branch>.<field>` or `envelope.<field>`. */
const FIELD_PATH = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/;
const TENSOR_NAME = /^[A-Za-z_][A-Za-z0-9_.:/-]*$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const sha256 = z.string().regex(SHA256, 'a sha256 is 64 lowercase hex digits');
const text = z.string().trim().min(1);
const probability = z.number().min(0).max(1);
const share = z.number().min(0).max(1);

/** A file of the version folder, named relative to it, with the sha256 of its bytes. */
const fileEntry = z.strictObject({
  file: z
    .string()
    .min(1)
    .refine((f) => !f.startsWith('/') && !f.split(/[\\/]/).includes('..'), 'a file inside the version folder')
    .meta({ description: 'Path of the file relative to the version folder.', examples: ['model.onnx'] }),
  sha256: sha256.meta({
    description: 'SHA-256 of the file bytes, lowercase hex: checked before the file is used.',
    examples: ['fe2f9f23fdb6073cc54a0c125cdc2fe657d1c7e532d603f530e8e3b857f63a55'],
  }),
});

export const modelInputSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/, 'a feature name is snake_case')
      .meta({ description: 'Feature name: a column of the input tensor, in `inputs` order.', examples: ['spo2'] }),
    field: z
      .string()
      .regex(FIELD_PATH, 'a field is `<payload branch>.<field>` or `envelope.<field>`')
      .meta({
        description:
          "Where the value comes from: `<payload branch>.<field>` of the envelope's payload, or `envelope.<field>` " +
          'for a top-level envelope field.',
        examples: ['vital_signs.respiratory_rate', 'envelope.firmware_version'],
      }),
    unit: text.meta({
      description: 'UCUM-style unit of the value fed to the model (`1` for flags and codes).',
      examples: ['/min', '%', 'mm[Hg]', 'Cel', '1'],
    }),
    min: z.number().meta({
      description: 'Least allowed value fed to the model (inclusive): below it the record is not scored by this model.',
      examples: [0],
    }),
    max: z.number().meta({
      description: 'Greatest allowed value (inclusive): above it the record is not scored by this model.',
      examples: [60],
    }),
    encode: z
      .record(z.string().min(1), z.number())
      .optional()
      .meta({
        description:
          'How a non-numeric value becomes a number (booleans as "true"/"false", enum symbols). Absent for numbers.',
        examples: [
          { true: 1, false: 0 },
          { ALERT: 0, CONFUSION: 1, VOICE: 1, PAIN: 1, UNRESPONSIVE: 1 },
        ],
      }),
  })
  .refine((i) => i.min <= i.max, { message: 'min must not exceed max', path: ['max'] });

const thresholdsSchema = z
  .strictObject({
    low_medium: probability.meta({ description: 'Least probability in the low-medium band.', examples: [0.05] }),
    medium: probability.meta({ description: 'Least probability in the medium band.', examples: [0.15] }),
    high: probability.meta({ description: 'Least probability in the high band.', examples: [0.3] }),
  })
  .refine((t) => t.low_medium < t.medium && t.medium < t.high, {
    message: 'thresholds must increase: low_medium < medium < high',
  })
  .meta({
    description: 'Probability thresholds of the risk bands (a score >= the threshold is in the band or above).',
  });

const tensorName = z.string().regex(TENSOR_NAME, 'an ONNX tensor name');

export const modelOutputSchema = z
  .discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('news2').meta({ description: 'The NEWS2 chart network.', examples: ['news2'] }),
      score_tensor: tensorName.meta({ description: 'Aggregate score tensor [N,1].', examples: ['score'] }),
      subscores_tensor: tensorName.meta({ description: 'Per-input subscores [N,inputs].', examples: ['subscores'] }),
      band_tensor: tensorName.meta({ description: 'Band tensor [N,1] (0 low .. 3 high).', examples: ['band'] }),
    }),
    z.strictObject({
      kind: z
        .literal('probability')
        .meta({ description: 'A calibrated probability of `outcome` within its horizon.', examples: ['probability'] }),
      score_tensor: tensorName.meta({ description: 'Probability tensor [N,1] in [0,1].', examples: ['probability'] }),
      contributions_tensor: tensorName.nullable().meta({
        description: "Per-input contributions [N,inputs], stored as the inference's subscores; null when none.",
        examples: ['contributions', null],
      }),
      thresholds: thresholdsSchema,
      outcome: z
        .strictObject({
          kinds: z
            .array(z.enum(['escalation', 'icu_transfer', 'confirmed_deterioration']))
            .min(1)
            .meta({ description: 'Outcome kinds that count as the event predicted.', examples: [['icu_transfer']] }),
          horizon_ms: z
            .number()
            .int()
            .positive()
            .meta({ description: 'How long after the observation an outcome counts (ms).', examples: [86_400_000] }),
        })
        .meta({ description: 'The outcome the probability is of.' }),
    }),
  ])
  .meta({ description: 'What the model returns and how Vigil reads it.' });

const calibrationCriteria = z
  .strictObject({
    min_outcome_events: z
      .number()
      .int()
      .nonnegative()
      .meta({
        description: 'Least number of outcome events (positives) among closed outcome windows.',
        examples: [20],
      }),
    citl_abs_max: z
      .number()
      .nonnegative()
      .meta({
        description: 'Greatest |calibration-in-the-large| (observed rate - mean predicted).',
        examples: [0.05],
      }),
    slope_min: z.number().meta({ description: 'Least calibration slope.', examples: [0.8] }),
    slope_max: z.number().meta({ description: 'Greatest calibration slope.', examples: [1.2] }),
    ece_max: share.meta({ description: 'Greatest expected calibration error (15 bins).', examples: [0.05] }),
  })
  .refine((c) => c.slope_min <= c.slope_max, { message: 'slope_min must not exceed slope_max', path: ['slope_max'] });

export const acceptanceCriteriaSchema = z
  .strictObject({
    min_inferences: z
      .number()
      .int()
      .positive('min_inferences must be at least 1: a promotion needs evidence')
      .meta({
        description: "Least number of the candidate's inferences in the period (at least 1).",
        examples: [1000],
      }),
    min_agreement_with_live: share.meta({
      description: "Least share of events where the candidate's risk band equals the live version's (0..1).",
      examples: [0.9],
    }),
    calibration: calibrationCriteria.nullable().meta({
      description:
        'Calibration bounds on events whose outcome window has closed; null for a model without a probability.',
    }),
    subgroup_brier_margin: z
      .number()
      .nonnegative()
      .nullable()
      .meta({
        description:
          "No patient subgroup's Brier score may be worse than the live version's by more than this; null to skip.",
        examples: [0.02, null],
      }),
  })
  .meta({ description: 'Pre-specified criteria the version must meet on its shadow or canary period to be promoted.' });

const manifestObject = z
  .strictObject({
    manifest_version: z.literal(2).meta({ description: 'Manifest format: 2.', examples: [2] }),
    name: z
      .string()
      .regex(MODEL_SEGMENT, "a model name is a plain folder name (letters, digits, '.', '_', '-')")
      .meta({ description: 'Model name: the folder models/<name>/.', examples: ['news2', 'deterioration'] }),
    version: z
      .string()
      .regex(MODEL_SEGMENT, "a version is a plain folder name (letters, digits, '.', '_', '-')")
      .meta({ description: 'Version: the folder models/<name>/<version>/.', examples: ['1.0.0'] }),
    description: text.meta({
      description: 'What the model is and how it was built (script, inputs).',
      examples: ['Logistic regression on 7 vital signs, trained on simulated patients (scripts/build-...ts).'],
    }),
    artifact: fileEntry.meta({ description: 'The ONNX artifact: content-addressed by its SHA-256.' }),
    input_tensor: tensorName.meta({
      description: "The input tensor's name; its columns are `inputs` in order.",
      examples: ['features'],
    }),
    inputs: z
      .array(modelInputSchema)
      .min(1)
      .meta({ description: 'Input features with their envelope field, unit and allowed range, in column order.' }),
    features: z
      .array(z.string().min(1))
      .min(1)
      .meta({
        description: 'Input feature names in column order (= inputs[].name).',
        examples: [['respiratory_rate', 'spo2']],
      }),
    output: modelOutputSchema,
    intended_use: text.meta({
      description: 'The intended use, as released.',
      examples: ['Early warning of deterioration in adults monitored at home; decision support, never autonomous.'],
    }),
    population: z
      .strictObject({
        description: text.meta({
          description: 'Who the model is for.',
          examples: ['Adults (18+) in hospital-at-home'],
        }),
        age_bands: z.array(text).meta({ description: 'Age bands covered.', examples: [['18-64', '65-79', '80+']] }),
        settings: z.array(text).meta({ description: 'Care settings covered.', examples: [['hospital-at-home']] }),
      })
      .meta({ description: 'The intended population.' }),
    training_data: z
      .strictObject({
        dataset_id: text.meta({
          description: 'Identifier of the training data set.',
          examples: ['sim-2026-11-seed42'],
        }),
        time_range: z
          .strictObject({
            from: z
              .string()
              .regex(ISO_INSTANT, 'an ISO 8601 instant with a zone')
              .meta({
                description: 'Start of the data (ISO 8601 instant).',
                examples: ['2026-01-01T00:00:00Z'],
              }),
            to: z
              .string()
              .regex(ISO_INSTANT, 'an ISO 8601 instant with a zone')
              .meta({
                description: 'End of the data (ISO 8601 instant).',
                examples: ['2026-03-01T00:00:00Z'],
              }),
          })
          .refine((r) => Date.parse(r.from) <= Date.parse(r.to), { message: 'from must not be after to', path: ['to'] })
          .meta({ description: 'The time range the data covers.' }),
        sites: z.array(text).meta({ description: 'Sites the data came from.', examples: [['site-01', 'site-02']] }),
        sha256: sha256.meta({
          description: 'SHA-256 of the training data set as the build script produced it.',
          examples: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
        }),
        rows: z
          .number()
          .int()
          .nonnegative()
          .meta({ description: 'Rows in the training data set.', examples: [200000] }),
      })
      .meta({ description: 'Lineage of the training data.' }),
    reference: fileEntry
      .nullable()
      .meta({ description: 'Drift reference histograms stored with the version (null until built).' }),
    pccp: z
      .strictObject({
        modification_id: text.meta({
          description: 'The PCCP modification id the version was released under.',
          examples: ['PCCP-DET-001'],
        }),
        description: text.meta({ description: 'What the modification allows.', examples: ['Retraining on new data'] }),
      })
      .meta({ description: 'The predetermined change control plan modification this version was released under.' }),
    acceptance_criteria: acceptanceCriteriaSchema,
    drift: z
      .strictObject({
        js_threshold: share.meta({
          description: 'Jensen-Shannon distance (base 2) per feature at or above which the feature has drifted.',
          examples: [0.1],
        }),
        dataset_share: share.meta({
          description: 'Share of features drifted at or above which the data set has drifted.',
          examples: [0.5],
        }),
        auto_rollback: z.boolean().meta({
          description: 'Whether drift past the thresholds may roll the version back automatically.',
          examples: [false],
        }),
      })
      .meta({ description: 'Drift thresholds past which an operational alert fires.' }),
    build: z.record(z.string(), z.string()).meta({
      description: 'Free-form build provenance: the script and its version, the source it encodes.',
      examples: [{ script: 'scripts/build-news2-model.ts', builder_version: '1.0.0' }],
    }),
  })
  .superRefine((m, ctx) => {
    const names = m.inputs.map((i) => i.name);
    if (names.length !== m.features.length || names.some((n, k) => n !== m.features[k])) {
      ctx.addIssue({ code: 'custom', path: ['features'], message: 'features must equal inputs[].name, in order' });
    }
    const seen = new Set<string>();
    for (const [k, name] of names.entries()) {
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path: ['inputs', k, 'name'], message: `${name} twice` });
      seen.add(name);
    }
    const probabilityModel = m.output.kind === 'probability';
    if (probabilityModel !== (m.acceptance_criteria.calibration !== null)) {
      ctx.addIssue({
        code: 'custom',
        path: ['acceptance_criteria', 'calibration'],
        message: 'calibration criteria are required for a probability output, and null for any other',
      });
    }
    if (!probabilityModel && m.acceptance_criteria.subgroup_brier_margin !== null) {
      ctx.addIssue({
        code: 'custom',
        path: ['acceptance_criteria', 'subgroup_brier_margin'],
        message: 'a Brier margin needs a probability output: set it to null',
      });
    }
  })
  .meta({ description: 'A model version manifest (format 2): models/<name>/<version>/manifest.json.' });

/** The strict manifest schema (format 2). */
export const manifestSchema = manifestObject;

// Keeps the schema and the contract equal: what the schema yields is a ModelManifest, and no key is left out either way.
type Parsed = z.output<typeof manifestSchema>;
type SameKeys<A, B> = [Exclude<keyof A, keyof B> | Exclude<keyof B, keyof A>] extends [never] ? true : false;
const _schemaFitsContract = (m: Parsed): ModelManifest => m;
const _sameKeys: SameKeys<Parsed, ModelManifest> = true;
void _schemaFitsContract;
void _sameKeys;

/**
 * Parses a manifest strictly; `where` names it in the message (a path, `<name>@<version>`).
 *
 * @example
 * const manifest = parseManifest(JSON.parse(readFileSync(path, 'utf8')), path);
 */
export function parseManifest(value: unknown, where: string): ModelManifest {
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    throw new VigilError(
      'MODEL_INTEGRITY_FAILED',
      `${where} is not a valid model manifest (format 2):\n${z.prettifyError(parsed.error)}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

export type RiskBand = 'low' | 'low_medium' | 'medium' | 'high';

/** The risk band of a probability under a manifest's thresholds (a score >= a threshold is in that band or above). */
export function riskBandOf(p: number, t: RiskThresholds): RiskBand {
  if (p >= t.high) return 'high';
  if (p >= t.medium) return 'medium';
  if (p >= t.low_medium) return 'low_medium';
  return 'low';
}
