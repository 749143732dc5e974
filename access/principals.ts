/**
 * Principals: who may read through Vigil's interfaces, in which roles, for which sites.
 *
 * Locally they live in a JSON file (`.vigil/access/principals.json`, or `VIGIL_PRINCIPALS`), validated by a strict
 * schema; in production the same `Authenticator` interface is backed by the hospital's identity provider
 * (access/oidc.ts). A principal holds API tokens, stored only as salted hashes.
 *
 * A token is `vgl_<id>_<secret>`: `id` (8 random bytes, hex) finds the stored hash without trying every one, `secret`
 * is 32 random bytes (base64url). The file keeps SHA-256(salt || secret) with a 16-byte random salt per token. Why
 * SHA-256 and not scrypt: a slow hash protects a low-entropy secret (a password) against guessing; a 256-bit random
 * secret cannot be guessed whatever the hash speed, so scrypt would only make every command slower. The salt keeps
 * two equal secrets (never expected) from sharing a hash and rules out any precomputed table.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { VigilError } from '../runtime/errors.ts';

export const ROLES = ['analyst', 'clinician', 'auditor', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export const DEFAULT_PRINCIPALS_FILE = '.vigil/access/principals.json';

/** Site ids: safe to quote into a ClickHouse filter (no quote, backslash or space can appear). */
export const SITE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const NAME = /^[a-z][a-z0-9._-]{0,63}$/;
export const ALL_SITES = '*';

const tokenHashSchema = z.strictObject({
  id: z
    .string()
    .regex(/^[0-9a-f]{16}$/)
    .meta({ description: 'Public token id (the part after vgl_): finds the hash.' }),
  salt: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .meta({ description: 'Random 16-byte salt, hex.' }),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .meta({ description: 'SHA-256(salt || secret), hex.' }),
  created_at: z.string().meta({ description: 'ISO-8601 time the token was issued.' }),
});

export const principalSchema = z.strictObject({
  name: z
    .string()
    .regex(NAME)
    .meta({ description: 'Staff pseudonym or service name (never a person’s name).', examples: ['analyst-7'] }),
  roles: z.array(z.enum(ROLES)).min(1).meta({ description: 'Roles the principal may act in.' }),
  sites: z
    .array(z.union([z.literal(ALL_SITES), z.string().regex(SITE)]))
    .min(1)
    .refine((s) => !s.includes(ALL_SITES) || s.length === 1, { message: "'*' (all sites) stands alone" })
    .meta({ description: "Sites whose rows it may see; ['*'] for every site (given explicitly, never by default)." }),
  tokens: z.array(tokenHashSchema).meta({ description: 'Its API tokens, as salted hashes.' }),
});

export const principalsFileSchema = z.strictObject({
  version: z.literal(1),
  min_cell: z
    .number()
    .int()
    .min(2)
    .optional()
    .meta({ description: 'Small-cell suppression threshold k for analysts (default 11).', examples: [11] }),
  principals: z.array(principalSchema),
});

export type PrincipalRecord = z.infer<typeof principalSchema>;
export type PrincipalsFile = z.infer<typeof principalsFileSchema>;

/** An authenticated principal, however it was authenticated. */
export interface Principal {
  readonly name: string;
  readonly roles: readonly Role[];
  /** The sites whose rows it may see, or '*' for all. */
  readonly sites: readonly string[] | typeof ALL_SITES;
  /** How it was authenticated: 'token' (principals file) or 'oidc'. */
  readonly via: 'token' | 'oidc';
}

/** Turns a credential (an API token, an IdP's JWT) into a principal, or throws an AuthenticationError (UNAUTHENTICATED). */
export interface Authenticator {
  authenticate(credential: string): Promise<Principal>;
}

export class AuthenticationError extends VigilError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
    this.name = 'AuthenticationError';
  }
}

export function readPrincipals(path: string): PrincipalsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, principals: [] };
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new VigilError('CONFIG_INVALID', `the principals file ${path} is not JSON`);
  }
  const parsed = principalsFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the principals file ${path} is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const names = new Set<string>();
  for (const p of parsed.data.principals) {
    if (names.has(p.name)) throw new VigilError('CONFIG_INVALID', `the principals file ${path} names ${p.name} twice`);
    names.add(p.name);
  }
  return parsed.data;
}

/** Writes the file whole (temp file + rename), owner-only: it holds hashes, not tokens, but names who may read. */
export function writePrincipals(path: string, file: PrincipalsFile): void {
  const valid = principalsFileSchema.parse(file);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(valid, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}

const hashSecret = (salt: string, secret: string): string =>
  createHash('sha256').update(Buffer.from(salt, 'hex')).update(secret, 'utf8').digest('hex');

/** A new token and the hash record to store; the token itself is shown once and never stored. */
export function issueToken(now: number): { token: string; stored: PrincipalRecord['tokens'][number] } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('hex');
  return {
    token: `vgl_${id}_${secret}`,
    stored: { id, salt, sha256: hashSecret(salt, secret), created_at: new Date(now).toISOString() },
  };
}

export interface AddPrincipal {
  readonly name: string;
  readonly roles: readonly Role[];
  readonly sites: readonly string[];
}

/**
 * Adds a principal (or a token and any new roles/sites to an existing one) and returns its new token, once.
 *
 * @example
 * const { token } = addPrincipal('.vigil/access/principals.json', { name: 'analyst-7', roles: ['analyst'], sites: ['site-a'] });
 * // give `token` to analyst-7 (VIGIL_TOKEN or a token file); the file keeps only its salted hash
 */
export function addPrincipal(path: string, input: AddPrincipal, now = Date.now()): { token: string; created: boolean } {
  const file = readPrincipals(path);
  const { token, stored } = issueToken(now);
  const existing = file.principals.find((p) => p.name === input.name);
  const record: PrincipalRecord = principalSchema.parse({
    name: input.name,
    roles: [...new Set([...(existing?.roles ?? []), ...input.roles])],
    sites: mergeSites(existing?.sites ?? [], input.sites),
    tokens: [...(existing?.tokens ?? []), stored],
  });
  const principals = existing
    ? file.principals.map((p) => (p.name === input.name ? record : p))
    : [...file.principals, record];
  writePrincipals(path, { ...file, principals });
  return { token, created: existing === undefined };
}

function mergeSites(old: readonly string[], added: readonly string[]): string[] {
  const all = [...new Set([...old, ...added])];
  return all.includes(ALL_SITES) ? [ALL_SITES] : all;
}

/** Removes one token (by id) or every token of a principal; returns how many were revoked. */
export function revokeTokens(path: string, name: string, tokenId?: string): number {
  const file = readPrincipals(path);
  const principal = file.principals.find((p) => p.name === name);
  if (!principal) throw new VigilError('CONFIG_INVALID', `no principal ${name} in ${path}`);
  const kept = principal.tokens.filter((t) => tokenId !== undefined && t.id !== tokenId);
  writePrincipals(path, {
    ...file,
    principals: file.principals.map((p) => (p.name === name ? { ...p, tokens: kept } : p)),
  });
  return principal.tokens.length - kept.length;
}

export function toPrincipal(record: PrincipalRecord, via: Principal['via']): Principal {
  return {
    name: record.name,
    roles: record.roles,
    sites: record.sites.includes(ALL_SITES) ? ALL_SITES : record.sites,
    via,
  };
}

const TOKEN = /^vgl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/**
 * The local authenticator: checks an API token against the principals file (re-read on each call, so an added or
 * revoked token counts at once).
 *
 * @example
 * const principal = await fileAuthenticator('.vigil/access/principals.json').authenticate(process.env.VIGIL_TOKEN!);
 */
export function fileAuthenticator(path: string): Authenticator {
  return {
    async authenticate(credential) {
      const match = TOKEN.exec(credential.trim());
      if (!match) throw new AuthenticationError('the token is not a Vigil API token (vgl_<id>_<secret>)');
      const [, id, secret] = match as unknown as [string, string, string];
      for (const record of readPrincipals(path).principals) {
        const stored = record.tokens.find((t) => t.id === id);
        if (!stored) continue;
        const given = Buffer.from(hashSecret(stored.salt, secret), 'hex');
        if (timingSafeEqual(given, Buffer.from(stored.sha256, 'hex'))) return toPrincipal(record, 'token');
        break;
      }
      throw new AuthenticationError('the token is not known or was revoked');
    },
  };
}
