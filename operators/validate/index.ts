/**
 * `validate`: the first operator after decoding. Stateless checks of each envelope — provenance present, event id a
 * ULID, payload matching its event type, values physiologically possible, device time plausible — in a fixed order
 * (see ./operator.ts); the first failure sends the record to the dead-letter path with its reason code. Conditions
 * that are kept rather than rejected become provenance flags (`clock_skew`, `late_arrival`, `no_sequence`).
 *
 * The per-device monotonic sequence rule needs keyed state: it is `dedupe`'s replay window, not a check here.
 */
import type { Operator } from '../../runtime/operator.ts';
import type { Envelope } from '../../schemas/types.ts';
import type { CheckedEvent } from '../types.ts';
import { parseValidateConfig, type ValidateConfigInput } from './config.ts';
import { ValidateOperator } from './operator.ts';

export {
  parseValidateConfig,
  VALIDATE_DEFAULTS,
  type ValidateConfig,
  type ValidateConfigInput,
  validateConfigSchema,
} from './config.ts';
export { isUlid, REQUIRED_PROVENANCE, ULID_PATTERN, ValidateOperator, type ValidationFailure } from './operator.ts';

/**
 * Creates the `validate` operator (name `validate`, stage `validate`). The configuration is checked here, so a bad
 * option fails at start-up with CONFIG_INVALID, before the first record.
 *
 * @example
 * definePipeline({ name: 'vitals', version: '1', source })
 *   .pipe(validate({ maxFutureSkewMs: 60_000, vitals: { pulse: { min: 25, max: 250 } } }))
 *   .pipe(dedupe());
 */
export function validate(config: ValidateConfigInput = {}): Operator<Envelope, CheckedEvent> {
  return new ValidateOperator(parseValidateConfig(config));
}
