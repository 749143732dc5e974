import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { SigningAlgorithm } from '../identity/types.ts';
import { parseCompact, verifyCompact } from './jws.ts';

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');
const keys: Record<SigningAlgorithm, { privateKey: KeyObject; publicKey: KeyObject }> = {
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: generateKeyPairSync('ed25519'),
};

function rawSign(alg: SigningAlgorithm, header: Record<string, unknown>, payload: string): string {
  const input = `${b64(JSON.stringify(header))}.${b64(payload)}`;
  const key = keys[alg].privateKey;
  const signature =
    alg === 'EdDSA'
      ? sign(null, Buffer.from(input), key)
      : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64(signature)}`;
}

/** Ours and jose's verdicts on the same JWS, with the key fixed to `alg`. */
async function both(jws: string, alg: SigningAlgorithm): Promise<{ ours: boolean; jose: boolean }> {
  const parsed = parseCompact(jws);
  const ours = parsed ? verifyCompact(parsed, keys[alg].publicKey, alg).ok : false;
  const jose = await compactVerify(jws, keys[alg].publicKey, { algorithms: [alg] }).then(
    () => true,
    () => false,
  );
  return { ours, jose };
}

describe('JWS compact verification agrees with jose', () => {
  for (const alg of ['ES256', 'EdDSA'] as const) {
    it(`${alg}: valid, tampered, wrong alg, none, crit, other key, truncated`, async () => {
      const payload = JSON.stringify({ device_id: 'd', sequence: 1 });
      const valid = await new CompactSign(Buffer.from(payload))
        .setProtectedHeader({ alg, kid: 'k' })
        .sign(keys[alg].privateKey);
      const [h, p, s] = valid.split('.') as [string, string, string];
      const otherAlg: SigningAlgorithm = alg === 'ES256' ? 'EdDSA' : 'ES256';
      const cases: [string, string, boolean][] = [
        ['valid (signed by jose)', valid, true],
        ['valid (signed by node)', rawSign(alg, { alg, kid: 'k' }, payload), true],
        ['payload changed', `${h}.${b64(JSON.stringify({ device_id: 'd', sequence: 2 }))}.${s}`, false],
        ['header changed', `${b64(JSON.stringify({ alg, kid: 'other' }))}.${p}.${s}`, false],
        ['alg none', `${b64(JSON.stringify({ alg: 'none', kid: 'k' }))}.${p}.`, false],
        ['alg none with a signature', `${b64(JSON.stringify({ alg: 'none', kid: 'k' }))}.${p}.${s}`, false],
        ['other alg in header', `${b64(JSON.stringify({ alg: otherAlg, kid: 'k' }))}.${p}.${s}`, false],
        ['truncated signature', `${h}.${p}.${s.slice(0, 20)}`, false],
        [
          'signature of another key',
          (() => {
            const other =
              alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
            const input = `${h}.${p}`;
            const sig =
              alg === 'EdDSA'
                ? sign(null, Buffer.from(input), other.privateKey)
                : sign('sha256', Buffer.from(input), { key: other.privateKey, dsaEncoding: 'ieee-p1363' });
            return `${input}.${b64(sig)}`;
          })(),
          false,
        ],
        ['four parts', `${valid}.x`, false],
      ];
      for (const [name, jws, expected] of cases) {
        expect(await both(jws, alg), name).toEqual({ ours: expected, jose: expected });
      }
    });
  }

  it('is stricter than jose on one point: a crit extension (RFC 7797 unencoded payload) is refused', async () => {
    // jose implements b64:false, so it verifies this; the gateway's payload must be base64url of the envelope JSON.
    const jws = rawSign('ES256', { alg: 'ES256', kid: 'k', crit: ['b64'], b64: false }, 'x');
    expect(await both(jws, 'ES256')).toEqual({ ours: false, jose: true });
  });

  it('returns the payload bytes exactly as signed', () => {
    const payload = '{"a":"é","b":[1,2]}';
    const parsed = parseCompact(rawSign('ES256', { alg: 'ES256', kid: 'k' }, payload));
    const check = parsed && verifyCompact(parsed, keys.ES256.publicKey, 'ES256');
    expect(check?.ok && check.payload.toString('utf8')).toBe(payload);
  });
});
