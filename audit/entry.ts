/**
 * An audit entry: who (actor, role) did what (action) to what (target), why (purpose), when (at), and digests of what
 * was changed or read. Never PHI itself, so the log survives an erasure: a target or a read is committed to as a keyed
 * digest (HMAC-SHA-256 under the log's hashing key), not as its value.
 *
 * Why keyed: a patient pseudonym, a device id or one vital sign is low-entropy; a plain SHA-256 of it is reversed by
 * hashing every candidate. Under a 256-bit secret key held apart from the log (`.vigil/audit/hash.key`, not the
 * checkpoint key) nobody without the key can test a guess, and destroying the key (crypto-shredding) makes every
 * digest unlinkable while the Merkle tree over the entries still verifies. `hash_key` names the key (a fingerprint,
 * not the key) so a rotated key still verifies the entries made under the old one.
 *
 * The bytes hashed into the tree are the entry's canonical JSON (keys sorted, no spaces, UTF-8): any writer in any
 * language reproduces them. `prev` is the leaf hash of the entry before, so an edited entry is named by its successor.
 */
import { createHash, createHmac } from 'node:crypto';
import { z } from 'zod';
import { leafHash } from './merkle.ts';

const HEX64 = /^[0-9a-f]{64}$/;
const NAME = /^[a-z][a-z0-9_-]*$/;

export const auditEntrySchema = z.strictObject({
  index: z.number().int().min(0).meta({ description: 'Position in the log: 0, 1, 2, ... with no gap.' }),
  at: z.number().int().min(0).meta({ description: 'Epoch ms at which the action happened (the writer clock).' }),
  actor: z
    .string()
    .min(1)
    .max(200)
    .meta({ description: 'The authenticated principal (a name from the principals file, a service name).' }),
  role: z
    .string()
    .regex(NAME)
    .max(40)
    .meta({ description: 'The role the actor acted in.', examples: ['clinician'] }),
  action: z
    .string()
    .regex(/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/)
    .max(80)
    .meta({ description: 'What was done, dotted.', examples: ['device.enrol', 'model.approve', 'data.read'] }),
  target: z
    .string()
    .min(1)
    .max(300)
    .meta({
      description:
        'What it was done to: `<kind>:<name>` for non-personal things (model:news2@1.0.0), `<kind>:h:<digest>` for ' +
        'anything that identifies a person or a device (targetRef)',
      examples: ['model:news2@1.0.0', 'device:h:3f1c...'],
    }),
  purpose: z
    .string()
    .regex(NAME)
    .max(40)
    .meta({ description: 'Why.', examples: ['treatment', 'audit', 'change'] }),
  details_sha256: z.string().regex(HEX64).optional().meta({ description: 'Keyed digest of what was changed.' }),
  read_sha256: z.string().regex(HEX64).optional().meta({ description: 'Keyed digest of what was read.' }),
  hash_key: z
    .string()
    .regex(/^[0-9a-f]{16}$/)
    .optional()
    .meta({ description: 'Fingerprint of the hashing key the digests were made under.' }),
  prev: z.string().regex(HEX64).optional().meta({ description: 'Leaf hash (hex) of entry index - 1; absent at 0.' }),
});

export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** What a caller supplies: the log fills index, at, prev and the digests. */
export interface AuditEntryInput {
  readonly actor: string;
  readonly role: string;
  readonly action: string;
  readonly target: string;
  readonly purpose: string;
  /** What was changed: digested, never stored. */
  readonly details?: unknown;
  /** What was read (rows, ids, a query and its result hash): digested, never stored. */
  readonly read?: unknown;
  /** Defaults to the log's clock. */
  readonly at?: number;
}

/** JSON with keys sorted at every level and no whitespace; refuses values JSON cannot carry exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no NaN or Infinity');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value as object)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot carry a ${typeof value}`);
}

/** The entry's fields in canonical (sorted) order: a fixed walk instead of a sort per entry. */
const ENTRY_KEYS = Object.keys(auditEntrySchema.shape).sort() as (keyof AuditEntry)[];

/** canonicalJson(entry) for a parsed entry (flat: strings and integers), without the generic walk. */
export function entryJson(entry: AuditEntry): string {
  let out = '{';
  for (const key of ENTRY_KEYS) {
    const value = entry[key];
    if (value === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}"${key}":${JSON.stringify(value)}`;
  }
  return `${out}}`;
}

/** The bytes hashed into the tree. */
export function entryBytes(entry: AuditEntry): Buffer {
  return Buffer.from(entryJson(entry), 'utf8');
}

export function entryLeafHash(entry: AuditEntry): Buffer {
  return leafHash(entryBytes(entry));
}

/** The log's hashing key: 32 secret bytes, kept apart from the log and from the checkpoint key. */
export interface HashKey {
  readonly secret: Buffer;
  /** 16 hex: SHA-256("vigil-audit-hash-key\n" || secret), first 8 bytes. Names the key, reveals nothing of it. */
  readonly id: string;
}

export function hashKeyOf(secret: Buffer): HashKey {
  if (secret.length < 32) throw new RangeError('an audit hashing key has at least 32 bytes');
  const id = createHash('sha256').update('vigil-audit-hash-key\n').update(secret).digest('hex').slice(0, 16);
  return { secret, id };
}

/** HMAC-SHA-256 (hex) of a value's canonical JSON (a Buffer is digested as its bytes) under the hashing key. */
export function keyedDigest(key: HashKey, value: unknown): string {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(canonicalJson(value), 'utf8');
  return createHmac('sha256', key.secret).update(bytes).digest('hex');
}

/**
 * A target naming a person or a device without its value: `<kind>:h:<first 32 hex of the keyed digest>`.
 *
 * @example
 * targetRef(key, 'device', deviceId); // 'device:h:9b2f...'
 */
export function targetRef(key: HashKey, kind: string, value: string): string {
  return `${kind}:h:${keyedDigest(key, `${kind}:${value}`).slice(0, 32)}`;
}
