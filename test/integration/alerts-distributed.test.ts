/**
 * The clinical alerts pipeline distributed, on the real stack (issue 9's "done means"): the simulator's scripted ward
 * (simulator/alerts.ts, 4 patients per cohort) as the vitals pipeline writes it — normalised device events (alarms,
 * device status, vital signs) and NEWS2 inferences, live and shadow — onto isolated topics; two
 * `vigil run pipelines/alerts.ts` workers in one group (one SIGKILLed mid-stream and restarted) and
 * `vigil sink pipelines/alerts.ts` into an embedded ClickHouse. Checked against the scenario's truth:
 * - alerts raised per rule and band (opening band, highest band, resolved), none from a shadow inference;
 * - repeats suppressed and re-notified by event time; unacknowledged alerts escalate at their event-time deadline;
 * - a clinician's `vigil alerts ack` is an action record (on the actions topic and in the raw plane), followed by an
 *   `ack` transition row beside the alert's other rows (never an overwrite), and it stops the medium escalation;
 * - exactly once: every transition once on the topic despite the kill, and in `clinical_alerts`
 *   count() FINAL = count() = uniqExact(record_id).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { FramedDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { generateAuditKeys, KEY_FILES } from '../../audit/keys.ts';
import { readAll } from '../../audit/store.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import alerts, { TIMING } from '../../pipelines/alerts.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import type { AlertAction } from '../../schemas/generated/alert-action.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import type { Inference } from '../../schemas/types.ts';
import { type AlertScenarioOptions, alertScenarioTruth, expectedAlerts } from '../../simulator/alerts.ts';
import { AlertInputProducer, alertInputs, SHADOW_VERSION } from '../support/alert-stream.ts';
import { freePort, waitFor } from '../support/process.ts';
import { isolatedTopics, lastJsonLine, readTopic, type Spawned, spawnVigil } from './helpers.ts';

const SCENARIO: AlertScenarioOptions = { perCohort: 4 };
/** Phase 1 ends here (scenario minutes): the medium alerts opened at 60 are acknowledged before 64 is read. */
const ACK_BEFORE_MINUTE = 64;
const MIN = 60_000;
const BANDS = ['low', 'low_medium', 'medium', 'high'];
const PRINCIPAL = 'staff-psn-0042';

const inputs = alertInputs(SCENARIO);
const truth = alertScenarioTruth(SCENARIO);
const phase1 = inputs.filter((i) => i.minute < ACK_BEFORE_MINUTE);
const phase2 = inputs.filter((i) => i.minute >= ACK_BEFORE_MINUTE);

let topics: Awaited<ReturnType<typeof isolatedTopics>>;
let env: Record<string, string>;
let alertsTopic: string;
let actionsTopic: string;
const sinkDir = mkdtempSync(join(tmpdir(), 'vigil-it-alerts-sink-'));
/** The clinician's credentials and the audit log her reads are recorded in (`alerts list` is an audited read). */
const accessDir = mkdtempSync(join(tmpdir(), 'vigil-it-alerts-access-'));
const auditDir = join(accessDir, 'audit');
let nurseEnv: Record<string, string>;
const registry = createSchemaRegistry(resolveEndpoints().schemaRegistryUrl);
const alertDecoder = new FramedDecoder<ClinicalAlert>(registry, loadSchemaRepo().get('clinical-alert').newest.type);

/** Every committed alert transition on the alerts topic, decoded. */
async function committedAlerts(idleMs = 2_000): Promise<ClinicalAlert[]> {
  const messages = await readTopic(alertsTopic, idleMs);
  return (await alertDecoder.decodeBatch(messages.map((m) => m.value as Buffer))).map((d) => {
    if (!d.ok) throw new Error(`undecodable alert record: ${d.code}`);
    return d.value;
  });
}

async function scrape(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return '';
  }
}

/** Sum of a counter's samples on a worker's /metrics (0 while it is not up). */
async function counter(port: number, name: string): Promise<number> {
  let sum = 0;
  for (const line of (await scrape(port)).split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ')));
  }
  return sum;
}

function workerArgs(group: string, id: string, port: number): string[] {
  return [
    'run',
    'pipelines/alerts.ts',
    '--group',
    group,
    '--worker-id',
    id,
    '--metrics-port',
    String(port),
    '--batch-size',
    '300',
    '--stop-when-idle',
    '600000',
    '--json',
  ];
}

async function sinkRound(): Promise<{ stored: Record<string, number> }> {
  const sink = await spawnVigil(
    [
      'sink',
      'pipelines/alerts.ts',
      '--data-dir',
      sinkDir,
      '--group',
      `${topics.prefix}-sink`,
      '--metrics-port',
      '0',
      '--stop-when-idle',
      '6000',
      '--json',
    ],
    env,
  ).done;
  expect(sink.code, sink.stderr).toBe(0);
  return lastJsonLine<{ stored: Record<string, number> }>(sink.stdout);
}

beforeAll(async () => {
  topics = await isolatedTopics('alerts');
  env = { VIGIL_TOPIC_PREFIX: topics.prefix };
  alertsTopic = topics.name(TOPICS.clinicalAlerts);
  actionsTopic = topics.name(TOPICS.alertActions);
  expect(alerts.sources.map((x) => topics.name(x.topic))).toContain(actionsTopic);
  // The sink's store: the project's migrations (clinical_alerts among them).
  const store = openChdbStore({ path: sinkDir });
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  expect(phase1.length).toBeGreaterThan(500);
  expect(phase2.length).toBeGreaterThan(phase1.length);
  generateAuditKeys(accessDir, 'vigil.it/alerts');
  const principals = join(accessDir, 'principals.json');
  const { token } = addPrincipal(principals, { name: 'nurse-it', roles: ['clinician'], sites: ['*'] });
  nurseEnv = { ...env, VIGIL_PRINCIPALS: principals, VIGIL_TOKEN: token };
}, 120_000);

afterAll(() => {
  rmSync(sinkDir, { recursive: true, force: true });
  rmSync(accessDir, { recursive: true, force: true });
});

describe('alerts pipeline, distributed, with a worker killed mid-stream and a clinician acknowledging', () => {
  const acked = new Set<string>();
  let all: ClinicalAlert[] = [];

  it('two workers raise, acknowledge, suppress, escalate and resolve; one survives a SIGKILL; the sink lands it', async () => {
    const producer = await AlertInputProducer.create({
      inference: topics.name(TOPICS.inferences),
      normalised: topics.name(TOPICS.normalised),
    });
    const group = `${topics.prefix}-workers`;
    const [portA, portB] = [await freePort(), await freePort()];
    let a: Spawned | null = null;
    let b: Spawned | null = null;
    let a2: Spawned | null = null;
    try {
      // Phase 1: the first hour of the script, then both workers.
      await producer.send(phase1);
      a = spawnVigil(workerArgs(group, 'it-alerts-a', portA), env);
      b = spawnVigil(workerArgs(group, 'it-alerts-b', portB), env);
      await waitFor(
        'the workers to read phase 1',
        async () =>
          (await counter(portA, 'vigil_records_consumed_total')) +
            (await counter(portB, 'vigil_records_consumed_total')) >=
          phase1.length,
        120_000,
        500,
      );
      const first = await committedAlerts();
      const deteriorating = expectedAlerts(SCENARIO).filter((e) => e.cohort === 'deteriorating');
      const opened = first.filter(
        (x) => x.rule_id === 'news2.response' && x.transition === 'open' && x.band === 'medium',
      );
      expect(opened.map((x) => x.patient_ref).sort()).toEqual(deteriorating.map((e) => e.patientRef).sort());

      // The sink lands phase 1; a clinician lists the open alerts and acknowledges half the medium NEWS2 ones.
      const landed1 = await sinkRound();
      expect(landed1.stored.clinical_alerts).toBe(first.length);
      const list = await spawnVigil(
        [
          'alerts',
          'list',
          '--open',
          '--json',
          '--data-dir',
          sinkDir,
          '--purpose',
          'treatment',
          '--audit-dir',
          auditDir,
          '--audit-hash-key',
          join(accessDir, KEY_FILES.hash),
        ],
        nurseEnv,
      ).done;
      expect(list.code, list.stderr).toBe(0);
      // The read is on record before it was shown: one entry, the clinician's, with her purpose, then the companions
      // naming the events its alerts cite by keyed reference (access/event-refs.ts: `vigil trace` finds her by them).
      const entries = (await readAll(openFileAuditStore(auditDir)))
        .filter((r) => (r as { kind: string }).kind === 'entry')
        .map((r) => (r as { entry: { actor: string; role: string; action: string; purpose: string } }).entry);
      expect(entries.filter((e) => e.action !== 'alerts.list.events')).toEqual([
        expect.objectContaining({ actor: 'nurse-it', role: 'clinician', action: 'alerts.list', purpose: 'treatment' }),
      ]);
      expect(entries.length).toBeGreaterThan(1);
      expect(entries.slice(1).every((e) => e.action === 'alerts.list.events' && e.actor === 'nurse-it')).toBe(true);
      const open = lastJsonLine<{ alerts: { alert_id: string; rule_id: string; band: string; patient_ref: string }[] }>(
        list.stdout,
      ).alerts.filter((x) => x.rule_id === 'news2.response' && x.band === 'medium');
      expect(open).toHaveLength(deteriorating.length);
      const toAck = [...open].sort((x, y) => x.patient_ref.localeCompare(y.patient_ref)).slice(0, open.length / 2);
      for (const alert of toAck) {
        const ack = await spawnVigil(
          ['alerts', 'ack', alert.alert_id, '--principal', PRINCIPAL, '--json', '--data-dir', sinkDir],
          env,
        ).done;
        expect(ack.code, ack.stderr).toBe(0);
        const written = lastJsonLine<{ topic: string; action: AlertAction }>(ack.stdout);
        expect(written.topic).toBe(actionsTopic);
        expect(written.action).toMatchObject({ alert_id: alert.alert_id, action: 'ack', principal: PRINCIPAL });
        acked.add(alert.alert_id);
      }
      await waitFor(
        'the acks to be applied',
        async () => (await committedAlerts(1_000)).filter((x) => x.transition === 'ack').length === acked.size,
        60_000,
        500,
      );

      // Phase 2: the rest of the script, paced; worker A is SIGKILLed mid-stream and restarted with its identity
      // (which fences its open transaction).
      const readByA = await counter(portA, 'vigil_records_consumed_total');
      let streamed = false;
      const streaming = producer.paced(phase2, 1_000, false).then((r) => {
        streamed = true;
        return r;
      });
      await waitFor(
        'worker A to read phase 2',
        async () => (await counter(portA, 'vigil_records_consumed_total')) > readByA,
        30_000,
        500,
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(streamed).toBe(false); // mid-stream: more records are still coming
      a.child.kill('SIGKILL');
      expect((await a.done).signal).toBe('SIGKILL');
      a2 = spawnVigil(workerArgs(group, 'it-alerts-a', portA), env);
      await streaming;
      const resolved = Object.values(truth.rules).reduce((n, r) => n + r.resolved, 0);
      await waitFor(
        'every expected alert to resolve',
        async () => (await committedAlerts(1_000)).filter((x) => x.transition === 'resolve').length >= resolved,
        180_000,
        500,
      );

      // On-call's view of a live worker: output latency from receipt and from observed_at, no PHI in any label.
      const metrics = await scrape(portB);
      expect(metrics).toMatch(
        /vigil_output_latency_seconds_count\{pipeline="alerts",output="[^"]+",from="receipt"\} [1-9]/,
      );
      expect(metrics).toMatch(
        /vigil_output_latency_seconds_count\{pipeline="alerts",output="[^"]+",from="observed"\} [1-9]/,
      );
      expect(metrics).not.toMatch(/hah-mon-|psn-v1-|staff-psn/);

      b.child.kill('SIGTERM');
      a2.child.kill('SIGTERM');
      for (const r of await Promise.all([b.done, a2.done])) {
        expect(r.code, r.stderr).toBe(0);
        const line = lastJsonLine<{ consumed: number; emitted: number; dead_lettered: number; duplicates: number }>(
          r.stdout,
        );
        expect(line.consumed).toBe(line.emitted + line.dead_lettered + line.duplicates);
        expect(line.dead_lettered).toBe(0);
      }
    } finally {
      await producer.close();
      for (const p of [a, b, a2]) if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
    }
    all = await committedAlerts();
    const by: Record<string, number> = {};
    for (const x of all) by[x.transition] = (by[x.transition] ?? 0) + 1;
    process.stderr.write(
      `alerts-distributed: ${inputs.length} records in, ${all.length} transitions out ${JSON.stringify(by)}, ` +
        `${all.reduce((n, x) => n + x.suppressed, 0)} repeats suppressed, ${acked.size} acks\n`,
    );
  }, 420_000);

  it('alerts per rule and band are the scenario truth, and none comes from a shadow inference', () => {
    // Exactly once on the topic despite the SIGKILL: each transition once.
    expect(new Set(all.map((x) => x.record_id)).size).toBe(all.length);

    const byAlert = new Map<string, ClinicalAlert[]>();
    for (const x of all) byAlert.set(x.alert_id, [...(byAlert.get(x.alert_id) ?? []), x]);
    const byRule: typeof truth.rules = {};
    for (const records of byAlert.values()) {
      const rule = records[0]?.rule_id ?? '';
      const r = byRule[rule] ?? { alerts: 0, opened: {}, peak: {}, resolved: 0 };
      byRule[rule] = r;
      r.alerts++;
      const opening = records.find((x) => x.transition === 'open');
      expect(opening, `alert ${records[0]?.alert_id} has an open transition`).toBeDefined();
      if (!opening) continue;
      r.opened[opening.band] = (r.opened[opening.band] ?? 0) + 1;
      const peak = records.reduce((m, x) => (BANDS.indexOf(x.band) > BANDS.indexOf(m) ? x.band : m), opening.band);
      r.peak[peak] = (r.peak[peak] ?? 0) + 1;
      if (records.some((x) => x.transition === 'resolve')) r.resolved++;
    }
    expect(byRule).toEqual(truth.rules);

    // Opened and resolved at the scripted event times.
    for (const e of expectedAlerts(SCENARIO)) {
      const mine = all.filter(
        (x) => x.patient_ref === e.patientRef && x.rule_id === e.rule && (x.alarm_code ?? '') === e.scope,
      );
      expect(mine.find((x) => x.transition === 'open')?.observed_at).toBe(e.openAt);
      expect(mine.find((x) => x.transition === 'resolve')?.observed_at).toBe(e.resolveAt);
    }

    // No alert from a shadow inference: none for the shadow-only patients, none citing a shadow inference.
    const shadowPatients = new Set(inputs.filter((i) => i.cohort === 'shadow-only').map((i) => i.value.patient_ref));
    const shadowInferences = new Set(
      inputs
        .filter((i) => i.kind === 'inference')
        .map((i) => i.value as Inference)
        .filter((inf) => inf.model_version === SHADOW_VERSION)
        .map((inf) => inf.inference_id),
    );
    expect(shadowInferences.size).toBe(truth.inferences.shadow);
    expect(all.filter((x) => shadowPatients.has(x.patient_ref))).toEqual([]);
    expect(all.filter((x) => x.inference_ids.some((id) => shadowInferences.has(id)))).toEqual([]);
    expect(all.every((x) => x.rollout === null || x.rollout === 'live')).toBe(true);
  });

  it('repeats are suppressed; escalations fall at their event-time deadlines; an ack stops the medium one', () => {
    const deteriorating = expectedAlerts(SCENARIO).filter((e) => e.cohort === 'deteriorating');
    expect(acked.size).toBe(deteriorating.length / 2);
    for (const e of deteriorating) {
      const mine = all.filter((x) => x.patient_ref === e.patientRef && x.rule_id === 'news2.response');
      const alertId = mine[0]?.alert_id ?? '';
      expect(mine.every((x) => x.alert_id === alertId)).toBe(true);
      expect(mine.filter((x) => x.transition === 'renotify').length).toBeGreaterThan(1);
      expect(mine.reduce((n, x) => n + x.suppressed, 0)).toBeGreaterThan(10);
      const escalations = mine
        .filter((x) => x.transition === 'escalate')
        .map((x) => [(x.observed_at - e.openAt) / MIN, x.band]);
      const high: [number, string] = [60 + TIMING.escalateAfterMs.high / MIN, 'high'];
      if (acked.has(alertId)) {
        // Acknowledged at medium: no medium escalation; the rise to high needs a new ack, so it escalates.
        expect(escalations).toEqual([high]);
        const ack = mine.filter((x) => x.transition === 'ack');
        expect(ack).toHaveLength(1);
        expect(ack[0]).toMatchObject({ principal: PRINCIPAL, band: 'medium' });
        expect(ack[0]?.action_id).toBeTruthy();
      } else {
        expect(escalations).toEqual([[TIMING.escalateAfterMs.medium / MIN, 'medium'], high]);
        expect(mine.filter((x) => x.transition === 'ack')).toEqual([]);
      }
    }
  });

  it('ClickHouse holds each transition once, the ack as a row of its own and its action in the raw plane', async () => {
    const landed = await sinkRound();
    expect(landed.stored.quarantine ?? 0).toBe(0);
    const store = openChdbStore({ path: sinkDir });
    try {
      const [counts] = await store.query<{ final: string; plain: string; uniq: string }>(
        `SELECT (SELECT count() FROM clinical_alerts FINAL) AS final, count() AS plain,
                uniqExact(record_id) AS uniq FROM clinical_alerts`,
      );
      expect(counts).toBeDefined();
      expect(Number(counts?.final)).toBe(all.length);
      expect(Number(counts?.plain)).toBe(all.length);
      expect(Number(counts?.uniq)).toBe(all.length);

      for (const alertId of acked) {
        const rows = await store.query<{ transition: string; principal: string | null }>(
          `SELECT transition, principal FROM clinical_alerts FINAL WHERE alert_id = {id:String}
           ORDER BY observed_at, raised_at`,
          { id: alertId },
        );
        const transitions = rows.map((r) => r.transition);
        // The ack is appended: the opening row (and every other) is still there.
        expect(transitions[0]).toBe('open');
        expect(transitions.filter((t) => t === 'ack')).toHaveLength(1);
        expect(rows.find((r) => r.transition === 'ack')?.principal).toBe(PRINCIPAL);
      }
      const [actions] = await store.query<{ n: string }>(
        'SELECT count() AS n FROM raw_events FINAL WHERE source_topic = {topic:String}',
        { topic: actionsTopic },
      );
      expect(Number(actions?.n)).toBe(acked.size);
    } finally {
      await store.close();
    }
    const onTopic = await readTopic(actionsTopic, 1_000);
    expect(onTopic).toHaveLength(acked.size);
  }, 180_000);
});
