/**
 * Device signing and the gateway truth model, without a gateway: the lines node:crypto signs are JWS that jose
 * verifies (both algorithms), the payload leaves out what the gateway decides, and the model's verdicts follow the
 * gateway's order (skew before nonce before sequence; the bucket for the whole request).
 */
import { generateKeyPairSync } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { devicePayload, GATEWAY_SET_FIELDS, jwsSigner } from './gateway-sign.ts';
import { GatewayModel, GatewayTruthTally } from './gateway-truth.ts';
import { simulateFleet } from './simulate.ts';

const envelope = () => {
  const first = simulateFleet({ devices: 2, events: 1, seed: 3 }).next();
  if (first.done || first.value.kind !== 'envelope') throw new Error('expected an envelope');
  return first.value.envelope;
};

describe('device signing', () => {
  it.each(['ES256', 'EdDSA'] as const)('%s lines verify with jose, header {alg, kid}', async (alg) => {
    const { privateKey, publicKey } =
      alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    const sign = jwsSigner(privateKey, alg, 'ab'.repeat(32));
    const payload = JSON.stringify(devicePayload(envelope()));
    const line = sign(payload);
    expect(decodeProtectedHeader(line)).toEqual({ alg, kid: 'ab'.repeat(32) });
    const verified = await compactVerify(line, publicKey, { algorithms: [alg] });
    expect(Buffer.from(verified.payload).toString('utf8')).toBe(payload);
    // A flipped signature byte does not verify.
    const [h, p, s] = line.split('.') as [string, string, string];
    const bad = Buffer.from(s, 'base64url');
    bad[0] = (bad[0] as number) ^ 1;
    await expect(compactVerify(`${h}.${p}.${bad.toString('base64url')}`, publicKey)).rejects.toThrow();
  });

  it('leaves out what the gateway stamps and keeps what the signature must cover', () => {
    const e = envelope();
    const payload = devicePayload(e);
    for (const field of GATEWAY_SET_FIELDS) expect(payload).not.toHaveProperty(field);
    expect(payload).toMatchObject({
      device_id: e.device_id,
      sequence: e.sequence,
      nonce: e.nonce,
      observed_at: e.observed_at,
    });
    expect(devicePayload(e, { patient_ref: 'psn-v1-other' }).patient_ref).toBe('psn-v1-other');
  });
});

describe('the gateway truth model', () => {
  const limits = { skewMs: 300_000, replayWindow: 64, deviceRatePerSec: 100, deviceBurst: 1000 };
  const event = (sequence: number, nonce: string, observedAt: number) => ({
    deviceId: 'd1',
    nonce,
    sequence,
    observedAt,
    fault: null,
  });

  it('refuses resends on the nonce while remembered, on the skew once beyond it, fresh nonces on the window', () => {
    const model = new GatewayModel(limits);
    const t = 1_000_000_000;
    expect(model.outcome(event(100, 'n1', t), t)).toBe('accepted');
    expect(model.outcome(event(100, 'n1', t), t + 60_000)).toBe('NONCE_REPLAYED');
    expect(model.outcome(event(100, 'n1', t), t + 300_001)).toBe('CLOCK_SKEW');
    expect(model.outcome(event(100, 'n2', t + 1), t + 2)).toBe('SEQUENCE_REPLAYED');
    expect(model.outcome(event(99, 'n3', t + 1), t + 2)).toBe('accepted');
    expect(model.outcome(event(200, 'n4', t + 1), t + 2)).toBe('accepted');
    expect(model.outcome(event(136, 'n5', t + 1), t + 2)).toBe('SEQUENCE_REPLAYED'); // 200 - 64
    expect(model.outcome(event(137, 'n6', t + 1), t + 2)).toBe('accepted');
    // The same nonce on another device is another nonce.
    expect(model.outcome({ ...event(1, 'n1', t), deviceId: 'd2' }, t + 3)).toBe('accepted');
    // A fault wins whatever else is true.
    expect(model.outcome({ ...event(300, 'n7', t), fault: 'BAD_SIGNATURE' }, t)).toBe('BAD_SIGNATURE');
  });

  it('admits a request only when the bucket holds all its events, refilling with time', () => {
    const model = new GatewayModel(limits);
    expect(model.admit('d1', 400, 0)).toBe(true);
    expect(model.admit('d1', 400, 0)).toBe(true);
    expect(model.admit('d1', 400, 0)).toBe(false);
    expect(model.admit('d1', 400, 1_999)).toBe(false); // 200 + 199.9 tokens
    expect(model.admit('d1', 400, 2_000)).toBe(true);
  });

  it('tallies one record per refused event and per refused request; accepted events by lane and worker truth', () => {
    const tally = new GatewayTruthTally();
    tally.request(3, null);
    tally.event('accepted', false, 'valid');
    tally.event('accepted', true, 'malformed:VALUE_OUT_OF_RANGE');
    tally.event('NONCE_REPLAYED', false, 'valid');
    tally.request(5, 'RATE_LIMITED');
    expect(tally.summary()).toEqual({
      events: 8,
      requests: 2,
      accepted: 2,
      lanes: { raw: 1, priority: 1 },
      rejected: { NONCE_REPLAYED: 1, RATE_LIMITED: 1 },
      rejectedRequests: { RATE_LIMITED: 1 },
      worker: { valid: 1, deadLetters: { VALUE_OUT_OF_RANGE: 1 } },
    });
    expect(() => tally.event('accepted', false, 'duplicate')).toThrow();
  });
});
