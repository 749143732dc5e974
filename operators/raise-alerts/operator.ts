/**
 * The `raise-alerts` logic: every record is read by the rules (./rules.ts), each reading steps its alert's state
 * machine (./machine.ts) in keyed state, and each transition becomes a clinical alert record carrying its evidence.
 *
 * One `get` and one `put` per batch, through the runtime's StateBackend (state `raise-alerts.alert`, per input
 * partition, changelogged in the worker's transaction). Every input record leaves on `out` as an `AlertEvaluation`
 * (what each rule made of it, and the alert records it raised): the alerts pipeline's outputs select the alert
 * records from it, one output per rule (a record raises at most one transition per rule). No record is a dead letter.
 *
 * Replay: a batch the worker reads again (dropped at a rebalance with its state changes kept in memory) must raise
 * exactly what it raised the first time. Each stored alert keeps a short undo history of the changes that made it,
 * by source (topic, partition) and offset; a record first undoes the changes made by itself or by later offsets of its
 * own source, so it steps the state as it stood before. Alert and record ids are derived from the triggering record,
 * so the replayed alerts are the same records (the sink's ReplacingMergeTree keeps one). The history keeps the last
 * HISTORY changes: a re-read batch with more changes than that for one alert, or one interleaved with changes from
 * another source (an action), is stepped from the oldest state the history still holds.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import { type Operator, type OperatorContext, ResultsBuilder } from '../../runtime/operator.ts';
import type { InFlight, Origin } from '../../runtime/record.ts';
import type { StateBackend, StateDescriptor } from '../../runtime/state.ts';
import type { AlertAction } from '../../schemas/generated/alert-action.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import type { RaiseAlertsConfig } from './config.ts';
import { type AlertState, type Outcome, type Step, stepAction, stepCondition, type Transition } from './machine.ts';
import {
  type AlertInput,
  type InputSource,
  NO_EVIDENCE,
  type Observation,
  observe,
  RULE_IDS,
  type RuleId,
  type Skip,
  sourceOf,
  stateKey,
} from './rules.ts';

/** Stable state name: changelog key prefix, metric label. */
export const ALERT_STATE = 'raise-alerts.alert';
/** Undo entries kept per alert (see the header). */
export const HISTORY = 32;

/** What one rule made of one record. */
export interface RuleOutcome {
  readonly rule: RuleId;
  readonly outcome: Outcome;
}

/** Every input record leaves as one of these: what the rules made of it, and the alert records it raised. */
export interface AlertEvaluation {
  readonly source: InputSource;
  /** Set when no rule read the record (and no state was touched). */
  readonly skipped: Skip | null;
  readonly outcomes: readonly RuleOutcome[];
  readonly alerts: readonly ClinicalAlert[];
}

interface Undo {
  /** `<topic>:<partition>` of the record that made the change. */
  readonly s: string;
  readonly o: number;
  /** The state before the change. */
  readonly b: AlertState | null;
}

interface Stored {
  a: AlertState | null;
  h: Undo[];
}

interface Slot {
  readonly partition: number;
  readonly key: string;
  stored: Stored;
  dirty: boolean;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

export class RaiseAlertsOperator implements Operator<AlertInput, AlertEvaluation> {
  readonly name = 'raise-alerts';
  /** A stage of its own: the dead letters and metrics of alerting are never mistaken for scoring's. */
  readonly stage = 'raise_alerts' as const;
  readonly config: RaiseAlertsConfig;
  readonly alerts: StateDescriptor;
  readonly states: readonly StateDescriptor[];
  #state: StateBackend | undefined;
  #clock: Clock | undefined;
  #transformation = '';

  constructor(config: RaiseAlertsConfig) {
    this.config = config;
    this.alerts = Object.freeze({ name: ALERT_STATE, ttlMs: config.ttlMs, maxEntries: config.maxEntries });
    this.states = [this.alerts];
  }

  async open(context: OperatorContext): Promise<void> {
    await context.state.open();
    this.#state = context.state;
    this.#clock = context.clock;
    this.#transformation = `${this.config.pipeline ?? context.pipeline}/raise-alerts`;
  }

  async process(batch: readonly InFlight<AlertInput>[]): Promise<ResultsBuilder<AlertEvaluation>> {
    const state = this.#state;
    const clock = this.#clock;
    if (state === undefined || clock === undefined) {
      throw new VigilError('INTERNAL', 'raise-alerts: process() called before open()');
    }
    const results = new ResultsBuilder<AlertEvaluation>();
    if (batch.length === 0) return results;

    // 1. What each record says, and every state key the batch touches (one read for the batch).
    const plans = batch.map((record) => this.#plan(record.value));
    const slots = new Map<string, Slot>();
    const slotOf = (partition: number, key: string): Slot => {
      const id = `${partition}\u0000${key}`;
      let slot = slots.get(id);
      if (!slot) {
        slot = { partition, key, stored: { a: null, h: [] }, dirty: false };
        slots.set(id, slot);
      }
      return slot;
    };
    for (let i = 0; i < batch.length; i++) {
      const partition = batch[i]!.origin.partition;
      for (const key of plans[i]!.keys) slotOf(partition, key);
    }
    const list = [...slots.values()];
    if (list.length > 0) {
      const values = await state.get(
        this.alerts,
        list.map((s) => ({ key: s.key, partition: s.partition })),
      );
      if (values.length !== list.length) {
        throw new VigilError('INTERNAL', `raise-alerts: state get answered ${values.length} values for ${list.length}`);
      }
      for (let i = 0; i < list.length; i++) list[i]!.stored = decode(values[i]!);
    }

    // 2. Step each record's alerts in batch order.
    const raisedAt = clock.now();
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      const plan = plans[i]!;
      const { origin } = record;
      const outcomes: RuleOutcome[] = [];
      const alerts: ClinicalAlert[] = [];
      if (plan.kind === 'observations') {
        for (const obs of plan.observations) {
          const slot = slotOf(origin.partition, stateKey(obs.rule, obs.patientRef, obs.scope));
          const before = rewind(slot, origin);
          const step = stepCondition(before, obs.condition, obs.observedAt, this.config, () => ({
            id: `alr-${sha(`${obs.rule}|${obs.patientRef}|${obs.scope}|${obs.triggerId}`).slice(0, 32)}`,
            kind: obs.kind,
            siteId: obs.siteId,
            ruleVersion: obs.version,
          }));
          apply(slot, origin, before, step);
          outcomes.push({ rule: obs.rule, outcome: step.outcome });
          if (step.transition) {
            alerts.push(
              this.#record(step.transition, (step.next ?? before)!, step.carried, obs, origin, raisedAt, null),
            );
          }
        }
      } else if (plan.kind === 'action') {
        const action = plan.action;
        const rule = action.rule_id as RuleId;
        const slot = slotOf(origin.partition, plan.keys[0]!);
        const before = rewind(slot, origin);
        const step = stepAction(before, action.action, action.alert_id, action.at);
        apply(slot, origin, before, step);
        outcomes.push({ rule, outcome: step.outcome });
        if (step.transition && before) {
          const obs: Observation = {
            rule,
            version: before.ruleVersion,
            kind: before.kind,
            scope: action.alarm_code ?? '',
            patientRef: action.patient_ref,
            siteId: before.siteId,
            deviceId: action.device_id,
            condition: { state: 'hold' },
            observedAt: action.at,
            triggerId: action.action_id,
            evidence: { ...NO_EVIDENCE, alarmCode: action.alarm_code },
          };
          alerts.push(this.#record(step.transition, step.next!, step.carried, obs, origin, raisedAt, action));
        }
      }
      results.pass(origin, {
        source: plan.source,
        skipped: plan.kind === 'skip' ? plan.skip : null,
        outcomes,
        alerts,
      });
    }

    // 3. One write for the batch.
    const writes = list
      .filter((s) => s.dirty)
      .map((s) => ({
        key: s.key,
        partition: s.partition,
        value: s.stored.a === null && s.stored.h.length === 0 ? null : JSON.stringify(s.stored),
      }));
    if (writes.length > 0) await state.put(this.alerts, writes);
    return results;
  }

  #plan(value: AlertInput): Plan {
    const source = sourceOf(value);
    if (source === 'action') {
      const action = value as AlertAction;
      return {
        kind: 'action',
        source,
        action,
        keys: [stateKey(action.rule_id, action.patient_ref, action.alarm_code ?? '')],
      };
    }
    const observed = observe(value as Exclude<AlertInput, AlertAction>, this.config.rules);
    if (typeof observed === 'string') return { kind: 'skip', source, skip: observed, keys: [] };
    return {
      kind: 'observations',
      source,
      observations: observed,
      keys: observed.map((o) => stateKey(o.rule, o.patientRef, o.scope)),
    };
  }

  #record(
    transition: Transition,
    alert: AlertState,
    carried: number,
    obs: Observation,
    origin: Origin,
    raisedAt: number,
    action: AlertAction | null,
  ): ClinicalAlert {
    const ev = obs.evidence;
    return {
      record_id: `alr-${sha(`${alert.id}|${transition}|${obs.triggerId}`).slice(0, 32)}`,
      alert_id: alert.id,
      patient_ref: obs.patientRef,
      site_id: alert.siteId,
      device_id: obs.deviceId,
      rule_id: obs.rule,
      rule_version: alert.ruleVersion,
      kind: alert.kind,
      band: alert.band,
      transition,
      opened_at: alert.openedAt,
      observed_at: obs.observedAt,
      received_at: origin.consumedAt,
      raised_at: raisedAt,
      suppressed: carried,
      inference_ids: [...ev.inferenceIds],
      event_ids: [...ev.eventIds],
      model_name: ev.modelName,
      model_version: ev.modelVersion,
      rollout: ev.rollout,
      score: ev.score,
      parameter: ev.parameter,
      alarm_code: ev.alarmCode,
      action_id: action?.action_id ?? null,
      principal: action?.principal ?? null,
      transformation_version: this.#transformation,
    };
  }
}

type Plan = { readonly source: InputSource; readonly keys: readonly string[] } & (
  | { readonly kind: 'skip'; readonly skip: Skip }
  | { readonly kind: 'observations'; readonly observations: readonly Observation[] }
  | { readonly kind: 'action'; readonly action: AlertAction }
);

/** Undoes the changes this record's source made at or after its offset (a re-read batch), returning the state before. */
function rewind(slot: Slot, origin: Origin): AlertState | null {
  const source = `${origin.topic}:${origin.partition}`;
  const { h } = slot.stored;
  while (h.length > 0) {
    const last = h[h.length - 1]!;
    if (last.s !== source || last.o < origin.offset) break;
    slot.stored.a = last.b;
    h.pop();
    slot.dirty = true;
  }
  return slot.stored.a;
}

function apply(slot: Slot, origin: Origin, before: AlertState | null, step: Step): void {
  if (step.next === before) return;
  const { h } = slot.stored;
  h.push({ s: `${origin.topic}:${origin.partition}`, o: origin.offset, b: before });
  if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
  slot.stored.a = step.next;
  slot.dirty = true;
}

function decode(value: string | null): Stored {
  if (value === null) return { a: null, h: [] };
  try {
    const parsed = JSON.parse(value) as Stored;
    return { a: parsed.a ?? null, h: Array.isArray(parsed.h) ? parsed.h : [] };
  } catch (cause) {
    throw new VigilError('INTERNAL', `raise-alerts: state ${ALERT_STATE} holds a value that is not its JSON`, {
      cause,
    });
  }
}

export { RULE_IDS };
