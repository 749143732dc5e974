/**
 * The audit log every control-plane command records its changes in (`vigil devices`, `vigil schemas register`,
 * `vigil principals add|revoke`): the same place and defaults as `vigil audit` and the read commands
 * (access/cli.ts) — the JSON-lines file store under `--audit-dir`, else the Kafka audit topic; the hashing key
 * `.vigil/audit/hash.key`.
 *
 * Policy (docs/reference/audit-log.md, "Control-plane changes"): the log must take an entry before the change is
 * made (`ready`: the hashing key loads and the store opens, else the command is refused and nothing changes); the
 * entry is appended after the change is durable, with `appendOnce` (fenced appends retry) and up to three rounds on
 * other store errors. A change whose entry still cannot be appended fails the command (exit 1) naming the change.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_KEY_DIR, KEY_FILES, loadHashKey } from '../../audit/keys.ts';
import { appendOnce, openAuditLog } from '../../audit/log.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import type { ControlAudit, ControlChange } from '../../identity/service.ts';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';

export interface ControlAuditFlags {
  readonly auditDir?: string;
  readonly auditTopic?: string;
  readonly auditHashKey?: string;
}

/** The role a control-plane change is recorded in: changes are made by the platform's operators. */
export const CONTROL_ROLE = 'operator';
/** The purpose of every control-plane entry. */
export const CONTROL_PURPOSE = 'change';

const ROUNDS = 3;

/** Adds the audit-log flags to a command that changes the control plane. */
export function controlAuditOptions(command: Command): Command {
  return command
    .option('--audit-dir <dir>', 'the audit log file store (audit.jsonl in DIR) instead of the Kafka audit topic')
    .option('--audit-topic <topic>', 'the Kafka audit topic (default: the audit log topic, VIGIL_TOPIC_PREFIX applies)')
    .option('--audit-hash-key <file>', 'the audit hashing key', join(DEFAULT_KEY_DIR, KEY_FILES.hash));
}

/**
 * The real audit log as the identity service's `ControlAudit` port (also used by schemas and principals).
 *
 * @example
 * const audit = controlAudit({ auditDir: '.vigil/audit' });
 * await audit.ready();
 * await audit.record({ actor: 'ops-1', action: 'schema.register', target: 'schema:vitals-value', details, at: Date.now() });
 */
export function controlAudit(
  flags: ControlAuditFlags,
  options: { clock?: Clock; hashKey?: boolean } = {},
): ControlAudit {
  const clock = options.clock ?? systemClock;
  // Entries without details (a schema: nothing personal, its fingerprint in the target) need no hashing key.
  const hashKey =
    options.hashKey === false ? undefined : loadHashKey(flags.auditHashKey ?? join(DEFAULT_KEY_DIR, KEY_FILES.hash));
  const store = () =>
    flags.auditDir
      ? openFileAuditStore(flags.auditDir)
      : openKafkaAuditStore({ brokers: resolveEndpoints().kafkaBrokers, topic: flags.auditTopic ?? TOPICS.auditLog });
  const open = () => openAuditLog({ store: store(), clock, ...(hashKey ? { hashKey } : {}) });
  return {
    async ready() {
      const log = await open();
      await log.close();
    },
    async record(change: ControlChange) {
      const entry = {
        actor: change.actor,
        role: CONTROL_ROLE,
        action: change.action,
        target: change.target,
        purpose: CONTROL_PURPOSE,
        ...(change.details === undefined ? {} : { details: change.details }),
        at: change.at,
      };
      for (let round = 1; ; round++) {
        try {
          await appendOnce(open, entry);
          return;
        } catch (error) {
          if (round >= ROUNDS) throw error;
          await new Promise((r) => setTimeout(r, 200 * round));
        }
      }
    },
  };
}

/**
 * The entry of a pipeline version going live (issue 11, "pipeline version deployed"): a distributed worker's start,
 * recorded by `vigil run` before it consumes. The definition hash is the SHA-256 of the pipeline module's source, so
 * an auditor can match the entry to the file in version control.
 *
 * @example
 * await controlAudit(flags).record(pipelineDeployChange({ name: 'vitals', version: '1' }, readFileSync(file), 'ops-1', Date.now()));
 */
export function pipelineDeployChange(
  pipeline: { readonly name: string; readonly version: string },
  source: Buffer | string,
  actor: string,
  at: number,
): ControlChange {
  const sha256 = createHash('sha256').update(source).digest('hex');
  return {
    actor,
    action: 'pipeline.deploy',
    target: `pipeline:${pipeline.name}@${pipeline.version} sha256:${sha256}`,
    at,
  };
}
