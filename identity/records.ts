/**
 * The device-identity control records on the wire: a strict schema (an unknown key or kind is refused, so a record
 * written by a newer, incompatible writer is skipped and counted rather than half-applied) and the record key.
 */
import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './pki.ts';
import type { IdentityChange } from './types.ts';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const FINGERPRINT = /^[0-9a-f]{64}$/;
const epochMs = z.number().int().nonnegative();

const base = {
  change_id: z.string().regex(ULID),
  device_id: z.string().regex(DEVICE_ID_PATTERN),
  at: epochMs,
  actor: z.string().min(1).max(200),
  reason: z.string().max(1000).optional(),
};

const certificate = z.strictObject({
  fingerprint: z.string().regex(FINGERPRINT),
  pem: z.string().startsWith('-----BEGIN CERTIFICATE-----'),
  not_before: epochMs,
  not_after: epochMs,
  algorithm: z.enum(['ES256', 'EdDSA']),
});

const nonEmpty = z.string().min(1).max(200);

export const identityChangeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ ...base, kind: z.literal('enrolled'), certificate }),
  z.strictObject({ ...base, kind: z.literal('certificate_added'), certificate }),
  z.strictObject({ ...base, kind: z.literal('certificate_revoked'), fingerprint: z.string().regex(FINGERPRINT) }),
  z.strictObject({ ...base, kind: z.literal('status'), status: z.enum(['active', 'suspended', 'revoked']) }),
  z.strictObject({
    ...base,
    kind: z.literal('assigned'),
    patient_ref: nonEmpty,
    site_id: nonEmpty,
    consent_context: nonEmpty,
    from: epochMs,
  }),
]);

/** Parses one control record; throws a ZodError when it is not a valid change (callers skip and count it). */
export function parseIdentityChange(value: unknown): IdentityChange {
  return identityChangeSchema.parse(value) as IdentityChange;
}

/** The record key: one key per change, so compaction never drops a change. */
export function changeKey(change: Pick<IdentityChange, 'device_id' | 'change_id'>): string {
  return `${change.device_id}/${change.change_id}`;
}
