/**
 * `raise-alerts`: clinical alerts from clinical inferences (NEWS2, and the risk band of probability models), device
 * alarms and device status, as a small state machine per patient (pseudonym) and rule in keyed state: open, suppress
 * repeats within a window (counted), re-notify, escalate when unacknowledged past a deadline (event time), resolve
 * when the condition clears, acknowledge. An inference is clinical when its routing decision says so (a live version,
 * or a canary inside its cohort), or, on a record without routing, when its rollout is live: shadow inferences never
 * raise an alert. See ./rules.ts for the rules, ./machine.ts for the transitions and ./operator.ts for state and
 * replay.
 */
import type { Operator } from '../../runtime/operator.ts';
import { parseRaiseAlertsConfig, type RaiseAlertsConfigInput } from './config.ts';
import { type AlertEvaluation, RaiseAlertsOperator } from './operator.ts';
import type { AlertInput } from './rules.ts';

export {
  BANDS,
  type Band,
  parseRaiseAlertsConfig,
  RAISE_ALERTS_DEFAULTS,
  type RaiseAlertsConfig,
  type RaiseAlertsConfigInput,
  raiseAlertsConfigSchema,
} from './config.ts';
export type { AlertState, Outcome, Transition } from './machine.ts';
export { ALERT_STATE, type AlertEvaluation, HISTORY, RaiseAlertsOperator, type RuleOutcome } from './operator.ts';
export { type AlertInput, type AlertKind, isClinical, news2Band, RULE_IDS, type RuleId, type Skip } from './rules.ts';

/**
 * Creates the `raise-alerts` operator (name `raise-alerts`). The configuration is checked here (CONFIG_INVALID on a
 * bad option, or no rule declared) and the state backend is opened in `open()`, before the first record.
 *
 * @example
 * definePipeline({ name: 'alerts', version: '1', sources: [inferences, events] })
 *   .pipe(
 *     raiseAlerts({
 *       rules: {
 *         news2: { version: '1' },
 *         risk: { version: '1', models: ['deterioration'] },
 *         deviceAlarm: { version: '1', minPriority: 'medium' },
 *         sensorOff: { version: '1' },
 *       },
 *       suppressWindowMs: 15 * 60_000,
 *       escalateAfterMs: { high: 15 * 60_000 },
 *     }),
 *   );
 */
export function raiseAlerts(config: RaiseAlertsConfigInput): Operator<AlertInput, AlertEvaluation> {
  return new RaiseAlertsOperator(parseRaiseAlertsConfig(config));
}
