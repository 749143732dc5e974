/**
 * The `validate` operator's configuration: the one place its options are defined, parsed, defaulted and documented.
 * Strict: an unknown key is an error, so a typo fails at start-up instead of being ignored.
 */
import { z } from 'zod';
import { type OperatorCodes, VigilError } from '../../runtime/errors.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * Every default in one place. The value bounds are hard limits of what a living patient (or a working device) can
 * report: a reading outside them is a sensor or transmission fault, never a clinical finding. They are deliberately
 * wide: alarming values (HR 35, SpO2 75) must pass through to scoring.
 */
export const VALIDATE_DEFAULTS = {
  maxFutureSkewMs: 5 * MINUTE,
  toleratedSkewMs: 2_000,
  maxAgeMs: 7 * DAY,
  lateAfterMs: 10 * MINUTE,
  /** The gateway's clock cannot be wrong by decades: received_at outside this window is a corrupt record. */
  receivedAtMin: Date.UTC(2000, 0, 1),
  receivedAtMax: Date.UTC(2200, 0, 1),
  requireSequence: false,
  requireGateway: false,
  vitals: {
    respiratory_rate: { min: 2, max: 80 },
    spo2: { min: 40, max: 100 },
    systolic_bp: { min: 40, max: 300 },
    pulse: { min: 20, max: 300 },
    temperature_c: { min: 25, max: 45 },
  },
  deviceStatus: {
    battery_pct: { min: 0, max: 100 },
    signal_dbm: { min: -150, max: 30 },
  },
} as const;

const bounds = (field: string, unit: string, value: { readonly min: number; readonly max: number }) =>
  z
    .strictObject({
      min: z.number().meta({ description: `Lowest accepted ${field} (inclusive), ${unit}.`, examples: [value.min] }),
      max: z.number().meta({ description: `Highest accepted ${field} (inclusive), ${unit}.`, examples: [value.max] }),
    })
    .refine((b) => b.min <= b.max, { message: `${field}: min must not exceed max` })
    .default({ ...value })
    .meta({
      description: `Accepted range of ${field} (${unit}); a value outside it, NaN or infinite is VALUE_OUT_OF_RANGE.`,
      examples: [{ ...value }],
    });

const duration = (description: string, example: number) =>
  z
    .number()
    .int()
    .nonnegative()
    .meta({ description: `${description} In milliseconds.`, examples: [example] });

const V = VALIDATE_DEFAULTS.vitals;
const D = VALIDATE_DEFAULTS.deviceStatus;

export const validateConfigSchema = z
  .strictObject({
    maxFutureSkewMs: duration(
      'How far observed_at may lie after received_at (device clock ahead of the gateway) before the record is ' +
        'rejected as CLOCK_SKEW.',
      VALIDATE_DEFAULTS.maxFutureSkewMs,
    ).default(VALIDATE_DEFAULTS.maxFutureSkewMs),
    toleratedSkewMs: duration(
      'Skew (observed_at after received_at) accepted silently; beyond it, up to maxFutureSkewMs, the record passes ' +
        'with the provenance flag clock_skew.',
      VALIDATE_DEFAULTS.toleratedSkewMs,
    ).default(VALIDATE_DEFAULTS.toleratedSkewMs),
    maxAgeMs: duration(
      'Oldest an observation may be when received (received_at - observed_at) before it is rejected as STALE_EVENT.',
      VALIDATE_DEFAULTS.maxAgeMs,
    ).default(VALIDATE_DEFAULTS.maxAgeMs),
    lateAfterMs: duration(
      'Age at receipt beyond which a record (buffered offline, say) passes with the provenance flag late_arrival.',
      VALIDATE_DEFAULTS.lateAfterMs,
    ).default(VALIDATE_DEFAULTS.lateAfterMs),
    receivedAtMin: z
      .number()
      .int()
      .default(VALIDATE_DEFAULTS.receivedAtMin)
      .meta({
        description:
          'Earliest plausible received_at (epoch ms). Outside [receivedAtMin, receivedAtMax] the record is rejected as ' +
          'VALUE_OUT_OF_RANGE: a gateway stamp decades off is corruption, and every stored time must stay in range.',
        examples: [Date.UTC(2020, 0, 1)],
      }),
    receivedAtMax: z
      .number()
      .int()
      .default(VALIDATE_DEFAULTS.receivedAtMax)
      .meta({
        description: 'Latest plausible received_at (epoch ms); see receivedAtMin.',
        examples: [Date.UTC(2100, 0, 1)],
      }),
    requireSequence: z
      .boolean()
      .default(VALIDATE_DEFAULTS.requireSequence)
      .meta({
        description:
          'Reject envelopes without a sequence number (MISSING_PROVENANCE). When false they pass with the flag ' +
          'no_sequence and replay protection rests on event_id alone.',
        examples: [true],
      }),
    requireGateway: z
      .boolean()
      .default(VALIDATE_DEFAULTS.requireGateway)
      .meta({
        description:
          'Accept only records that came through a gateway: without signed_event or gateway_id a record is ' +
          'NOT_FROM_GATEWAY; an integrity_hash that is not `sha256:` + hex SHA-256 of signed_event, or a signed ' +
          "payload whose device_id, event_id, sequence, nonce or observed_at differ from the envelope's, is " +
          'INTEGRITY_MISMATCH. The signature itself is not re-verified here (the gateway did, and the hash binds the ' +
          'stored bytes). `vigil run --accept-ungated` turns it off for one run.',
        examples: [true],
      }),
    vitals: z
      .strictObject({
        respiratory_rate: bounds('respiratory_rate', 'breaths per minute', V.respiratory_rate),
        spo2: bounds('spo2', '%', V.spo2),
        systolic_bp: bounds('systolic_bp', 'mmHg', V.systolic_bp),
        pulse: bounds('pulse', 'beats per minute', V.pulse),
        temperature_c: bounds('temperature_c', 'degrees Celsius', V.temperature_c),
      })
      .prefault({})
      .meta({
        description: 'Hard bounds per vital sign; set only the ones to change, the others keep their defaults.',
        examples: [{ pulse: { min: 25, max: 250 } }],
      }),
    deviceStatus: z
      .strictObject({
        battery_pct: bounds('battery_pct', '%', D.battery_pct),
        signal_dbm: bounds('signal_dbm', 'dBm', D.signal_dbm),
      })
      .prefault({})
      .meta({
        description: 'Sane bounds for device-status readings; set only the ones to change.',
        examples: [{ signal_dbm: { min: -130, max: 0 } }],
      }),
  })
  .refine((c) => c.toleratedSkewMs <= c.maxFutureSkewMs, {
    message: 'toleratedSkewMs must not exceed maxFutureSkewMs',
    path: ['toleratedSkewMs'],
  })
  .refine((c) => c.receivedAtMin < c.receivedAtMax, {
    message: 'receivedAtMin must be before receivedAtMax',
    path: ['receivedAtMin'],
  })
  .refine((c) => c.lateAfterMs <= c.maxAgeMs, {
    message: 'lateAfterMs must not exceed maxAgeMs',
    path: ['lateAfterMs'],
  })
  .meta({
    description:
      'validate: stateless checks of each envelope (provenance, event id, payload type, value ranges, device time) ' +
      'before anything keyed or costly runs.',
  });

/** What a pipeline author writes (every field may be left out). */
export type ValidateConfigInput = z.input<typeof validateConfigSchema>;
/** The parsed configuration, defaults filled in. */
export type ValidateConfig = z.output<typeof validateConfigSchema>;

export function parseValidateConfig(input: unknown = {}): ValidateConfig {
  const parsed = validateConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new VigilError('CONFIG_INVALID', `validate: invalid configuration:\n${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * The stage validate files its dead letters under and every reason code it may reject a record with. Checked by
 * `npm run check` against runtime/errors.ts, the README's table and the codes the operator's source emits.
 */
export const validateCodes = {
  stage: 'validate',
  reasonCodes: [
    'MISSING_PROVENANCE',
    'INVALID_EVENT_ID',
    'PAYLOAD_TYPE_MISMATCH',
    'VALUE_OUT_OF_RANGE',
    'CLOCK_SKEW',
    'STALE_EVENT',
    'NOT_FROM_GATEWAY',
    'INTEGRITY_MISMATCH',
  ],
} as const satisfies OperatorCodes;
