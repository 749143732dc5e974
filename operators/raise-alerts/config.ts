/**
 * The `raise-alerts` operator's configuration: the one place its rules and timings are defined, parsed, defaulted and
 * documented. Strict: an unknown key is an error, so a typo fails at start-up instead of being ignored.
 *
 * A rule is on when its key is present. Each rule carries a `version`: it is copied onto every alert record the rule
 * raises (`rule_version`), so bump it whenever the rule's thresholds or logic change.
 */
import { z } from 'zod';
import { type OperatorCodes, VigilError } from '../../runtime/errors.ts';

/** Alert bands, lowest first: NEWS2 response bands, and device alarm priorities mapped onto them. */
export const BANDS = ['low', 'low_medium', 'medium', 'high'] as const;
export type Band = (typeof BANDS)[number];

/** Every default in one place. */
export const RAISE_ALERTS_DEFAULTS = {
  suppressWindowMs: 15 * 60_000,
  escalateAfterMs: { low: 4 * 3_600_000, low_medium: 60 * 60_000, medium: 30 * 60_000, high: 15 * 60_000 },
  ttlMs: 48 * 3_600_000,
  maxEntries: 1_000_000,
  batteryCriticalPct: 5,
  batteryRecoveredPct: 10,
} as const;

const version = z
  .string()
  .regex(/^[0-9]+(\.[0-9]+)*$/, 'a rule version is dotted digits, e.g. "1" or "1.2"')
  .meta({ description: 'Version of the rule, copied onto every alert it raises (rule_version).', examples: ['1'] });

const duration = (description: string, example: number) =>
  z
    .number()
    .int()
    .positive()
    .meta({ description, examples: [example] });

export const raiseAlertsConfigSchema = z
  .strictObject({
    rules: z
      .strictObject({
        news2: z
          .strictObject({
            version,
            model: z
              .string()
              .min(1)
              .default('news2')
              .meta({ description: 'Only inferences of this model are read by the rule.', examples: ['news2'] }),
          })
          .optional()
          .meta({
            description:
              "news2.response (physiological): the NEWS2 chart's clinical response band of each clinical inference " +
              '(live, or a canary inside its cohort): aggregate >= 7 "high" (emergency), 5-6 "medium" (urgent), a 3 ' +
              'in any single parameter "low_medium"; an alert opens at low_medium or above and resolves when the ' +
              'band falls back to low.',
            examples: [{ version: '1', model: 'news2' }],
          }),
        risk: z
          .strictObject({
            version,
            models: z
              .array(z.string().min(1))
              .min(1)
              .refine((m) => new Set(m).size === m.length, 'risk.models lists a model twice')
              .readonly()
              .meta({
                description: 'The probability models (manifest output kind `probability`) whose inferences it reads.',
                examples: [['deterioration']],
              }),
          })
          .optional()
          .meta({
            description:
              "model.risk (physiological), per model: the risk band a probability model's manifest thresholds gave " +
              'each clinical inference (risk_band); an alert opens above low, follows the band, and resolves when it ' +
              'falls back to low.',
            examples: [{ version: '1', models: ['deterioration'] }],
          }),
        deviceAlarm: z
          .strictObject({
            version,
            minPriority: z
              .enum(['low', 'medium', 'high'])
              .default('low')
              .meta({ description: 'Alarms below this priority never raise an alert.', examples: ['medium'] }),
          })
          .optional()
          .meta({
            description:
              "device.alarm: a device's own alarm (per alarm code), its band the alarm's priority; opens when raised " +
              '(active), resolves when cleared. Kind device_alarm, or technical for a technical-category alarm.',
            examples: [{ version: '1', minPriority: 'low' }],
          }),
        sensorOff: z
          .strictObject({ version })
          .optional()
          .meta({
            description:
              'technical.sensor_off (technical, band medium): the device reports state fault (its sensor is not ' +
              'measuring); resolves on any other state.',
            examples: [{ version: '1' }],
          }),
        batteryCritical: z
          .strictObject({
            version,
            belowPct: z
              .number()
              .int()
              .min(0)
              .max(100)
              .default(RAISE_ALERTS_DEFAULTS.batteryCriticalPct)
              .meta({ description: 'Opens at or below this battery level, %.', examples: [5] }),
            recoveredPct: z
              .number()
              .int()
              .min(0)
              .max(100)
              .default(RAISE_ALERTS_DEFAULTS.batteryRecoveredPct)
              .meta({
                description: 'Resolves at or above this level, % (hysteresis: in between, no change).',
                examples: [10],
              }),
          })
          .refine((b) => b.recoveredPct > b.belowPct, 'batteryCritical.recoveredPct must exceed belowPct')
          .optional()
          .meta({
            description:
              'technical.battery_critical (technical, band medium): device_status battery_pct critically low.',
            examples: [{ version: '1', belowPct: 5, recoveredPct: 10 }],
          }),
        calibrationStale: z
          .strictObject({ version })
          .optional()
          .meta({
            description:
              'technical.calibration_stale (technical, band low): device_status calibration_state stale; resolves ' +
              'on current (unknown changes nothing).',
            examples: [{ version: '1' }],
          }),
      })
      .refine((r) => Object.values(r).some((rule) => rule !== undefined), 'declare at least one rule')
      .refine(
        (r) => !(r.news2 && r.risk?.models.includes(r.news2.model)),
        'a model is read by news2 or by risk, not both: remove the NEWS2 model from risk.models',
      )
      .meta({ description: 'The rules, each on when present.' }),
    suppressWindowMs: duration(
      "A repeat of an open alert's condition (same or lower band) within this long of its last notification is " +
        'suppressed (counted, carried on the next notification); at or after it, the alert is re-notified unless ' +
        'acknowledged. A higher band always re-notifies at once. Event time (observed_at), in milliseconds.',
      900_000,
    ).default(RAISE_ALERTS_DEFAULTS.suppressWindowMs),
    escalateAfterMs: z
      .strictObject({
        low: duration('Deadline for band low.', 14_400_000).default(RAISE_ALERTS_DEFAULTS.escalateAfterMs.low),
        low_medium: duration('Deadline for band low_medium.', 3_600_000).default(
          RAISE_ALERTS_DEFAULTS.escalateAfterMs.low_medium,
        ),
        medium: duration('Deadline for band medium.', 1_800_000).default(RAISE_ALERTS_DEFAULTS.escalateAfterMs.medium),
        high: duration('Deadline for band high.', 900_000).default(RAISE_ALERTS_DEFAULTS.escalateAfterMs.high),
      })
      .prefault({})
      .meta({
        description:
          'By band: an alert not acknowledged this long after it opened (or last rose a band) is escalated once, by ' +
          'the first later record of the same patient and rule whose event time is past the deadline. Milliseconds.',
        examples: [{ high: 900_000 }],
      }),
    ttlMs: duration(
      "How long an alert's state lives after its last change; an alert that hears nothing for this long is forgotten " +
        '(a later record opens a new one). Milliseconds.',
      172_800_000,
    ).default(RAISE_ALERTS_DEFAULTS.ttlMs),
    maxEntries: duration(
      'In-memory backend: the most alert states kept per input partition (the oldest are evicted first).',
      1_000_000,
    ).default(RAISE_ALERTS_DEFAULTS.maxEntries),
    pipeline: z
      .string()
      .min(1)
      .optional()
      .meta({
        description:
          'Prefix of each alert\'s transformation_version ("<pipeline>/raise-alerts"). Default: the pipeline the runtime ' +
          'opens the operator in.',
        examples: ['alerts@1'],
      }),
  })
  .meta({
    description:
      'raise-alerts: clinical alerts from clinical inferences (NEWS2 and probability models), device alarms and ' +
      'device status, as a per-patient, per-rule state machine (open, suppress, re-notify, escalate, resolve, ' +
      'acknowledge) in keyed state. An inference is clinical when its routing says so (a live version, or a canary ' +
      'inside its cohort), or for a record without routing when its rollout is live: shadow inferences never alert.',
  });

/** What a pipeline author writes. */
export type RaiseAlertsConfigInput = z.input<typeof raiseAlertsConfigSchema>;
/** The parsed configuration, defaults filled in. */
export type RaiseAlertsConfig = z.output<typeof raiseAlertsConfigSchema>;

export function parseRaiseAlertsConfig(input: unknown): RaiseAlertsConfig {
  const parsed = raiseAlertsConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new VigilError('CONFIG_INVALID', `raise-alerts: invalid configuration:\n${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * The stage raise-alerts files its dead letters under, and the reason codes it may reject a record with: none (alerts
 * are outputs; no input record is rejected). Checked by `npm run check` against runtime/errors.ts, the README's table
 * and the codes the operator's source emits.
 */
export const raiseAlertsCodes = { stage: 'raise_alerts', reasonCodes: [] } as const satisfies OperatorCodes;
