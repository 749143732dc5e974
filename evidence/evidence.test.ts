/**
 * The checks `vigil trace --verify` makes, each on evidence built to pass and then altered one way at a time: the raw
 * hash, the device signature (real certificates from a throwaway PKI), who saw the event (audit entries by reference)
 * and their inclusion in the latest signed checkpoint; and the transformations list. The whole command on a store is
 * test/integration/trace.test.ts.
 */
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNoteKeys, parseSignerKey, parseVerifierKey } from '../audit/checkpoint.ts';
import { hashKeyOf } from '../audit/entry.ts';
import { openAuditLog } from '../audit/log.ts';
import { MemoryAuditStore } from '../audit/stores/memory.ts';
import { initPki, issueDeviceCertificate, type PkiFiles } from '../identity/pki.ts';
import { DeviceRegistry } from '../identity/registry.ts';
import { ManualClock } from '../runtime/clock.ts';
import type { EventEvidence } from './lookup.ts';
import { transformationsOf } from './trace.ts';
import { checkDeviceSignature, checkRawHash } from './verify.ts';
import { checkViewsIncluded, eventRef, viewsOf } from './views.ts';

const T0 = Date.UTC(2026, 2, 10, 8);
const EVENT = '01JGZ5Q8V3K9M2N4P6R8S0T2W4';
const DEVICE = 'wearable-0001';
const hex = (s: string) => createHash('sha256').update(s).digest('hex');

let dir: string;
let pki: PkiFiles;
let otherPki: PkiFiles;
let registry: DeviceRegistry;
let fingerprint: string;
let keyPem: string;

function jws(payload: unknown, kid = fingerprint, key = keyPem): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'ES256', kid })}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key: createPrivateKey(key), dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function evidenceWith(signedEvent: string, overrides: Partial<NonNullable<EventEvidence['raw']>> = {}): EventEvidence {
  const integrity = `sha256:${hex(signedEvent)}`;
  return {
    event_id: EVENT,
    raw: {
      topic: 'vigil.telemetry.raw',
      partition: 3,
      offset: 17,
      consumed_at: T0 + 1_000,
      raw_sha256: hex('frame'),
      raw_sha256_now: hex('frame'),
      device_id: DEVICE,
      signed_event: signedEvent,
      gateway_id: 'gw-1',
      device_cert_fingerprint: fingerprint,
      key_id: fingerprint,
      integrity_hash: integrity,
      ...overrides,
    },
    derivations: [
      {
        device_id: DEVICE,
        site_id: 'site-a',
        patient_ref: 'pt-1',
        received_at: T0 + 400,
        integrity_hash: integrity,
        device_cert_fingerprint: fingerprint,
        source_topic: 'vigil.telemetry.raw',
        source_partition: 3,
        source_offset: 17,
        transformation_version: 'vitals@1/validate/dedupe',
        processed_at: T0 + 2_000,
      },
    ],
    inferences: [],
    alerts: [],
  };
}

const signed = () => jws({ event_id: EVENT, device_id: DEVICE, sequence: 1, nonce: 'n-1', observed_at: T0 });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-evidence-'));
  pki = await initPki(path.join(dir, 'pki'), { now: T0 - 86_400_000 });
  otherPki = await initPki(path.join(dir, 'other-pki'), { now: T0 - 86_400_000 });
  const issued = await issueDeviceCertificate(pki, DEVICE, { now: T0 - 3_600_000 });
  fingerprint = issued.info.fingerprint;
  keyPem = issued.keyPem;
  registry = new DeviceRegistry();
  registry.apply({
    change_id: '01JGZ00000000000000000000A',
    device_id: DEVICE,
    at: T0 - 3_600_000,
    actor: 'test',
    kind: 'enrolled',
    certificate: issued.info,
  });
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the raw hash', () => {
  it('holds when signed_event hashes to integrity_hash and the bytes to raw_sha256', () => {
    expect(checkRawHash(evidenceWith(signed()))).toEqual({ ok: true, problem: null });
  });

  it('fails on an edited signed_event, a derivation citing another hash, edited bytes, or no evidence', () => {
    const good = evidenceWith(signed());
    expect(checkRawHash({ ...good, raw: { ...good.raw!, signed_event: `${signed()}x` } }).problem).toBe(
      'signed_event does not hash to the stored integrity_hash',
    );
    const other = { ...good.derivations[0]!, integrity_hash: `sha256:${hex('else')}` };
    expect(checkRawHash({ ...good, derivations: [...good.derivations, other] }).problem).toBe(
      'a derivation cites another integrity_hash than the raw record',
    );
    expect(checkRawHash(evidenceWith(signed(), { raw_sha256_now: hex('edited') })).problem).toBe(
      'the stored record bytes do not hash to raw_sha256',
    );
    expect(checkRawHash(evidenceWith(signed(), { raw_sha256_now: null })).ok).toBe(true); // bytes expired (TTL)
    expect(checkRawHash(evidenceWith(signed(), { signed_event: null })).ok).toBe(false);
    expect(checkRawHash({ ...good, raw: null }).problem).toBe('no raw record');
  });
});

describe('the device signature', () => {
  const ctx = () => ({ directory: registry, caCertPem: pki.caCertPem });

  it('verifies with the certificate the identity log holds, chained to the device CA', () => {
    expect(checkDeviceSignature(evidenceWith(signed()), ctx())).toEqual({ ok: true, problem: null });
  });

  it('fails for another CA, an unknown certificate, a wrong kid, another event or device, or a forged signature', () => {
    const e = evidenceWith(signed());
    expect(checkDeviceSignature(e, { directory: registry, caCertPem: otherPki.caCertPem }).problem).toBe(
      'the certificate does not chain to the device CA',
    );
    expect(checkDeviceSignature(e, { directory: new DeviceRegistry(), caCertPem: pki.caCertPem }).problem).toBe(
      'the certificate is not in the device-identity log',
    );
    const wrongKid = jws({ event_id: EVENT, device_id: DEVICE }, 'f'.repeat(64));
    expect(checkDeviceSignature(evidenceWith(wrongKid), ctx()).problem).toBe(
      'the JWS kid is not the certificate fingerprint',
    );
    expect(checkDeviceSignature(evidenceWith(jws({ event_id: 'other', device_id: DEVICE })), ctx()).problem).toBe(
      'the signed payload names another event',
    );
    expect(checkDeviceSignature(evidenceWith(jws({ event_id: EVENT, device_id: 'dev-9' })), ctx()).problem).toBe(
      'the signed payload names another device',
    );
    const [h, p] = signed().split('.');
    const forged = `${h}.${p}.${Buffer.alloc(64, 7).toString('base64url')}`;
    expect(checkDeviceSignature(evidenceWith(forged), ctx()).problem).toBe('the device signature does not verify');
    const late = evidenceWith(signed());
    const received = { ...late.derivations[0]!, received_at: T0 + 400 * 86_400_000 };
    expect(checkDeviceSignature({ ...late, derivations: [received] }, ctx()).problem).toBe(
      'the certificate was not valid when the event was received',
    );
    expect(checkDeviceSignature(evidenceWith(signed(), { device_id: 'dev-9' }), ctx()).problem).toBe(
      'the certificate belongs to another device',
    );
  });
});

describe('who saw it', () => {
  const hashKey = hashKeyOf(Buffer.alloc(32, 9));
  const keys = generateNoteKeys('vigil.test/evidence');
  const signer = parseSignerKey(keys.signer);
  const verifier = parseVerifierKey(keys.verifier);

  async function logWith(): Promise<{ store: MemoryAuditStore; ref: string }> {
    const store = new MemoryAuditStore();
    const log = await openAuditLog({ store, clock: new ManualClock(T0), hashKey, signer: { key: signer } });
    const ref = eventRef(hashKey, EVENT);
    const base = { role: 'auditor', purpose: 'audit' };
    await log.append({ ...base, actor: 'auditor-1', action: 'trace.run', target: ref, read: { x: 1 } });
    await log.append({ ...base, actor: 'analyst-1', action: 'trace.run.denied', target: `${ref} denied=role` });
    await log.append({ ...base, actor: 'auditor-2', action: 'trace.not-found', target: ref });
    await log.append({ ...base, actor: 'auditor-3', action: 'trace.run', target: eventRef(hashKey, 'other-event') });
    await log.append({ ...base, actor: 'auditor-4', action: 'trace.run', target: ref, at: T0 + 5 });
    await log.checkpoint();
    await log.close();
    return { store, ref };
  }

  it('is the entries naming the event by its keyed reference, refusals and misses excluded', async () => {
    const { store, ref } = await logWith();
    expect(ref).toMatch(/^event:h:[0-9a-f]{32}$/);
    expect(ref).not.toContain(EVENT);
    const { views, indexes } = viewsOf([{ kind: 'entry', entry: { junk: true } }, ...store.records], ref);
    expect(views.map((v) => [v.principal, v.via])).toEqual([
      ['auditor-1', 'trace.run'],
      ['auditor-4', 'trace.run'],
    ]);
    expect(indexes).toEqual([0, 4]);
    expect(views[1]!.at).toBe(new Date(T0 + 5).toISOString());
  });

  it('is proven included in the latest signed checkpoint; an uncovered or edited entry is not', async () => {
    const { store, ref } = await logWith();
    const { indexes } = viewsOf(store.records, ref);
    expect(checkViewsIncluded(store.records, verifier, indexes)).toEqual({ ok: true, problem: null });

    const log = await openAuditLog({ store, clock: new ManualClock(T0), hashKey });
    await log.append({ actor: 'auditor-5', role: 'auditor', action: 'trace.run', target: ref, purpose: 'audit' });
    await log.close();
    const after = viewsOf(store.records, ref);
    expect(after.indexes).toEqual([0, 4, 5]);
    expect(checkViewsIncluded(store.records, verifier, after.indexes).problem).toMatch(
      /entry 5 is not covered by the latest signed checkpoint/,
    );

    const edited = store.records.map((r, i) =>
      i === 0 ? { kind: 'entry', entry: { ...(r as { entry: object }).entry, actor: 'someone-else' } } : r,
    );
    expect(checkViewsIncluded(edited, verifier, [4]).ok).toBe(false);
    expect(checkViewsIncluded([], verifier, []).problem).toBe('the audit log has no signed checkpoint that verifies');
  });
});

describe('the transformations', () => {
  it('lists each operator of each derivation once, then the scoring step of each scoring derivation', () => {
    const e = evidenceWith(signed());
    const v2 = { ...e.derivations[0]!, transformation_version: 'vitals@2/validate/dedupe', processed_at: T0 + 9_000 };
    const inference = {
      inference_id: 'i-1',
      model: 'news2',
      version: '1.0.0',
      artifact_sha256: hex('a'),
      runtime: 'onnxruntime-node',
      runtime_version: '1.30.0',
      config_hash: hex('config'),
      rollout: 'live',
      rollout_id: null,
      routing: { source: 'pipeline', cohort_bucket: 42, in_canary: false, clinical: true },
      score: 3,
      risk_band: 'low',
      transformation_version: 'vitals@1/score/news2@1.0.0',
      scored_at: T0 + 2_500,
    };
    const list = transformationsOf({
      ...e,
      derivations: [e.derivations[0]!, e.derivations[0]!, v2],
      inferences: [inference, { ...inference, rollout: 'shadow' }],
    });
    expect(list).toEqual([
      { operator: 'validate', version: 'vitals@1', at: new Date(T0 + 2_000).toISOString() },
      { operator: 'dedupe', version: 'vitals@1', at: new Date(T0 + 2_000).toISOString() },
      { operator: 'validate', version: 'vitals@2', at: new Date(T0 + 9_000).toISOString() },
      { operator: 'dedupe', version: 'vitals@2', at: new Date(T0 + 9_000).toISOString() },
      { operator: 'score', version: 'vitals@1/score/news2@1.0.0', at: new Date(T0 + 2_500).toISOString() },
    ]);
  });
});
