/**
 * The alert state machine of one (patient, rule[, alarm code]), as a pure function of its state and one input. Time is
 * event time (the triggering record's observed_at, or an action's `at`): the same log gives the same alerts, however
 * fast or late it is processed, and no timer or wall-clock sleep is involved. A deadline passes when a later record of
 * the same patient and rule says the time is past it.
 *
 *   (none) --active--> OPEN                                         emits open
 *   OPEN --clear--> (none)                                          emits resolve
 *   OPEN --active, band above the alert's--> OPEN (new band, unacked, new deadline)   emits renotify
 *   OPEN --active|hold, unacked, unescalated, time >= deadline--> OPEN (escalated)   emits escalate
 *   OPEN --active, time < last notification + window--> OPEN (suppressed + 1)        emits nothing ("suppressed")
 *   OPEN --active, time >= last notification + window, unacked--> OPEN             emits renotify
 *   OPEN --active, window passed, acked--> OPEN (suppressed + 1)                     emits nothing ("suppressed")
 *   OPEN --ack action for this alert id--> OPEN (acked)                              emits ack
 *   OPEN --escalate action for this alert id--> OPEN (escalated)                     emits escalate
 *   anything else (hold, a stale action, clear with nothing open)                    emits nothing ("quiet"/"stale_action")
 *
 * A lower band while open lowers the alert's band without a notification (so a later rise re-notifies). The number of
 * repeats suppressed since the last notification travels on the next record the alert emits.
 */
import type { Band, RaiseAlertsConfig } from './config.ts';
import { BANDS } from './config.ts';
import type { AlertKind, Condition } from './rules.ts';

export type Transition = 'open' | 'renotify' | 'escalate' | 'resolve' | 'ack';

/** What a record did to one alert: counted per rule by the pipeline summary and the tests. */
export type Outcome =
  | 'opened'
  | 'renotified'
  | 'escalated'
  | 'resolved'
  | 'acked'
  | 'suppressed'
  | 'quiet'
  | 'stale_action';

/** What an alert keeps from its opening record, so a later action can name it fully. */
export interface AlertIdentity {
  /** alert_id */
  readonly id: string;
  readonly kind: AlertKind;
  readonly siteId: string;
  /** The rule version that opened it. */
  readonly ruleVersion: string;
}

/** An open alert, as kept in keyed state (JSON, short names: it is written on every change). */
export interface AlertState extends AlertIdentity {
  readonly band: Band;
  /** Event time the alert opened. */
  readonly openedAt: number;
  /** Event time after which an unacknowledged alert escalates. */
  readonly dueAt: number;
  /** Event time of the last notification (open, renotify, escalate). */
  readonly notifiedAt: number;
  readonly escalated: boolean;
  readonly acked: boolean;
  /** Repeats suppressed since the last notification. */
  readonly suppressed: number;
}

export interface Step {
  readonly next: AlertState | null;
  readonly transition: Transition | null;
  readonly outcome: Outcome;
  /** The suppressed count the emitted record carries (the repeats it summarises). */
  readonly carried: number;
}

export type Timing = Pick<RaiseAlertsConfig, 'suppressWindowMs' | 'escalateAfterMs'>;

const rank = (band: Band): number => BANDS.indexOf(band);

/** One observation of the rule's condition at event time `at`. `open` names the alert should this open one. */
export function stepCondition(
  current: AlertState | null,
  condition: Condition,
  at: number,
  timing: Timing,
  open: () => AlertIdentity,
): Step {
  if (current === null) {
    if (condition.state !== 'active') return { next: null, transition: null, outcome: 'quiet', carried: 0 };
    const { band } = condition;
    const next: AlertState = {
      ...open(),
      band,
      openedAt: at,
      dueAt: at + timing.escalateAfterMs[band],
      notifiedAt: at,
      escalated: false,
      acked: false,
      suppressed: 0,
    };
    return { next, transition: 'open', outcome: 'opened', carried: 0 };
  }
  if (condition.state === 'clear') {
    return { next: null, transition: 'resolve', outcome: 'resolved', carried: current.suppressed };
  }
  if (condition.state === 'active' && rank(condition.band) > rank(current.band)) {
    const { band } = condition;
    const next: AlertState = {
      ...current,
      band,
      dueAt: at + timing.escalateAfterMs[band],
      notifiedAt: at,
      escalated: false,
      acked: false,
      suppressed: 0,
    };
    return { next, transition: 'renotify', outcome: 'renotified', carried: current.suppressed };
  }
  const band = condition.state === 'active' ? condition.band : current.band;
  if (!current.acked && !current.escalated && at >= current.dueAt) {
    const next: AlertState = { ...current, band, notifiedAt: at, escalated: true, suppressed: 0 };
    return { next, transition: 'escalate', outcome: 'escalated', carried: current.suppressed };
  }
  if (condition.state === 'hold') return { next: current, transition: null, outcome: 'quiet', carried: 0 };
  if (current.acked || at < current.notifiedAt + timing.suppressWindowMs) {
    const next: AlertState = { ...current, band, suppressed: current.suppressed + 1 };
    return { next, transition: null, outcome: 'suppressed', carried: 0 };
  }
  const next: AlertState = { ...current, band, notifiedAt: at, suppressed: 0 };
  return { next, transition: 'renotify', outcome: 'renotified', carried: current.suppressed };
}

/** A person's action on alert `alertId` (ack or escalate). An action on another alert id changes nothing. */
export function stepAction(current: AlertState | null, action: 'ack' | 'escalate', alertId: string, at: number): Step {
  if (current === null || current.id !== alertId) {
    return { next: current, transition: null, outcome: 'stale_action', carried: 0 };
  }
  if (action === 'ack') {
    if (current.acked) return { next: current, transition: null, outcome: 'stale_action', carried: 0 };
    return { next: { ...current, acked: true }, transition: 'ack', outcome: 'acked', carried: 0 };
  }
  const next: AlertState = { ...current, escalated: true, notifiedAt: Math.max(current.notifiedAt, at), suppressed: 0 };
  return { next, transition: 'escalate', outcome: 'escalated', carried: current.suppressed };
}
