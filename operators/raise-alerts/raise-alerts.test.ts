import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelStore } from '../../runtime/models.ts';
import type { OperatorContext } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import type { StateBackend, StateDescriptor, ValueRequest, ValueWrite } from '../../runtime/state.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import type { Alarm, DeviceStatus, Envelope, Inference, VitalSigns } from '../../schemas/types.ts';
import { wrapPayload } from '../../schemas/types.ts';
import { envelope, VITALS } from '../../test/fixtures/envelope.ts';
import { actionOn, consumed, inferenceOf, normalisedOf, type Rollout } from '../../test/helpers/alerts.ts';
import { expectOperatorTelemetry } from '../../test/helpers/telemetry.ts';
import {
  ALERT_STATE,
  type AlertEvaluation,
  type AlertInput,
  parseRaiseAlertsConfig,
  RAISE_ALERTS_DEFAULTS,
  type RaiseAlertsOperator,
  raiseAlerts,
} from './index.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 6, 0, 0);
const PATIENT = 'psn-v1-00000000000000aa';
const OTHER = 'psn-v1-00000000000000bb';
const ACTIONS_TOPIC = 'vigil.clinical.alert-actions';

/** NEWS2 vitals by what they score (the plain chart: operators/score/news2-reference.ts). */
const V = {
  low: VITALS, // 0
  two: { ...VITALS, pulse: 115 }, // 2, no 3: band low
  red: { ...VITALS, respiratory_rate: 26 }, // 3 in one parameter: low_medium
  five: { ...VITALS, respiratory_rate: 22, spo2: 94, pulse: 105, temperature_c: 38.5 }, // 5: medium
  eight: { ...VITALS, respiratory_rate: 26, spo2: 91, pulse: 115 }, // 8: high
} satisfies Record<string, VitalSigns>;

const noModels = {} as ModelStore;

const RULES = {
  news2: { version: '1' },
  deviceAlarm: { version: '1', minPriority: 'medium' as const },
  sensorOff: { version: '1' },
  batteryCritical: { version: '1' },
  calibrationStale: { version: '1' },
};

/** A memory backend that counts get/put calls and the partitions they name. */
class Recording implements StateBackend {
  readonly kind = 'memory' as const;
  readonly calls: string[] = [];
  readonly partitions = new Set<number | undefined>();
  readonly inner: MemoryStateBackend;
  constructor(inner: MemoryStateBackend) {
    this.inner = inner;
  }
  open() {
    return this.inner.open();
  }
  claim(...args: Parameters<MemoryStateBackend['claim']>) {
    return this.inner.claim(...args);
  }
  advanceSequences(...args: Parameters<MemoryStateBackend['advanceSequences']>) {
    return this.inner.advanceSequences(...args);
  }
  close() {
    return this.inner.close();
  }
  get(state: StateDescriptor, requests: readonly ValueRequest[]) {
    this.calls.push(`get:${state.name}:${requests.length}`);
    for (const r of requests) this.partitions.add(r.partition);
    return this.inner.get(state, requests);
  }
  put(state: StateDescriptor, writes: readonly ValueWrite[]) {
    this.calls.push(`put:${state.name}:${writes.length}`);
    for (const w of writes) this.partitions.add(w.partition);
    return this.inner.put(state, writes);
  }
}

async function harness(config: Parameters<typeof raiseAlerts>[0] = { rules: RULES }) {
  const clock = new ManualClock(T0);
  const state = new Recording(new MemoryStateBackend({ clock }));
  const operator = raiseAlerts(config) as RaiseAlertsOperator;
  const context: OperatorContext = { pipeline: 'alerts@1', clock, state, log: silentLogger, models: noModels };
  await operator.open(context);
  const offset = { [TOPICS.inferences]: 0, [TOPICS.normalised]: 0, [TOPICS.clinicalAlerts]: 0 } as Record<
    string,
    number
  >;
  const run = async (batch: InFlight<AlertInput>[]) => {
    const results = await operator.process(batch);
    expect(results.out.length).toBe(batch.length); // every record evaluated, none rejected or dropped
    expect(results.rejected).toEqual([]);
    return results.out.map((r) => r.value);
  };
  let seq = 0;
  const vitalsAt = (minute: number, v: VitalSigns, patient = PATIENT): Envelope =>
    envelope({
      event_id: `01KG${String(seq++).padStart(22, '0')}`,
      patient_ref: patient,
      device_id: `dev-${patient.slice(-2)}`,
      observed_at: T0 + minute * MIN,
      received_at: T0 + minute * MIN + 800,
      vitals: v,
    });
  const inf = (minute: number, v: VitalSigns, rollout: Rollout = 'live', patient = PATIENT) => {
    const e = vitalsAt(minute, v, patient);
    const value = inferenceOf(e, rollout)!;
    return consumed<AlertInput>(value, TOPICS.inferences, offset[TOPICS.inferences]!++, e.received_at + 200);
  };
  const event = (minute: number, type: 'alarm' | 'device_status', data: Alarm | DeviceStatus, patient = PATIENT) => {
    const e: Envelope = {
      ...vitalsAt(minute, V.low, patient),
      event_type: type,
      payload: wrapPayload(type, data),
    };
    const at = offset[TOPICS.normalised]!++;
    return consumed<AlertInput>(
      normalisedOf(e, { partition: 0, offset: at }),
      TOPICS.normalised,
      at,
      e.received_at + 200,
    );
  };
  let actions = 0;
  const action = (alert: ClinicalAlert, kind: 'ack' | 'escalate', minute: number) =>
    consumed<AlertInput>(actionOn(alert, kind, T0 + minute * MIN), ACTIONS_TOPIC, actions++, T0 + minute * MIN);
  return { clock, state, operator, run, inf, event, action };
}

const alertsOf = (evaluations: readonly AlertEvaluation[]) => evaluations.flatMap((e) => e.alerts);
const transitions = (evaluations: readonly AlertEvaluation[]) =>
  alertsOf(evaluations).map((a) => `${a.rule_id}:${a.transition}:${a.band}`);
const outcomes = (evaluations: readonly AlertEvaluation[]) =>
  evaluations.flatMap((e) => e.outcomes.map((o) => o.outcome));

/** The routing decision an inference v2 carries (schemas/avro/inference/v2.avsc), as score records it. */
interface Routing {
  readonly source: 'registry' | 'pipeline';
  readonly cohort_bucket: number;
  readonly in_canary: boolean;
  readonly clinical: boolean;
}

/** The same inference as inference v2 with a routing decision (and optionally another model version). */
function routed(record: InFlight<AlertInput>, routing: Partial<Routing>, version?: string): InFlight<AlertInput> {
  const value = record.value as Inference;
  const decision: Routing = { source: 'registry', cohort_bucket: 42, in_canary: false, clinical: false, ...routing };
  return {
    ...record,
    value: {
      ...value,
      ...(version === undefined ? {} : { model_version: version }),
      rollout_id: '01KGROLLOUT0000000000000000',
      routing: decision,
    } as AlertInput,
  };
}

/** The same event scored by a probability model: `p` in its risk band `band` (the manifest's thresholds decided it). */
function risk(
  record: InFlight<AlertInput>,
  p: number,
  band: Inference['risk_band'],
  model = 'deterioration',
): InFlight<AlertInput> {
  const value = record.value as Inference;
  return {
    ...record,
    value: {
      ...value,
      inference_id: `${value.inference_id}-${model}`,
      model_name: model,
      model_version: '1.0.0',
      score: p,
      risk_band: band,
    } as AlertInput,
  };
}

describe('raise-alerts: NEWS2 response', () => {
  it('opens at medium, suppresses repeats inside the window, re-notifies after it, rises to high at once, resolves', async () => {
    const h = await harness();
    const out = await h.run([
      h.inf(0, V.low), // nothing open, nothing to say
      h.inf(5, V.five), // open medium
      h.inf(10, V.five), // repeat within 15 min: suppressed
      h.inf(20, V.five), // 15 min since the notification: window passed -> renotify (carries 1 suppressed)
      h.inf(23, V.five), // suppressed
      h.inf(25, V.eight), // higher band: renotify at once, never suppressed
      h.inf(28, V.eight), // suppressed
      h.inf(30, V.two), // band low: resolve
      h.inf(35, V.two), // nothing open
    ]);
    expect(transitions(out)).toEqual([
      'news2.response:open:medium',
      'news2.response:renotify:medium',
      'news2.response:renotify:high',
      'news2.response:resolve:high',
    ]);
    expect(outcomes(out)).toEqual([
      'quiet',
      'opened',
      'suppressed',
      'renotified',
      'suppressed',
      'renotified',
      'suppressed',
      'resolved',
      'quiet',
    ]);
    const alerts = alertsOf(out);
    expect(alerts.map((a) => a.suppressed)).toEqual([0, 1, 1, 1]);
    expect(new Set(alerts.map((a) => a.alert_id)).size).toBe(1); // one alert, four transitions
    expect(new Set(alerts.map((a) => a.record_id)).size).toBe(4);
  });

  it('alert records carry the evidence that raised them', async () => {
    const h = await harness();
    const record = h.inf(5, V.eight);
    h.clock.set(T0 + 7 * MIN);
    const [evaluation] = await h.run([record]);
    const inference = record.value as ReturnType<typeof inferenceOf> & object;
    const [alert] = evaluation!.alerts;
    expect(alert).toMatchObject({
      patient_ref: PATIENT,
      site_id: inference.site_id,
      device_id: inference.device_id,
      rule_id: 'news2.response',
      rule_version: '1',
      kind: 'physiological',
      band: 'high',
      transition: 'open',
      inference_ids: [inference.inference_id],
      event_ids: [inference.event_id],
      model_name: 'news2',
      model_version: '1.0.0',
      rollout: 'live',
      score: 8,
      parameter: 'respiratory_rate',
      opened_at: T0 + 5 * MIN,
      observed_at: T0 + 5 * MIN,
      received_at: record.origin.consumedAt,
      raised_at: T0 + 7 * MIN,
      action_id: null,
      principal: null,
      transformation_version: 'alerts@1/raise-alerts',
    });
    expect(alert!.alert_id).toMatch(/^alr-[0-9a-f]{32}$/);
  });

  it('a 3 in a single parameter opens low_medium and names the parameter', async () => {
    const h = await harness();
    const [e] = await h.run([h.inf(0, V.red)]);
    expect(e!.alerts).toMatchObject([{ band: 'low_medium', score: 3, parameter: 'respiratory_rate' }]);
  });

  it('v1 records (no routing): only a live rollout alerts; shadow and canary touch no state', async () => {
    const h = await harness();
    const out = await h.run([
      h.inf(0, V.eight, 'shadow'),
      h.inf(1, V.eight, 'canary'),
      h.inf(2, V.eight, 'shadow', OTHER),
    ]);
    expect(alertsOf(out)).toEqual([]);
    expect(out.map((e) => e.skipped)).toEqual(['not_clinical', 'not_clinical', 'not_clinical']);
    expect(h.state.calls).toEqual([]); // not even read
    // A live v1 inference of the same patient then opens as if the others never were.
    const [live] = await h.run([h.inf(3, V.eight, 'live')]);
    expect(live!.alerts).toMatchObject([{ transition: 'open', rollout: 'live', model_version: '1.0.0' }]);
  });

  it('v2 records follow their routing: a canary inside its cohort alerts, outside it and shadow never', async () => {
    const h = await harness();
    const out = await h.run([
      routed(h.inf(0, V.eight, 'shadow'), { clinical: false }),
      // A shadow never alerts, whatever a (wrong) routing record says.
      routed(h.inf(1, V.eight, 'shadow'), { clinical: true }),
      routed(h.inf(2, V.eight, 'canary', OTHER), { clinical: false, in_canary: false }),
    ]);
    expect(alertsOf(out)).toEqual([]);
    expect(out.map((e) => e.skipped)).toEqual(['not_clinical', 'not_clinical', 'not_clinical']);
    expect(h.state.calls).toEqual([]);

    const canary = routed(h.inf(3, V.eight, 'canary'), { clinical: true, in_canary: true }, '1.1.0');
    const [opened] = await h.run([canary]);
    expect(opened!.skipped).toBeNull();
    expect(opened!.alerts).toMatchObject([
      { rule_id: 'news2.response', transition: 'open', band: 'high', model_version: '1.1.0', rollout: 'canary' },
    ]);
    // Routed live (v2) outside the cohort alerts too; the canary's patient keeps one alert across versions.
    const [live] = await h.run([routed(h.inf(4, V.eight, 'live', OTHER), { clinical: true })]);
    expect(live!.alerts.map((a) => `${a.transition}:${a.rollout}`)).toEqual(['open:live']);
    const [repeat] = await h.run([routed(h.inf(5, V.eight, 'live'), { clinical: true })]);
    expect(repeat!.outcomes.map((o) => o.outcome)).toEqual(['suppressed']);
  });

  it('inferences of another model are not read by the NEWS2 rule', async () => {
    const h = await harness();
    const record = h.inf(0, V.eight);
    const other = { ...record, value: { ...(record.value as object), model_name: 'sepsis-x' } as AlertInput };
    const [e] = await h.run([other]);
    expect(e).toMatchObject({ skipped: 'other_model', alerts: [] });
  });
});

describe('raise-alerts: model.risk (probability models)', () => {
  const RISK = { ...RULES, risk: { version: '1', models: ['deterioration'] } };

  it("raises on the inference's risk band, follows it up, suppresses repeats, resolves at low", async () => {
    const h = await harness({ rules: RISK });
    const out = await h.run([
      risk(h.inf(0, V.low), 0.02, 'low'), // nothing open
      risk(h.inf(5, V.low), 0.18, 'medium'), // open medium
      risk(h.inf(8, V.low), 0.2, 'medium'), // repeat: suppressed
      risk(h.inf(10, V.low), 0.4, 'high'), // higher band: renotify at once
      risk(h.inf(40, V.low), 0.03, 'low'), // resolve
    ]);
    expect(transitions(out)).toEqual(['model.risk:open:medium', 'model.risk:renotify:high', 'model.risk:resolve:high']);
    expect(outcomes(out)).toEqual(['quiet', 'opened', 'suppressed', 'renotified', 'resolved']);
    const [open] = alertsOf(out);
    expect(open).toMatchObject({
      rule_id: 'model.risk',
      rule_version: '1',
      kind: 'physiological',
      model_name: 'deterioration',
      model_version: '1.0.0',
      rollout: 'live',
      score: 0.18,
      parameter: null,
    });
  });

  it('escalates an unacknowledged risk alert by event time like every rule', async () => {
    const h = await harness({ rules: RISK, escalateAfterMs: { high: 15 * MIN }, suppressWindowMs: 60 * MIN });
    const out = await h.run([
      risk(h.inf(0, V.low), 0.5, 'high'),
      risk(h.inf(10, V.low), 0.5, 'high'),
      risk(h.inf(16, V.low), 0.5, 'high'),
    ]);
    expect(transitions(out)).toEqual(['model.risk:open:high', 'model.risk:escalate:high']);
  });

  it('reads only clinical inferences of the listed models, apart from the NEWS2 alert of the same patient', async () => {
    const h = await harness({ rules: RISK });
    const out = await h.run([
      routed(risk(h.inf(0, V.low, 'shadow'), 0.6, 'high'), { clinical: false }), // shadow: never
      risk(h.inf(1, V.low), 0.6, 'high', 'sepsis-x'), // not listed
      h.inf(2, V.eight), // NEWS2 high
      routed(risk(h.inf(3, V.low, 'canary'), 0.6, 'high'), { clinical: true, in_canary: true }), // canary in cohort
    ]);
    expect(out.map((e) => e.skipped)).toEqual(['not_clinical', 'other_model', null, null]);
    expect(transitions(out)).toEqual(['news2.response:open:high', 'model.risk:open:high']);
    expect(alertsOf(out)[1]!.rollout).toBe('canary');
  });

  it('without the risk rule, probability inferences are another model', async () => {
    const h = await harness();
    const [e] = await h.run([risk(h.inf(0, V.low), 0.6, 'high')]);
    expect(e).toMatchObject({ skipped: 'other_model', alerts: [] });
  });
});

describe('raise-alerts: escalation by event time', () => {
  it('escalates once when unacknowledged past the band deadline, driven by later records (no clock moves)', async () => {
    const h = await harness({ rules: RULES, escalateAfterMs: { high: 15 * MIN }, suppressWindowMs: 60 * MIN });
    const out = await h.run([
      h.inf(0, V.eight), // open high, due at 15 min
      h.inf(10, V.eight), // suppressed
      h.inf(15, V.eight), // past the deadline: escalate
      h.inf(20, V.eight), // escalated already: suppressed
      h.inf(40, V.eight), // suppressed (window 60 min)
    ]);
    expect(transitions(out)).toEqual(['news2.response:open:high', 'news2.response:escalate:high']);
    expect(alertsOf(out)[1]!.suppressed).toBe(1);
    expect(h.clock.now()).toBe(T0); // the wall clock never moved
  });

  it('an acknowledged alert never escalates and is not re-notified at the same band, but a higher band is', async () => {
    const h = await harness({ rules: RULES, escalateAfterMs: { medium: 30 * MIN, high: 15 * MIN } });
    const [opened] = await h.run([h.inf(0, V.five)]);
    const alert = opened!.alerts[0]!;
    const out = await h.run([
      h.action(alert, 'ack', 5),
      h.inf(20, V.five), // window passed, but acked: suppressed
      h.inf(40, V.five), // past the medium deadline, but acked: no escalation
      h.inf(45, V.eight), // rises: renotify, and the ack no longer holds
      h.inf(60, V.eight), // 15 min after the rise, unacked: escalate
    ]);
    expect(transitions(out)).toEqual([
      'news2.response:ack:medium',
      'news2.response:renotify:high',
      'news2.response:escalate:high',
    ]);
    expect(alertsOf(out)[0]).toMatchObject({ principal: 'staff-psn-0001', action_id: expect.stringMatching(/^act-/) });
  });

  it('an action on another alert (already resolved) changes nothing; a manual escalate is recorded', async () => {
    const h = await harness();
    const [a] = await h.run([h.inf(0, V.five)]);
    const first = a!.alerts[0]!;
    await h.run([h.inf(5, V.two)]); // resolved
    const [b] = await h.run([h.inf(10, V.five)]); // a new alert
    const out = await h.run([h.action(first, 'ack', 11), h.action(b!.alerts[0]!, 'escalate', 12)]);
    expect(outcomes(out)).toEqual(['stale_action', 'escalated']);
    expect(transitions(out)).toEqual(['news2.response:escalate:medium']);
  });
});

describe('raise-alerts: device alarms and technical alerts', () => {
  it('device alarms by priority: below minPriority none, raised opens at its priority, cleared resolves', async () => {
    const h = await harness();
    const alarm = (
      code: string,
      priority: Alarm['priority'],
      active: boolean,
      category: Alarm['category'] = 'physiological',
    ) => ({ alarm_code: code, category, priority, active }) satisfies Alarm;
    const out = await h.run([
      h.event(0, 'alarm', alarm('PHY-SPO2-LOW', 'low', true)), // below medium: no alert
      h.event(1, 'alarm', alarm('PHY-PULSE-HIGH', 'high', true)), // opens high
      h.event(2, 'alarm', alarm('TEC-LEAD-OFF', 'medium', true, 'technical')), // technical kind
      h.event(3, 'alarm', alarm('PHY-PULSE-HIGH', 'high', true)), // repeat: suppressed
      h.event(4, 'alarm', alarm('PHY-PULSE-HIGH', 'high', false)), // cleared: resolve
    ]);
    expect(alertsOf(out).map((a) => `${a.alarm_code}:${a.kind}:${a.transition}:${a.band}`)).toEqual([
      'PHY-PULSE-HIGH:device_alarm:open:high',
      'TEC-LEAD-OFF:technical:open:medium',
      'PHY-PULSE-HIGH:device_alarm:resolve:high',
    ]);
    expect(outcomes(out)).toEqual(['quiet', 'opened', 'opened', 'suppressed', 'resolved']);
  });

  it('device status: sensor off, battery critical (with hysteresis) and calibration stale, apart from physiology', async () => {
    const h = await harness();
    const status = (s: Partial<DeviceStatus>): DeviceStatus => ({
      state: 'ok',
      battery_pct: 80,
      signal_dbm: -60,
      calibration_state: 'current',
      last_calibrated_at: null,
      ...s,
    });
    const out = await h.run([
      h.inf(0, V.eight), // physiological alert for the same patient
      h.event(1, 'device_status', status({ state: 'fault', battery_pct: 4, calibration_state: 'stale' })),
      h.event(30, 'device_status', status({ battery_pct: 8, calibration_state: 'unknown' })), // sensor back; battery, calibration: no change
      h.event(60, 'device_status', status({ battery_pct: 12, calibration_state: 'current' })),
    ]);
    expect(transitions(out)).toEqual([
      'news2.response:open:high',
      'technical.sensor_off:open:medium',
      'technical.battery_critical:open:medium',
      'technical.calibration_stale:open:low',
      'technical.sensor_off:resolve:medium',
      'technical.battery_critical:resolve:medium',
      'technical.calibration_stale:resolve:low',
    ]);
    expect(
      alertsOf(out)
        .filter((a) => a.rule_id.startsWith('technical.'))
        .every((a) => a.kind === 'technical'),
    ).toBe(true);
  });

  it('vital-signs and config events on the normalised topic are not alerting', async () => {
    const h = await harness();
    const e = envelope({
      event_type: 'config_change',
      payload: wrapPayload('config_change', { parameter: 'x', old_value: null, new_value: null, changed_by: 'device' }),
    });
    const record = consumed<AlertInput>(normalisedOf(e, { partition: 0, offset: 0 }), TOPICS.normalised, 0, T0);
    const [out] = await h.run([record]);
    expect(out).toMatchObject({ source: 'device_event', skipped: 'not_alerting', alerts: [] });
  });
});

describe('raise-alerts: state', () => {
  it('declares its state and keeps it per input partition: one get and one put per batch', async () => {
    const h = await harness();
    expect(h.operator.states).toEqual([
      { name: ALERT_STATE, ttlMs: RAISE_ALERTS_DEFAULTS.ttlMs, maxEntries: RAISE_ALERTS_DEFAULTS.maxEntries },
    ]);
    const a = h.inf(0, V.eight);
    const b = { ...h.inf(0, V.eight, 'live', OTHER) };
    const moved = { ...b, origin: { ...b.origin, partition: 3 } };
    await h.run([a, moved, h.inf(1, V.eight)]);
    expect(h.state.calls).toEqual([`get:${ALERT_STATE}:2`, `put:${ALERT_STATE}:2`]);
    expect(h.state.partitions).toEqual(new Set([0, 3]));
  });

  it('a batch read again (its state changes kept in memory) raises exactly the same alert records', async () => {
    const h = await harness();
    const batch = [h.inf(0, V.five), h.inf(5, V.five), h.inf(15, V.five), h.inf(20, V.eight), h.inf(30, V.low)];
    const first = alertsOf(await h.run(batch));
    const again = alertsOf(await h.run(batch));
    expect(first.length).toBe(4);
    expect(again).toEqual(first);
    // ...and the next batch carries on from the same state.
    const [next] = await h.run([h.inf(35, V.five)]);
    expect(next!.alerts.map((a) => a.transition)).toEqual(['open']);
  });

  it('state forgets an alert that hears nothing for its TTL (wall clock of the backend)', async () => {
    const h = await harness({ rules: RULES, ttlMs: 60 * MIN });
    await h.run([h.inf(0, V.five)]);
    h.clock.advance(61 * MIN);
    const [e] = await h.run([h.inf(61, V.five)]);
    expect(e!.alerts.map((a) => a.transition)).toEqual(['open']);
  });

  it('emits the operator telemetry every operator must', async () => {
    const h = await harness();
    const clock = new ManualClock(T0);
    await expectOperatorTelemetry(raiseAlerts({ rules: RULES }), [h.inf(0, V.eight), h.inf(1, V.low)], {
      pipeline: 'alerts@1',
      clock,
      state: new MemoryStateBackend({ clock }),
      log: silentLogger,
      models: noModels,
    });
  });
});

describe('raise-alerts: configuration', () => {
  it('is strict, needs a rule, and checks the battery hysteresis', () => {
    expect(() => parseRaiseAlertsConfig({ rules: RULES, suppressWindow: 1 })).toThrow(VigilError);
    expect(() => parseRaiseAlertsConfig({ rules: {} })).toThrow(/at least one rule/);
    expect(() =>
      parseRaiseAlertsConfig({ rules: { batteryCritical: { version: '1', belowPct: 10, recoveredPct: 10 } } }),
    ).toThrow(/recoveredPct/);
    expect(() => parseRaiseAlertsConfig({ rules: { risk: { version: '1', models: [] } } })).toThrow(VigilError);
    expect(() =>
      parseRaiseAlertsConfig({ rules: { news2: { version: '1' }, risk: { version: '1', models: ['news2'] } } }),
    ).toThrow(/news2 or by risk/);
    const parsed = parseRaiseAlertsConfig({ rules: { news2: { version: '1' } }, escalateAfterMs: { high: 600_000 } });
    expect(parsed.escalateAfterMs).toEqual({ ...RAISE_ALERTS_DEFAULTS.escalateAfterMs, high: 600_000 });
    expect(parsed.rules.news2).toEqual({ version: '1', model: 'news2' });
  });
});
