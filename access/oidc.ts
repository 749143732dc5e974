/**
 * The production authenticator: the hospital's identity provider (any OpenID Connect IdP: Entra ID, Keycloak, Okta,
 * ADFS) issues a JWT (an ID or access token); Vigil verifies its signature against the IdP's published keys (JWKS),
 * its issuer, audience and lifetime (jose), and maps the IdP's groups claim to Vigil roles and sites. Nobody is
 * provisioned in Vigil itself: joining or leaving a group at the IdP grants or withdraws access at the next token.
 *
 * The mapping is a small JSON config (`VIGIL_OIDC_CONFIG`), e.g.
 *   {"issuer":"https://login.example-hospital.org/realms/staff","audience":"vigil",
 *    "jwks_uri":"https://login.example-hospital.org/realms/staff/protocol/openid-connect/certs",
 *    "groups":{"vigil-analysts-north":{"roles":["analyst"],"sites":["north"]},
 *              "ward-7-nurses":{"roles":["clinician"],"sites":["north"]}}}
 * A principal's roles and sites are the union over its mapped groups; a token with no mapped role, or no site, is
 * refused (all sites are granted only by a group mapped to ["*"]).
 */
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { z } from 'zod';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import { ALL_SITES, AuthenticationError, type Authenticator, type Principal, ROLES, SITE } from './principals.ts';

export const oidcConfigSchema = z.strictObject({
  issuer: z.string().url().meta({ description: 'The IdP issuer (iss) Vigil accepts.' }),
  audience: z.string().min(1).meta({ description: 'The audience (aud) tokens must name: Vigil’s client id.' }),
  jwks_uri: z.string().url().meta({ description: 'Where the IdP publishes its signing keys.' }),
  name_claim: z.string().default('preferred_username').meta({ description: 'The claim naming the principal.' }),
  groups_claim: z.string().default('groups').meta({ description: 'The claim listing the groups.' }),
  algorithms: z.array(z.string()).default(['RS256', 'ES256', 'EdDSA']).meta({ description: 'Accepted JWS algs.' }),
  clock_tolerance_s: z.number().int().min(0).max(300).default(30),
  groups: z
    .record(
      z.string(),
      z.strictObject({
        roles: z.array(z.enum(ROLES)).default([]),
        sites: z.array(z.union([z.literal(ALL_SITES), z.string().regex(SITE)])).default([]),
      }),
    )
    .meta({ description: 'IdP group -> the roles and sites it grants.' }),
});

export type OidcConfig = z.input<typeof oidcConfigSchema>;

/**
 * Verifies IdP tokens and maps their groups. `keys` replaces the remote JWKS (tests, an air-gapped key set); `clock`
 * is the time tokens are checked at (expiry, not-before).
 *
 * @example
 * const auth = oidcAuthenticator(JSON.parse(readFileSync(process.env.VIGIL_OIDC_CONFIG!, 'utf8')));
 * const principal = await auth.authenticate(idToken);
 */
export function oidcAuthenticator(
  config: OidcConfig,
  keys?: JWTVerifyGetKey,
  clock: Clock = systemClock,
): Authenticator {
  const parsed = oidcConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the OIDC config is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const c = parsed.data;
  const jwks = keys ?? createRemoteJWKSet(new URL(c.jwks_uri));
  return {
    async authenticate(credential): Promise<Principal> {
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(credential.trim(), jwks, {
          issuer: c.issuer,
          audience: c.audience,
          algorithms: c.algorithms,
          clockTolerance: c.clock_tolerance_s,
          requiredClaims: ['exp'],
          currentDate: new Date(clock.now()),
        }));
      } catch (error) {
        // jose's code (ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ...) says why without the token.
        throw new AuthenticationError(
          `the identity token does not verify (${(error as { code?: string }).code ?? 'invalid'})`,
        );
      }
      const name = payload[c.name_claim];
      if (typeof name !== 'string' || name === '') {
        throw new AuthenticationError(`the identity token has no ${c.name_claim} claim`);
      }
      const groups = payload[c.groups_claim];
      const roles = new Set<Principal['roles'][number]>();
      const sites = new Set<string>();
      for (const group of Array.isArray(groups) ? groups : []) {
        const grant = typeof group === 'string' ? c.groups[group] : undefined;
        for (const role of grant?.roles ?? []) roles.add(role);
        for (const site of grant?.sites ?? []) sites.add(site);
      }
      if (roles.size === 0) throw new AuthenticationError(`${name} is in no group mapped to a Vigil role`);
      if (sites.size === 0) throw new AuthenticationError(`${name} is in no group mapped to a site`);
      return { name, roles: [...roles], sites: sites.has(ALL_SITES) ? ALL_SITES : [...sites].sort(), via: 'oidc' };
    },
  };
}
