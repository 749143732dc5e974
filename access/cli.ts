/**
 * What every read command shares: the credential (never a flag: secrets stay off command lines and out of shell
 * history), the authenticator (the principals file, or the IdP when VIGIL_OIDC_CONFIG names its config), the role
 * and purpose flags, and the audit log the read is recorded in — at the same place and with the same defaults as
 * `vigil audit` (cli/commands/audit.ts): the JSON-lines file store under `--audit-dir`, else the Kafka audit topic;
 * the hashing key `.vigil/audit/hash.key`.
 *
 *   VIGIL_TOKEN=vgl_...            the API token itself, or
 *   VIGIL_TOKEN_FILE=~/.vigil-token a file holding it (must not be readable by group or others)
 *   VIGIL_PRINCIPALS=FILE          the principals file (default .vigil/access/principals.json)
 *   VIGIL_OIDC_CONFIG=FILE         use the IdP instead (access/oidc.ts); the token is then the IdP's JWT
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { AuditEntryInput } from '../audit/entry.ts';
import { DEFAULT_KEY_DIR, KEY_FILES, loadHashKey } from '../audit/keys.ts';
import { type AuditLog, appendOnce, openAuditLog } from '../audit/log.ts';
import { openFileAuditStore } from '../audit/stores/file.ts';
import { openKafkaAuditStore } from '../audit/stores/kafka.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../runtime/endpoints.ts';
import { VigilError } from '../runtime/errors.ts';
import { oidcAuthenticator } from './oidc.ts';
import { type Authenticator, DEFAULT_PRINCIPALS_FILE, fileAuthenticator, readPrincipals } from './principals.ts';
import type { AuditAppender } from './read.ts';

export interface AccessFlags {
  readonly role?: string;
  readonly purpose?: string;
  readonly auditDir?: string;
  readonly auditTopic?: string;
  readonly auditHashKey?: string;
}

/** Adds the role, purpose and audit-log flags to a read command. */
export function accessOptions(command: Command): Command {
  return command
    .option('--role <role>', 'the role to act in, when the principal holds several')
    .option('--purpose <slug>', 'why you read this (recorded in the audit log; required for clinical reads)')
    .option('--audit-dir <dir>', 'the audit log file store (audit.jsonl in DIR) instead of the Kafka audit topic')
    .option('--audit-topic <topic>', 'the Kafka audit topic (default: the audit log topic, VIGIL_TOPIC_PREFIX applies)')
    .option('--audit-hash-key <file>', 'the audit hashing key', join(DEFAULT_KEY_DIR, KEY_FILES.hash));
}

/** The caller's credential from the environment: VIGIL_TOKEN, else the file VIGIL_TOKEN_FILE names; null if neither. */
export function credentialFromEnv(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.VIGIL_TOKEN) return env.VIGIL_TOKEN.trim();
  const file = env.VIGIL_TOKEN_FILE;
  if (!file) return null;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    throw new VigilError('UNAUTHENTICATED', `VIGIL_TOKEN_FILE names ${file}, which cannot be read`);
  }
  if ((mode & 0o077) !== 0) {
    throw new VigilError('UNAUTHENTICATED', `the token file ${file} is readable by others: chmod 600 it`);
  }
  return readFileSync(file, 'utf8').trim();
}

export function principalsPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.VIGIL_PRINCIPALS || DEFAULT_PRINCIPALS_FILE;
}

/** The IdP when VIGIL_OIDC_CONFIG is set, else the principals file. */
export function authenticatorFromEnv(env: NodeJS.ProcessEnv = process.env): Authenticator {
  if (env.VIGIL_OIDC_CONFIG) {
    let config: unknown;
    try {
      config = JSON.parse(readFileSync(env.VIGIL_OIDC_CONFIG, 'utf8'));
    } catch {
      throw new VigilError(
        'CONFIG_INVALID',
        `VIGIL_OIDC_CONFIG names ${env.VIGIL_OIDC_CONFIG}, which is not readable JSON`,
      );
    }
    return oidcAuthenticator(config as Parameters<typeof oidcAuthenticator>[0]);
  }
  return fileAuthenticator(principalsPath(env));
}

/** The deployment's small-cell threshold (principals file `min_cell`), if it sets one. */
export function minCellFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (env.VIGIL_OIDC_CONFIG) return undefined;
  return readPrincipals(principalsPath(env)).min_cell;
}

/**
 * The audit appender a read is recorded with (no checkpoint key here: `vigil audit checkpoint` signs apart). The
 * hashing key is loaded now, so a missing key fails before any data is read. Each append opens the log, appends and
 * closes it (`appendOnce`): on Kafka, a claim fences any other writer first and a fenced append retries, so two reads
 * at once never write the same index. `appendRun` does the same for a read entry and its event-reference companions
 * (event-refs.ts); `hashKey` is the key those references are made with.
 *
 * @example
 * const audit = accessAuditAppender({ auditDir: '.vigil/audit' });
 * await audit({ actor: 'analyst-7', role: 'analyst', action: 'query.run', target: 'query:x', purpose: 'surveillance', read: rows });
 */
export function accessAuditAppender(flags: AccessFlags, clock: Clock = systemClock): AuditAppender {
  const hashKey = loadHashKey(flags.auditHashKey ?? join(DEFAULT_KEY_DIR, KEY_FILES.hash));
  const store = () =>
    flags.auditDir
      ? openFileAuditStore(flags.auditDir)
      : openKafkaAuditStore({ brokers: resolveEndpoints().kafkaBrokers, topic: flags.auditTopic ?? TOPICS.auditLog });
  const open = () => openAuditLog({ store: store(), clock, hashKey });
  const append = (entry: AuditEntryInput) => appendOnce(open, entry);
  return Object.assign(append, {
    hashKey,
    appendRun: (entries: readonly AuditEntryInput[]) => appendRun(open, entries),
  });
}

/**
 * `appendOnce` for a run of entries: one claim of the log, every entry appended in order (consecutive indexes, one
 * group per transaction or fsync), then closed. A fenced run is appended again whole in a fresh claim, so a read may
 * be recorded twice, never partly.
 */
export async function appendRun(
  open: () => Promise<AuditLog>,
  entries: readonly AuditEntryInput[],
  attempts = 5,
): Promise<{ readonly first: number }> {
  if (entries.length === 0) throw new RangeError('appendRun needs at least one entry');
  for (let attempt = 1; ; attempt++) {
    const log = await open();
    try {
      // Called in order without waiting: the log assigns indexes in call order and stores them as one group.
      const landed = await Promise.all(entries.map((entry) => log.append(entry)));
      return { first: landed[0]!.index };
    } catch (error) {
      const fenced =
        error instanceof VigilError && (error.code === 'KAFKA_FENCED' || error.code === 'KAFKA_TRANSACTION_ABORTED');
      if (!fenced || attempt >= attempts) throw error;
    } finally {
      await log.close().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, Math.random() * 250 * attempt));
  }
}
