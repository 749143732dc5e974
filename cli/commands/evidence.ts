/**
 * `vigil evidence`: the signed evidence bundle for auditors (evidence/bundle.ts; docs/reference/evidence-bundle.md).
 *
 *   vigil evidence export --from T --to T --out DIR [--json] [--data-dir DIR | --server] [--control-dir DIR]
 *                         [--role R] [--purpose SLUG] [--audit-dir DIR | --audit-topic T] [--audit-hash-key FILE]
 *                         [--key FILE] [--pub FILE] [--rules FILE ...] [--promtool PATH] [--no-model-rollouts]
 *   vigil evidence verify DIR [--pub FILE] [--json]
 *
 * `export` needs a principal acting as auditor (VIGIL_TOKEN / VIGIL_TOKEN_FILE) and the audit checkpoint signer key
 * (`--key`, it signs the manifest); the export is an entry of the audit log before a file is written. `--json` prints
 * one line `{"out","files","audit_index","identity_changes","unaudited_changes","control_entries","proofs",
 * "awaiting_checkpoint","audit_ok","promtool","model_rollouts_read","model_changes","unaudited_model_changes"}` (the
 * last three added by issue 12). The model-rollouts log is `<--control-dir>/model-rollouts.jsonl`, else the Kafka topic
 * when it answers within a few seconds; without it the bundle's model-governance/summary.json says it was not read.
 * `verify --json` prints `{"ok","files","proofs","problems":[{"file","problem"}]}` and exits 1 when the bundle does
 * not verify, naming each file at fault.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import {
  type AccessFlags,
  accessAuditAppender,
  accessOptions,
  authenticatorFromEnv,
  credentialFromEnv,
} from '../../access/cli.ts';
import { openReadScope } from '../../access/read.ts';
import { DEFAULT_EMBEDDED_DIR } from '../../adapters/clickhouse/index.ts';
import { DEFAULT_KEY_DIR, KEY_FILES, loadHashKey, loadSignerKey, loadVerifierKey } from '../../audit/keys.ts';
import { readAll } from '../../audit/store.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import { exportBundle } from '../../evidence/bundle.ts';
import { verifyBundle } from '../../evidence/bundle-verify.ts';
import { parseTime } from '../../identity/service.ts';
import type { IdentityChange } from '../../identity/types.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { openReadStore } from '../store.ts';
import { deviceIdentityLog } from './devices.ts';
import { readModelRollouts } from './trace.ts';

interface ExportOptions extends AccessFlags {
  readonly from: string;
  readonly to: string;
  readonly out: string;
  readonly json?: boolean;
  readonly dataDir: string;
  readonly server?: boolean;
  readonly controlDir?: string;
  readonly key: string;
  readonly pub: string;
  readonly rules: string[];
  readonly promtool?: string;
  /** false with `--no-model-rollouts`. */
  readonly modelRollouts?: boolean;
}

const DEFAULT_RULES = ['infra/prometheus/rules.yml', 'infra/prometheus/rules.test.yml'];
const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** promtool on PATH, or null. */
function findPromtool(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'promtool');
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

async function runExport(options: ExportOptions) {
  const from = parseTime(options.from);
  const to = parseTime(options.to);
  const signerKey = loadSignerKey(options.key);
  const verifierKey = loadVerifierKey(options.pub);
  const hashKey = loadHashKey(options.auditHashKey ?? join(DEFAULT_KEY_DIR, KEY_FILES.hash));
  const rules = options.rules.length > 0 ? options.rules : DEFAULT_RULES;
  for (const file of rules) {
    if (!existsSync(file)) throw new VigilError('CONFIG_INVALID', `no rule file ${file}`);
  }
  const store = openReadStore(options, 'pass --data-dir or --server');
  try {
    const audit = accessAuditAppender(options);
    const scope = await openReadScope(
      { audit, authenticator: authenticatorFromEnv(), credential: credentialFromEnv(), store },
      {
        action: 'evidence.export',
        target: `evidence:${new Date(from).toISOString()}/${new Date(to).toISOString()}`,
        ...(options.role === undefined ? {} : { role: options.role }),
        ...(options.purpose === undefined ? {} : { purpose: options.purpose }),
      },
    );
    const identityLog = deviceIdentityLog(options.controlDir ? { controlDir: options.controlDir } : {});
    let identityChanges: IdentityChange[];
    try {
      identityChanges = (await readAll(identityLog)) as IdentityChange[];
    } finally {
      await identityLog.close();
    }
    const auditReader = options.auditDir
      ? openFileAuditStore(options.auditDir)
      : openKafkaAuditStore({
          brokers: resolveEndpoints().kafkaBrokers,
          topic: options.auditTopic ?? TOPICS.auditLog,
          writer: false,
        });
    let auditRecords: unknown[];
    try {
      auditRecords = await readAll(auditReader);
    } finally {
      await auditReader.close();
    }
    const modelRollouts = await readModelRollouts({
      ...(options.controlDir === undefined ? {} : { controlDir: options.controlDir }),
      enabled: options.modelRollouts !== false,
    });
    return await exportBundle(
      {
        scope,
        store,
        identityChanges,
        modelRollouts,
        auditRecords,
        signerKey,
        verifierKey,
        hashKey,
        ruleFiles: rules,
        promtool: options.promtool ?? findPromtool(),
        now: Date.now(),
      },
      { from, to, out: options.out },
    );
  } finally {
    await store.close();
  }
}

export function registerEvidence(program: Command): void {
  const evidence = program
    .command('evidence')
    .description('The signed evidence bundle for auditors, per control of the controls matrix (auditor; audited)');

  accessOptions(evidence.command('export'))
    .description('Write the evidence of a period into DIR with a manifest signed by the audit checkpoint key')
    .requiredOption('--from <time>', 'start of the period, inclusive (ISO 8601 with a zone, or epoch ms)')
    .requiredOption('--to <time>', 'end of the period, exclusive')
    .requiredOption('--out <dir>', 'the bundle directory (created)')
    .option('--json', 'one JSON line')
    .option('--data-dir <dir>', 'embedded store directory', DEFAULT_EMBEDDED_DIR)
    .option('--server', 'read the ClickHouse server at CLICKHOUSE_URL instead of the embedded store')
    .option(
      '--control-dir <dir>',
      'the file device-identity and model-rollouts logs (embedded mode) instead of the Kafka topics',
    )
    .option('--no-model-rollouts', 'do not read the model-rollouts log (model-governance/ then says so)')
    .option(
      '--key <file>',
      'the audit checkpoint signer key (signs the manifest)',
      join(DEFAULT_KEY_DIR, KEY_FILES.signer),
    )
    .option('--pub <file>', 'the audit checkpoint verifier key', join(DEFAULT_KEY_DIR, KEY_FILES.verifier))
    .option(
      '--rules <file>',
      'a Prometheus rule or rule-test file (repeatable; default infra/prometheus/)',
      collect,
      [],
    )
    .option('--promtool <path>', 'the promtool binary (default: promtool on PATH)')
    .action(async (options: ExportOptions) => {
      const summary = await runExport(options);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        return;
      }
      process.stdout.write(
        `evidence bundle ${summary.out}: ${summary.files} files, recorded as audit entry ${summary.audit_index}\n` +
          `  identity changes ${summary.identity_changes} (${summary.unaudited_changes} without an audit entry)\n` +
          `  control-plane entries ${summary.control_entries}: ${summary.proofs} proved, ${summary.awaiting_checkpoint} awaiting a checkpoint\n` +
          `  audit log verifies: ${summary.audit_ok ? 'yes' : 'NO'}; promtool test rules: ${summary.promtool}\n` +
          (summary.model_rollouts_read
            ? `  model registry changes ${summary.model_changes} (${summary.unaudited_model_changes} without an audit entry)\n`
            : '  model-rollouts log NOT read: model-governance/ holds what the inferences record only\n'),
      );
    });

  evidence
    .command('verify')
    .description('Re-hash every file against the signed manifest and check the proofs inside; name any file at fault')
    .argument('<dir>', 'the bundle directory')
    .option('--pub <file>', 'the audit checkpoint verifier key', join(DEFAULT_KEY_DIR, KEY_FILES.verifier))
    .option('--json', 'one JSON line')
    .action((dir: string, options: { pub: string; json?: boolean }) => {
      const result = verifyBundle(dir, loadVerifierKey(options.pub));
      if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        process.stdout.write(
          `${result.ok ? 'ok' : 'FAILED'}: ${result.files} files, ${result.proofs} inclusion proofs\n` +
            result.problems.map((p) => `  ${p.file}: ${p.problem}\n`).join(''),
        );
      }
      if (!result.ok) process.exitCode = 1;
    });
}
