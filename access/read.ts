/**
 * One audited read: authenticate the caller, choose its role and purpose, authorise the SQL (policy.ts), run it
 * constrained to the principal's sites, suppress small cells for analysts, and append the audit entry BEFORE the
 * rows are handed back. A refusal at any step is an audit entry too (`<action>.denied`, the reason in the target),
 * then an AccessDenied error. The entry holds who, in which role, what (the target: a query name and its parameters,
 * never PHI), why, when, and a keyed digest of exactly what was returned (never the rows). Rows that carry event ids
 * (`event_id`, `event_ids`) also get per-event references (event-refs.ts), so the read shows in `vigil trace`.
 *
 * An audit append that fails fails the read: nothing is shown that was not recorded.
 */
import type { ClickHouseStore, QueryParams } from '../adapters/clickhouse/store.ts';
import type { AuditEntryInput, HashKey } from '../audit/entry.ts';
import { VigilError } from '../runtime/errors.ts';
import { eventIdsOf, eventRefEntries } from './event-refs.ts';
import { actingRole, authorizeQuery, type DenialReason, POLICY, purposeFor, rowsOutsideSites } from './policy.ts';
import type { Authenticator, Principal, Role } from './principals.ts';
import { DEFAULT_MIN_CELL, suppressSmallCells } from './suppress.ts';

export class AccessDenied extends VigilError {
  readonly reason: DenialReason | 'unauthenticated';
  /** The audit entry that records the refusal. */
  readonly auditIndex: number;

  constructor(reason: DenialReason | 'unauthenticated', message: string, auditIndex: number) {
    super(reason === 'unauthenticated' ? 'UNAUTHENTICATED' : 'ACCESS_DENIED', `access denied (${reason}): ${message}`);
    this.name = 'AccessDenied';
    this.reason = reason;
    this.auditIndex = auditIndex;
  }
}

/** One query as one read: `action` e.g. `query.run`, `target` e.g. `query:alarm-rate-by-firmware {"from":"..."}`. */
export interface ReadRequest extends ReadIntent {
  readonly sql: string;
  readonly params?: QueryParams;
}

/** Appends one audit entry durably (access/cli.ts: `appendOnce` on the file or Kafka store, so concurrent readers
 * never write the same index); resolves with its index. A read that returns events also needs `hashKey` (their
 * references are keyed with it) and `appendRun` (the read entry and its companions, event-refs.ts, at consecutive
 * indexes under one claim of the log); accessAuditAppender provides both. */
export interface AuditAppender {
  (entry: AuditEntryInput): Promise<{ readonly index: number }>;
  /** Appends the entries in order at consecutive indexes; resolves with the first index. */
  readonly appendRun?: (entries: readonly AuditEntryInput[]) => Promise<{ readonly first: number }>;
  /** The log's hashing key. */
  readonly hashKey?: HashKey;
}

export interface ReadDeps {
  /** Small-cell threshold for analysts: the deployment's setting (principals file `min_cell`), never the caller's. */
  readonly minCell?: number;
  readonly audit: AuditAppender;
  readonly authenticator: Authenticator;
  /** The credential (API token or IdP token); null when none was given. */
  readonly credential: string | null;
  readonly store: Pick<ClickHouseStore, 'query'>;
  /** Event references named per read (event-refs.ts MAX_EVENT_REFS); the rest are counted and digested. */
  readonly maxEventRefs?: number;
}

export interface AuditedRows<T> {
  readonly rows: T[];
  readonly principal: Principal;
  readonly role: Role;
  readonly purpose: string;
  /** Rows whose cells were suppressed (analysts). */
  readonly suppressed: number;
  /** The audit entry recording this read. */
  readonly auditIndex: number;
}

const TARGET_MAX = 300;

/** A target string within the audit entry's limit (a long one is cut, marked with an ellipsis). */
export function auditTarget(kind: string, name: string, params?: Readonly<Record<string, unknown>>): string {
  const full = `${kind}:${name}${params && Object.keys(params).length > 0 ? ` ${JSON.stringify(params)}` : ''}`;
  return full.length <= TARGET_MAX ? full : `${full.slice(0, TARGET_MAX - 1)}…`;
}

/** What a read is, before any SQL: the action and target recorded, and the role and purpose asked for. */
export interface ReadIntent {
  /** Dotted action, e.g. `trace.show`. */
  readonly action: string;
  /** What is read, without PHI. */
  readonly target: string;
  readonly role?: string;
  readonly purpose?: string;
}

/**
 * An authenticated caller in one role, for one read made of several queries (e.g. `vigil trace`): each query is
 * authorised and site-filtered, and the read is recorded once, with everything returned, before it is shown.
 */
export interface ReadScope {
  readonly principal: Principal;
  readonly role: Role;
  readonly purpose: string;
  /** Authorises and runs one query constrained to the principal's sites; a refusal is audited, then thrown. */
  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]>;
  /** Audits a refusal the caller decides on and throws AccessDenied. */
  deny(reason: DenialReason, message: string): Promise<never>;
  /**
   * Appends the read's entry with a digest of `read` (what is about to be shown); returns its index. With
   * `eventIds` (the events the read returns), the entry's details commit to their keyed references and companion
   * entries name them (event-refs.ts), so `vigil trace` finds this read among the event's viewers.
   */
  record(read: unknown, options?: { readonly eventIds?: readonly string[] }): Promise<number>;
}

/**
 * Authenticates the holder of `deps.credential` and settles its role and purpose; every refusal on the way is an
 * audit entry (`<action>.denied`) and an AccessDenied.
 *
 * @example
 * const scope = await openReadScope(deps, { action: 'trace.show', target: 'event:01KG...', purpose: 'audit' });
 * const raw = await scope.query('SELECT raw_sha256 FROM raw_events WHERE event_id = {id:String}', { id });
 * await scope.record(answer); // before printing `answer`
 */
export async function openReadScope(deps: ReadDeps, intent: ReadIntent): Promise<ReadScope> {
  const { audit } = deps;
  const refuse = async (
    actor: string,
    role: string,
    purpose: string,
    reason: AccessDenied['reason'],
    message: string,
  ): Promise<never> => {
    const { index } = await audit({
      actor,
      role,
      action: `${intent.action}.denied`,
      target: `${intent.target.slice(0, TARGET_MAX - 40)} denied=${reason}`,
      purpose,
      details: { reason, message },
    });
    throw new AccessDenied(reason, message, index);
  };

  if (deps.credential === null || deps.credential.trim() === '') {
    return refuse(
      'unauthenticated',
      'none',
      'none',
      'unauthenticated',
      'no credential: set VIGIL_TOKEN or VIGIL_TOKEN_FILE',
    );
  }
  let principal: Principal;
  try {
    principal = await deps.authenticator.authenticate(deps.credential);
  } catch (error) {
    return refuse('unauthenticated', 'none', 'none', 'unauthenticated', (error as Error).message);
  }
  const role = actingRole(principal, intent.role);
  if (typeof role !== 'string') return refuse(principal.name, 'none', 'none', role.reason, role.message);
  const purpose = purposeFor(role, intent.purpose);
  if (typeof purpose !== 'string') return refuse(principal.name, role, 'none', purpose.reason, purpose.message);

  const deny = (reason: DenialReason, message: string) => refuse(principal.name, role, purpose, reason, message);
  return {
    principal,
    role,
    purpose,
    deny,
    async query<T extends Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]> {
      const decision = authorizeQuery(principal, role, sql);
      if (!decision.allowed) return deny(decision.reason, decision.message);
      const rows = await deps.store.query<T>(decision.sql, params);
      // The engine ignored the filter (an old server?): nothing is shown, and the attempt is on record.
      if (rowsOutsideSites(principal, rows) > 0) {
        return deny('site', 'the store returned rows of other sites: result withheld');
      }
      return rows;
    },
    async record(read, options) {
      const entry = { actor: principal.name, role, action: intent.action, target: intent.target, purpose, read };
      const eventIds = options?.eventIds ?? [];
      if (eventIds.length === 0) return (await audit(entry)).index;
      if (!audit.hashKey || !audit.appendRun) {
        // Failing closed: rows of events whose readers trace could not find are not shown.
        throw new VigilError(
          'CONFIG_INVALID',
          'this audit appender cannot record the events a read returns (no hashing key or runs): nothing shown',
        );
      }
      const { details, companions } = eventRefEntries(audit.hashKey, entry, eventIds, deps.maxEventRefs);
      const { first } = await audit.appendRun([{ ...entry, details }, ...companions]);
      return first;
    },
  };
}

/**
 * Runs one read for whoever holds `deps.credential`, recorded in the audit log before it returns; an analyst's rows
 * pass small-cell suppression first (the digest is of what is returned).
 *
 * @example
 * const { rows } = await auditedQuery(
 *   { audit, authenticator: fileAuthenticator(path), credential: process.env.VIGIL_TOKEN ?? null, store },
 *   { action: 'query.run', target: auditTarget('query', saved.name, params), sql: saved.sql, params },
 * );
 */
export async function auditedQuery<T extends Record<string, unknown> = Record<string, unknown>>(
  deps: ReadDeps,
  request: ReadRequest,
): Promise<AuditedRows<T>> {
  const scope = await openReadScope(deps, request);
  let rows = await scope.query<T>(request.sql, request.params);
  let suppressed = 0;
  if (POLICY[scope.role].suppress) {
    let result: ReturnType<typeof suppressSmallCells>;
    try {
      result = suppressSmallCells(rows, deps.minCell ?? DEFAULT_MIN_CELL);
    } catch (error) {
      return scope.deny('suppression', (error as Error).message);
    }
    rows = result.rows as T[];
    suppressed = result.suppressed;
  }
  const auditIndex = await scope.record(rows, { eventIds: eventIdsOf(rows) });
  return { rows, principal: scope.principal, role: scope.role, purpose: scope.purpose, suppressed, auditIndex };
}
