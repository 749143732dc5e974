/**
 * Behaviour test of the alerts pipeline without a broker or a database (Kafka Streams' TopologyTestDriver style): the
 * simulator's scripted ward, as the vitals pipeline would put it on the clinical inference and normalised topics
 * (co-partitioned by device), fed through the pipeline's own definition in source batches; the alert records are
 * asserted against the scenario's truth (alerts expected per rule and band).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadSchemaRepo } from '../adapters/avro/schemas.ts';
import type { AlertEvaluation } from '../operators/raise-alerts/index.ts';
import { ManualClock } from '../runtime/clock.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { addOutcome, balanced, Engine, emptyAccounting, type SourceBatch } from '../runtime/engine.ts';
import { silentLogger } from '../runtime/log.ts';
import { PipelineMetrics } from '../runtime/metrics.ts';
import type { ModelStore } from '../runtime/models.ts';
import { materialise } from '../runtime/outputs.ts';
import type { InFlight } from '../runtime/record.ts';
import { sinkRoutes } from '../runtime/runners/clickhouse-sink.ts';
import { MemoryStateBackend } from '../runtime/state/memory.ts';
import type { AlertAction } from '../schemas/generated/alert-action.ts';
import type { ClinicalAlert } from '../schemas/generated/clinical-alert.ts';
import type { Envelope, Inference, VitalSigns } from '../schemas/types.ts';
import { alertScenarioTruth, expectedAlerts, simulateAlertScenario } from '../simulator/alerts.ts';
import { envelope, VITALS } from '../test/fixtures/envelope.ts';
import { actionOn, inferenceOf, normalisedOf, origin } from '../test/helpers/alerts.ts';
import alerts, { ALERT_ACTIONS_TOPIC, actions, events, inferences, TIMING } from './alerts.ts';

const PARTITIONS = 6;
const MIN = 60_000;
const BANDS = ['low', 'low_medium', 'medium', 'high'];
type Input = InFlight<unknown>;

const partitionOf = (deviceId: string): number =>
  createHash('sha256').update(deviceId).digest().readUInt32BE(0) % PARTITIONS;

interface Run {
  readonly alerts: ClinicalAlert[];
  readonly evaluations: AlertEvaluation[];
  readonly consumed: number;
  readonly balanced: boolean;
}

/**
 * Feeds the scenario through the pipeline: records in observed_at order, cut into chunks of `chunk` consecutive
 * records, each chunk processed as one source batch per (topic, partition) like a worker polling every source.
 * `inject(minute, alertsSoFar)` may add actions (on the actions topic, the device's partition) as time passes.
 */
async function run(chunk = 40, inject?: (minute: number, raised: readonly ClinicalAlert[]) => AlertAction[]) {
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0));
  const engine = new Engine(alerts, new PipelineMetrics());
  const noModels = {} as ModelStore;
  await engine.open({
    pipeline: 'alerts@1',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: noModels,
  });
  const offsets = new Map<string, number>();
  const next = (topic: string, partition: number) => {
    const k = `${topic}:${partition}`;
    const o = offsets.get(k) ?? 0;
    offsets.set(k, o + 1);
    return o;
  };
  const consume = (value: unknown, topic: string, partition: number, at: number): Input => ({
    value,
    origin: { ...origin(topic, partition, next(topic, partition), at + 200), key: null },
  });
  const out: ClinicalAlert[] = [];
  const evaluations: AlertEvaluation[] = [];
  const total = emptyAccounting();
  let pending: Input[] = [];
  const flush = async () => {
    const groups = new Map<string, Input[]>();
    for (const r of pending) {
      const k = `${r.origin.topic}:${r.origin.partition}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    pending = [];
    for (const records of groups.values()) {
      const first = records[0]!.origin;
      const batch = {
        range: {
          topic: first.topic,
          partition: first.partition,
          firstOffset: first.offset,
          lastOffset: records.at(-1)!.origin.offset,
        },
        origins: records.map((r) => r.origin),
        records,
        rejected: [],
      } as unknown as SourceBatch<never>;
      const outcome = await engine.process(batch);
      addOutcome(total, outcome);
      evaluations.push(...(outcome.completed as InFlight<AlertEvaluation>[]).map((r) => r.value));
      for (const output of materialise(alerts, outcome, clock.now()).outputs) {
        for (const v of output.values) out.push(v.value as unknown as ClinicalAlert);
      }
    }
  };
  let start: number | null = null;
  let lastMinute = -1;
  for (const record of simulateAlertScenario()) {
    const e = record.envelope;
    start ??= e.observed_at;
    const minute = (e.observed_at - start) / MIN;
    if (inject && minute !== lastMinute) {
      await flush(); // what is raised so far is committed: the people acting see it
      for (const a of inject(minute, out)) pending.push(consume(a, actions.topic, partitionOf(a.device_id), a.at));
      lastMinute = minute;
    }
    const partition = partitionOf(record.key);
    pending.push(consume(normalisedOf(e, { partition, offset: 0 }), events.topic, partition, e.received_at));
    for (const rollout of record.scoredBy) {
      const inf = inferenceOf(e, rollout, 'news2', rollout === 'live' ? '1.0.0' : '1.1.0-rc1');
      if (inf) pending.push(consume(inf, inferences.topic, partition, e.received_at + 50));
    }
    if (pending.length >= chunk) await flush();
  }
  await flush();
  await engine.close();
  return { alerts: out, evaluations, consumed: total.consumed, balanced: balanced(total) } satisfies Run;
}

/** Feeds inference records (one partition of the inference topic, in order) through the pipeline's definition. */
async function feedInferences(values: readonly Inference[]): Promise<Run> {
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0));
  const engine = new Engine(alerts, new PipelineMetrics());
  await engine.open({
    pipeline: 'alerts@2',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: {} as ModelStore,
  });
  const records: Input[] = values.map((value, offset) => ({
    value,
    origin: { ...origin(inferences.topic, 0, offset, value.observed_at + 1_000), key: null },
  }));
  const batch = {
    range: { topic: inferences.topic, partition: 0, firstOffset: 0, lastOffset: records.length - 1 },
    origins: records.map((r) => r.origin),
    records,
    rejected: [],
  } as unknown as SourceBatch<never>;
  const outcome = await engine.process(batch);
  const total = emptyAccounting();
  addOutcome(total, outcome);
  const out = materialise(alerts, outcome, clock.now()).outputs.flatMap((o) =>
    o.values.map((v) => v.value as unknown as ClinicalAlert),
  );
  await engine.close();
  return {
    alerts: out,
    evaluations: (outcome.completed as InFlight<AlertEvaluation>[]).map((r) => r.value),
    consumed: total.consumed,
    balanced: balanced(total),
  };
}

/** An inference v2 of `e`: the routing decision score records (schemas/avro/inference/v2.avsc). */
function routedInference(
  e: Envelope,
  model: string,
  version: string,
  rollout: Inference['rollout'],
  clinical: boolean,
  risk?: { p: number; band: Inference['risk_band'] },
): Inference {
  const base = inferenceOf(e, rollout, model, version)!;
  return {
    ...base,
    ...(risk === undefined ? {} : { score: risk.p, risk_band: risk.band }),
    rollout_id: `01KGROLLOUT${version.replace(/\W/g, '').padEnd(15, '0')}`,
    routing: { source: 'registry', cohort_bucket: 123, in_canary: rollout === 'canary', clinical },
  } as Inference;
}

describe('pipelines/alerts.ts', () => {
  it('reads the inference, normalised and action topics, each with its own schema', () => {
    expect(alerts.sources.map((s) => [s.topic, s.schema])).toEqual([
      [inferences.topic, 'inference'],
      [events.topic, 'normalised'],
      [ALERT_ACTIONS_TOPIC, 'alert-action'],
    ]);
    expect(alerts.outputs.records.map((o) => [o.topic, o.schema, o.table])).toEqual([
      [TOPICS.clinicalAlerts, 'clinical-alert', 'clinical_alerts'],
    ]);
  });

  it('lands through one sink route per topic, and a record raising several alerts yields them all', async () => {
    const topics = sinkRoutes(alerts).map((r) => r.topic);
    expect(new Set(topics).size).toBe(topics.length);
    expect(topics).toContain(TOPICS.clinicalAlerts);
    const result = await run();
    // The device cohort's first status opens calibration_stale; at 60 the fault opens sensor_off: one record each.
    // A record that raises for two rules at once (e.g. a status both stale and faulted) carries both in one output.
    const perRecord = result.evaluations.map((e) => e.alerts.length);
    const emitted = result.alerts.length;
    expect(emitted).toBe(perRecord.reduce((n, k) => n + k, 0));
    expect(Math.max(...perRecord)).toBeGreaterThan(1);
  }, 30_000);

  it('raises the alerts the scenario expects, per rule and band, and none from shadow inferences', async () => {
    const truth = alertScenarioTruth();
    const result = await run();
    expect(result.balanced).toBe(true);
    expect(result.consumed).toBe(truth.records + truth.inferences.live + truth.inferences.shadow);
    expect(result.evaluations.length).toBe(result.consumed); // every record evaluated; no dead letter, no drop

    // Every record is valid against the newest clinical-alert schema.
    const type = loadSchemaRepo().get('clinical-alert').newest.type;
    for (const a of result.alerts) expect(type.isValid(a), a.record_id).toBe(true);

    // Per rule: alerts opened by band, highest band reached, resolved.
    const byRule: Record<
      string,
      { alerts: number; opened: Record<string, number>; peak: Record<string, number>; resolved: number }
    > = {};
    const byAlert = new Map<string, ClinicalAlert[]>();
    for (const a of result.alerts) byAlert.set(a.alert_id, [...(byAlert.get(a.alert_id) ?? []), a]);
    for (const records of byAlert.values()) {
      const rule = records[0]!.rule_id;
      const r = byRule[rule] ?? { alerts: 0, opened: {}, peak: {}, resolved: 0 };
      byRule[rule] = r;
      r.alerts++;
      const open = records.find((x) => x.transition === 'open')!;
      r.opened[open.band] = (r.opened[open.band] ?? 0) + 1;
      const peak = records.reduce((m, x) => (BANDS.indexOf(x.band) > BANDS.indexOf(m) ? x.band : m), open.band);
      r.peak[peak] = (r.peak[peak] ?? 0) + 1;
      if (records.some((x) => x.transition === 'resolve')) r.resolved++;
    }
    expect(byRule).toEqual(truth.rules);

    // Opened and resolved at the scripted event times.
    const expected = expectedAlerts();
    for (const e of expected) {
      const records = result.alerts.filter(
        (a) => a.patient_ref === e.patientRef && a.rule_id === e.rule && (a.alarm_code ?? '') === e.scope,
      );
      expect(records.find((a) => a.transition === 'open')?.observed_at).toBe(e.openAt);
      expect(records.find((a) => a.transition === 'resolve')?.observed_at).toBe(e.resolveAt);
    }

    // Only clinical inferences (v1 records: live): no alert cites a shadow one, and the shadow-only patients have none.
    const shadowPatients = new Set(
      [...simulateAlertScenario()].filter((r) => r.cohort === 'shadow-only').map((r) => r.envelope.patient_ref),
    );
    expect(result.alerts.filter((a) => shadowPatients.has(a.patient_ref))).toEqual([]);
    expect(result.alerts.every((a) => a.rollout === null || a.rollout === 'live')).toBe(true);
    expect(result.evaluations.filter((e) => e.skipped === 'not_clinical').length).toBe(truth.inferences.shadow);

    // Evidence: every NEWS2 alert names its inference, event, model and rule version.
    for (const a of result.alerts.filter((x) => x.rule_id === 'news2.response')) {
      expect(a).toMatchObject({
        model_name: 'news2',
        model_version: '1.0.0',
        rule_version: '1',
        kind: 'physiological',
      });
      expect(a.inference_ids).toHaveLength(1);
      expect(a.event_ids).toHaveLength(1);
    }
    expect(result.alerts.filter((a) => a.rule_id.startsWith('technical.')).every((a) => a.kind === 'technical')).toBe(
      true,
    );
  }, 30_000);

  it('suppresses repeats and escalates unacknowledged alerts by event time; an ack stops the escalation', async () => {
    const result = await run();
    const det = expectedAlerts().filter((e) => e.cohort === 'deteriorating');
    for (const e of det) {
      const mine = result.alerts.filter((a) => a.patient_ref === e.patientRef && a.rule_id === 'news2.response');
      // Opens medium at 60 (due at 90): escalates at 90; rises to high at 120 (due at 135): escalates at 135.
      expect(
        mine.filter((a) => a.transition === 'escalate').map((a) => [(a.observed_at - e.openAt) / MIN, a.band]),
      ).toEqual([
        [TIMING.escalateAfterMs.medium / MIN, 'medium'],
        [60 + TIMING.escalateAfterMs.high / MIN, 'high'],
      ]);
      expect(mine.filter((a) => a.transition === 'renotify').length).toBeGreaterThan(1);
      expect(mine.reduce((n, a) => n + a.suppressed, 0)).toBeGreaterThan(10);
    }
    const suppressed = result.evaluations.flatMap((e) => e.outcomes).filter((o) => o.outcome === 'suppressed').length;
    expect(suppressed).toBeGreaterThan(0);

    // The same run with a clinician acknowledging each medium alert two minutes after it opened.
    let done = false;
    const acked = await run(40, (minute, raised) => {
      if (minute < 62 || done) return [];
      done = true;
      return raised
        .filter((a) => a.transition === 'open' && a.band === 'medium' && a.rule_id === 'news2.response')
        .map((a) => actionOn(a, 'ack', a.observed_at + 2 * MIN));
    });
    expect(acked.balanced).toBe(true);
    for (const e of det) {
      const mine = acked.alerts.filter((a) => a.patient_ref === e.patientRef && a.rule_id === 'news2.response');
      expect(mine.filter((a) => a.transition === 'ack')).toHaveLength(1);
      // No escalation at medium (acknowledged); the rise to high needs a new acknowledgement, so it still escalates.
      expect(mine.filter((a) => a.transition === 'escalate').map((a) => a.band)).toEqual(['high']);
    }
  }, 30_000);

  it('alerts do not depend on how the stream is cut into batches', async () => {
    const a = await run(7);
    const b = await run(500);
    const key = (x: ClinicalAlert) => `${x.record_id}|${x.suppressed}`;
    expect(b.alerts.map(key).sort()).toEqual(a.alerts.map(key).sort());
  }, 30_000);
  it('routes by the inference: a canary in its cohort alerts, a shadow never, and model.risk reads deterioration', async () => {
    const T = Date.UTC(2026, 0, 5, 8, 0, 0);
    const at = (minute: number, patient: string, vitals: VitalSigns) =>
      envelope({
        event_id: `01KG${patient.slice(-2)}${String(minute).padStart(20, '0')}`,
        patient_ref: patient,
        device_id: `dev-${patient.slice(-2)}`,
        observed_at: T + minute * MIN,
        received_at: T + minute * MIN + 500,
        vitals,
      });
    const high = { ...VITALS, respiratory_rate: 26, spo2: 91, pulse: 115 }; // NEWS2 8
    const canaryPatient = 'psn-v1-00000000000000c1';
    const livePatient = 'psn-v1-00000000000000d2';
    const v1Patient = 'psn-v1-00000000000000e3';
    const values: Inference[] = [
      // The canary's patient: the canary (clinical) and a shadow of the same event; the shadow must not alert.
      routedInference(at(0, canaryPatient, high), 'news2', '1.1.0', 'canary', true),
      routedInference(at(0, canaryPatient, high), 'news2', '1.2.0-rc1', 'shadow', false),
      // Outside the cohort: the live version (clinical).
      routedInference(at(0, livePatient, high), 'news2', '1.0.0', 'live', true),
      // A v1 record (no routing), live: still alerts.
      inferenceOf(at(0, v1Patient, high), 'live', 'news2', '1.0.0')!,
      // The deterioration model: high, then back to low (resolves); its shadow at high never alerts.
      routedInference(at(1, livePatient, VITALS), 'deterioration', '1.0.0', 'live', true, { p: 0.42, band: 'high' }),
      routedInference(at(1, livePatient, VITALS), 'deterioration', '1.1.0', 'shadow', false, { p: 0.9, band: 'high' }),
      routedInference(at(20, livePatient, VITALS), 'deterioration', '1.0.0', 'live', true, { p: 0.01, band: 'low' }),
    ];
    const result = await feedInferences(values);
    expect(result.balanced).toBe(true);
    expect(result.evaluations.map((e) => e.skipped)).toEqual([
      null,
      'not_clinical',
      null,
      null,
      null,
      'not_clinical',
      null,
    ]);
    expect(
      result.alerts.map(
        (a) =>
          `${a.patient_ref.slice(-2)} ${a.rule_id}:${a.transition}:${a.band} ${a.model_name}@${a.model_version}/${a.rollout}`,
      ),
    ).toEqual([
      'c1 news2.response:open:high news2@1.1.0/canary',
      'd2 news2.response:open:high news2@1.0.0/live',
      'e3 news2.response:open:high news2@1.0.0/live',
      'd2 model.risk:open:high deterioration@1.0.0/live',
      'd2 model.risk:resolve:high deterioration@1.0.0/live',
    ]);
    expect(result.alerts.every((a) => a.transformation_version === 'alerts@2/raise-alerts')).toBe(true);
    const type = loadSchemaRepo().get('clinical-alert').newest.type;
    for (const a of result.alerts) expect(type.isValid(a), a.record_id).toBe(true);
  });
});
