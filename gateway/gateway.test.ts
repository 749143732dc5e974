/**
 * The gateway over real TLS on loopback, with the memory state and in-memory sinks (the Kafka sinks and Redis state
 * are exercised on the real stack by test/integration/gateway.test.ts). The ManualClock starts at the real time so
 * certificates are valid for both Node's TLS and the gateway's own checks.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki, type PkiFiles } from '../identity/pki.ts';
import { DeviceRegistry } from '../identity/registry.ts';
import { ManualClock } from '../runtime/clock.ts';
import {
  ASSIGNMENT,
  devicePayload,
  deviceSession,
  enrolChanges,
  identityChange,
  postEvents,
  signEvent,
  type TestDevice,
} from '../test/gateway-fleet.ts';
import { type AcceptedEvent, type GatewayRejection, type RunningGateway, startGateway } from './index.ts';
import { MemoryGatewayState } from './state.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-gw-unit-'));
const foreignDir = mkdtempSync(join(tmpdir(), 'vigil-gw-foreign-'));
const clock = new ManualClock(Date.now());
const registry = new DeviceRegistry();
const raw: AcceptedEvent[] = [];
const rejections: GatewayRejection[] = [];
let failRaw = false;
let pki: PkiFiles;
let gateway: RunningGateway;
const devices: Record<string, TestDevice> = {};

async function enrol(
  id: string,
  options: Parameters<typeof enrolChanges>[2] = { at: clock.now() },
): Promise<TestDevice> {
  const { device, changes } = await enrolChanges(pki, id, options);
  for (const c of changes) registry.apply(c);
  devices[id] = device;
  return device;
}

let seq = 0;
const event = (device: TestDevice, overrides: Record<string, unknown> = {}) =>
  signEvent(device, devicePayload(device.deviceId, ++seq, clock.now() - 1000, overrides));

const rejectionsFor = (reason: string) => rejections.filter((r) => r.reason === reason);

beforeAll(async () => {
  pki = await initPki(dir);
  await enrol('dev-a');
  await enrol('dev-b', { at: clock.now(), algorithm: 'EdDSA' });
  await enrol('dev-unassigned', { at: clock.now(), assignment: null });
  await enrol('dev-suspended');
  registry.apply(identityChange('dev-suspended', clock.now(), { kind: 'status', status: 'suspended' }));
  await enrol('dev-flood');
  gateway = await startGateway({
    id: 'gw-unit',
    port: 0,
    tls: { certPem: pki.gatewayCertPem, keyPem: pki.gatewayKeyPem, caPem: pki.caCertPem },
    directory: registry,
    state: new MemoryGatewayState(
      { ratePerSec: 50, burst: 100, nonceTtlMs: 600_000, sequenceTtlMs: 86_400_000 },
      clock,
    ),
    raw: {
      write: async (events) => {
        if (failRaw) throw new Error('raw sink down');
        raw.push(...events);
      },
    },
    rejections: { write: async (r) => void rejections.push(...r) },
    clock,
    limits: {
      maxBodyBytes: 200_000,
      maxEventBytes: 8_000,
      maxEventsPerRequest: 50,
      headersTimeoutMs: 800,
      connectionRequestsPerSec: 1_000,
      connectionBurst: 1_000,
      maxConnectionsPerCertificate: 3,
    },
  });
});

afterAll(async () => {
  await gateway.close(1_000);
  rmSync(dir, { recursive: true, force: true });
  rmSync(foreignDir, { recursive: true, force: true });
});

describe('gateway: accepted events', () => {
  it('answers 202 after the raw write, stamping assignment, receipt, fingerprint and the hash of the signed bytes', async () => {
    const a = devices['dev-a'] as TestDevice;
    const session = await deviceSession(gateway.url, pki.caCertPem, a);
    const vital = event(a, { patient_ref: ASSIGNMENT.patient_ref }); // agreeing with the assignment is fine
    const alarm = event(a, {
      event_type: 'alarm',
      payload: { alarm_code: 'SPO2-LOW', category: 'physiological', priority: 'high', active: true },
    });
    const before = raw.length;
    const reply = await postEvents(session, [vital, alarm]);
    session.close();
    expect(reply).toMatchObject({ status: 202, body: { accepted: 2, rejected: [] } });
    const [first, second] = raw.slice(before);
    expect(first?.lane).toBe('raw');
    expect(second?.lane).toBe('priority');
    expect(first?.key).toBe('dev-a');
    const envelope = first?.envelope as unknown as Record<string, unknown>;
    expect(envelope).toMatchObject({
      device_id: 'dev-a',
      patient_ref: ASSIGNMENT.patient_ref,
      site_id: ASSIGNMENT.site_id,
      consent_context: ASSIGNMENT.consent_context,
      received_at: clock.now(),
      device_cert_fingerprint: a.fingerprint,
      key_id: a.fingerprint,
      integrity_hash: `sha256:${createHash('sha256').update(vital).digest('hex')}`,
    });
    if ('signed_event' in envelope) expect(envelope.signed_event).toBe(vital);
  });

  it('accepts EdDSA devices and HTTP/1.1 keep-alive clients', async () => {
    const b = devices['dev-b'] as TestDevice;
    const agent = new Agent({ keepAlive: true, ca: pki.caCertPem, cert: b.certPem, key: b.keyPem, maxSockets: 1 });
    const post = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpsRequest(`${gateway.url}/v1/events`, { method: 'POST', agent }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const replies = [await post(event(b)), await post(event(b))];
    agent.destroy();
    expect(replies.map((r) => r.status)).toEqual([202, 202]);
    expect(JSON.parse(replies[1]?.body ?? '')).toEqual({ accepted: 1, rejected: [] });
  });
});

describe('gateway: events refused one by one (202 with their indexes, and a record each)', () => {
  it('refuses forged, replayed, stale and contradicting events with their reason codes', async () => {
    const a = devices['dev-a'] as TestDevice;
    const b = devices['dev-b'] as TestDevice;
    const session = await deviceSession(gateway.url, pki.caCertPem, a);
    const good = event(a);
    const [h, p] = good.split('.');
    const replayedSeq = devicePayload('dev-a', seq, clock.now(), {}); // the sequence of `good`, a fresh nonce
    const lines = [
      good, // 0 accepted
      good, // 1 NONCE_REPLAYED (same request, same bytes)
      signEvent(a, replayedSeq), // 2 SEQUENCE_REPLAYED
      'not-a-jws', // 3 MALFORMED
      signEvent(b, devicePayload('dev-a', ++seq, clock.now())), // 4 KEY_MISMATCH: another device's key
      `${h}.${Buffer.from(JSON.stringify({ ...devicePayload('dev-a', ++seq, clock.now()) })).toString('base64url')}.${good.split('.')[2]}`, // 5 BAD_SIGNATURE
      signEvent(a, devicePayload('dev-a', ++seq, clock.now()), { alg: 'none' }), // 6 BAD_SIGNATURE
      signEvent(a, devicePayload('dev-b', ++seq, clock.now())), // 7 CERT_DEVICE_MISMATCH
      signEvent(a, devicePayload('dev-a', ++seq, clock.now() - 400_000)), // 8 CLOCK_SKEW (past)
      signEvent(a, devicePayload('dev-a', ++seq, clock.now() + 400_000)), // 9 CLOCK_SKEW (future)
      signEvent(a, devicePayload('dev-a', ++seq, clock.now(), { patient_ref: 'psn-other' })), // 10 ASSIGNMENT_MISMATCH
      signEvent(a, devicePayload('dev-a', ++seq, clock.now(), { firmware_version: 'x'.repeat(9_000) })), // 11 too large
      signEvent(a, devicePayload('dev-a', ++seq, clock.now(), { nonce: undefined })), // 12 MALFORMED (no nonce)
      signEvent(a, devicePayload('dev-a', ++seq, clock.now(), { payload: { spo2: 'high' } })), // 13 MALFORMED
      signEvent(a, 'not json'), // 14 MALFORMED
    ];
    expect(p).toBeTruthy();
    const before = rejections.length;
    const reply = await postEvents(session, lines);
    session.close();
    expect(reply.status).toBe(202);
    expect(reply.body.accepted).toBe(1);
    expect(reply.body.rejected).toEqual([
      { index: 1, reason: 'NONCE_REPLAYED' },
      { index: 2, reason: 'SEQUENCE_REPLAYED' },
      { index: 3, reason: 'MALFORMED' },
      { index: 4, reason: 'KEY_MISMATCH' },
      { index: 5, reason: 'BAD_SIGNATURE' },
      { index: 6, reason: 'BAD_SIGNATURE' },
      { index: 7, reason: 'CERT_DEVICE_MISMATCH' },
      { index: 8, reason: 'CLOCK_SKEW' },
      { index: 9, reason: 'CLOCK_SKEW' },
      { index: 10, reason: 'ASSIGNMENT_MISMATCH' },
      { index: 11, reason: 'PAYLOAD_TOO_LARGE' },
      { index: 12, reason: 'MALFORMED' },
      { index: 13, reason: 'MALFORMED' },
      { index: 14, reason: 'MALFORMED' },
    ]);
    const records = rejections.slice(before);
    expect(records).toHaveLength(14);
    for (const r of records) {
      expect(r).toMatchObject({ gateway_id: 'gw-unit', stage: 'gateway', device_cert_fingerprint: a.fingerprint });
      expect(r.raw_sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    const mismatch = records.find((r) => r.reason === 'CERT_DEVICE_MISMATCH');
    expect(mismatch).toMatchObject({ claimed_device_id: 'dev-b', key_id: a.fingerprint, firmware_version: '4.2.1' });
    // A MALFORMED record says what failed (fixed words or a schema path), never a value.
    expect(records.filter((r) => r.reason === 'MALFORMED').map((r) => r.detail)).toEqual([
      'not a JWS compact serialisation',
      'nonce: expected a string of 1..128 characters',
      expect.stringMatching(/^payload\.spo2: expected /),
      'payload is not a JSON object',
    ]);
    expect(records.find((r) => r.reason === 'SEQUENCE_REPLAYED')?.raw_sha256).toBe(
      createHash('sha256')
        .update(lines[2] as string)
        .digest('hex'),
    );
  });

  it('refuses events of a device with no assignment in force (DEVICE_UNASSIGNED)', async () => {
    const u = devices['dev-unassigned'] as TestDevice;
    const session = await deviceSession(gateway.url, pki.caCertPem, u);
    const reply = await postEvents(session, [event(u)]);
    session.close();
    expect(reply).toMatchObject({
      status: 202,
      body: { accepted: 0, rejected: [{ index: 0, reason: 'DEVICE_UNASSIGNED' }] },
    });
  });
});

describe('gateway: requests refused whole', () => {
  it('401 for no certificate or a foreign CA, 403 for unknown or suspended devices, each recorded', async () => {
    const foreign = await initPki(foreignDir);
    const { device: stranger } = await enrolChanges(foreign, 'dev-stranger', { at: clock.now() });
    const { device: unknown } = await enrolChanges(pki, 'dev-unknown', { at: clock.now() }); // never applied
    const cases = [
      { device: undefined, status: 401, reason: 'UNTRUSTED_CERTIFICATE' },
      { device: stranger, status: 401, reason: 'UNTRUSTED_CERTIFICATE' },
      { device: unknown, status: 403, reason: 'UNKNOWN_DEVICE' },
      { device: devices['dev-suspended'], status: 403, reason: 'DEVICE_SUSPENDED' },
    ];
    for (const c of cases) {
      const before = rejectionsFor(c.reason).length;
      const session = await deviceSession(gateway.url, pki.caCertPem, c.device);
      const closed = new Promise((r) => session.once('close', r));
      const reply = await postEvents(session, c.device ? [event(c.device as TestDevice)] : ['x.y.z']);
      expect(reply.status, c.reason).toBe(c.status);
      expect(reply.body).toEqual({ reason: c.reason });
      expect(rejectionsFor(c.reason).length).toBe(before + 1);
      await closed; // the gateway closes a connection it does not trust
    }
  });

  it('records one refusal per untrusted connection, however many streams it opened before the close', async () => {
    const before = rejectionsFor('UNTRUSTED_CERTIFICATE').length;
    const session = await deviceSession(gateway.url, pki.caCertPem);
    const replies = await Promise.allSettled([1, 2, 3, 4, 5].map(() => postEvents(session, ['a.b.c'])));
    session.destroy();
    const answered = replies.flatMap((r) => (r.status === 'fulfilled' ? [r.value.status] : []));
    expect(answered.length).toBeGreaterThan(0);
    expect(new Set(answered)).toEqual(new Set([401]));
    expect(rejectionsFor('UNTRUSTED_CERTIFICATE').length).toBe(before + 1);
  });

  it('404 for another path, 405 for another method, each recorded as MALFORMED', async () => {
    const a = devices['dev-a'] as TestDevice;
    const session = await deviceSession(gateway.url, pki.caCertPem, a);
    const ask = (method: string, path: string) =>
      new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':method': method, ':path': path });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
    const before = rejectionsFor('MALFORMED').length;
    expect([await ask('GET', '/v1/events'), await ask('POST', '/admin')]).toEqual([405, 404]);
    expect(rejectionsFor('MALFORMED').length).toBe(before + 2);
    session.close();
  });

  it('401 CERT_EXPIRED for an expired certificate', async () => {
    const { device, changes } = await enrolChanges(pki, 'dev-expired', {
      at: clock.now() - 10 * 86_400_000,
      days: 1,
      issuedAt: clock.now() - 10 * 86_400_000,
    });
    for (const c of changes) registry.apply(c);
    const session = await deviceSession(gateway.url, pki.caCertPem, device);
    const reply = await postEvents(session, [event(device)]);
    session.destroy();
    expect(reply).toMatchObject({ status: 401, body: { reason: 'CERT_EXPIRED' } });
    expect(rejectionsFor('CERT_EXPIRED').at(-1)?.device_cert_fingerprint).toBe(device.fingerprint);
  });

  it('413 for a body over the cap or too many events', async () => {
    const a = devices['dev-a'] as TestDevice;
    const s1 = await deviceSession(gateway.url, pki.caCertPem, a);
    const big = await postEvents(s1, 'x'.repeat(250_000));
    s1.destroy();
    expect(big).toMatchObject({ status: 413, body: { reason: 'PAYLOAD_TOO_LARGE' } });
    const s2 = await deviceSession(gateway.url, pki.caCertPem, a);
    const many = await postEvents(
      s2,
      Array.from({ length: 51 }, () => 'a.b.c'),
    );
    s2.destroy();
    expect(many).toMatchObject({ status: 413, body: { reason: 'PAYLOAD_TOO_LARGE' } });
  });

  it('429 RATE_LIMITED with Retry-After once the device bucket is empty; another device is unaffected', async () => {
    const flood = devices['dev-flood'] as TestDevice;
    const a = devices['dev-a'] as TestDevice;
    const s = await deviceSession(gateway.url, pki.caCertPem, flood);
    const other = await deviceSession(gateway.url, pki.caCertPem, a);
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 5; i++) {
      const reply = await postEvents(
        s,
        Array.from({ length: 30 }, () => event(flood)),
      );
      statuses.push(reply.status);
      if (reply.status === 429) retryAfter = reply.headers['retry-after'];
    }
    expect(statuses.slice(0, 3)).toEqual([202, 202, 202]); // 90 of the 100-token burst
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await postEvents(other, [event(a)])).status).toBe(202);
    clock.advance(2_000); // the bucket refills at 50/s
    expect((await postEvents(s, [event(flood)])).status).toBe(202);
    s.close();
    other.close();
  });

  it('503 when the raw sink fails, and the retry of the same signed events is accepted, not a replay', async () => {
    const a = devices['dev-a'] as TestDevice;
    const session = await deviceSession(gateway.url, pki.caCertPem, a);
    const lines = [event(a), event(a)];
    failRaw = true;
    const failed = await postEvents(session, lines);
    failRaw = false;
    expect(failed.status).toBe(503);
    const retried = await postEvents(session, lines);
    session.close();
    expect(retried).toMatchObject({ status: 202, body: { accepted: 2, rejected: [] } });
  });
});

describe('gateway: connections', () => {
  it('closes an open session at once when the device is revoked, and refuses its next connection', async () => {
    const { device, changes } = await enrolChanges(pki, 'dev-revoke', { at: clock.now() });
    for (const c of changes) registry.apply(c);
    const session = await deviceSession(gateway.url, pki.caCertPem, device);
    expect((await postEvents(session, [event(device)])).status).toBe(202);
    const closed = new Promise<number>((resolve) => session.once('close', () => resolve(Date.now())));
    const revokedAt = Date.now();
    registry.apply(identityChange('dev-revoke', clock.now(), { kind: 'status', status: 'revoked' }));
    expect((await closed) - revokedAt).toBeLessThan(1_000);
    const again = await deviceSession(gateway.url, pki.caCertPem, device);
    expect(await postEvents(again, [event(device)])).toMatchObject({ status: 403, body: { reason: 'DEVICE_REVOKED' } });
    again.destroy();
  });

  it('caps connections per certificate', async () => {
    const a = await enrol('dev-cap');
    const sessions = await Promise.all([1, 2, 3].map(() => deviceSession(gateway.url, pki.caCertPem, a)));
    for (const s of sessions) expect((await postEvents(s, [event(a)])).status).toBe(202);
    const before = rejectionsFor('RATE_LIMITED').length;
    const fourth = await deviceSession(gateway.url, pki.caCertPem, a);
    await new Promise((r) => fourth.once('close', r));
    expect(rejectionsFor('RATE_LIMITED').length).toBe(before + 1);
    for (const s of sessions) s.close();
  });

  it('cuts off a client dribbling its headers byte by byte (slow-loris)', async () => {
    const a = await enrol('dev-slow');
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: gateway.port,
      ca: pki.caCertPem,
      cert: a.certPem,
      key: a.keyPem,
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
    });
    await new Promise((r) => socket.once('secureConnect', r));
    const started = Date.now();
    const request = 'POST /v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n';
    let i = 0;
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(request[i++ % request.length] as string);
    }, 100);
    await new Promise((r) => socket.once('close', r));
    clearInterval(drip);
    const held = Date.now() - started;
    expect(held).toBeGreaterThanOrEqual(700);
    expect(held).toBeLessThan(3_000); // headersTimeoutMs 800, not Node's 60 s default
  });
});

describe('gateway: request timer', () => {
  it('cuts off a slow upload, but not a request waiting on a slow raw sink', async () => {
    const slow = await startGateway({
      id: 'gw-unit-slow',
      port: 0,
      tls: { certPem: pki.gatewayCertPem, keyPem: pki.gatewayKeyPem, caPem: pki.caCertPem },
      directory: registry,
      state: new MemoryGatewayState(
        { ratePerSec: 50, burst: 100, nonceTtlMs: 600_000, sequenceTtlMs: 86_400_000 },
        clock,
      ),
      raw: { write: () => new Promise((resolve) => setTimeout(resolve, 800)) },
      rejections: { write: async () => {} },
      clock,
      limits: { requestTimeoutMs: 400 },
    });
    try {
      const device = await enrol('dev-timer');
      const session = await deviceSession(slow.url, pki.caCertPem, device);
      expect((await postEvents(session, [event(device)])).status).toBe(202); // 800 ms in the sink: still answered

      const closed = new Promise<number>((resolve) => session.once('close', () => resolve(Date.now())));
      const started = Date.now();
      const stream = session.request({ ':method': 'POST', ':path': '/v1/events' });
      stream.on('error', () => {});
      stream.write(event(device).slice(0, 10)); // and never the rest
      expect((await closed) - started).toBeLessThan(2_000);
    } finally {
      await slow.close(500);
    }
  });
});

describe('gateway: connection ceiling', () => {
  it('drops connections beyond maxConnections at accept', async () => {
    const small = await startGateway({
      id: 'gw-unit-small',
      port: 0,
      tls: { certPem: pki.gatewayCertPem, keyPem: pki.gatewayKeyPem, caPem: pki.caCertPem },
      directory: registry,
      state: new MemoryGatewayState(
        { ratePerSec: 50, burst: 100, nonceTtlMs: 600_000, sequenceTtlMs: 86_400_000 },
        clock,
      ),
      raw: { write: async () => {} },
      rejections: { write: async () => {} },
      clock,
      limits: { maxConnections: 2 },
    });
    try {
      const [d1, d2, d3] = await Promise.all(['dev-ceil-1', 'dev-ceil-2', 'dev-ceil-3'].map((id) => enrol(id)));
      const first = await deviceSession(small.url, pki.caCertPem, d1);
      const second = await deviceSession(small.url, pki.caCertPem, d2);
      const third = await deviceSession(small.url, pki.caCertPem, d3).then(
        (s) => {
          s.destroy();
          return 'connected';
        },
        () => 'refused',
      );
      expect(third).toBe('refused');
      expect((await postEvents(first, [event(d1 as TestDevice)])).status).toBe(202);
      first.destroy();
      second.destroy();
    } finally {
      await small.close(500);
    }
  });
});
