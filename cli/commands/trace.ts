/**
 * `vigil trace`: who sent one event, what transformed it, which model scored it, who saw it (evidence/trace.ts).
 *
 *   vigil trace <event_id> [--verify] [--json] [--data-dir DIR | --server]
 *                          [--role R] [--purpose SLUG] [--audit-dir DIR | --audit-topic T] [--audit-hash-key FILE]
 *                          [--audit-pub FILE] [--pki-dir DIR] [--control-dir DIR] [--no-model-rollouts]
 *
 * Reads the embedded store `npm start` fills (.vigil/embedded/clickhouse) unless `--data-dir` names another, or the
 * server at CLICKHOUSE_URL with `--server`; never migrates or writes there. Needs a principal acting as `auditor`
 * (VIGIL_TOKEN / VIGIL_TOKEN_FILE); the trace, and any refusal, is an entry of the audit log (`--audit-dir`, else the
 * Kafka audit topic) appended before anything is printed. `--json` prints one line:
 * `{"event_id","sender":{...},"raw":{...},"transformations":[...],"inferences":[...],"alerts":[...],"viewed_by":[...],
 * "verified":bool}` (docs/reference/trace.md). `--verify` also needs the device-identity log (`--control-dir`, else
 * the Kafka topic), the device CA (`--pki-dir`) and the audit checkpoint verifier key (`--audit-pub`); it exits 1
 * when the evidence does not verify.
 *
 * Each inference's routing (issue 12) is resolved against the model-rollouts log: the file
 * `<--control-dir>/model-rollouts.jsonl`, else the Kafka topic when it answers within a few seconds. Without it (no
 * file, Kafka unreachable, no topic, `--no-model-rollouts`) the trace still runs and `model_rollouts_log` says why the
 * log was not read. The `--json` keys above never change; issue 12 added keys only (docs/reference/trace.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  type AccessFlags,
  accessAuditAppender,
  accessOptions,
  authenticatorFromEnv,
  credentialFromEnv,
} from '../../access/cli.ts';
import { DEFAULT_EMBEDDED_DIR } from '../../adapters/clickhouse/index.ts';
import { DEFAULT_KEY_DIR, KEY_FILES, loadHashKey, loadVerifierKey } from '../../audit/keys.ts';
import { type AuditStore, readAll } from '../../audit/store.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import type { TraceInference, TraceModelRollouts, TraceReport, TraceVerification } from '../../evidence/trace.ts';
import { traceEvent } from '../../evidence/trace.ts';
import { readModelRegistry } from '../../governance/directory.ts';
import type { ModelRegistry } from '../../governance/registry.ts';
import type { ModelChange } from '../../governance/types.ts';
import { openDeviceDirectory } from '../../identity/directory.ts';
import type { ControlLog } from '../../identity/types.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { modelRolloutsLog as runnerRolloutsLog } from '../../runtime/runners/model-rollouts.ts';
import { openReadStore } from '../store.ts';
import { deviceIdentityLog } from './devices.ts';
import { MODEL_ROLLOUTS_FILE, modelRolloutsLog } from './models.ts';
import { DEFAULT_PKI_DIR } from './pki.ts';

interface TraceOptions extends AccessFlags {
  readonly verify?: boolean;
  readonly json?: boolean;
  readonly server?: boolean;
  readonly dataDir?: string;
  readonly auditPub: string;
  readonly pkiDir: string;
  readonly controlDir?: string;
  /** false with `--no-model-rollouts`. */
  readonly modelRollouts?: boolean;
}

/** How long a trace waits for the Kafka model-rollouts topic: an auditor offline must not wait for a broker. */
const KAFKA_ROLLOUTS_WITHIN_MS = 5_000;

/** Reads a model-rollouts log to its end within `withinMs`, then closes it; a failure is an answer, never thrown. */
async function foldWithin(log: ControlLog<ModelChange>, source: string, withinMs: number): Promise<TraceModelRollouts> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), withinMs);
  });
  try {
    const registry: ModelRegistry | 'late' = await Promise.race([readModelRegistry(log), late]);
    if (registry === 'late') {
      return {
        status: { read: false, source, problem: `not read to its end within ${withinMs} ms` },
        registry: null,
      };
    }
    return { status: { read: true, source, problem: null }, registry };
  } catch (error) {
    return { status: { read: false, source, problem: (error as Error).message }, registry: null };
  } finally {
    clearTimeout(timer);
    await log.close().catch(() => undefined);
  }
}

/**
 * The model-rollouts log for a trace or an evidence export: the file `<controlDir>/model-rollouts.jsonl` when a
 * control directory is given, else the Kafka topic (bounded wait); not read when `enabled` is false.
 *
 * @example
 * const rollouts = await readModelRollouts({ controlDir: '.vigil/embedded/control' });
 * rollouts.status; // { read: true, source: 'file:.vigil/embedded/control/model-rollouts.jsonl', problem: null }
 */
export async function readModelRollouts(options: {
  readonly controlDir?: string;
  readonly enabled?: boolean;
  readonly withinMs?: number;
}): Promise<TraceModelRollouts> {
  if (options.enabled === false) {
    return { status: { read: false, source: 'none', problem: 'not asked (--no-model-rollouts)' }, registry: null };
  }
  if (options.controlDir !== undefined) {
    const path = join(options.controlDir, MODEL_ROLLOUTS_FILE);
    const source = `file:${path}`;
    if (!existsSync(path)) return { status: { read: false, source, problem: 'no such file' }, registry: null };
    return foldWithin(modelRolloutsLog({ controlDir: options.controlDir }), source, options.withinMs ?? 60_000);
  }
  const within = options.withinMs ?? KAFKA_ROLLOUTS_WITHIN_MS;
  const log = runnerRolloutsLog({ kind: 'kafka', brokers: resolveEndpoints().kafkaBrokers, timeoutMs: within })!;
  return foldWithin(log, `kafka:${TOPICS.modelRollouts}`, within);
}

export function registerTrace(program: Command): void {
  accessOptions(program.command('trace'))
    .description('Who sent an event, what transformed it, which model scored it, who saw it (auditor; audited)')
    .argument('<event_id>', 'the event id (the envelope event_id)')
    .option('--verify', 're-check the raw hash, the device signature and the audit inclusion of its readers')
    .option('--json', 'print one JSON line')
    .option('--server', 'read the ClickHouse server at CLICKHOUSE_URL instead of the embedded store')
    .option('--data-dir <dir>', 'embedded store directory', DEFAULT_EMBEDDED_DIR)
    .option('--audit-pub <file>', 'the audit checkpoint verifier key', join(DEFAULT_KEY_DIR, KEY_FILES.verifier))
    .option('--pki-dir <dir>', 'the PKI holding the device CA (ca.crt)', DEFAULT_PKI_DIR)
    .option(
      '--control-dir <dir>',
      `the file device-identity and model-rollouts logs (embedded mode: <dir>/${MODEL_ROLLOUTS_FILE}) instead of Kafka`,
    )
    .option('--no-model-rollouts', 'do not read the model-rollouts log (each rollout_record is then null)')
    .action(async (eventId: string, options: TraceOptions) => {
      const result = await runTrace(eventId, options);
      if (options.json) process.stdout.write(`${JSON.stringify(result.report)}\n`);
      else process.stdout.write(renderTrace(result.report, result.problems, options.verify === true));
      if (options.verify && !result.report.verified) process.exitCode = 1;
    });
}

/** A reader of the audit log (never its writer: the trace's own entry goes through the access appender). */
function auditStore(options: TraceOptions): AuditStore {
  if (options.auditDir) return openFileAuditStore(options.auditDir);
  return openKafkaAuditStore({
    brokers: resolveEndpoints().kafkaBrokers,
    topic: options.auditTopic ?? TOPICS.auditLog,
    writer: false,
  });
}

async function loadVerification(
  options: TraceOptions,
): Promise<{ verification: TraceVerification; close: () => Promise<void> }> {
  const caPath = join(options.pkiDir, 'ca.crt');
  let caCertPem: string;
  try {
    caCertPem = readFileSync(caPath, 'utf8');
  } catch {
    throw new VigilError(
      'CONFIG_INVALID',
      `no device CA at ${caPath}: pass --pki-dir (the folder vigil pki init wrote)`,
    );
  }
  const auditKey = loadVerifierKey(options.auditPub);
  const log = deviceIdentityLog(options.controlDir ? { controlDir: options.controlDir } : {});
  const directory = await openDeviceDirectory(log);
  try {
    await directory.caughtUp;
  } catch (error) {
    await directory.close();
    await log.close();
    throw error;
  }
  return {
    verification: { directory: directory.registry, caCertPem, auditKey },
    close: async () => {
      await directory.close();
      await log.close();
    },
  };
}

async function runTrace(eventId: string, options: TraceOptions) {
  const hashKey = loadHashKey(options.auditHashKey ?? join(DEFAULT_KEY_DIR, KEY_FILES.hash));
  const audit = accessAuditAppender(options);
  const store = openReadStore(options);
  const closers: (() => Promise<void>)[] = [() => store.close()];
  try {
    const opened = options.verify ? await loadVerification(options) : null;
    if (opened) closers.push(opened.close);
    const modelRollouts = await readModelRollouts({
      ...(options.controlDir === undefined ? {} : { controlDir: options.controlDir }),
      enabled: options.modelRollouts !== false,
    });
    return await traceEvent(
      {
        store,
        audit,
        hashKey,
        auditRecords: async () => {
          const reader = auditStore(options);
          try {
            return await readAll(reader);
          } finally {
            await reader.close();
          }
        },
        authenticator: authenticatorFromEnv(),
        credential: credentialFromEnv(),
        ...(opened ? { verification: opened.verification } : {}),
        modelRollouts,
      },
      {
        eventId,
        verify: options.verify === true,
        ...(options.role === undefined ? {} : { role: options.role }),
        ...(options.purpose === undefined ? {} : { purpose: options.purpose }),
      },
    );
  } finally {
    for (const close of closers.reverse()) await close();
  }
}

const yesNo = (v: boolean | null): string => (v === null ? 'not checked' : v ? 'verified' : 'FAILED');

/** One inference: what ran, how it was routed, and the record and approval behind the routing. */
function inferenceLines(i: TraceInference, log: TraceReport['model_rollouts_log']): string[] {
  const { routing } = i;
  const lines = [
    `  ${i.model}@${i.version} (${i.rollout}, artifact ${i.artifact_sha256.slice(0, 12)}…): ${i.score} ${i.risk_band}`,
    `    ${routing.clinical ? 'clinical' : 'not clinical'}; routed by ${routing.source}` +
      `${routing.cohort_bucket === null ? '' : `, cohort bucket ${routing.cohort_bucket}`}` +
      `${routing.in_canary ? ', in the canary' : ''}; runtime ${i.runtime} ${i.runtime_version}, config ${i.config_hash.slice(0, 12)}…`,
  ];
  if (i.artifact_registered === false) lines.push('    artifact NOT registered under this version in the registry');
  if (i.rollout_id === null) {
    lines.push("    no rollout record: the pipeline's default version");
    return lines;
  }
  const record = i.rollout_record;
  if (record === null) {
    lines.push(
      log.read
        ? `    rollout ${i.rollout_id}: NOT in the model-rollouts log`
        : `    rollout ${i.rollout_id} (the model-rollouts log was not read)`,
    );
    return lines;
  }
  const canary = record.mode === 'canary' ? ` ${record.percent}% of ${record.cohort_expr || 'everyone'}` : '';
  lines.push(
    `    ${record.kind} ${record.change_id} (${record.mode}${canary}) at ${record.at} by ${record.actor}: ${record.reason}`,
  );
  if (record.routed_version !== i.version) {
    lines.push(`    the record routed ${record.routed_version ?? 'nothing'}, not ${i.version}`);
  }
  const approval = record.approval;
  lines.push(
    approval
      ? `    approved by ${approval.approver} as ${approval.role} at ${approval.at} (${approval.change_id}): ${approval.reason}`
      : '    no approval (a shadow may run unapproved)',
  );
  return lines;
}

/** The report for a terminal: the four questions, then the verdict. */
export function renderTrace(r: TraceReport, problems: readonly string[], verify: boolean): string {
  const lines = [`event ${r.event_id}`, '', 'who sent it'];
  lines.push(`  device ${r.sender.device_id ?? '?'} (certificate ${r.sender.certificate_fingerprint ?? '?'})`);
  lines.push(`  through gateway ${r.sender.gateway ?? '(none)'} at ${r.sender.received_at ?? '?'}`);
  lines.push(`  signature: ${yesNo(r.sender.signature_verified)}`);
  lines.push(`  raw record ${r.raw.topic ?? '?'}[${r.raw.partition ?? '?'}]@${r.raw.offset ?? '?'}`);
  lines.push(`  sha256 ${r.raw.sha256 ?? '?'}: ${yesNo(r.raw.hash_verified)}`);
  lines.push('', 'what transformed it');
  for (const t of r.transformations) lines.push(`  ${t.at}  ${t.version}  ${t.operator}`);
  if (r.transformations.length === 0) lines.push('  (nothing: the event never completed the chain)');
  lines.push('', 'which model scored it, and how it was routed');
  for (const i of r.inferences) lines.push(...inferenceLines(i, r.model_rollouts_log));
  if (r.inferences.length === 0) lines.push('  (no inference)');
  const log = r.model_rollouts_log;
  lines.push(
    `  model-rollouts log: ${log.read ? `read from ${log.source}` : `NOT read (${log.source}: ${log.problem})`}`,
  );
  lines.push('', 'alerts citing it');
  for (const a of r.alerts) lines.push(`  ${a.raised_at}  ${a.rule}@${a.rule_version} ${a.transition} ${a.band}`);
  if (r.alerts.length === 0) lines.push('  (none)');
  lines.push('', 'who saw it (before this trace)');
  for (const v of r.viewed_by) lines.push(`  ${v.at}  ${v.principal} as ${v.role} for ${v.purpose} via ${v.via}`);
  if (r.viewed_by.length === 0) lines.push('  (nobody on record)');
  lines.push('');
  if (verify) {
    lines.push(r.verified ? 'verified: yes' : 'verified: NO');
    for (const p of problems) lines.push(`  - ${p}`);
  } else {
    lines.push('verified: not asked (--verify)');
  }
  return `${lines.join('\n')}\n`;
}
