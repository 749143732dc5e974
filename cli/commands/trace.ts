/**
 * `vigil trace`: who sent one event, what transformed it, which model scored it, who saw it (evidence/trace.ts).
 *
 *   vigil trace <event_id> [--verify] [--json] [--data-dir DIR | --server]
 *                          [--role R] [--purpose SLUG] [--audit-dir DIR | --audit-topic T] [--audit-hash-key FILE]
 *                          [--audit-pub FILE] [--pki-dir DIR] [--control-dir DIR]
 *
 * Reads the embedded store `npm start` fills (.vigil/embedded/clickhouse) unless `--data-dir` names another, or the
 * server at CLICKHOUSE_URL with `--server`; never migrates or writes there. Needs a principal acting as `auditor`
 * (VIGIL_TOKEN / VIGIL_TOKEN_FILE); the trace, and any refusal, is an entry of the audit log (`--audit-dir`, else the
 * Kafka audit topic) appended before anything is printed. `--json` prints one line:
 * `{"event_id","sender":{...},"raw":{...},"transformations":[...],"inferences":[...],"alerts":[...],"viewed_by":[...],
 * "verified":bool}` (docs/reference/trace.md). `--verify` also needs the device-identity log (`--control-dir`, else
 * the Kafka topic), the device CA (`--pki-dir`) and the audit checkpoint verifier key (`--audit-pub`); it exits 1
 * when the evidence does not verify.
 */
import { readFileSync } from 'node:fs';
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
import { type TraceReport, type TraceVerification, traceEvent } from '../../evidence/trace.ts';
import { openDeviceDirectory } from '../../identity/directory.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { openReadStore } from '../store.ts';
import { deviceIdentityLog } from './devices.ts';
import { DEFAULT_PKI_DIR } from './pki.ts';

interface TraceOptions extends AccessFlags {
  readonly verify?: boolean;
  readonly json?: boolean;
  readonly server?: boolean;
  readonly dataDir?: string;
  readonly auditPub: string;
  readonly pkiDir: string;
  readonly controlDir?: string;
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
    .option('--control-dir <dir>', 'the file device-identity log (embedded mode) instead of the Kafka topic')
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
  lines.push('', 'which model scored it');
  for (const i of r.inferences) {
    lines.push(
      `  ${i.model}@${i.version} (${i.rollout}, artifact ${i.artifact_sha256.slice(0, 12)}…): ${i.score} ${i.risk_band}`,
    );
  }
  if (r.inferences.length === 0) lines.push('  (no inference)');
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
