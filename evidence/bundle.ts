/**
 * `vigil evidence export`: for a period, what an auditor asks for, per control of seed 000's controls matrix, in one
 * directory whose manifest is signed by the audit checkpoint key (bundle-manifest.ts; docs/reference/evidence-bundle.md):
 *
 *   device-identity/      enrolment, rotation, revocation, assignment records of the period (patient pseudonyms as
 *                         keyed digests) and every change without its audit entry (`unaudited`)
 *   ingestion-security/   gateway rejections by reason, dead letters by stage and reason
 *   provenance/           raw records landed, derivations by transformation version
 *   model-governance/     model versions, artifacts and rollouts seen in inferences, how they were routed (rollout
 *                         ids, canary, clinical) with the record that routed each and its approval, and from the
 *                         model-rollouts log the period's registry changes and the history of the versions involved
 *   audit-logging/        the period's audit entries, every signed checkpoint, `audit verify`'s report, an inclusion
 *                         proof (the standalone verifier's format) for each control-plane entry of the period
 *   monitoring/           the Prometheus rule files, `promtool test rules` on them, alerts raised by rule and band
 *
 * The export is an access by an auditor: it reads through the access scope (policy, site filter) and is recorded in
 * the audit log, with a keyed digest of every file's hash, before a file is written. No PHI leaves: no vital value,
 * no raw byte, no patient pseudonym in clear; device ids are identifiers of devices.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ReadScope } from '../access/read.ts';
import type { ClickHouseStore } from '../adapters/clickhouse/store.ts';
import { type SignerKey, signNote, type VerifierKey, verifierKeyText } from '../audit/checkpoint.ts';
import { type AuditEntry, auditEntrySchema, type HashKey, targetRef } from '../audit/entry.ts';
import { type InclusionProof, proveInclusion } from '../audit/prove.ts';
import { verifyRecords } from '../audit/verify.ts';
import { auditTargetOfModelChange } from '../governance/service.ts';
import type { IdentityChange } from '../identity/types.ts';
import { VigilError } from '../runtime/errors.ts';
import {
  BUNDLE_FORMAT,
  MANIFEST_FILE,
  MANIFEST_NOTE,
  type Manifest,
  manifestNoteText,
  sha256Hex,
} from './bundle-manifest.ts';
import { artifactRegistered, type ModelRolloutsRead, routingRecordOf, versionHistories } from './model-routing.ts';

/** Audit actions that change the control plane (the entries proved in the bundle). */
export const CONTROL_ACTION = /^(device|schema|principal|model|pipeline|retention|erasure)\./;

export interface BundleDeps {
  /** An auditor's read scope (access/read.ts openReadScope): queries are authorised and the export recorded. */
  readonly scope: ReadScope;
  /** For gateway_rejections counts by reason only: the auditor role is not granted that table (see the doc). */
  readonly store: Pick<ClickHouseStore, 'query'>;
  /** The whole device-identity log, in log order. */
  readonly identityChanges: readonly IdentityChange[];
  /**
   * The model-rollouts log folded into a registry (its history is every applied change), or why it was not read:
   * model-governance/ then holds what the inferences record, and says the log was not read.
   */
  readonly modelRollouts?: ModelRolloutsRead;
  /** The audit store's records, as stored. */
  readonly auditRecords: readonly unknown[];
  readonly signerKey: SignerKey;
  readonly verifierKey: VerifierKey;
  readonly hashKey: HashKey;
  /** Prometheus rule files and their unit-test files, copied into monitoring/. */
  readonly ruleFiles: readonly string[];
  /** The promtool binary, or null when it is not installed (the bundle says so). */
  readonly promtool: string | null;
  readonly now: number;
}

export interface BundleRequest {
  readonly from: number;
  readonly to: number;
  readonly out: string;
}

export interface BundleSummary {
  readonly out: string;
  readonly files: number;
  readonly audit_index: number;
  readonly identity_changes: number;
  readonly unaudited_changes: number;
  readonly control_entries: number;
  readonly proofs: number;
  readonly awaiting_checkpoint: number;
  readonly audit_ok: boolean;
  readonly promtool: 'passed' | 'failed' | 'unavailable';
  /** Added by issue 12: whether the model-rollouts log was read, its changes in the period, those without audit entry. */
  readonly model_rollouts_read: boolean;
  readonly model_changes: number;
  readonly unaudited_model_changes: number;
}

const NOT_READ: ModelRolloutsRead = {
  status: { read: false, source: 'none', problem: 'no model-rollouts log was given' },
  registry: null,
};

/** A Bool column as the store returns it. */
const bool = (v: unknown): boolean => v === true || Number(v) === 1;

const iso = (ms: number) => new Date(ms).toISOString();
const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
const PERIOD = {
  from: "fromUnixTimestamp64Milli({from:Int64}, 'UTC')",
  to: "fromUnixTimestamp64Milli({to:Int64}, 'UTC')",
};
const within = (column: string) => `${column} >= ${PERIOD.from} AND ${column} < ${PERIOD.to}`;

/** An identity change as the bundle keeps it: an assignment's patient pseudonym replaced by its keyed digest. */
function redacted(change: IdentityChange, hashKey: HashKey): Record<string, unknown> {
  if (change.kind !== 'assigned') return { ...change };
  const { patient_ref, ...rest } = change;
  return { ...rest, patient: targetRef(hashKey, 'patient', patient_ref) };
}

function runPromtool(promtool: string | null, dir: string, tests: readonly string[]) {
  if (!promtool) return { status: 'unavailable' as const, output: 'promtool is not installed on the exporting host' };
  if (tests.length === 0) return { status: 'unavailable' as const, output: 'no rule test files (*.test.yml) given' };
  try {
    const output = execFileSync(promtool, ['test', 'rules', ...tests], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    return { status: 'passed' as const, output };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    return { status: 'failed' as const, output: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

/** The period's audit log evidence: entries, checkpoints, the verify report, a proof per control-plane entry. */
function auditEvidence(deps: BundleDeps, from: number, to: number) {
  const entries: AuditEntry[] = [];
  const checkpoints: string[] = [];
  for (const record of deps.auditRecords as { kind?: string; entry?: unknown; note?: string }[]) {
    if (record?.kind === 'checkpoint' && typeof record.note === 'string') checkpoints.push(record.note);
    if (record?.kind !== 'entry') continue;
    const parsed = auditEntrySchema.safeParse(record.entry);
    if (parsed.success && parsed.data.at >= from && parsed.data.at < to) entries.push(parsed.data);
  }
  const control = entries.filter((e) => CONTROL_ACTION.test(e.action)).map((e) => e.index);
  const log = verifyRecords(deps.auditRecords, deps.verifierKey, { keep: control });
  const covered = log.good.at(-1)?.checkpoint.size ?? 0;
  const proofs: InclusionProof[] = [];
  const awaiting: number[] = [];
  for (const index of control) {
    if (index < covered && (log.report.first_bad_index === null || log.report.first_bad_index >= covered)) {
      proofs.push(proveInclusion(log, index));
    } else awaiting.push(index);
  }
  return { entries, checkpoints, report: log.report, proofs, awaiting };
}

/**
 * Collects the period's evidence, records the export in the audit log, then writes the bundle and its signed
 * manifest. Refuses (audited) a caller not acting as auditor.
 *
 * @example
 * const summary = await exportBundle(deps, { from: Date.parse('2026-11-01T00:00:00Z'), to: Date.now(), out: 'evidence-2026-11' });
 */
export async function exportBundle(deps: BundleDeps, request: BundleRequest): Promise<BundleSummary> {
  const { scope, hashKey } = deps;
  const { from, to } = request;
  if (!(from < to)) throw new VigilError('CONFIG_INVALID', '--from must be before --to');
  if (scope.role !== 'auditor') {
    await scope.deny('role', `an evidence export needs the auditor role (acting as ${scope.role})`);
  }
  const params = { from, to };
  const files = new Map<string, Buffer | string>();
  const period = { from: iso(from), to: iso(to) };

  // Device identity: the changes of the period, and any change (of any time) the audit log does not hold.
  const inPeriod = deps.identityChanges.filter((c) => c.at >= from && c.at < to);
  const audited = new Set<string>();
  for (const r of deps.auditRecords as { kind?: string; entry?: { target?: unknown } }[]) {
    if (r?.kind === 'entry' && typeof r.entry?.target === 'string') audited.add(r.entry.target);
  }
  const unaudited = inPeriod.filter((c) => !audited.has(`device:${c.device_id}/${c.change_id}`));
  const byKind: Record<string, number> = {};
  for (const c of inPeriod) byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
  files.set('device-identity/changes.jsonl', inPeriod.map((c) => `${JSON.stringify(redacted(c, hashKey))}\n`).join(''));
  files.set(
    'device-identity/summary.json',
    json({
      ...period,
      changes: inPeriod.length,
      by_kind: byKind,
      devices: new Set(inPeriod.map((c) => c.device_id)).size,
      unaudited: unaudited.map((c) => `${c.device_id}/${c.change_id}`),
    }),
  );

  // A store holds only the tables of what ran against it (an embedded run has no gateway): say so, do not fail.
  const tables = new Set(
    (await deps.store.query<{ name: string }>('SELECT name FROM system.tables WHERE database = currentDatabase()')).map(
      (t) => t.name,
    ),
  );
  const rowsOf = async (table: string, sql: string, direct = false): Promise<unknown> => {
    if (!tables.has(table)) return { absent: `this store has no ${table} table` };
    return direct ? deps.store.query(sql, params) : scope.query(sql, params);
  };

  // Ingestion security: refusals at the gateway and after it.
  const rejections = await rowsOf(
    'gateway_rejections',
    `SELECT reason, stage, count() AS n FROM gateway_rejections WHERE ${within('received_at')} GROUP BY reason, stage ORDER BY reason, stage`,
    true,
  );
  const deadLetters = await rowsOf(
    'dead_letters',
    `SELECT stage, reason_code, count() AS n FROM dead_letters FINAL WHERE ${within('failed_at')} GROUP BY stage, reason_code ORDER BY stage, reason_code`,
  );
  files.set('ingestion-security/gateway-rejections.json', json({ ...period, by_reason: rejections }));
  files.set('ingestion-security/dead-letters.json', json({ ...period, by_reason: deadLetters }));

  // Provenance: what landed raw, and which transformation versions derived it.
  const raw = await rowsOf(
    'raw_events',
    `SELECT source_topic, count() AS n FROM raw_events FINAL WHERE ${within('consumed_at')} GROUP BY source_topic ORDER BY source_topic`,
  );
  const derivations = await rowsOf(
    'normalised_events',
    `SELECT transformation_version, schema_version, count() AS n, uniqExact(event_id) AS events FROM normalised_events FINAL WHERE ${within('received_at')} GROUP BY transformation_version, schema_version ORDER BY transformation_version, schema_version`,
  );
  files.set('provenance/raw-records.json', json({ ...period, by_topic: raw }));
  files.set('provenance/transformations.json', json({ ...period, versions: derivations }));

  // Model governance: every model version, artifact and rollout that scored in the period (and the rollout records
  // that routed them, added by issue 12), how they were routed, and the registry's history behind it.
  const models = await rowsOf(
    'inferences',
    `SELECT model_name, model_version, model_artifact_sha256, rollout, runtime, runtime_version, config_hash, count() AS inferences, toString(min(scored_at)) AS first_scored_at, toString(max(scored_at)) AS last_scored_at, arraySort(groupUniqArray(rollout_id)) AS rollout_ids FROM inferences FINAL WHERE ${within('scored_at')} GROUP BY model_name, model_version, model_artifact_sha256, rollout, runtime, runtime_version, config_hash ORDER BY model_name, model_version, rollout`,
  );
  files.set('model-governance/models-in-use.json', json({ ...period, models }));
  const routes = await rowsOf(
    'inferences',
    `SELECT model_name, model_version, model_artifact_sha256, rollout, rollout_id, routing_source, in_canary, clinical, count() AS inferences, toString(min(scored_at)) AS first_scored_at, toString(max(scored_at)) AS last_scored_at FROM inferences FINAL WHERE ${within('scored_at')} GROUP BY model_name, model_version, model_artifact_sha256, rollout, rollout_id, routing_source, in_canary, clinical ORDER BY model_name, model_version, rollout, ifNull(rollout_id, ''), in_canary, clinical`,
  );
  const governance = modelGovernance(deps.modelRollouts ?? NOT_READ, routes, audited, from, to);
  for (const [path, content] of governance.files) files.set(path, content);

  // Audit logging.
  const audit = auditEvidence(deps, from, to);
  files.set('audit-logging/entries.jsonl', audit.entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
  files.set('audit-logging/checkpoints.json', json(audit.checkpoints));
  files.set('audit-logging/verify.json', json(audit.report));
  files.set('audit-logging/proofs.json', json({ proofs: audit.proofs, awaiting_checkpoint: audit.awaiting }));
  files.set('audit-logging/checkpoint.pub', `${verifierKeyText(deps.signerKey)}\n`);

  // Monitoring: the alerting rules as deployed, their unit tests' result, and the alerts raised.
  const tests = deps.ruleFiles.filter((f) => /\.test\.ya?ml$/.test(f));
  for (const file of deps.ruleFiles) files.set(`monitoring/rules/${basename(file)}`, readFileSync(file));
  const promtool = runPromtool(
    deps.promtool,
    dirname(tests[0] ?? deps.ruleFiles[0] ?? '.'),
    tests.map((t) => basename(t)),
  );
  files.set('monitoring/promtool-test-rules.json', json(promtool));
  const alerts = await rowsOf(
    'clinical_alerts',
    `SELECT rule_id, rule_version, toString(band) AS band, toString(transition) AS transition, count() AS n FROM clinical_alerts WHERE ${within('raised_at')} GROUP BY rule_id, rule_version, band, transition ORDER BY rule_id, rule_version, band, transition`,
  );
  files.set('monitoring/alerts-raised.json', json({ ...period, by_rule: alerts }));

  const listing = [...files].map(([path, content]) => ({
    path,
    sha256: sha256Hex(content),
    bytes: Buffer.byteLength(content),
  }));
  listing.sort((a, b) => (a.path < b.path ? -1 : 1));
  // The export is an access: recorded before anything is written.
  const auditIndex = await scope.record({ ...period, files: listing });

  for (const [path, content] of files) {
    mkdirSync(dirname(join(request.out, path)), { recursive: true });
    writeFileSync(join(request.out, path), content);
  }
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    ...period,
    created_at: iso(deps.now),
    exported_by: { principal: scope.principal.name, role: scope.role, audit_index: auditIndex },
    files: listing,
  };
  const manifestText = json(manifest);
  writeFileSync(join(request.out, MANIFEST_FILE), manifestText);
  writeFileSync(join(request.out, MANIFEST_NOTE), signNote(manifestNoteText(manifestText), deps.signerKey));
  return {
    out: request.out,
    files: listing.length,
    audit_index: auditIndex,
    identity_changes: inPeriod.length,
    unaudited_changes: unaudited.length,
    control_entries: audit.proofs.length + audit.awaiting.length,
    proofs: audit.proofs.length,
    awaiting_checkpoint: audit.awaiting.length,
    audit_ok: audit.report.ok,
    promtool: promtool.status,
    model_rollouts_read: governance.read,
    model_changes: governance.changes,
    unaudited_model_changes: governance.unaudited,
  };
}

type RouteRow = Record<string, unknown>;

/**
 * The model-governance files beside models-in-use.json: `routing.json` (each routing of the period's inferences with
 * the record that routed it and its approval), `registry-changes.jsonl` (the period's model-rollouts records, as on
 * the log), `versions.json` (each version that scored or changed: registration, approvals, routing, promotions with
 * their criteria) and `summary.json` (the log read or not, counts, changes without an audit entry, rollout ids the
 * log does not hold, registry-routed inferences of an artifact other than the registered one).
 */
function modelGovernance(
  rollouts: ModelRolloutsRead,
  routeRows: unknown,
  audited: ReadonlySet<string>,
  from: number,
  to: number,
): { files: Map<string, string>; read: boolean; changes: number; unaudited: number } {
  const { registry, status } = rollouts;
  const period = { from: iso(from), to: iso(to) };
  const rows: RouteRow[] = Array.isArray(routeRows) ? (routeRows as RouteRow[]) : [];
  const routing = rows.map((row) => {
    const model = String(row.model_name);
    const version = String(row.model_version);
    const rolloutId = typeof row.rollout_id === 'string' && row.rollout_id !== '' ? row.rollout_id : null;
    return {
      model_name: model,
      model_version: version,
      model_artifact_sha256: String(row.model_artifact_sha256),
      rollout: String(row.rollout),
      rollout_id: rolloutId,
      routing_source: String(row.routing_source),
      in_canary: bool(row.in_canary),
      clinical: bool(row.clinical),
      inferences: Number(row.inferences),
      first_scored_at: row.first_scored_at,
      last_scored_at: row.last_scored_at,
      rollout_record: registry === null ? null : routingRecordOf(registry, model, rolloutId),
      artifact_registered:
        registry === null ? null : artifactRegistered(registry, model, version, String(row.model_artifact_sha256)),
    };
  });
  const changes = registry === null ? [] : registry.history().filter((c) => c.at >= from && c.at < to);
  const unaudited = changes.filter((c) => !audited.has(auditTargetOfModelChange(c)));
  const byKind: Record<string, number> = {};
  for (const c of changes) byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
  const involved = [
    ...routing.map((r) => ({ model: r.model_name, version: r.model_version })),
    ...changes.map((c) => ({ model: c.model, version: c.version })),
  ];
  const files = new Map<string, string>();
  files.set(
    'model-governance/routing.json',
    json({ ...period, routes: Array.isArray(routeRows) ? routing : routeRows }),
  );
  files.set('model-governance/registry-changes.jsonl', changes.map((c) => `${JSON.stringify(c)}\n`).join(''));
  files.set(
    'model-governance/versions.json',
    json({ ...period, versions: registry === null ? [] : versionHistories(registry, involved, to) }),
  );
  files.set(
    'model-governance/summary.json',
    json({
      ...period,
      log: status,
      changes: changes.length,
      by_kind: byKind,
      models: [...new Set(involved.map((v) => v.model))].sort(),
      unaudited: unaudited.map((c) => `${c.model}/${c.change_id}`),
      unknown_rollout_ids:
        registry === null
          ? null
          : [
              ...new Set(
                routing.filter((r) => r.rollout_id !== null && r.rollout_record === null).map((r) => r.rollout_id),
              ),
            ],
      unregistered_routed_artifacts:
        registry === null
          ? null
          : routing
              .filter((r) => r.routing_source === 'registry' && r.artifact_registered === false)
              .map((r) => ({
                model: r.model_name,
                version: r.model_version,
                artifact_sha256: r.model_artifact_sha256,
              })),
    }),
  );
  return { files, read: status.read, changes: changes.length, unaudited: unaudited.length };
}
