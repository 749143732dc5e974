/**
 * `vigil trace`: the four questions about one event — who sent it, what transformed it, which model scored it, who
 * saw it — answered from the evidence alone (the planes, the device-identity log, the audit log), and with `verify`
 * re-checked: the raw hash recomputed, the device signature re-verified against the identity log and the device CA,
 * the audit entries of its readers proven included in the latest signed checkpoint.
 *
 * A trace is itself an access, made through the access layer's read scope (access/read.ts openReadScope): only a
 * principal acting as `auditor` may run it, every plane query is authorised by the role policy and filtered to the
 * principal's sites (the raw plane has no site column: only an auditor of all sites reads it), the refusal of anyone
 * is an audit entry (`trace.run.denied`), and an allowed trace is an audit entry (`trace.run`, target the event's
 * keyed reference, read = a digest of the report) appended before the report is returned. An audit append that
 * fails fails the trace. The byte facts verification needs (withRawBytes) are read outside the scope, by the raw
 * record's key, and never shown.
 *
 * Which model scored it includes how each inference was routed (issue 12): its row's routing decision (rollout_id,
 * source, cohort bucket, canary, clinical) and, when the caller read the model-rollouts log, the record that routed it
 * with its actor, reason, time and the approval it rests on (evidence/model-routing.ts). The trace works without the
 * log and says it was not read.
 */

import type { Authenticator } from '../access/principals.ts';
import { type AuditAppender, openReadScope } from '../access/read.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import type { VerifierKey } from '../audit/checkpoint.ts';
import type { HashKey } from '../audit/entry.ts';
import type { DeviceDirectory } from '../identity/types.ts';
import { VigilError } from '../runtime/errors.ts';
import { type AlertEvidence, type EventEvidence, type InferenceRouting, lookupEvent, withRawBytes } from './lookup.ts';
import {
  artifactRegistered,
  type ModelRolloutsRead,
  type RolloutLogStatus,
  type RoutingRecordEvidence,
  routingRecordOf,
} from './model-routing.ts';
import { type Check, checkDeviceSignature, checkRawHash } from './verify.ts';
import { checkViewsIncluded, eventRef, type View, viewsOf } from './views.ts';

/** The report, exactly the shape (`vigil trace --json`). */
export interface TraceReport {
  readonly event_id: string;
  readonly sender: {
    readonly device_id: string | null;
    readonly certificate_fingerprint: string | null;
    readonly gateway: string | null;
    readonly received_at: string | null;
    readonly signature_verified: boolean | null;
  };
  readonly raw: {
    readonly topic: string | null;
    readonly partition: number | null;
    readonly offset: number | null;
    readonly sha256: string | null;
    readonly hash_verified: boolean | null;
  };
  readonly transformations: readonly { readonly operator: string; readonly version: string; readonly at: string }[];
  readonly inferences: readonly TraceInference[];
  readonly alerts: readonly (Omit<AlertEvidence, 'raised_at' | 'record_id'> & { readonly raised_at: string })[];
  readonly viewed_by: readonly View[];
  readonly verified: boolean;
  /** Whether the model-rollouts log was read to resolve each inference's `rollout_record` (added by issue 12). */
  readonly model_rollouts_log: RolloutLogStatus;
}

/** One inference of the event: the first six keys are the original report's; the rest were added by issue 12. */
export interface TraceInference {
  readonly model: string;
  readonly version: string;
  readonly artifact_sha256: string;
  readonly rollout: string;
  readonly score: number;
  readonly risk_band: string;
  readonly runtime: string;
  readonly runtime_version: string;
  readonly config_hash: string;
  /** change_id of the model-rollouts record that routed the version; null: the pipeline's default ran it. */
  readonly rollout_id: string | null;
  readonly routing: InferenceRouting;
  /** That record from the log, with the approval it rests on; null without one, or when the log was not read. */
  readonly rollout_record: RoutingRecordEvidence | null;
  /** Whether the registry holds this version with this artifact SHA-256; null when the log was not read. */
  readonly artifact_registered: boolean | null;
}

/** The model-rollouts log as the trace was given it: read into a registry, or why not. */
export type TraceModelRollouts = ModelRolloutsRead;

export interface TraceVerification {
  /** The device-identity log, caught up. */
  readonly directory: Pick<DeviceDirectory, 'byFingerprint'>;
  /** The device CA certificate (PEM). */
  readonly caCertPem: string;
  /** The audit checkpoint verifier key. */
  readonly auditKey: VerifierKey;
}

export interface TraceDeps {
  readonly store: Pick<ClickHouseStore, 'query'>;
  /** Where the trace and refusals are recorded (access/cli.ts accessAuditAppender). */
  readonly audit: AuditAppender;
  /** The audit log's hashing key: the event's reference is keyed with it. */
  readonly hashKey: HashKey;
  /** The audit log's stored records (to find who saw the event), read before this trace is appended. */
  readonly auditRecords: () => Promise<readonly unknown[]>;
  readonly authenticator: Authenticator;
  readonly credential: string | null;
  /** Needed when the request asks to verify. */
  readonly verification?: TraceVerification;
  /**
   * The model-rollouts log, read by the caller (a file log, or the Kafka topic when reachable). Absent: the report
   * says it was not read, and each inference shows only what its row records.
   */
  readonly modelRollouts?: TraceModelRollouts;
}

export interface TraceRequest {
  readonly eventId: string;
  readonly verify: boolean;
  readonly role?: string;
  readonly purpose?: string;
}

export interface TraceResult {
  readonly report: TraceReport;
  /** Why `verified` is false, in fixed words (empty when verified, or when not asked to verify). */
  readonly problems: readonly string[];
  /** The audit entry recording this trace. */
  readonly auditIndex: number;
}

const EVENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const iso = (ms: number): string => new Date(ms).toISOString();

/** `vitals@2/validate/dedupe` -> version `vitals@2`, operators validate, dedupe. */
function operatorsOf(transformationVersion: string): { version: string; operators: string[] } {
  const [version = transformationVersion, ...operators] = transformationVersion.split('/');
  return { version, operators };
}

export function transformationsOf(evidence: EventEvidence): TraceReport['transformations'] {
  const out: { operator: string; version: string; at: string }[] = [];
  const seen = new Set<string>();
  const add = (operator: string, version: string, at: number) => {
    const key = `${operator}\n${version}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ operator, version, at: iso(at) });
  };
  for (const d of evidence.derivations) {
    const { version, operators } = operatorsOf(d.transformation_version);
    for (const operator of operators) add(operator, version, d.processed_at);
  }
  // Scoring is each inference's own step, named by its whole transformation version (`<pipeline>/score/<model>@<v>`,
  // operators/score): two models scoring the event are two steps.
  for (const i of evidence.inferences) add('score', i.transformation_version, i.scored_at);
  return out;
}

const NOT_READ: TraceModelRollouts = {
  status: { read: false, source: 'none', problem: 'no model-rollouts log was given' },
  registry: null,
};

/** Each inference with its routing, and the record that routed it when the log was read. */
export function inferencesOf(evidence: EventEvidence, rollouts: TraceModelRollouts = NOT_READ): TraceInference[] {
  const { registry } = rollouts;
  return evidence.inferences.map((i) => ({
    model: i.model,
    version: i.version,
    artifact_sha256: i.artifact_sha256,
    rollout: i.rollout,
    score: i.score,
    risk_band: i.risk_band,
    runtime: i.runtime,
    runtime_version: i.runtime_version,
    config_hash: i.config_hash,
    rollout_id: i.rollout_id,
    routing: i.routing,
    rollout_record: registry === null ? null : routingRecordOf(registry, i.model, i.rollout_id),
    artifact_registered: registry === null ? null : artifactRegistered(registry, i.model, i.version, i.artifact_sha256),
  }));
}

function buildReport(
  evidence: EventEvidence,
  views: readonly View[],
  checks: { hash: Check; signature: Check; views: Check } | null,
  rollouts: TraceModelRollouts,
): TraceReport {
  const { raw } = evidence;
  const first = evidence.derivations[0];
  const integrity = raw?.integrity_hash ?? first?.integrity_hash ?? null;
  return {
    event_id: evidence.event_id,
    sender: {
      device_id: raw?.device_id ?? first?.device_id ?? null,
      certificate_fingerprint: raw?.device_cert_fingerprint ?? first?.device_cert_fingerprint ?? null,
      gateway: raw?.gateway_id ?? null,
      received_at: first ? iso(first.received_at) : null,
      signature_verified: checks ? checks.signature.ok : null,
    },
    raw: {
      topic: raw?.topic ?? first?.source_topic ?? null,
      partition: raw?.partition ?? first?.source_partition ?? null,
      offset: raw?.offset ?? first?.source_offset ?? null,
      sha256: integrity ? integrity.replace(/^sha256:/, '') : (raw?.raw_sha256 ?? null),
      hash_verified: checks ? checks.hash.ok : null,
    },
    transformations: transformationsOf(evidence),
    inferences: inferencesOf(evidence, rollouts),
    alerts: evidence.alerts.map((a) => ({
      alert_id: a.alert_id,
      rule: a.rule,
      rule_version: a.rule_version,
      kind: a.kind,
      band: a.band,
      transition: a.transition,
      raised_at: iso(a.raised_at),
      cites: a.cites,
    })),
    viewed_by: views,
    verified: checks?.hash.ok === true && checks.signature.ok && checks.views.ok,
    model_rollouts_log: rollouts.status,
  };
}

/**
 * Traces one event for whoever holds `deps.credential`, recorded in the audit log before it returns.
 *
 * @example
 * const { report } = await traceEvent(
 *   { store, log, hashKey, auditRecords: () => readAll(auditStore), authenticator, credential: process.env.VIGIL_TOKEN ?? null },
 *   { eventId: '01JD6Z0000000000000000000A', verify: false },
 * );
 */
export async function traceEvent(deps: TraceDeps, request: TraceRequest): Promise<TraceResult> {
  if (!EVENT_ID.test(request.eventId)) {
    throw new VigilError('CONFIG_INVALID', 'an event id is 1-128 letters, digits, . _ : or -');
  }
  const ref = eventRef(deps.hashKey, request.eventId);
  const scope = await openReadScope(
    { audit: deps.audit, authenticator: deps.authenticator, credential: deps.credential, store: deps.store },
    {
      action: 'trace.run',
      target: ref,
      ...(request.role === undefined ? {} : { role: request.role }),
      ...(request.purpose === undefined ? {} : { purpose: request.purpose }),
    },
  );
  if (scope.role !== 'auditor') {
    await scope.deny('role', `vigil trace needs the auditor role (acting as ${scope.role})`);
  }
  if (request.verify && !deps.verification) {
    throw new VigilError('CONFIG_INVALID', 'verifying a trace needs the identity log, the device CA and the audit key');
  }

  const [looked, records] = await Promise.all([lookupEvent(scope, request.eventId), deps.auditRecords()]);
  const { views, indexes } = viewsOf(records, ref);
  const found = looked.raw !== null || looked.derivations.length > 0 || looked.inferences.length > 0;
  if (!found) {
    // A trace that found nothing is still an access (someone looked), but not a view of the event.
    await deps.audit({
      actor: scope.principal.name,
      role: scope.role,
      action: 'trace.not-found',
      target: ref,
      purpose: scope.purpose,
    });
    throw new VigilError('CONFIG_INVALID', `no event ${request.eventId} in the store`);
  }

  let evidence = looked;
  let checks: { hash: Check; signature: Check; views: Check } | null = null;
  if (request.verify && deps.verification) {
    const v = deps.verification;
    evidence = await withRawBytes(deps.store, looked);
    checks = {
      hash: checkRawHash(evidence),
      signature: checkDeviceSignature(evidence, v),
      views: checkViewsIncluded(records, v.auditKey, indexes),
    };
  }
  const report = buildReport(evidence, views, checks, deps.modelRollouts ?? NOT_READ);
  const index = await scope.record(report);
  const problems = checks
    ? [checks.hash, checks.signature, checks.views].flatMap((c) => (c.problem ? [c.problem] : []))
    : [];
  return { report, problems, auditIndex: index };
}
