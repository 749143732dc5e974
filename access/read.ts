/**
 * One audited read: authenticate the caller, choose its role and purpose, authorise the SQL (policy.ts), run it
 * constrained to the principal's sites, suppress small cells for analysts, and append the audit entry BEFORE the
 * rows are handed back. A refusal at any step is an audit entry too (`<action>.denied`, the reason in the target),
 * then an AccessDenied error. The entry holds who, in which role, what (the target: a query name and its parameters,
 * never PHI), why, when, and a keyed digest of exactly what was returned (never the rows).
 *
 * An audit append that fails fails the read: nothing is shown that was not recorded.
 */
import type { ClickHouseStore, QueryParams } from '../adapters/clickhouse/store.ts';
import type { AuditEntryInput } from '../audit/entry.ts';
import { VigilError } from '../runtime/errors.ts';
import { actingRole, authorizeQuery, type DenialReason, POLICY, purposeFor, rowsOutsideSites } from './policy.ts';
import type { Authenticator, Principal, Role } from './principals.ts';
import { DEFAULT_MIN_CELL, suppressSmallCells } from './suppress.ts';

export class AccessDenied extends VigilError {
  readonly reason: DenialReason | 'unauthenticated';
  /** The audit entry that records the refusal. */
  readonly auditIndex: number;

  constructor(reason: DenialReason | 'unauthenticated', message: string, auditIndex: number) {
    super('CONFIG_INVALID', `access denied (${reason}): ${message}`);
    this.name = 'AccessDenied';
    this.reason = reason;
    this.auditIndex = auditIndex;
  }
}

export interface ReadRequest {
  /** Dotted action, e.g. `query.run`, `alerts.list`. */
  readonly action: string;
  /** What is read, without PHI: e.g. `query:alarm-rate-by-firmware {"from":"..."}`. */
  readonly target: string;
  readonly sql: string;
  readonly params?: QueryParams;
  /** The role asked for (`--role`); needed when the principal holds several. */
  readonly role?: string;
  /** `--purpose`; required for clinical reads. */
  readonly purpose?: string;
}

/** Appends one audit entry durably (access/cli.ts: `appendOnce` on the file or Kafka store, so concurrent readers
 * never write the same index); resolves with its index. */
export type AuditAppender = (entry: AuditEntryInput) => Promise<{ readonly index: number }>;

export interface ReadDeps {
  /** Small-cell threshold for analysts: the deployment's setting (principals file `min_cell`), never the caller's. */
  readonly minCell?: number;
  readonly audit: AuditAppender;
  readonly authenticator: Authenticator;
  /** The credential (API token or IdP token); null when none was given. */
  readonly credential: string | null;
  readonly store: Pick<ClickHouseStore, 'query'>;
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

/**
 * Runs one read for whoever holds `deps.credential`, recorded in the audit log before it returns.
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
      action: `${request.action}.denied`,
      target: `${request.target.slice(0, TARGET_MAX - 40)} denied=${reason}`,
      purpose,
      details: { reason, message },
    });
    throw new AccessDenied(reason, message, index);
  };

  let principal: Principal;
  if (deps.credential === null || deps.credential.trim() === '') {
    return refuse(
      'unauthenticated',
      'none',
      'none',
      'unauthenticated',
      'no credential: set VIGIL_TOKEN or VIGIL_TOKEN_FILE',
    );
  }
  try {
    principal = await deps.authenticator.authenticate(deps.credential);
  } catch (error) {
    return refuse('unauthenticated', 'none', 'none', 'unauthenticated', (error as Error).message);
  }

  const role = actingRole(principal, request.role);
  if (typeof role !== 'string') return refuse(principal.name, 'none', 'none', role.reason, role.message);
  const purpose = purposeFor(role, request.purpose);
  if (typeof purpose !== 'string') return refuse(principal.name, role, 'none', purpose.reason, purpose.message);

  const decision = authorizeQuery(principal, role, request.sql);
  if (!decision.allowed) return refuse(principal.name, role, purpose, decision.reason, decision.message);

  let rows = await deps.store.query<T>(decision.sql, request.params);
  if (rowsOutsideSites(principal, rows) > 0) {
    // The engine ignored the filter (an old server?): nothing is shown, and the attempt is on record.
    return refuse(principal.name, role, purpose, 'site', 'the store returned rows of other sites: result withheld');
  }
  let suppressed = 0;
  if (POLICY[role].suppress) {
    let result: ReturnType<typeof suppressSmallCells>;
    try {
      result = suppressSmallCells(rows, deps.minCell ?? DEFAULT_MIN_CELL);
    } catch (error) {
      return refuse(principal.name, role, purpose, 'suppression', (error as Error).message);
    }
    rows = result.rows as T[];
    suppressed = result.suppressed;
  }
  const { index } = await audit({
    actor: principal.name,
    role,
    action: request.action,
    target: request.target,
    purpose,
    read: rows,
  });
  return { rows, principal, role, purpose, suppressed, auditIndex: index };
}
