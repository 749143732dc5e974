/**
 * `vigil devices enroll|rotate|revoke|suspend|resume|assign|list`: the identity service's operations
 * (identity/service.ts) over the device-identity control log.
 *
 * The log is the Kafka topic `TOPICS.deviceIdentity` on KAFKA_BROKERS, or with `--control-dir DIR` the file
 * `DIR/device-identity.jsonl` (the embedded, no-services mode). `enroll --json` prints exactly
 * `{"device_id","fingerprint","not_after"}` (not_after in ISO 8601): scripts and the fleet simulator read it.
 *
 * Every change is an audit entry (`device.enroll|rotate|revoke|suspend|resume|assign|certificate_revoke`, actor from
 * `--actor`, role operator, target `device:<device_id>/<change_id>`, the change as a keyed digest) in the audit log
 * `--audit-dir` (else the Kafka audit topic): an unreachable audit log refuses the change (cli/commands/control-audit.ts).
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { FileControlLog } from '../../adapters/file/control-log.ts';
import { KafkaControlLog } from '../../adapters/kafka/control-log.ts';
import { loadPki, SIGNING_ALGORITHMS } from '../../identity/pki.ts';
import { parseIdentityChange } from '../../identity/records.ts';
import {
  type AssignmentRequest,
  assignDevice,
  enrollDevice,
  type IdentityContext,
  type IssuedFiles,
  listDevices,
  parseTime,
  revokeCertificate,
  rotateDevice,
  type StatusAction,
  setDeviceStatus,
} from '../../identity/service.ts';
import type { ControlLog, IdentityChange, SigningAlgorithm } from '../../identity/types.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { type ControlAuditFlags, controlAudit, controlAuditOptions } from './control-audit.ts';
import { DEFAULT_PKI_DIR } from './pki.ts';

export const DEVICE_IDENTITY_FILE = 'device-identity.jsonl';

interface SharedFlags extends ControlAuditFlags {
  pkiDir: string;
  controlDir?: string;
  actor?: string;
  reason?: string;
  json?: boolean;
}

/**
 * The device-identity log a process should use: the file under `controlDir` when given, else the Kafka topic.
 *
 * @example
 * const log = deviceIdentityLog({ controlDir: '.vigil/control' }); // embedded mode
 * const directory = await openDeviceDirectory(log);
 */
export function deviceIdentityLog(options: { controlDir?: string; brokers?: string } = {}): ControlLog<IdentityChange> {
  if (options.controlDir) {
    return new FileControlLog(join(options.controlDir, DEVICE_IDENTITY_FILE), { parse: parseIdentityChange });
  }
  return new KafkaControlLog({
    brokers: options.brokers ?? resolveEndpoints().kafkaBrokers,
    topic: TOPICS.deviceIdentity,
    parse: parseIdentityChange,
  });
}

function defaultActor(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

async function withContext<R>(
  flags: SharedFlags,
  needsPki: boolean,
  run: (ctx: IdentityContext) => Promise<R>,
  audited = true,
): Promise<R> {
  const pki = needsPki ? loadPki(flags.pkiDir) : undefined;
  const audit = audited ? controlAudit(flags) : undefined;
  const log = deviceIdentityLog(flags.controlDir ? { controlDir: flags.controlDir } : {});
  try {
    return await run({
      log,
      actor: flags.actor?.trim() || defaultActor(),
      clock: systemClock,
      ...(pki ? { pki } : {}),
      ...(audit ? { audit } : {}),
    });
  } finally {
    await log.close();
  }
}

function shared(command: Command): Command {
  return controlAuditOptions(command)
    .option('--pki-dir <dir>', 'the PKI vigil pki init wrote', DEFAULT_PKI_DIR)
    .option('--control-dir <dir>', `use the file log <dir>/${DEVICE_IDENTITY_FILE} instead of Kafka (embedded mode)`)
    .option('--actor <name>', 'who makes the change (default: the OS user name)')
    .option('--reason <text>', 'why, kept with the change');
}

function days(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new VigilError('CONFIG_INVALID', `--days must be a positive integer`);
  return n;
}

function algorithm(text: string | undefined): SigningAlgorithm | undefined {
  if (text === undefined) return undefined;
  if (!(SIGNING_ALGORITHMS as readonly string[]).includes(text)) {
    throw new VigilError('CONFIG_INVALID', `--algorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  }
  return text as SigningAlgorithm;
}

/** All three of --site, --patient-ref and --consent, or none. */
function assignmentFrom(flags: {
  site?: string;
  patientRef?: string;
  consent?: string;
}): AssignmentRequest | undefined {
  const given = [flags.site, flags.patientRef, flags.consent].filter((v) => v !== undefined);
  if (given.length === 0) return undefined;
  if (given.length < 3 || !flags.site || !flags.patientRef || !flags.consent) {
    throw new VigilError('CONFIG_INVALID', 'an assignment needs all of --site, --patient-ref and --consent');
  }
  return { site_id: flags.site, patient_ref: flags.patientRef, consent_context: flags.consent };
}

function printIssued(issued: IssuedFiles, json: boolean | undefined, verb: string): void {
  const notAfter = new Date(issued.not_after).toISOString();
  if (json) {
    const line = { device_id: issued.device_id, fingerprint: issued.fingerprint, not_after: notAfter };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  } else {
    process.stdout.write(
      `${verb} ${issued.device_id}: certificate ${issued.fingerprint} valid until ${notAfter}\n` +
        `  ${issued.certPath}\n  ${issued.keyPath}\n`,
    );
  }
}

export function registerDevices(program: Command): void {
  const devices = program.command('devices').description('Enrol and manage devices (the device-identity log)');

  shared(devices.command('enroll <device_id>'))
    .description('issue a certificate and key into --out and enrol the device (optionally assigned from now)')
    .requiredOption('--out <dir>', 'where to write <device_id>.crt and <device_id>.key')
    .option('--site <site>', 'site the device serves (with --patient-ref and --consent)')
    .option('--patient-ref <pseudonym>', 'patient pseudonym the device serves')
    .option('--consent <context>', 'consent context')
    .option('--days <n>', 'certificate lifetime in days (default 30)')
    .option('--algorithm <alg>', 'ES256 | EdDSA (default ES256)')
    .option('--json', 'print {"device_id","fingerprint","not_after"}')
    .action(
      async (
        deviceId: string,
        flags: SharedFlags & {
          out: string;
          site?: string;
          patientRef?: string;
          consent?: string;
          days?: string;
          algorithm?: string;
        },
      ) => {
        const assignment = assignmentFrom(flags);
        const lifetime = days(flags.days);
        const alg = algorithm(flags.algorithm);
        const issued = await withContext(flags, true, (ctx) =>
          enrollDevice(ctx, deviceId, {
            outDir: flags.out,
            ...(lifetime === undefined ? {} : { days: lifetime }),
            ...(alg === undefined ? {} : { algorithm: alg }),
            ...(assignment === undefined ? {} : { assignment }),
            ...(flags.reason === undefined ? {} : { reason: flags.reason }),
          }),
        );
        printIssued(issued, flags.json, 'enrolled');
      },
    );

  shared(devices.command('rotate <device_id>'))
    .description('issue a new certificate and key (the previous certificate stays valid until it expires)')
    .requiredOption('--out <dir>', 'where to write <device_id>.crt and <device_id>.key')
    .option('--days <n>', 'certificate lifetime in days (default 30)')
    .option('--algorithm <alg>', 'ES256 | EdDSA (default: that of the newest certificate)')
    .option('--json', 'print {"device_id","fingerprint","not_after"}')
    .action(async (deviceId: string, flags: SharedFlags & { out: string; days?: string; algorithm?: string }) => {
      const lifetime = days(flags.days);
      const alg = algorithm(flags.algorithm);
      const issued = await withContext(flags, true, (ctx) =>
        rotateDevice(ctx, deviceId, {
          outDir: flags.out,
          ...(lifetime === undefined ? {} : { days: lifetime }),
          ...(alg === undefined ? {} : { algorithm: alg }),
          ...(flags.reason === undefined ? {} : { reason: flags.reason }),
        }),
      );
      printIssued(issued, flags.json, 'rotated');
    });

  const statusCommand = (action: StatusAction, description: string): Command =>
    shared(devices.command(`${action} <device_id>`))
      .description(description)
      .option('--json', 'print the change appended (null when the status was already in force)');
  const reasonOf = (flags: SharedFlags) => (flags.reason === undefined ? {} : { reason: flags.reason });

  statusCommand('revoke', 'revoke the device (final), or with --certificate only one of its certificates')
    .option('--certificate <fingerprint>', 'revoke only this certificate (SHA-256, hex)')
    .action(async (deviceId: string, flags: SharedFlags & { certificate?: string }) => {
      const change = await withContext(flags, false, (ctx) =>
        flags.certificate
          ? revokeCertificate(ctx, deviceId, flags.certificate, reasonOf(flags))
          : setDeviceStatus(ctx, deviceId, 'revoke', reasonOf(flags)),
      );
      report(change, flags.json, flags.certificate ? `certificate ${flags.certificate} revoked` : 'revoked');
    });
  for (const [action, description, done] of [
    ['suspend', 'suspend the device (its connections are refused until resumed)', 'suspended'],
    ['resume', 'resume a suspended device', 'active'],
  ] as const) {
    statusCommand(action, description).action(async (deviceId: string, flags: SharedFlags) => {
      const change = await withContext(flags, false, (ctx) => setDeviceStatus(ctx, deviceId, action, reasonOf(flags)));
      report(change, flags.json, done);
    });
  }

  shared(devices.command('assign <device_id>'))
    .description('assign the device to a patient pseudonym, site and consent context from --from (default now)')
    .requiredOption('--patient-ref <pseudonym>', 'patient pseudonym')
    .requiredOption('--site <site>', 'site')
    .requiredOption('--consent <context>', 'consent context')
    .option('--from <time>', 'ISO 8601 with a zone, or epoch ms (default now)')
    .option('--json', 'print the change appended')
    .action(
      async (
        deviceId: string,
        flags: SharedFlags & { patientRef: string; site: string; consent: string; from?: string },
      ) => {
        const assignment = assignmentFrom(flags) as AssignmentRequest;
        const from = flags.from === undefined ? undefined : parseTime(flags.from);
        const change = await withContext(flags, false, (ctx) =>
          assignDevice(ctx, deviceId, assignment, {
            ...(from === undefined ? {} : { from }),
            ...reasonOf(flags),
          }),
        );
        report(change, flags.json, 'assigned');
      },
    );

  shared(devices.command('list'))
    .description('every device: status, certificates with their expiry, the assignment in force now')
    .option('--json', 'print one JSON array')
    .action(async (flags: SharedFlags) => {
      const listing = await withContext(flags, false, (ctx) => listDevices(ctx), false);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(listing)}\n`);
        return;
      }
      if (listing.length === 0) process.stdout.write('no devices enrolled\n');
      for (const device of listing) {
        const a = device.assignment;
        process.stdout.write(
          `${device.device_id}  ${device.status}  ${a ? `${a.patient_ref} @ ${a.site_id} (${a.consent_context}) since ${a.from}` : 'unassigned'}\n`,
        );
        for (const c of device.certificates) {
          process.stdout.write(
            `  ${c.fingerprint}  ${c.algorithm}  until ${c.not_after}${c.revoked ? '  REVOKED' : ''}\n`,
          );
        }
      }
    });
}

function report(change: IdentityChange | undefined, json: boolean | undefined, done: string): void {
  if (json) process.stdout.write(`${JSON.stringify(change ?? null)}\n`);
  else if (change === undefined) process.stdout.write(`nothing to do: already ${done}\n`);
  else process.stdout.write(`${change.device_id}: ${done} (change ${change.change_id} by ${change.actor})\n`);
}
