/**
 * Per-event references of a read that returns event-level rows (`vigil alerts list`: each alert cites the events that
 * triggered it; a saved query whose rows carry `event_id`), so `vigil trace` can answer "who saw this event".
 *
 * The read's own entry is unchanged in shape (its target names the read, `read_sha256` digests the rows) and its
 * `details` commit to the full list of references (the keyed digest lands in `details_sha256`). The references
 * themselves must be findable, and the entry schema stores no lists, so they follow the read entry as companion
 * entries in the same claim of the log (consecutive indexes): action `<read action>.events`, same actor, role and
 * purpose, target `events:h:<d1>,<d2>,...` with up to EVENT_REFS_PER_ENTRY digests, each the 32 hex of
 * `targetRef(key, 'event', id)` (audit/entry.ts) without its `event:h:` prefix. Never an event id itself: only the
 * holder of the hashing key links an entry to an event, and crypto-shredding the key unlinks them all.
 *
 * A read returning many events names at most `max` of them (MAX_EVENT_REFS, in row order); the rest are one more
 * companion, target `events:rest n=<count> h:<32 hex keyed digest of their references>`: trace cannot name those
 * readers precisely (the read entry's details still commit to every reference, so the hospital holding the key can
 * show that a given event was in the read from the rows it returned).
 */
import { type AuditEntryInput, type HashKey, keyedDigest, targetRef } from '../audit/entry.ts';

/** 8 digests of 32 hex, comma-separated, after `events:h:`: 272 characters, within the entry's 300. */
export const EVENT_REFS_PER_ENTRY = 8;
/** References named per read: 64 companion entries at most (about 39 kB of file log). */
export const MAX_EVENT_REFS = 512;
/** The companion action's suffix: `alerts.list.events`. */
export const EVENTS_ACTION_SUFFIX = '.events';

const NAMED_PREFIX = 'events:h:';
const DIGEST = /^[0-9a-f]{32}$/;

/** The event ids rows carry, unique, in row order: an `event_id` string column, an `event_ids` array column. */
export function eventIdsOf(rows: readonly Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === 'string' && value !== '') seen.add(value);
  };
  for (const row of rows) {
    add(row.event_id);
    if (Array.isArray(row.event_ids)) for (const id of row.event_ids) add(id);
  }
  return [...seen];
}

/** The 32-hex digest an event's reference carries (`targetRef(key, 'event', id)` without `event:h:`). */
export function eventRefDigest(key: HashKey, eventId: string): string {
  return targetRef(key, 'event', eventId).slice('event:h:'.length);
}

export interface EventRefEntries {
  /** What the read entry's `details` hold: every reference (digested into details_sha256, never stored). */
  readonly details: { readonly event_refs: readonly string[]; readonly named: number };
  /** The companion entries, to append right after the read entry. */
  readonly companions: readonly AuditEntryInput[];
}

/**
 * The read entry's details and its companion entries for the events `eventIds` a read returned.
 *
 * @example
 * const { details, companions } = eventRefEntries(key, readEntry, eventIdsOf(rows));
 * await appendRun([{ ...readEntry, details }, ...companions]);
 */
export function eventRefEntries(
  key: HashKey,
  read: Pick<AuditEntryInput, 'actor' | 'role' | 'action' | 'purpose'>,
  eventIds: readonly string[],
  max: number = MAX_EVENT_REFS,
): EventRefEntries {
  const refs = eventIds.map((id) => eventRefDigest(key, id));
  const named = refs.slice(0, Math.max(0, max));
  const rest = refs.slice(named.length);
  const base = {
    actor: read.actor,
    role: read.role,
    action: `${read.action}${EVENTS_ACTION_SUFFIX}`,
    purpose: read.purpose,
  };
  const companions: AuditEntryInput[] = [];
  for (let i = 0; i < named.length; i += EVENT_REFS_PER_ENTRY) {
    const part = named.slice(i, i + EVENT_REFS_PER_ENTRY);
    companions.push({ ...base, target: `${NAMED_PREFIX}${part.join(',')}`, details: { event_refs: part } });
  }
  if (rest.length > 0) {
    const digest = keyedDigest(key, rest).slice(0, 32);
    companions.push({ ...base, target: `events:rest n=${rest.length} h:${digest}`, details: { event_refs: rest } });
  }
  return { details: { event_refs: refs, named: named.length }, companions };
}

/** The digests a companion entry's target names (empty for any other target, and for `events:rest`). */
export function namedEventRefs(target: string): readonly string[] {
  if (!target.startsWith(NAMED_PREFIX)) return [];
  const digests = target.slice(NAMED_PREFIX.length).split(',');
  return digests.every((d) => DIGEST.test(d)) ? digests : [];
}

/** The read action a companion entry belongs to (`alerts.list.events` -> `alerts.list`); null for other actions. */
export function readActionOf(action: string): string | null {
  return action.endsWith(EVENTS_ACTION_SUFFIX) ? action.slice(0, -EVENTS_ACTION_SUFFIX.length) : null;
}
