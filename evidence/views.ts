/**
 * Who saw an event: the audit entries of reads that returned it, found by the event's reference in the audit log,
 * and (with --verify) proven included in the latest signed checkpoint.
 *
 * The reference: an entry never holds an event id (PHI-adjacent, and it must survive erasure), so a read of one event
 * names it as `event:h:<keyed digest>` (audit/entry.ts targetRef under the log's hashing key): whoever holds the key
 * finds every read of the event, nobody else can link entries to events. `vigil trace` records itself that way. Reads
 * that return many rows at once (`vigil alerts list`, a saved query whose rows carry event ids) are followed by
 * companion entries naming the events they returned by the same digest (access/event-refs.ts); a read past the cap
 * of named references counts and digests the rest, and is not found here for those (docs/reference/trace.md).
 */

import { namedEventRefs, readActionOf } from '../access/event-refs.ts';
import type { VerifierKey } from '../audit/checkpoint.ts';
import { type AuditEntry, auditEntrySchema, entryLeafHash, type HashKey, targetRef } from '../audit/entry.ts';
import { verifyInclusion } from '../audit/merkle.ts';
import { proveInclusion } from '../audit/prove.ts';
import { verifyRecords } from '../audit/verify.ts';
import type { Check } from './verify.ts';

export interface View {
  readonly principal: string;
  readonly role: string;
  /** ISO-8601. */
  readonly at: string;
  readonly purpose: string;
  /** The interface and action the read went through, e.g. `trace.run` (`vigil trace`). */
  readonly via: string;
}

/** The audit target naming one event (what a read of that event records). */
export function eventRef(key: HashKey, eventId: string): string {
  return targetRef(key, 'event', eventId);
}

/**
 * The read an entry records, if it returned the event `ref` names: a read of that one event (a trace: its target is
 * the reference), or a companion of a read of many rows (`<action>.events`, access/event-refs.ts) naming the
 * reference among its digests: `via` is then the read's own action (`alerts.list`).
 */
function viaOf(entry: AuditEntry, ref: string): string | null {
  if (entry.target === ref) return entry.action;
  const readAction = readActionOf(entry.action);
  if (readAction === null || !ref.startsWith(EVENT_PREFIX)) return null;
  return namedEventRefs(entry.target).includes(ref.slice(EVENT_PREFIX.length)) ? readAction : null;
}

const EVENT_PREFIX = 'event:h:';

/** The stored entries that record a read returning the event (refusals `*.denied` and `*.not-found` returned nothing). */
export function viewsOf(
  records: readonly unknown[],
  ref: string,
): { readonly views: readonly View[]; readonly indexes: readonly number[] } {
  const views: View[] = [];
  const indexes: number[] = [];
  for (const record of records) {
    if ((record as { kind?: unknown })?.kind !== 'entry') continue;
    const parsed = auditEntrySchema.safeParse((record as { entry?: unknown }).entry);
    if (!parsed.success) continue;
    const entry: AuditEntry = parsed.data;
    if (entry.action.endsWith('.denied') || entry.action.endsWith('.not-found')) continue;
    const via = viaOf(entry, ref);
    if (via === null) continue;
    views.push({
      principal: entry.actor,
      role: entry.role,
      at: new Date(entry.at).toISOString(),
      purpose: entry.purpose,
      via,
    });
    indexes.push(entry.index);
  }
  return { views, indexes };
}

/**
 * Each entry at `indexes` is in the latest signed checkpoint: the log verifies up to it, and an RFC 9162 inclusion
 * proof from the stored entry leads to the checkpoint's signed root. An entry after the latest checkpoint (the signer
 * has not covered it yet) fails: it cannot be proven yet.
 */
export function checkViewsIncluded(records: readonly unknown[], key: VerifierKey, indexes: readonly number[]): Check {
  const log = verifyRecords(records, key);
  const latest = log.good.at(-1);
  if (!latest) return { ok: false, problem: 'the audit log has no signed checkpoint that verifies' };
  for (const index of indexes) {
    let proof: ReturnType<typeof proveInclusion>;
    try {
      proof = proveInclusion(log, index);
    } catch (error) {
      return { ok: false, problem: (error as Error).message };
    }
    const parsed = auditEntrySchema.safeParse(JSON.parse(proof.entry));
    if (!parsed.success) return { ok: false, problem: `audit entry ${index} does not parse` };
    const included = verifyInclusion(
      entryLeafHash(parsed.data),
      index,
      proof.tree_size,
      proof.proof.map((h) => Buffer.from(h, 'base64')),
      latest.checkpoint.root,
    );
    if (!included) return { ok: false, problem: `audit entry ${index} is not included in the latest checkpoint` };
  }
  return { ok: true, problem: null };
}
