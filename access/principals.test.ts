import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/clock.ts';
import { authenticatorFromEnv, credentialFromEnv, minCellFromEnv } from './cli.ts';
import { oidcAuthenticator } from './oidc.ts';
import { addPrincipal, fileAuthenticator, readPrincipals, revokeTokens } from './principals.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-principals-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the principals file', () => {
  it('keeps a salted SHA-256 of each token, never the token, in an owner-only file', async () => {
    const path = join(dir, 'a.json');
    const { token, created } = addPrincipal(path, { name: 'analyst-7', roles: ['analyst'], sites: ['north'] });
    expect(created).toBe(true);
    expect(token).toMatch(/^vgl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(token.split('_').at(-1)!);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const [stored] = readPrincipals(path).principals[0]!.tokens;
    expect(stored).toMatchObject({ id: token.slice(4, 20), salt: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(await fileAuthenticator(path).authenticate(token)).toEqual({
      name: 'analyst-7',
      roles: ['analyst'],
      sites: ['north'],
      via: 'token',
    });
  });

  it('adds a second token, roles and sites to an existing principal; revoking one keeps the other', async () => {
    const path = join(dir, 'b.json');
    const first = addPrincipal(path, { name: 'nurse-1', roles: ['clinician'], sites: ['north'] }).token;
    const second = addPrincipal(path, { name: 'nurse-1', roles: ['auditor'], sites: ['south'] });
    expect(second.created).toBe(false);
    const auth = fileAuthenticator(path);
    expect(await auth.authenticate(first)).toMatchObject({
      roles: ['clinician', 'auditor'],
      sites: ['north', 'south'],
    });
    expect(revokeTokens(path, 'nurse-1', first.slice(4, 20))).toBe(1);
    await expect(auth.authenticate(first)).rejects.toThrow(/not known or was revoked/);
    expect((await auth.authenticate(second.token)).name).toBe('nurse-1');
    // a wrong secret under a known id is refused too
    await expect(auth.authenticate(`${second.token.slice(0, 21)}${'B'.repeat(43)}`)).rejects.toThrow(/not known/);
    await expect(auth.authenticate('hunter2')).rejects.toThrow(/not a Vigil API token/);
    await expect(auth.authenticate('hunter2')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('is strict: unknown keys, unknown roles, a mixed * and duplicate names are refused', () => {
    const path = join(dir, 'bad.json');
    const write = (value: unknown) => writeFileSync(path, JSON.stringify(value));
    const principal = { name: 'x', roles: ['analyst'], sites: ['north'], tokens: [] };
    write({ version: 1, principals: [{ ...principal, admin: true }] });
    expect(() => readPrincipals(path)).toThrow(/not valid/);
    write({ version: 1, principals: [{ ...principal, roles: ['root'] }] });
    expect(() => readPrincipals(path)).toThrow(/roles/);
    write({ version: 1, principals: [{ ...principal, sites: ['*', 'north'] }] });
    expect(() => readPrincipals(path)).toThrow(/stands alone/);
    write({ version: 1, principals: [{ ...principal, sites: [] }] });
    expect(() => readPrincipals(path)).toThrow(/sites/);
    write({ version: 1, principals: [principal, principal] });
    expect(() => readPrincipals(path)).toThrow(/twice/);
    expect(() => addPrincipal(join(dir, 'c.json'), { name: 'Jane Smith', roles: ['analyst'], sites: ['n'] })).toThrow();
  });
});

describe('credentials come from the environment, never a flag', () => {
  it('VIGIL_TOKEN first, else an owner-only VIGIL_TOKEN_FILE', () => {
    const file = join(dir, 'token');
    writeFileSync(file, 'vgl_from_file\n', { mode: 0o600 });
    expect(credentialFromEnv({ VIGIL_TOKEN: 'vgl_env', VIGIL_TOKEN_FILE: file })).toBe('vgl_env');
    expect(credentialFromEnv({ VIGIL_TOKEN_FILE: file })).toBe('vgl_from_file');
    expect(credentialFromEnv({})).toBeNull();
    chmodSync(file, 0o644);
    expect(() => credentialFromEnv({ VIGIL_TOKEN_FILE: file })).toThrow(/readable by others/);
    expect(() => credentialFromEnv({ VIGIL_TOKEN_FILE: join(dir, 'no-such-token') })).toThrow(
      expect.objectContaining({ code: 'UNAUTHENTICATED', message: expect.stringContaining('cannot be read') }),
    );
  });
});

describe('the OIDC authenticator', () => {
  const ISSUER = 'https://idp.example-hospital.org/realms/staff';
  const NOW = Date.UTC(2026, 2, 10, 8, 0, 0);
  let key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  let other: typeof key;
  let jwks: ReturnType<typeof createLocalJWKSet>;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    other = (await generateKeyPair('ES256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
    jwks = createLocalJWKSet({ keys: [jwk] });
  });

  const config = {
    issuer: ISSUER,
    audience: 'vigil',
    jwks_uri: `${ISSUER}/protocol/openid-connect/certs`,
    groups: {
      'vigil-analysts': { roles: ['analyst' as const] },
      'site-north': { sites: ['north'] },
      'ward-7-nurses': { roles: ['clinician' as const], sites: ['north'] },
    },
  };
  const token = (claims: Record<string, unknown>, signer = key, audience = 'vigil', exp = NOW / 1000 + 600) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setIssuedAt(NOW / 1000)
      .setExpirationTime(exp)
      .sign(signer);

  it('maps the groups claim to roles and sites', async () => {
    const auth = oidcAuthenticator(config, jwks, new ManualClock(NOW));
    const jwt = await token({ preferred_username: 'nurse-psn-42', groups: ['ward-7-nurses', 'vigil-analysts', 'x'] });
    expect(await auth.authenticate(jwt)).toEqual({
      name: 'nurse-psn-42',
      roles: ['clinician', 'analyst'],
      sites: ['north'],
      via: 'oidc',
    });
  });

  it('refuses a forged, expired or misaddressed token, and one without a mapped role or site', async () => {
    const clock = new ManualClock(NOW);
    const auth = oidcAuthenticator(config, jwks, clock);
    const claims = { preferred_username: 'a', groups: ['vigil-analysts', 'site-north'] };
    await expect(auth.authenticate(await token(claims, other))).rejects.toThrow(/SIGNATURE_VERIFICATION_FAILED/);
    await expect(auth.authenticate(await token(claims, key, 'another-app'))).rejects.toThrow(/CLAIM_VALIDATION/);
    const jwt = await token(claims);
    clock.advance(11 * 60_000);
    await expect(auth.authenticate(jwt)).rejects.toThrow(/EXPIRED/);
    clock.set(NOW);
    await expect(auth.authenticate(await token({ preferred_username: 'a', groups: ['site-north'] }))).rejects.toThrow(
      /no group mapped to a Vigil role/,
    );
    await expect(
      auth.authenticate(await token({ preferred_username: 'a', groups: ['vigil-analysts'] })),
    ).rejects.toThrow(/no group mapped to a site/);
  });
});

describe('the IdP path from the environment (VIGIL_OIDC_CONFIG)', () => {
  it('fetches the JWKS from jwks_uri and authenticates a token signed by the IdP key', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
    let fetched = 0;
    const server = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const issuer = 'https://idp.example-hospital.org';
    const configFile = join(dir, 'oidc.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        issuer,
        audience: 'vigil',
        jwks_uri: `http://127.0.0.1:${port}/certs`,
        groups: { 'vigil-auditors': { roles: ['auditor'], sites: ['*'] } },
      }),
    );
    try {
      const jwt = await new SignJWT({ preferred_username: 'auditor-3', groups: ['vigil-auditors'] })
        .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
        .setIssuer(issuer)
        .setAudience('vigil')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      const auth = authenticatorFromEnv({ VIGIL_OIDC_CONFIG: configFile });
      expect(await auth.authenticate(jwt)).toEqual({ name: 'auditor-3', roles: ['auditor'], sites: '*', via: 'oidc' });
      expect(fetched).toBe(1);
      expect(minCellFromEnv({ VIGIL_OIDC_CONFIG: configFile })).toBeUndefined();
    } finally {
      server.close();
    }
  });

  it('the deployment sets k in the principals file, and adding principals keeps it', () => {
    const path = join(dir, 'k.json');
    writeFileSync(path, JSON.stringify({ version: 1, min_cell: 20, principals: [] }));
    addPrincipal(path, { name: 'analyst-9', roles: ['analyst'], sites: ['north'] });
    expect(minCellFromEnv({ VIGIL_PRINCIPALS: path })).toBe(20);
  });
});
