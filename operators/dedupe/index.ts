/**
 * `dedupe`: drops second copies of an event — by event_id, and by (device_id, sequence) — and enforces the per-device
 * replay window. A duplicate is an intentional drop: it leaves on the `duplicates` output (counted, recorded with
 * where the first copy was seen), never silently. State goes through the runtime's StateBackend (in memory; per partition with a changelog when distributed),
 * declared as `dedupe.event_id` and `dedupe.sequence` with a TTL; see ./operator.ts for the exact rules.
 */
import type { Operator } from '../../runtime/operator.ts';
import type { CheckedEvent } from '../types.ts';
import { type DedupeConfigInput, parseDedupeConfig } from './config.ts';
import { DedupeOperator } from './operator.ts';

export {
  DEDUPE_DEFAULTS,
  type DedupeConfig,
  type DedupeConfigInput,
  dedupeConfigSchema,
  parseDedupeConfig,
} from './config.ts';
export { DedupeOperator, EVENT_ID_STATE, SEQUENCE_STATE } from './operator.ts';

/**
 * Creates the `dedupe` operator (name `dedupe`, stage `dedupe`). The configuration is checked here (CONFIG_INVALID on
 * a bad option) and the state backend is opened in `open()`, so a backend that cannot be used fails before the first record.
 *
 * @example
 * definePipeline({ name: 'vitals', version: '1', source })
 *   .pipe(validate())
 *   .pipe(dedupe({ window: 128, ttlMs: 6 * 3_600_000 }))
 *   .pipe(score({ models: [{ model: 'news2', version: '1.0.0' }] }));
 */
export function dedupe(config: DedupeConfigInput = {}): Operator<CheckedEvent, CheckedEvent> {
  return new DedupeOperator(parseDedupeConfig(config));
}
