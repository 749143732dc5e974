/**
 * The gateway on the real stack (issue 10's "done means"): Kafka (raw, raw-priority, gateway-rejections and the
 * device-identity control topic, all under an isolated prefix), the schema registry and Redis. Devices are enrolled,
 * revoked, rotated and reassigned through the identity service over the Kafka control log; two gateways follow it
 * live and share their state in Redis. Every event the gateway accepted is read back off the raw topics and every
 * refusal off the rejections topic; one stored event's signature is re-verified from the raw plane alone.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { compactVerify } from 'jose';
import Kafka from 'node-rdkafka';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelopeDecoder, FramedDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { KafkaControlLog } from '../../adapters/kafka/control-log.ts';
import { type GatewaySinks, openGatewaySinks } from '../../adapters/kafka/raw-writer.ts';
import { openRedisGatewayState, type RedisGatewayState } from '../../adapters/redis/gateway-state.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { deviceIdentityLog } from '../../cli/commands/devices.ts';
import { type GatewayRejection, type RunningGateway, startGateway } from '../../gateway/index.ts';
import { type OpenDeviceDirectory, openDeviceDirectory } from '../../identity/directory.ts';
import { initPki, type PkiFiles } from '../../identity/pki.ts';
import { parseIdentityChange } from '../../identity/records.ts';
import {
  assignDevice,
  currentRegistry,
  enrollDevice,
  type IdentityContext,
  revokeCertificate,
  rotateDevice,
  setDeviceStatus,
} from '../../identity/service.ts';
import type { IdentityChange } from '../../identity/types.ts';
import { topicPartitions } from '../../infra/local/create-topics.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import type { Envelope } from '../../schemas/types.ts';
import { devicePayload, deviceSession, postEvents, signEvent, type TestDevice } from '../gateway-fleet.ts';
import { freePort, waitFor } from '../support/process.ts';
import { highWatermarks, isolatedTopics, spawnVigil } from './helpers.ts';

const endpoints = resolveEndpoints();
const dir = mkdtempSync(join(tmpdir(), 'vigil-it-gateway-'));
const fleetDir = join(dir, 'fleet');
let topics: { prefix: string; name: (base: string) => string };
let pki: PkiFiles;
let log: KafkaControlLog<IdentityChange>;
let ctx: IdentityContext;
const gateways: {
  gateway: RunningGateway;
  directory: OpenDeviceDirectory;
  state: RedisGatewayState;
  sinks: GatewaySinks;
}[] = [];
let tail: Tail;

const ASSIGN = { patient_ref: 'psn-v1-it01', site_id: 'site-it', consent_context: 'care-delivery' };

interface Tail {
  readonly raw: Envelope[];
  readonly priority: Envelope[];
  readonly rejections: GatewayRejection[];
  close(): Promise<void>;
}

/** Follows the three gateway topics from their beginning, decoding as records arrive. */
async function tailTopics(): Promise<Tail> {
  const registry = createSchemaRegistry(endpoints.schemaRegistryUrl);
  const envelopes = createEnvelopeDecoder(registry);
  const rejections = new FramedDecoder<GatewayRejection>(
    registry,
    loadSchemaRepo().get('gateway-rejection').newest.type,
  );
  const consumer = new Kafka.KafkaConsumer(
    { 'metadata.broker.list': endpoints.kafkaBrokers, 'group.id': `tail-${ulid()}`, 'enable.auto.commit': false },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (e) => (e ? reject(e) : resolve())),
  );
  const [rawTopic, priorityTopic, rejectionTopic] = [TOPICS.raw, TOPICS.rawPriority, TOPICS.gatewayRejections].map(
    topics.name,
  );
  consumer.subscribe([rawTopic as string, priorityTopic as string, rejectionTopic as string]);
  consumer.setDefaultConsumeTimeout(200);
  const out: Tail = { raw: [], priority: [], rejections: [], close: async () => {} };
  let running = true;
  const loop = (async () => {
    while (running) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(1000, (e, m) => (e ? reject(e) : resolve(m))),
      );
      for (const m of batch) {
        const value = m.value as Buffer;
        if (m.topic === rejectionTopic) {
          const r = await rejections.decode(value);
          if (!r.ok) throw new Error(`undecodable rejection: ${r.code}`);
          out.rejections.push(r.value);
        } else {
          const r = await envelopes.decode(value);
          if (!r.ok) throw new Error(`undecodable envelope: ${r.code} ${r.detail}`);
          (m.topic === priorityTopic ? out.priority : out.raw).push(r.value);
        }
      }
    }
  })();
  return {
    ...out,
    raw: out.raw,
    priority: out.priority,
    rejections: out.rejections,
    close: async () => {
      running = false;
      await loop;
      await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
    },
  };
}

async function startOne(id: string): Promise<RunningGateway> {
  const directory = await openDeviceDirectory(
    new KafkaControlLog({
      brokers: endpoints.kafkaBrokers,
      topic: topics.name(TOPICS.deviceIdentity),
      parse: parseIdentityChange,
    }),
  );
  await directory.caughtUp;
  const state = await openRedisGatewayState(
    { url: endpoints.redisUrl, keyPrefix: `${topics.prefix}:` },
    { ratePerSec: 200, burst: 400, nonceTtlMs: 600_000, sequenceTtlMs: 86_400_000 },
  );
  const sinks = await openGatewaySinks({
    brokers: endpoints.kafkaBrokers,
    registry: createSchemaRegistry(endpoints.schemaRegistryUrl),
    topics: {
      raw: topics.name(TOPICS.raw),
      priority: topics.name(TOPICS.rawPriority),
      rejections: topics.name(TOPICS.gatewayRejections),
    },
  });
  const gateway = await startGateway({
    id,
    port: 0,
    tls: { certPem: pki.gatewayCertPem, keyPem: pki.gatewayKeyPem, caPem: pki.caCertPem },
    directory: directory.registry,
    state,
    raw: sinks.raw,
    rejections: sinks.rejections,
    clock: systemClock,
    limits: { maxEventsPerRequest: 100, maxBodyBytes: 2_000_000, connectionRequestsPerSec: 500, connectionBurst: 500 },
  });
  gateways.push({ gateway, directory, state, sinks });
  return gateway;
}

/** Enrols through the identity service (the same path as `vigil devices enroll`) and reads the files it wrote. */
async function enrol(deviceId: string, assignment: typeof ASSIGN | null = ASSIGN): Promise<TestDevice> {
  const issued = await enrollDevice(ctx, deviceId, { outDir: fleetDir, ...(assignment ? { assignment } : {}) });
  const certPem = readFileSync(issued.certPath, 'utf8');
  return {
    deviceId,
    certPem,
    keyPem: readFileSync(issued.keyPath, 'utf8'),
    fingerprint: issued.fingerprint,
    algorithm: 'ES256',
    info: {
      fingerprint: issued.fingerprint,
      pem: certPem,
      not_before: 0,
      not_after: issued.not_after,
      algorithm: 'ES256',
    },
  };
}

/** Waits until every gateway's directory has applied the log up to now. */
async function directoriesCaughtUp(check: (d: OpenDeviceDirectory) => boolean): Promise<void> {
  await waitFor(
    'the gateways to apply the identity change',
    () => gateways.every((g) => check(g.directory)),
    10_000,
    20,
  );
}

let seq = 0;
const line = (device: TestDevice, overrides: Record<string, unknown> = {}, observedAt = Date.now()) =>
  signEvent(device, devicePayload(device.deviceId, ++seq, observedAt, overrides));

beforeAll(async () => {
  topics = await isolatedTopics('gateway');
  // Freshly created topics take a moment to show in every broker's metadata.
  await waitFor(
    'the isolated topics in the metadata',
    async () => (await topicPartitions(endpoints.kafkaBrokers)).has(topics.name(TOPICS.deviceIdentity)),
    30_000,
  );
  pki = await initPki(join(dir, 'pki'));
  log = new KafkaControlLog({
    brokers: endpoints.kafkaBrokers,
    topic: topics.name(TOPICS.deviceIdentity),
    parse: parseIdentityChange,
  });
  ctx = { log, pki, actor: 'it-gateway', clock: systemClock };
  await startOne('gw-it-1');
  await startOne('gw-it-2');
  tail = await tailTopics();
}, 120_000);

afterAll(async () => {
  for (const g of gateways) {
    await g.gateway.close(1_000);
    await Promise.all([g.sinks.close(), g.state.close(), g.directory.close()]);
  }
  await tail?.close();
  await log?.close();
  rmSync(dir, { recursive: true, force: true });
});

const gw = (i: number) => (gateways[i] as (typeof gateways)[number]).gateway;

describe('gateway on the real stack', () => {
  it('accepted events are on the raw topic when 202 arrives, stamped, with integrity_hash = sha256(signed_event)', async () => {
    const device = await enrol('it-dev-ok');
    await directoriesCaughtUp((d) => d.registry.device('it-dev-ok') !== undefined);
    const session = await deviceSession(gw(0).url, pki.caCertPem, device);
    const lines = [line(device), line(device), line(device)];
    const reply = await postEvents(session, lines);
    expect(reply).toMatchObject({ status: 202, body: { accepted: 3, rejected: [] } });
    // Durable before the answer: the high watermarks already count them.
    expect(await highWatermarks(topics.name(TOPICS.raw), 6)).toBeGreaterThanOrEqual(3);
    session.close();
    await waitFor(
      'the events on the raw topic',
      () => tail.raw.filter((e) => e.device_id === 'it-dev-ok').length === 3,
      15_000,
    );
    for (const envelope of tail.raw.filter((e) => e.device_id === 'it-dev-ok')) {
      const stored = envelope as Envelope & { signed_event?: string | null; gateway_id?: string | null };
      expect(stored).toMatchObject({
        ...ASSIGN,
        device_cert_fingerprint: device.fingerprint,
        key_id: device.fingerprint,
      });
      expect(stored.signed_event && lines.includes(stored.signed_event)).toBe(true);
      expect(stored.gateway_id).toBe('gw-it-1');
      expect(stored.integrity_hash).toBe(
        `sha256:${createHash('sha256')
          .update(stored.signed_event as string)
          .digest('hex')}`,
      );
    }
  });

  it("re-verifies a stored event's signature from the raw plane alone (signed_event + the certificate from the identity log)", async () => {
    const stored = tail.raw.find((e) => e.device_id === 'it-dev-ok') as Envelope & { signed_event: string };
    // A later reader: only the raw record and the identity log.
    const registry = await currentRegistry(log);
    const found = registry.byFingerprint(stored.device_cert_fingerprint as string);
    expect(found?.device.device_id).toBe('it-dev-ok');
    const key = new X509Certificate(found?.certificate.pem as string).publicKey;
    const { payload, protectedHeader } = await compactVerify(stored.signed_event, key, { algorithms: ['ES256'] });
    expect(protectedHeader.kid).toBe(stored.key_id);
    const signed = JSON.parse(Buffer.from(payload).toString('utf8'));
    expect(signed).toMatchObject({
      device_id: stored.device_id,
      sequence: stored.sequence,
      nonce: stored.nonce,
      observed_at: stored.observed_at,
    });
  });

  it('alarms go to the priority topic', async () => {
    const device = await enrol('it-dev-alarm');
    await directoriesCaughtUp((d) => d.registry.device('it-dev-alarm') !== undefined);
    const session = await deviceSession(gw(0).url, pki.caCertPem, device);
    const alarm = {
      event_type: 'alarm',
      payload: { alarm_code: 'SPO2-LOW', category: 'physiological', priority: 'high', active: true },
    };
    const reply = await postEvents(session, [line(device, alarm), line(device)]);
    session.close();
    expect(reply).toMatchObject({ status: 202, body: { accepted: 2 } });
    await waitFor(
      'the alarm on the priority topic',
      () => tail.priority.some((e) => e.device_id === 'it-dev-alarm'),
      15_000,
    );
    await waitFor('the vital on the raw topic', () => tail.raw.some((e) => e.device_id === 'it-dev-alarm'), 15_000);
    expect(tail.priority.filter((e) => e.device_id === 'it-dev-alarm').map((e) => e.event_type)).toEqual(['alarm']);
    expect(tail.raw.filter((e) => e.device_id === 'it-dev-alarm').map((e) => e.event_type)).toEqual(['vital_signs']);
  });

  it('records every rejection reason on the rejections topic', async () => {
    const device = await enrol('it-dev-bad');
    const other = await enrol('it-dev-other');
    const unassigned = await enrol('it-dev-unassigned', null);
    const suspended = await enrol('it-dev-suspended');
    await setDeviceStatus(ctx, 'it-dev-suspended', 'suspend');
    const revoked = await enrol('it-dev-revoked');
    await setDeviceStatus(ctx, 'it-dev-revoked', 'revoke');
    await assignDevice(ctx, 'it-dev-bad', ASSIGN);
    await directoriesCaughtUp((d) => d.registry.device('it-dev-revoked')?.status === 'revoked');
    const foreign = await initPki(join(dir, 'foreign'));
    const { enrolChanges } = await import('../gateway-fleet.ts');
    const { device: stranger } = await enrolChanges(foreign, 'it-dev-stranger', { at: Date.now() });
    const { device: expired } = await enrolChanges(pki, 'it-dev-expired', {
      at: Date.now(),
      days: 1,
      issuedAt: Date.now() - 3 * 86_400_000,
    });

    const session = await deviceSession(gw(0).url, pki.caCertPem, device);
    const good = line(device);
    const sameSeq = signEvent(device, devicePayload('it-dev-bad', seq, Date.now()));
    const [h, , s] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify(devicePayload('it-dev-bad', ++seq, Date.now()))).toString('base64url')}.${s}`;
    const perEvent = await postEvents(session, [
      good,
      good,
      sameSeq,
      'garbage',
      line(other),
      forged,
      signEvent(device, devicePayload('it-dev-other', ++seq, Date.now())),
      line(device, {}, Date.now() - 3_600_000),
      line(device, { patient_ref: 'psn-someone-else' }),
      line(device, { firmware_version: 'x'.repeat(70_000) }),
    ]);
    session.close();
    expect(perEvent.status).toBe(202);
    expect(perEvent.body.rejected?.map((r) => r.reason)).toEqual([
      'NONCE_REPLAYED',
      'SEQUENCE_REPLAYED',
      'MALFORMED',
      'KEY_MISMATCH',
      'BAD_SIGNATURE',
      'CERT_DEVICE_MISMATCH',
      'CLOCK_SKEW',
      'ASSIGNMENT_MISMATCH',
      'PAYLOAD_TOO_LARGE',
    ]);

    const whole: [TestDevice | undefined, number, string][] = [
      [undefined, 401, 'UNTRUSTED_CERTIFICATE'],
      [stranger, 401, 'UNTRUSTED_CERTIFICATE'],
      [expired, 401, 'CERT_EXPIRED'],
      [suspended, 403, 'DEVICE_SUSPENDED'],
      [revoked, 403, 'DEVICE_REVOKED'],
    ];
    for (const [who, status, reason] of whole) {
      const s2 = await deviceSession(gw(0).url, pki.caCertPem, who);
      const reply = await postEvents(s2, who ? [line(who)] : ['a.b.c']);
      s2.destroy();
      expect([reply.status, reply.body.reason]).toEqual([status, reason]);
    }
    const { device: unknown } = await enrolChanges(pki, 'it-dev-unknown', { at: Date.now() }); // never on the log
    const s3 = await deviceSession(gw(0).url, pki.caCertPem, unknown);
    expect((await postEvents(s3, [line(unknown)])).body).toEqual({ reason: 'UNKNOWN_DEVICE' });
    s3.destroy();
    const s4 = await deviceSession(gw(0).url, pki.caCertPem, unassigned);
    expect((await postEvents(s4, [line(unassigned)])).body.rejected).toEqual([
      { index: 0, reason: 'DEVICE_UNASSIGNED' },
    ]);
    const big = await postEvents(s4, 'x'.repeat(2_100_000));
    expect(big).toMatchObject({ status: 413, body: { reason: 'PAYLOAD_TOO_LARGE' } });
    s4.destroy();

    const expected = [
      'NONCE_REPLAYED',
      'SEQUENCE_REPLAYED',
      'MALFORMED',
      'KEY_MISMATCH',
      'BAD_SIGNATURE',
      'CERT_DEVICE_MISMATCH',
      'CLOCK_SKEW',
      'ASSIGNMENT_MISMATCH',
      'PAYLOAD_TOO_LARGE',
      'UNTRUSTED_CERTIFICATE',
      'CERT_EXPIRED',
      'DEVICE_SUSPENDED',
      'DEVICE_REVOKED',
      'UNKNOWN_DEVICE',
      'DEVICE_UNASSIGNED',
    ];
    await waitFor(
      'a rejection record for every reason',
      () => expected.every((reason) => tail.rejections.some((r) => r.reason === reason)),
      15_000,
    );
    const mismatch = tail.rejections.find((r) => r.reason === 'CERT_DEVICE_MISMATCH');
    expect(mismatch).toMatchObject({
      gateway_id: 'gw-it-1',
      claimed_device_id: 'it-dev-other',
      device_cert_fingerprint: device.fingerprint,
    });
    expect(tail.rejections.find((r) => r.reason === 'CERT_EXPIRED')?.device_cert_fingerprint).toBe(expired.fingerprint);
    const garbage = tail.rejections.find((r) => r.reason === 'MALFORMED' && r.claimed_device_id === null);
    expect(garbage?.raw_sha256).toBe(createHash('sha256').update('garbage').digest('hex'));
  });

  it('rate limits a flooding device (429 with Retry-After, recorded) while another device is served promptly', async () => {
    const flood = await enrol('it-dev-flood');
    const calm = await enrol('it-dev-calm');
    await directoriesCaughtUp((d) => d.registry.device('it-dev-calm') !== undefined);
    const fs = await deviceSession(gw(0).url, pki.caCertPem, flood);
    const cs = await deviceSession(gw(1).url, pki.caCertPem, calm);
    const bursts = Array.from({ length: 10 }, () => Array.from({ length: 100 }, () => line(flood)));
    const flooding = (async () => {
      const statuses: number[] = [];
      for (const burst of bursts) statuses.push((await postEvents(fs, burst)).status);
      return statuses;
    })();
    const calmTimes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = Date.now();
      expect((await postEvents(cs, [line(calm)])).status).toBe(202);
      calmTimes.push(Date.now() - started);
    }
    const statuses = await flooding;
    fs.close();
    cs.close();
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(Math.max(...calmTimes)).toBeLessThan(2_000);
    await waitFor('RATE_LIMITED records', () => tail.rejections.some((r) => r.reason === 'RATE_LIMITED'), 15_000);
  });

  it('a nonce accepted at one gateway is refused at the other (shared Redis state)', async () => {
    const device = await enrol('it-dev-shared');
    await directoriesCaughtUp((d) => d.registry.device('it-dev-shared') !== undefined);
    const event = line(device);
    const a = await deviceSession(gw(0).url, pki.caCertPem, device);
    const b = await deviceSession(gw(1).url, pki.caCertPem, device);
    expect((await postEvents(a, [event])).body).toEqual({ accepted: 1, rejected: [] });
    expect((await postEvents(b, [event])).body).toEqual({
      accepted: 0,
      rejected: [{ index: 0, reason: 'NONCE_REPLAYED' }],
    });
    a.close();
    b.close();
  });

  it('revocation mid-session: the open HTTP/2 session is closed within 5 s of the record, a new one is refused', async () => {
    const device = await enrol('it-dev-revoke-live');
    await directoriesCaughtUp((d) => d.registry.device('it-dev-revoke-live') !== undefined);
    const session: ClientHttp2Session = await deviceSession(gw(0).url, pki.caCertPem, device);
    expect((await postEvents(session, [line(device)])).status).toBe(202);
    const closed = new Promise<number>((resolve) => session.once('close', () => resolve(Date.now())));
    const revokedAt = Date.now();
    await setDeviceStatus(ctx, 'it-dev-revoke-live', 'revoke'); // resolves once the record is durable
    const closedAt = await closed;
    process.stderr.write(`revocation: session closed ${closedAt - revokedAt} ms after the revoke call began\n`);
    expect(closedAt - revokedAt).toBeLessThan(5_000);
    const again = await deviceSession(gw(1).url, pki.caCertPem, device);
    expect((await postEvents(again, [line(device)])).body).toEqual({ reason: 'DEVICE_REVOKED' });
    again.destroy();
  });

  it('key rotation: the new certificate works, the old one too until it is revoked', async () => {
    const old = await enrol('it-dev-rotate');
    const rotated = await rotateDevice(ctx, 'it-dev-rotate', { outDir: join(dir, 'rotated') });
    await directoriesCaughtUp((d) => d.registry.byFingerprint(rotated.fingerprint) !== undefined);
    const fresh: TestDevice = {
      ...old,
      certPem: readFileSync(rotated.certPath, 'utf8'),
      keyPem: readFileSync(rotated.keyPath, 'utf8'),
      fingerprint: rotated.fingerprint,
    };
    const sNew = await deviceSession(gw(0).url, pki.caCertPem, fresh);
    const sOld = await deviceSession(gw(0).url, pki.caCertPem, old);
    expect((await postEvents(sNew, [line(fresh)])).body).toEqual({ accepted: 1, rejected: [] });
    expect((await postEvents(sOld, [line(old)])).body).toEqual({ accepted: 1, rejected: [] });
    const oldClosed = new Promise((r) => sOld.once('close', r));
    await revokeCertificate(ctx, 'it-dev-rotate', old.fingerprint);
    await oldClosed; // trust withdrawn from the old certificate: its connection goes
    expect((await postEvents(sNew, [line(fresh)])).body).toEqual({ accepted: 1, rejected: [] });
    sNew.close();
    const again = await deviceSession(gw(0).url, pki.caCertPem, old);
    expect((await postEvents(again, [line(old)])).body).toEqual({ reason: 'DEVICE_REVOKED' });
    again.destroy();
  });

  it('reassignment mid-stream: events before and after carry the right pseudonym', async () => {
    const device = await enrol('it-dev-move');
    await directoriesCaughtUp((d) => d.registry.device('it-dev-move') !== undefined);
    const session = await deviceSession(gw(0).url, pki.caCertPem, device);
    const before = [line(device), line(device)];
    expect((await postEvents(session, before)).body.accepted).toBe(2);
    const next = { patient_ref: 'psn-v1-it02', site_id: 'site-it', consent_context: 'care-delivery' };
    await assignDevice(ctx, 'it-dev-move', next);
    await directoriesCaughtUp(
      (d) => d.registry.assignmentAt('it-dev-move', Date.now())?.patient_ref === next.patient_ref,
    );
    const after = [line(device), line(device)];
    expect((await postEvents(session, after)).body.accepted).toBe(2);
    session.close();
    await waitFor(
      '4 events of the moved device',
      () => tail.raw.filter((e) => e.device_id === 'it-dev-move').length === 4,
      15_000,
    );
    const byEvent = new Map(
      tail.raw
        .filter((e) => e.device_id === 'it-dev-move')
        .map((e) => [(e as Envelope & { signed_event: string }).signed_event, e.patient_ref]),
    );
    expect(before.map((l) => byEvent.get(l))).toEqual([ASSIGN.patient_ref, ASSIGN.patient_ref]);
    expect(after.map((l) => byEvent.get(l))).toEqual([next.patient_ref, next.patient_ref]);
  });
});

describe('vigil gateway (the command)', () => {
  it('follows a file identity log, listens, serves /metrics without device ids, and drains on SIGTERM', async () => {
    const controlDir = join(dir, 'control');
    const fileLog = deviceIdentityLog({ controlDir });
    const fileCtx: IdentityContext = { log: fileLog, pki, actor: 'it-gateway', clock: systemClock };
    // Unique per run: the command keeps its state under Redis's default `vigil:` prefix, which outlives a run.
    const deviceId = `it-cli-${ulid().toLowerCase()}`;
    const issued = await enrollDevice(fileCtx, deviceId, { outDir: fleetDir, assignment: ASSIGN });
    await fileLog.close();
    const device: TestDevice = {
      deviceId,
      certPem: readFileSync(issued.certPath, 'utf8'),
      keyPem: readFileSync(issued.keyPath, 'utf8'),
      fingerprint: issued.fingerprint,
      algorithm: 'ES256',
      info: {
        fingerprint: issued.fingerprint,
        pem: '',
        not_before: 0,
        not_after: issued.not_after,
        algorithm: 'ES256',
      },
    };
    const metricsPort = await freePort();
    const child = spawnVigil(
      [
        'gateway',
        '--port',
        '0',
        '--id',
        'gw-cli',
        '--pki-dir',
        join(dir, 'pki'),
        '--control-dir',
        controlDir,
        '--metrics-port',
        String(metricsPort),
      ],
      { VIGIL_TOPIC_PREFIX: topics.prefix },
    );
    await waitFor('the gateway to listen', () => child.stdout().includes('"url"'), 60_000);
    const { url, id } = JSON.parse(child.stdout().trim().split('\n')[0] as string) as { url: string; id: string };
    expect(id).toBe('gw-cli');
    const session = await deviceSession(url, pki.caCertPem, device);
    expect((await postEvents(session, [line(device), 'garbage'])).body).toEqual({
      accepted: 1,
      rejected: [{ index: 1, reason: 'MALFORMED' }],
    });
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/vigil_gateway_requests_total\{status="202"\} 1/);
    expect(metrics).toMatch(/vigil_gateway_events_accepted_total\{lane="raw"\} 1/);
    expect(metrics).toMatch(/vigil_gateway_rejections_total\{reason="MALFORMED"\} 1/);
    expect(metrics).toMatch(/vigil_gateway_open_connections 1/);
    expect(metrics).toMatch(/vigil_device_certificates_expiring 0/);
    expect(metrics).not.toContain(deviceId);
    expect(metrics).not.toContain(device.fingerprint);
    expect(metrics).not.toContain(ASSIGN.patient_ref);
    // The command's state lives under its topic namespace in Redis.
    const redis = new Redis(endpoints.redisUrl);
    const highest = await redis.get(`vigil:${topics.prefix}:gw:{${deviceId}}:high`);
    await redis.quit();
    expect(highest).toBe(String(seq)); // the accepted event's sequence (the garbage line took none)
    await waitFor('the event on the raw topic', () => tail.raw.some((e) => e.device_id === deviceId), 15_000);
    expect(tail.raw.find((e) => e.device_id === deviceId)).toMatchObject({ gateway_id: 'gw-cli' });
    child.child.kill('SIGTERM');
    const exited = await child.done;
    session.destroy();
    expect(exited.code, exited.stderr).toBe(0);
  });
});
