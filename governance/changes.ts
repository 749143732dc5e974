/**
 * The model-rollouts control records on the wire: a strict schema (an unknown key or kind is refused, so a record
 * written by a newer, incompatible writer is skipped and counted rather than half-applied) and the record key. The
 * control logs (adapters/file/control-log.ts, adapters/kafka/control-log.ts) take `parseModelChange` as their parse.
 */
import { z } from 'zod';
import { MODEL_SEGMENT, manifestSchema } from './manifest.ts';
import type { ModelChange } from './types.ts';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const epochMs = z.number().int().nonnegative();
const sha256 = z.string().regex(SHA256);
const segment = z.string().regex(MODEL_SEGMENT);
const mode = z.enum(['live', 'canary', 'shadow']);
const names = z.array(z.string().min(1).max(200)).min(1);

export const cohortSchema = z.strictObject({
  sites: names.optional(),
  firmware: names.optional(),
  subgroups: names.optional(),
  device_batches: names.optional(),
});

export const criterionResultSchema = z.strictObject({
  criterion: z.string().min(1).max(200),
  required: z.string().max(200),
  observed: z.string().max(200),
  passed: z.boolean(),
});

const base = {
  change_id: z.string().regex(ULID),
  model: segment,
  at: epochMs,
  actor: z.string().min(1).max(200),
  reason: z.string().max(2000),
  version: segment,
};

export const modelChangeSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    ...base,
    kind: z.literal('added'),
    artifact_sha256: sha256,
    manifest_sha256: sha256,
    manifest: manifestSchema,
  }),
  z.strictObject({
    ...base,
    kind: z.literal('approved'),
    artifact_sha256: sha256,
    role: z.string().min(1).max(200),
  }),
  z.strictObject({
    ...base,
    kind: z.literal('rollout'),
    mode,
    percent: z.number().gt(0).max(100),
    cohort: cohortSchema,
    cohort_expr: z.string().max(2000),
    approval_id: z.string().regex(ULID).nullable(),
  }),
  z.strictObject({
    ...base,
    kind: z.literal('rollback'),
    from_mode: mode,
    restored: segment.nullable(),
    trigger: z.enum(['manual', 'drift']),
    evidence: z.record(z.string(), z.unknown()).nullable(),
  }),
  z.strictObject({
    ...base,
    kind: z.literal('promoted'),
    previous: segment.nullable(),
    approval_id: z.string().regex(ULID),
    criteria: z.array(criterionResultSchema),
    period: z.strictObject({ from: epochMs, to: epochMs }),
  }),
]);

/**
 * Parses one control record; throws a ZodError when it is not a valid change (callers skip and count it). An added
 * record's manifest must name the record's model and version.
 *
 * @example
 * const log = new FileControlLog('.vigil/control/model-rollouts.jsonl', { parse: parseModelChange });
 */
export function parseModelChange(value: unknown): ModelChange {
  const change = modelChangeSchema.parse(value) as ModelChange;
  if (
    change.kind === 'added' &&
    (change.manifest.name !== change.model || change.manifest.version !== change.version)
  ) {
    throw new z.ZodError([
      {
        code: 'custom',
        path: ['manifest'],
        message: `the manifest describes ${change.manifest.name}@${change.manifest.version}, not ${change.model}@${change.version}`,
        input: value,
      },
    ]);
  }
  return change;
}

/** The record key: one key per change, so compaction never drops a change. */
export function modelChangeKey(change: Pick<ModelChange, 'model' | 'change_id'>): string {
  return `${change.model}/${change.change_id}`;
}
