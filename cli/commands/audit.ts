/**
 * `vigil audit`: the verifiable audit log (issue 11; docs/reference/audit-log.md).
 *
 *   vigil audit keygen [--key-dir DIR] [--origin NAME] [--force]
 *   vigil audit verify [--json] [--dir DIR | --topic T] [--pub FILE] [--against CHECKPOINT_FILE ...]
 *   vigil audit prove <index> [--json] [--dir DIR | --topic T] [--pub FILE]
 *   vigil audit prove --consistency <old-size> [--json] ...
 *   vigil audit checkpoint [--every S [--metrics-port P]] [--dir DIR | --topic T] [--key FILE]
 *   vigil audit land [--dir DIR | --topic T] [--data-dir DIR | --server]
 *
 * `verify` and `prove` read the file store, the topic, or with `--clickhouse` the tables `land` fills (the embedded
 * store under `--data-dir`, or the server at CLICKHOUSE_URL with `--server`).
 *
 * The log is the JSON-lines file under `--dir`, else the Kafka topic (TOPICS.auditLog, or `--topic`). Keys default
 * to `.vigil/audit/` (checkpoint.key, checkpoint.pub, hash.key). `verify --json` prints one line:
 * `{"ok","entries","checkpoints","first_bad_index","first_bad_checkpoint","problem","problems":[...],"verified_size",
 * "unsigned_tail","root"}` and exits 1 when the log does not verify. `prove --json` prints the proof that
 * tools/audit-verifier/verify.mjs checks.
 *
 * `checkpoint --every S --metrics-port P` serves /healthz, /readyz (ready once its first round has read and checked the
 * log) and /metrics: vigil_audit_checkpoint_tree_size and vigil_audit_checkpoint_signed_timestamp_seconds (the last
 * checkpoint it signed; 0 until this process signs one), vigil_audit_signer_round_timestamp_seconds (its last round,
 * signed or not: a stalled signer stops moving it; alert on this one). A Kubernetes probe needs HTTP: the chart's signer runs with it.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Gauge, Registry } from 'prom-client';
import { DEFAULT_EMBEDDED_DIR, openClickHouseStore } from '../../adapters/clickhouse/index.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { parseCheckpointBody, type SignerKey } from '../../audit/checkpoint.ts';
import { landAuditRecords, readAuditRecordsFromClickHouse } from '../../audit/clickhouse.ts';
import {
  DEFAULT_KEY_DIR,
  DEFAULT_ORIGIN,
  generateAuditKeys,
  KEY_FILES,
  loadSignerKey,
  loadVerifierKey,
} from '../../audit/keys.ts';
import { proveConsistency, proveInclusion } from '../../audit/prove.ts';
import { runSigner, signStoredLog } from '../../audit/sign.ts';
import type { AuditStore } from '../../audit/store.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import { createVerifier } from '../../audit/verify.ts';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { serveMetrics } from '../../runtime/runners/metrics-server.ts';

interface WhereFlags {
  readonly dir?: string;
  readonly topic?: string;
  readonly pub?: string;
  readonly clickhouse?: boolean;
  readonly dataDir?: string;
  readonly server?: boolean;
}

function openClickHouse(flags: WhereFlags): ClickHouseStore {
  if (flags.server) return openClickHouseStore({ mode: 'server', url: resolveEndpoints().clickhouseUrl });
  return openClickHouseStore({ mode: 'embedded', path: flags.dataDir ?? DEFAULT_EMBEDDED_DIR });
}

/** The log's store; `writer: false` for the signer (it appends checkpoints only and never fences the writer). */
function openStore(flags: WhereFlags, writer = true): AuditStore {
  if (flags.dir) return openFileAuditStore(flags.dir);
  return openKafkaAuditStore({
    brokers: resolveEndpoints().kafkaBrokers,
    topic: flags.topic ?? TOPICS.auditLog,
    writer,
  });
}

/** Feeds the stored records, in log order, from ClickHouse (`--clickhouse`) or the store, without holding them all. */
async function feedRecords(flags: WhereFlags, onRecord: (record: unknown) => void): Promise<void> {
  if (flags.clickhouse) {
    const clickhouse = openClickHouse(flags);
    try {
      for (const record of await readAuditRecordsFromClickHouse(clickhouse)) onRecord(record);
    } finally {
      await clickhouse.close();
    }
    return;
  }
  const store = openStore(flags);
  try {
    const following = await store.follow(onRecord);
    try {
      await following.caughtUp;
    } finally {
      await following.close();
    }
  } finally {
    await store.close();
  }
}

async function verifiedLog(flags: WhereFlags & { against?: string[] }, keep: readonly number[] = []) {
  const key = loadVerifierKey(flags.pub ?? join(DEFAULT_KEY_DIR, KEY_FILES.verifier));
  const held = (flags.against ?? []).map((file) => readFileSync(file, 'utf8'));
  const verifier = createVerifier(key, { held, keep });
  await feedRecords(flags, (record) => verifier.add(record));
  return verifier.finish();
}

const where = (command: Command): Command =>
  command
    .option('--dir <dir>', 'the file store (audit.jsonl in DIR) instead of Kafka')
    .option('--topic <topic>', 'the Kafka topic (default: the audit log topic, VIGIL_TOPIC_PREFIX applies)')
    .option('--pub <file>', 'the checkpoint verifier key', join(DEFAULT_KEY_DIR, KEY_FILES.verifier))
    .option('--clickhouse', 'read the audit tables (`vigil audit land`) instead of the file store or topic')
    .option('--data-dir <dir>', 'with --clickhouse: the embedded store directory')
    .option('--server', 'with --clickhouse: the ClickHouse server at CLICKHOUSE_URL');

function count(value: string, what: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new VigilError('CONFIG_INVALID', `${what} must be a whole number, got '${value}'`);
  return n;
}

/** The signer's gauges and readiness: what `--metrics-port` serves. */
export interface SignerMetrics {
  readonly registry: Registry;
  /** Ready once a round has read and checked the whole log (and signed it if it grew). */
  ready(): boolean;
  /** One round done at `now`: `note` is the checkpoint it signed, or null when the tree had not grown. */
  observe(note: string | null, now: number): void;
}

/**
 * @example
 * const metrics = signerMetrics();
 * metrics.observe(note, clock.now()); // after each round
 */
export function signerMetrics(): SignerMetrics {
  const registry = new Registry();
  const treeSize = new Gauge({
    name: 'vigil_audit_checkpoint_tree_size',
    help: 'Tree size (entries) of the last checkpoint this signer signed',
    registers: [registry],
  });
  const signedAt = new Gauge({
    name: 'vigil_audit_checkpoint_signed_timestamp_seconds',
    help: 'When this signer signed its last checkpoint (Unix seconds)',
    registers: [registry],
  });
  const roundAt = new Gauge({
    name: 'vigil_audit_signer_round_timestamp_seconds',
    help: 'When the signer last read and checked the log, signing or not (Unix seconds)',
    registers: [registry],
  });
  let rounds = 0;
  return {
    registry,
    ready: () => rounds > 0,
    observe(note, now) {
      rounds += 1;
      roundAt.set(now / 1000);
      if (note === null) return;
      // A signed note: its checkpoint body, a blank line, the signatures.
      const checkpoint = parseCheckpointBody(note.slice(0, note.indexOf('\n\n') + 1));
      treeSize.set(checkpoint.size);
      signedAt.set(now / 1000);
    },
  };
}

export interface CheckpointLoopOptions {
  readonly store: AuditStore;
  readonly key: SignerKey;
  readonly everyMs: number;
  /** Signing stops when it resolves (the command: SIGTERM or SIGINT). */
  readonly stop: Promise<void>;
  readonly clock?: Clock;
  /** Serve /healthz, /readyz and /metrics on this port (0: any free port). */
  readonly metricsPort?: number;
  /** Told the metrics server once it listens. */
  readonly onMetricsServer?: (server: Server) => void;
  /** Each round's signed note, or null. */
  readonly onRound?: (note: string | null) => void;
}

/**
 * The signer at a cadence (`vigil audit checkpoint --every S [--metrics-port P]`): audit/sign.ts runSigner, with the
 * metrics server around it when a port is given. Throws, like runSigner, as soon as the log does not verify.
 *
 * @example
 * await checkpointLoop({ store, key: loadSignerKey(file), everyMs: 60_000, stop, metricsPort: 9468 });
 */
export async function checkpointLoop(options: CheckpointLoopOptions): Promise<void> {
  const clock = options.clock ?? systemClock;
  const metrics = signerMetrics();
  let server: Server | undefined;
  if (options.metricsPort !== undefined) {
    server = await serveMetrics(metrics, options.metricsPort, undefined, metrics);
    options.onMetricsServer?.(server);
  }
  try {
    await runSigner(options.store, options.key, clock, options.everyMs, options.stop, (note) => {
      metrics.observe(note, clock.now());
      options.onRound?.(note);
    });
  } finally {
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function port(value: string, what: string): number {
  const n = count(value, what);
  if (n > 65_535) throw new VigilError('CONFIG_INVALID', `${what} must be a port number (0-65535), got '${value}'`);
  return n;
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('The verifiable audit log: keys, verification, inclusion and consistency proofs, checkpoints');

  audit
    .command('keygen')
    .description('Create the checkpoint signer key, its verifier key and the hashing key (existing files are kept)')
    .option('--key-dir <dir>', 'where the key files go', DEFAULT_KEY_DIR)
    .option('--origin <name>', 'the log origin and key name', DEFAULT_ORIGIN)
    .option('--force', 'replace existing keys (checkpoints signed before no longer verify with the new key)')
    .action((flags: { keyDir: string; origin: string; force?: boolean }) => {
      const { verifier, created } = generateAuditKeys(flags.keyDir, flags.origin, flags.force === true);
      process.stdout.write(
        `${created.length > 0 ? `created ${created.join(', ')} in ${flags.keyDir}` : `keys already in ${flags.keyDir}`}\n` +
          `verifier key: ${verifier}\n`,
      );
    });

  where(audit.command('verify'))
    .description('Rebuild the tree from the stored entries, check every checkpoint; name the first bad index')
    .option('--json', 'one JSON line')
    .option(
      '--against <file>',
      'a signed checkpoint kept outside the log (repeatable): catches a log cut short with its last checkpoints',
      (file: string, files: string[]) => [...files, file],
      [] as string[],
    )
    .action(async (flags: WhereFlags & { json?: boolean; against: string[] }) => {
      const { report } = await verifiedLog(flags);
      if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else {
        process.stdout.write(
          `${report.ok ? 'ok' : 'FAILED'}: ${report.entries} entries, ${report.checkpoints} checkpoints, ` +
            `verified up to ${report.verified_size} (${report.unsigned_tail} not yet signed)\n`,
        );
        for (const p of report.problems) process.stdout.write(`  ${p.problem}\n`);
      }
      if (!report.ok) process.exitCode = 1;
    });

  where(audit.command('prove'))
    .description('An inclusion proof of an entry (or --consistency OLD_SIZE) against the latest signed checkpoint')
    .argument('[index]', 'the entry index')
    .option('--consistency <old-size>', 'a consistency proof from this tree size instead')
    .option('--json', 'one JSON line (what tools/audit-verifier/verify.mjs reads)')
    .action(async (index: string | undefined, flags: WhereFlags & { json?: boolean; consistency?: string }) => {
      if ((index === undefined) === (flags.consistency === undefined)) {
        throw new VigilError('CONFIG_INVALID', 'give an entry index or --consistency <old-size>, not both');
      }
      const entryIndex = index === undefined ? undefined : count(index, 'the entry index');
      const log = await verifiedLog(flags, entryIndex === undefined ? [] : [entryIndex]);
      const proof =
        entryIndex !== undefined
          ? proveInclusion(log, entryIndex)
          : proveConsistency(log, count(flags.consistency!, '--consistency'));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(proof)}\n`);
        return;
      }
      const head =
        proof.kind === 'inclusion'
          ? `entry ${proof.index} in the tree of ${proof.tree_size}\nentry: ${proof.entry}\n`
          : `tree of ${proof.old_size} (root ${proof.old_root}) is a prefix of the tree of ${proof.tree_size}\n`;
      process.stdout.write(
        `${head}proof:\n${proof.proof.map((h) => `  ${h}`).join('\n')}\ncheckpoint:\n${proof.checkpoint}`,
      );
    });

  audit
    .command('checkpoint')
    .description('The checkpoint signer: sign the stored tree if it grew (once, or every S seconds until stopped)')
    .option('--dir <dir>', 'the file store (audit.jsonl in DIR) instead of Kafka')
    .option('--topic <topic>', 'the Kafka topic (default: the audit log topic)')
    .option('--key <file>', 'the checkpoint signer key', join(DEFAULT_KEY_DIR, KEY_FILES.signer))
    .option('--every <seconds>', 'keep signing at this fixed cadence')
    .option('--metrics-port <port>', 'with --every: serve /healthz, /readyz and /metrics on this port')
    .action(async (flags: WhereFlags & { key: string; every?: string; metricsPort?: string }) => {
      if (flags.metricsPort !== undefined && flags.every === undefined) {
        throw new VigilError('CONFIG_INVALID', '--metrics-port needs --every (a single round serves nothing)');
      }
      const metricsPort = flags.metricsPort === undefined ? undefined : port(flags.metricsPort, '--metrics-port');
      const key = loadSignerKey(flags.key);
      const report = (note: string | null) =>
        process.stdout.write(note ? `signed:\n${note}` : 'no new entries since the last checkpoint\n');
      const store = openStore(flags, false);
      try {
        if (flags.every === undefined) {
          report(await signStoredLog(store, key, systemClock));
          return;
        }
        const everyMs = count(flags.every, '--every') * 1000;
        if (everyMs === 0) throw new VigilError('CONFIG_INVALID', '--every must be at least 1 second');
        const stop = new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
        });
        await checkpointLoop({
          store,
          key,
          everyMs,
          stop,
          ...(metricsPort === undefined ? {} : { metricsPort }),
          onRound: (note) => {
            if (note) report(note);
          },
        });
      } finally {
        await store.close();
      }
    });

  audit
    .command('land')
    .description('Copy the stored log into the ClickHouse audit tables (what is not there yet; safe to rerun)')
    .option('--dir <dir>', 'the file store (audit.jsonl in DIR) instead of Kafka')
    .option('--topic <topic>', 'the Kafka topic (default: the audit log topic)')
    .option('--data-dir <dir>', 'the embedded ClickHouse store directory', undefined)
    .option('--server', 'the ClickHouse server at CLICKHOUSE_URL')
    .option('--json', 'one JSON line: {"entries":n,"checkpoints":n}')
    .action(async (flags: WhereFlags & { json?: boolean }) => {
      const records: unknown[] = [];
      await feedRecords({ ...flags, clickhouse: false }, (record) => records.push(record));
      const clickhouse = openClickHouse(flags);
      try {
        await clickhouse.migrate();
        const landed = await landAuditRecords(clickhouse, records);
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(landed)}\n`
            : `landed ${landed.entries} entries, ${landed.checkpoints} checkpoints\n`,
        );
      } finally {
        await clickhouse.close();
      }
    });
}
