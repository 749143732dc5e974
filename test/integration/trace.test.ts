/**
 * `vigil trace` on a store landed the way a run through the gateway lands it: a device enrolled through the identity
 * service (real PKI, file identity log), an envelope it signed (ES256 JWS with its issued key, the payload as
 * test/fixtures/gateway-event.ts builds it) and stamped as the gateway stamps it, its raw record, normalised
 * derivations (two pipeline versions), an inference and an alert in an embedded ClickHouse migrated by the real
 * migrations; principals and the audit log as files. The command runs as it does on the command line (in-process,
 * then once as its own process through bin/vigil.js). A clinician who lists the alerts (`vigil alerts list`) is among
 * who saw the event, on the Kafka audit topic and on the file store, proven with --verify.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { rawEventRow, toDateTime64 } from '../../adapters/clickhouse/tables.ts';
import { KafkaControlLog } from '../../adapters/kafka/control-log.ts';
import { generateAuditKeys, KEY_FILES, loadSignerKey } from '../../audit/keys.ts';
import { signStoredLog } from '../../audit/sign.ts';
import { readAll } from '../../audit/store.ts';
import { AUDIT_FILE, openFileAuditStore } from '../../audit/stores/file.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import { registerAlerts } from '../../cli/commands/alerts.ts';
import { deviceIdentityLog } from '../../cli/commands/devices.ts';
import { registerTrace } from '../../cli/commands/trace.ts';
import type { TraceReport } from '../../evidence/trace.ts';
import { initPki } from '../../identity/pki.ts';
import { changeKey, parseIdentityChange } from '../../identity/records.ts';
import { enrollDevice } from '../../identity/service.ts';
import type { IdentityChange } from '../../identity/types.ts';
import { inferenceRow, normalisedEventRow } from '../../pipelines/outputs.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import type { NormalisedEvent } from '../../schemas/types.ts';
import { inferenceFor, normalisedEvent, origin, sha256Hex, T0 } from '../fixtures/clickhouse.ts';
import { envelope } from '../fixtures/envelope.ts';
import { devicePayloadOf, integrityHashOf, TEST_GATEWAY_ID } from '../fixtures/gateway-event.ts';
import { isolatedTopics, spawnVigil } from './helpers.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const DEVICE = 'trace-wearable-0001';
const SITE = 'site-a';

let dir: string;
let storeDir: string;
let tokens: { auditor: string; otherAuditor: string; analyst: string; remoteAuditor: string; nurse: string };
let event: NormalisedEvent;

const keyPath = (name: string) => path.join(dir, 'keys', name);

/** ES256 compact JWS over the payload with the device's issued key, kid = its certificate fingerprint. */
function deviceSign(payload: Record<string, unknown>, keyPem: string, fingerprint: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'ES256', kid: fingerprint })}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key: createPrivateKey(keyPem), dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

async function land(store: ClickHouseStore, fingerprint: string, keyPem: string): Promise<void> {
  const base = normalisedEvent({ n: 7, deviceId: DEVICE, siteId: SITE, offset: 41 });
  // What the device signed: its envelope (the event's immutable fields) without the gateway's stamps.
  const sent = envelope({
    event_id: base.event_id,
    device_id: base.device_id,
    event_type: base.event_type,
    observed_at: base.observed_at,
    firmware_version: base.firmware_version,
    payload: base.payload,
    sequence: base.sequence,
    nonce: base.nonce,
  });
  const signedEvent = deviceSign(devicePayloadOf(sent), keyPem, fingerprint);
  event = {
    ...base,
    integrity_hash: integrityHashOf(signedEvent),
    device_cert_fingerprint: fingerprint,
    key_id: fingerprint,
  };
  const bytes = Buffer.from(`avro-frame-of-${event.event_id}`);
  await store.insert(
    'raw_events',
    [
      rawEventRow(origin(41, bytes, { key: DEVICE }), {
        eventId: event.event_id,
        deviceId: DEVICE,
        signedEvent,
        gatewayId: TEST_GATEWAY_ID,
        deviceCertFingerprint: fingerprint,
        keyId: fingerprint,
        integrityHash: event.integrity_hash,
      }),
    ],
    { dedupToken: 'trace/raw' },
  );
  // Two derivations of the event (append-only planes): pipeline version 1, then a re-derivation by version 2.
  const v2 = {
    ...event,
    transformation_version: 'vitals@2/validate/dedupe',
    processed_at: event.processed_at + 60_000,
  };
  await store.insert('normalised_events', [event, v2].map(normalisedEventRow), { dedupToken: 'trace/normalised' });
  // As operators/score names its derivation: <pipeline>/score/<model>@<version>.
  const inference = { ...inferenceFor(event, { score: 7 }), transformation_version: 'vitals@1/score/news2@1.0.0' };
  await store.insert('inferences', [inferenceRow(inference)], { dedupToken: 'trace/inferences' });
  // Another event of the same patient with an alert that cites someone else: must not show.
  await store.insert(
    'clinical_alerts',
    [
      alertRow('alert-1', 'rec-1', [event.event_id], [inference.inference_id]),
      alertRow('alert-2', 'rec-2', ['01OTHER0000000000000000000'], ['other-inference']),
    ],
    { dedupToken: 'trace/alerts' },
  );
}

function alertRow(alertId: string, recordId: string, eventIds: string[], inferenceIds: string[]) {
  return {
    record_id: recordId,
    alert_id: alertId,
    patient_ref: event.patient_ref,
    site_id: SITE,
    device_id: DEVICE,
    rule_id: 'news2-high',
    rule_version: '1',
    kind: 'physiological',
    band: 'high',
    transition: 'open',
    opened_at: toDateTime64(event.observed_at),
    observed_at: toDateTime64(event.observed_at),
    received_at: toDateTime64(event.received_at),
    raised_at: toDateTime64(event.processed_at + 10),
    suppressed: 0,
    inference_ids: inferenceIds,
    event_ids: eventIds,
    model_name: 'news2',
    model_version: '1.0.0',
    rollout: 'live',
    score: 7,
    parameter: null,
    alarm_code: null,
    action_id: null,
    principal: null,
    transformation_version: 'alerts@1/raise-alerts',
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-trace-'));
  storeDir = path.join(dir, 'store');
  const pki = await initPki(path.join(dir, 'pki'), { now: T0 - 86_400_000 });
  const log = deviceIdentityLog({ controlDir: path.join(dir, 'control') });
  const issued = await enrollDevice(
    { log, pki, actor: 'enrolment-test', clock: new ManualClock(T0 - 3_600_000) },
    DEVICE,
    { outDir: path.join(dir, 'devices'), assignment: { patient_ref: 'p', site_id: SITE, consent_context: 'care' } },
  );
  await log.close();

  const store = openChdbStore({ path: storeDir });
  await store.migrate();
  await land(store, issued.fingerprint, await readFile(issued.keyPath, 'utf8'));
  await store.close();

  generateAuditKeys(path.join(dir, 'keys'), 'vigil.test/trace');
  const principals = path.join(dir, 'principals.json');
  tokens = {
    auditor: addPrincipal(principals, { name: 'auditor-1', roles: ['auditor'], sites: ['*'] }).token,
    otherAuditor: addPrincipal(principals, { name: 'auditor-2', roles: ['auditor'], sites: ['*'] }).token,
    analyst: addPrincipal(principals, { name: 'analyst-1', roles: ['analyst'], sites: [SITE] }).token,
    remoteAuditor: addPrincipal(principals, { name: 'auditor-3', roles: ['auditor'], sites: ['site-b'] }).token,
    nurse: addPrincipal(principals, { name: 'nurse-1', roles: ['clinician'], sites: [SITE] }).token,
  };
  vi.stubEnv('VIGIL_PRINCIPALS', principals);
}, 120_000);

afterAll(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.restoreAllMocks();
});

const common = () => [
  '--data-dir',
  storeDir,
  '--audit-dir',
  path.join(dir, 'audit'),
  '--audit-hash-key',
  keyPath(KEY_FILES.hash),
  '--audit-pub',
  keyPath(KEY_FILES.verifier),
  '--pki-dir',
  path.join(dir, 'pki'),
  '--control-dir',
  path.join(dir, 'control'),
];

/** `vigil trace <args>` in-process, as `token`'s holder; what it printed on stdout. */
async function trace(token: string, ...args: string[]): Promise<string> {
  vi.stubEnv('VIGIL_TOKEN', token);
  const program = new Command().exitOverride();
  registerTrace(program);
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'vigil', 'trace', ...args, ...common()]);
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

/** `vigil alerts list <args>` in-process, as `token`'s holder, on the trace's store and audit log; what it printed. */
async function listAlerts(token: string, ...args: string[]): Promise<string> {
  vi.stubEnv('VIGIL_TOKEN', token);
  const program = new Command().exitOverride();
  registerAlerts(program);
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync([
      'node',
      'vigil',
      'alerts',
      'list',
      ...args,
      '--data-dir',
      storeDir,
      '--audit-dir',
      path.join(dir, 'audit'),
      '--audit-hash-key',
      keyPath(KEY_FILES.hash),
    ]);
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

async function auditEntries(): Promise<Record<string, unknown>[]> {
  const lines = (await readFile(path.join(dir, 'audit', AUDIT_FILE), 'utf8')).trim().split('\n');
  return lines
    .map((l) => JSON.parse(l) as { kind: string; entry?: Record<string, unknown> })
    .flatMap((r) => (r.entry ? [r.entry] : []));
}

async function signCheckpoint(): Promise<void> {
  const store = openFileAuditStore(path.join(dir, 'audit'));
  try {
    await signStoredLog(store, loadSignerKey(keyPath(KEY_FILES.signer)), new ManualClock(T0 + 86_400_000));
  } finally {
    await store.close();
  }
}

describe('vigil trace on the real stack: audit log and device-identity log on Kafka', () => {
  it('records itself on the audit topic, finds the earlier reader there and verifies against the Kafka identity log', async () => {
    const brokers = resolveEndpoints().kafkaBrokers;
    const topics = await isolatedTopics('trace');
    // The device's identity changes, as the identity service appended them, on the isolated device-identity topic.
    const identity = new KafkaControlLog<IdentityChange>({
      brokers,
      topic: topics.name(TOPICS.deviceIdentity),
      parse: parseIdentityChange,
    });
    for (const change of (await readAll(
      deviceIdentityLog({ controlDir: path.join(dir, 'control') }),
    )) as IdentityChange[]) {
      await identity.append(changeKey(change), change);
    }
    await identity.close();
    const onKafka = (token: string, ...args: string[]) =>
      spawnVigil(
        [
          'trace',
          event.event_id,
          '--json',
          ...args,
          '--data-dir',
          storeDir,
          '--audit-hash-key',
          keyPath(KEY_FILES.hash),
          '--audit-pub',
          keyPath(KEY_FILES.verifier),
          '--pki-dir',
          path.join(dir, 'pki'),
        ],
        { VIGIL_TOPIC_PREFIX: topics.prefix, VIGIL_TOKEN: token, VIGIL_PRINCIPALS: path.join(dir, 'principals.json') },
      ).done;

    const first = await onKafka(tokens.otherAuditor);
    expect(first.code, first.stderr).toBe(0);
    expect((JSON.parse(first.stdout) as TraceReport).viewed_by).toEqual([]);
    // A clinician lists the alerts (one cites the event): the read and its companion go to the topic in one claim.
    const listed = await spawnVigil(
      [
        'alerts',
        'list',
        '--purpose',
        'treatment',
        '--json',
        '--data-dir',
        storeDir,
        '--audit-hash-key',
        keyPath(KEY_FILES.hash),
      ],
      {
        VIGIL_TOPIC_PREFIX: topics.prefix,
        VIGIL_TOKEN: tokens.nurse,
        VIGIL_PRINCIPALS: path.join(dir, 'principals.json'),
      },
    ).done;
    expect(listed.code, listed.stderr).toBe(0);
    const auditTopic = topics.name(TOPICS.auditLog);
    const store = openKafkaAuditStore({ brokers, topic: auditTopic, writer: false });
    try {
      await signStoredLog(store, loadSignerKey(keyPath(KEY_FILES.signer)), new ManualClock(T0 + 86_400_000));
    } finally {
      await store.close();
    }
    const second = await onKafka(tokens.auditor, '--verify');
    expect(second.code, second.stderr).toBe(0);
    const report = JSON.parse(second.stdout) as TraceReport;
    expect(report.viewed_by.map((v) => [v.principal, v.role, v.purpose, v.via])).toEqual([
      ['auditor-2', 'auditor', 'audit', 'trace.run'],
      ['nurse-1', 'clinician', 'treatment', 'alerts.list'],
    ]);
    expect([report.sender.signature_verified, report.raw.hash_verified, report.verified]).toEqual([true, true, true]);
    const entries = (await readAll(openKafkaAuditStore({ brokers, topic: auditTopic, writer: false }))).flatMap((r) =>
      (r as { kind: string }).kind === 'entry' ? [(r as { entry: Record<string, unknown> }).entry] : [],
    );
    expect(entries.map((e) => [e.index, e.actor, e.action])).toEqual([
      [0, 'auditor-2', 'trace.run'],
      [1, 'nurse-1', 'alerts.list'],
      [2, 'nurse-1', 'alerts.list.events'],
      [3, 'auditor-1', 'trace.run'],
    ]);
  });
});

describe('vigil trace', () => {
  it('answers the four questions, and the first trace finds nobody on record', async () => {
    const report = JSON.parse(await trace(tokens.otherAuditor, event.event_id, '--json')) as TraceReport;
    // The report's first keys, in their order; issue 12 added model_rollouts_log after them (keys are only added).
    expect(Object.keys(report)).toEqual([
      'event_id',
      'sender',
      'raw',
      'transformations',
      'inferences',
      'alerts',
      'viewed_by',
      'verified',
      'model_rollouts_log',
    ]);
    expect(report.sender).toEqual({
      device_id: DEVICE,
      certificate_fingerprint: event.device_cert_fingerprint,
      gateway: TEST_GATEWAY_ID,
      received_at: new Date(event.received_at).toISOString(),
      signature_verified: null,
    });
    expect(report.raw).toEqual({
      topic: 'vigil.telemetry.raw',
      partition: 0,
      offset: 41,
      sha256: event.integrity_hash.replace('sha256:', ''),
      hash_verified: null,
    });
    expect(report.transformations.map((t) => `${t.version}/${t.operator}`)).toEqual([
      'vitals@1/validate',
      'vitals@1/dedupe',
      'vitals@2/validate',
      'vitals@2/dedupe',
      'vitals@1/score/news2@1.0.0/score',
    ]);
    expect(report.inferences).toMatchObject([
      {
        model: 'news2',
        version: '1.0.0',
        artifact_sha256: sha256Hex('news2-1.0.0.onnx'),
        rollout: 'live',
        score: 7,
        risk_band: 'high',
        // A row from before routing ran by the pipeline's config; this control dir holds no model-rollouts log.
        rollout_id: null,
        routing: { source: 'pipeline', cohort_bucket: null, in_canary: false, clinical: true },
        rollout_record: null,
        artifact_registered: null,
      },
    ]);
    expect(report.model_rollouts_log).toMatchObject({ read: false, problem: 'no such file' });
    expect(report.alerts.map((a) => [a.alert_id, a.rule, a.transition, a.band, a.cites])).toEqual([
      ['alert-1', 'news2-high', 'open', 'high', 'event'],
    ]);
    expect(report.viewed_by).toEqual([]);
    expect(report.verified).toBe(false); // nothing was verified without --verify
    const last = (await auditEntries()).at(-1)!;
    expect(last).toMatchObject({ actor: 'auditor-2', role: 'auditor', action: 'trace.run', purpose: 'audit' });
    expect(String(last.target)).toMatch(/^event:h:[0-9a-f]{32}$/);
    expect(JSON.stringify(last)).not.toContain(event.event_id); // the entry never names the event itself
  });

  it('--verify re-checks hash, signature and the readers’ audit inclusion: verified', async () => {
    await signCheckpoint(); // the signer has covered auditor-2's trace
    const report = JSON.parse(await trace(tokens.auditor, event.event_id, '--verify', '--json')) as TraceReport;
    expect(report.viewed_by).toEqual([
      { principal: 'auditor-2', role: 'auditor', at: expect.any(String), purpose: 'audit', via: 'trace.run' },
    ]);
    expect(report.sender.signature_verified).toBe(true);
    expect(report.raw.hash_verified).toBe(true);
    expect(report.verified).toBe(true);
    // The trace itself was recorded before it printed: the next trace sees it.
    expect((await auditEntries()).at(-1)).toMatchObject({ actor: 'auditor-1', action: 'trace.run' });
  });

  it('a reader not yet covered by a signed checkpoint cannot be proven: not verified', async () => {
    const out = await trace(tokens.auditor, event.event_id, '--verify');
    expect(out).toContain('who saw it (before this trace)');
    expect(out).toContain('auditor-1 as auditor for audit via trace.run');
    expect(out).toContain('verified: NO');
    expect(out).toMatch(/entry \d+ is not covered by the latest signed checkpoint/);
    process.exitCode = 0;
    await signCheckpoint();
  });

  it('a clinician who listed an alert citing the event is among who saw it, proven with --verify', async () => {
    const listed = JSON.parse(await listAlerts(tokens.nurse, '--purpose', 'treatment', '--json')) as {
      alerts: { alert_id: string; event_ids: string[] }[];
    };
    expect(listed.alerts.map((a) => [a.alert_id, a.event_ids])).toEqual([
      ['alert-1', [event.event_id]],
      ['alert-2', ['01OTHER0000000000000000000']],
    ]);
    // The read, then one companion naming both events by keyed reference: never the ids themselves.
    const [read, companion] = (await auditEntries()).slice(-2);
    expect([read?.action, companion?.action, companion?.index]).toEqual([
      'alerts.list',
      'alerts.list.events',
      Number(read?.index) + 1,
    ]);
    expect(String(companion?.target)).toMatch(/^events:h:[0-9a-f]{32},[0-9a-f]{32}$/);
    expect(JSON.stringify([read, companion])).not.toContain(event.event_id);

    await signCheckpoint(); // `vigil audit checkpoint` has covered the clinician's read
    const report = JSON.parse(await trace(tokens.auditor, event.event_id, '--verify', '--json')) as TraceReport;
    expect(report.viewed_by.filter((v) => v.role === 'clinician')).toEqual([
      { principal: 'nurse-1', role: 'clinician', at: expect.any(String), purpose: 'treatment', via: 'alerts.list' },
    ]);
    expect(report.viewed_by.map((v) => v.principal)).toEqual(['auditor-2', 'auditor-1', 'auditor-1', 'nurse-1']);
    expect(new Date(report.viewed_by[3]!.at).getTime()).toBe(Number(companion?.at));
    expect(report.verified).toBe(true); // the clinician's entry is included in the signed checkpoint
    const text = await trace(tokens.auditor, event.event_id);
    expect(text).toContain('nurse-1 as clinician for treatment via alerts.list');
  });

  it('a tampered signed_event fails the hash and the signature', async () => {
    const store = openChdbStore({ path: storeDir });
    try {
      await store.command(
        `ALTER TABLE raw_events UPDATE signed_event = concat(signed_event, 'A') WHERE event_id = {id:String}
         SETTINGS mutations_sync = 2`,
        { id: event.event_id },
      );
    } finally {
      await store.close();
    }
    await signCheckpoint();
    const report = JSON.parse(await trace(tokens.auditor, event.event_id, '--verify', '--json')) as TraceReport;
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    expect(report.raw.hash_verified).toBe(false);
    expect(report.sender.signature_verified).toBe(false);
    expect(report.verified).toBe(false);
  });

  it('refuses a non-auditor and an auditor of another site, and audits each refusal', async () => {
    await expect(trace(tokens.analyst, event.event_id, '--json')).rejects.toThrow(/access denied \(role\)/);
    expect((await auditEntries()).at(-1)).toMatchObject({
      actor: 'analyst-1',
      role: 'analyst',
      action: 'trace.run.denied',
    });
    await expect(trace(tokens.remoteAuditor, event.event_id, '--json')).rejects.toThrow(/access denied \(site\)/);
    expect((await auditEntries()).at(-1)).toMatchObject({ actor: 'auditor-3', action: 'trace.run.denied' });
    await expect(trace('vgl_not-a-token', event.event_id)).rejects.toThrow(/access denied \(unauthenticated\)/);
    expect((await auditEntries()).at(-1)).toMatchObject({ actor: 'unauthenticated', action: 'trace.run.denied' });
    // Looking for an event that is not there is an access too, recorded, but not a view of anything.
    await expect(trace(tokens.auditor, '01NOSUCHEVENT0000000000000')).rejects.toThrow(/no event 01NOSUCHEVENT/);
    expect((await auditEntries()).at(-1)).toMatchObject({ actor: 'auditor-1', action: 'trace.not-found' });
    // None of them counts as a view.
    const report = JSON.parse(await trace(tokens.auditor, event.event_id, '--json')) as TraceReport;
    expect(report.viewed_by.map((v) => v.principal)).toEqual([
      'auditor-2',
      'auditor-1',
      'auditor-1',
      'nurse-1',
      'auditor-1',
      'auditor-1',
      'auditor-1',
    ]);
  });

  it('runs as its own process through bin/vigil.js', async () => {
    const { stdout } = await run(
      process.execPath,
      [path.join(ROOT, 'bin/vigil.js'), 'trace', event.event_id, '--json', ...common()],
      { cwd: ROOT, env: { ...process.env, VIGIL_TOKEN: tokens.auditor } },
    );
    const report = JSON.parse(stdout) as TraceReport;
    expect(report.event_id).toBe(event.event_id);
    expect(report.inferences).toHaveLength(1);
  });
});
