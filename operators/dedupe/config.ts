/**
 * The `dedupe` operator's configuration: the one place its options are defined, parsed, defaulted and documented.
 * Strict: an unknown key is an error, so a typo fails at start-up instead of being ignored.
 */
import { z } from 'zod';
import { type OperatorCodes, VigilError } from '../../runtime/errors.ts';

/** Every default in one place. */
export const DEDUPE_DEFAULTS = {
  ttlMs: 86_400_000,
  window: 64,
  maxEntries: 1_000_000,
} as const;

export const dedupeConfigSchema = z
  .strictObject({
    ttlMs: z
      .number()
      .int()
      .positive()
      .default(DEDUPE_DEFAULTS.ttlMs)
      .meta({
        description:
          'How long an event id, and a device sequence number, is remembered after it was first accepted (both ' +
          'states). A copy arriving later than this is no longer recognised. In milliseconds. It must exceed the ' +
          'longest time a batch can wait between processing and its offset commit, or a crash replay is misread.',
        examples: [86_400_000],
      }),
    window: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(DEDUPE_DEFAULTS.window)
      .meta({
        description:
          'Replay window per device, in sequence numbers (IPsec keeps 64): a sequence more than this below the ' +
          'highest accepted from its device, and never seen, is rejected as SEQUENCE_TOO_OLD. Inside it, out-of-order ' +
          'arrival is accepted.',
        examples: [64, 1024],
      }),
    maxEntries: z
      .number()
      .int()
      .positive()
      .default(DEDUPE_DEFAULTS.maxEntries)
      .meta({
        description:
          'The most entries each state keeps in memory (event ids; accepted sequences), per input partition in the ' +
          'distributed mode. Beyond it the oldest are evicted first and counted as evictions.',
        examples: [1_000_000],
      }),
  })
  .meta({
    description:
      'dedupe: drops second copies by event_id and by (device_id, sequence), and enforces the per-device replay ' +
      'window; every duplicate is counted and recorded, never silently dropped.',
  });

/** What a pipeline author writes (every field may be left out). */
export type DedupeConfigInput = z.input<typeof dedupeConfigSchema>;
/** The parsed configuration, defaults filled in. */
export type DedupeConfig = z.output<typeof dedupeConfigSchema>;

export function parseDedupeConfig(input: unknown = {}): DedupeConfig {
  const parsed = dedupeConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new VigilError('CONFIG_INVALID', `dedupe: invalid configuration:\n${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * The stage dedupe files its dead letters under and every reason code it may reject a record with. Checked by
 * `npm run check` against runtime/errors.ts, the README's table and the codes the operator's source emits.
 */
export const dedupeCodes = { stage: 'dedupe', reasonCodes: ['SEQUENCE_TOO_OLD'] } as const satisfies OperatorCodes;
