/**
 * `vigil models add|approve|list|show|rollout|rollback|promote`: the model registry's operations (governance/service.ts)
 * over the model-rollouts control log, for ML teams. Shapes (issue 12; contracts, keep them stable):
 *
 *   vigil models add <dir> [--by P] [--reason T]
 *   vigil models approve <name>@<version> --by <principal> --role <role> --reason TEXT
 *   vigil models list [--json]
 *   vigil models show <name>[@<version>] [--json]
 *   vigil models rollout <name>@<version> --mode shadow|canary|live [--percent P] [--cohort EXPR] --by P --reason T
 *   vigil models rollback <name> [--version V] --by P --reason T
 *   vigil models promote <name>@<version> --by P --reason T [--since ISO] [--until ISO] [--data-dir DIR | --server]
 *
 * The log is the Kafka topic `TOPICS.modelRollouts` on KAFKA_BROKERS, or with `--control-dir DIR` the file
 * `DIR/model-rollouts.jsonl` (the embedded, no-services mode). `--models-root DIR` is where `add` copies a version
 * (default: the repository's models/ folder, which the ONNX model store reads).
 *
 * Every change is an audit entry (`model.add|approve|rollout|rollback|promote`, actor from `--by`, role operator,
 * target `model:<name>@<version>/<change_id>`) in the audit log `--audit-dir` (else the Kafka audit topic): an
 * unreachable audit log refuses the change (cli/commands/control-audit.ts).
 *
 * `--json` outputs (one line each; docs/reference/models.md):
 * - add, approve, rollout, rollback: the record appended, as on the log (keys of governance/types.ts ModelChange).
 * - list: `[{"model","live","canary","shadows","versions":[{"version","artifact_sha256","approved","mode"}]}]`.
 * - show: `{"model","route","versions":[...],"history":[...]}` (see `showJson`).
 * - promote: `{"model","version","live_version","period":{"from","to"},"passed","criteria":[{"criterion","required",
 *   "observed","passed"}],"change_id"}`, printed before a refusal too (then change_id is null and the exit code 1).
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { DEFAULT_MODELS_ROOT } from '../../adapters/onnx/model-store.ts';
import { readModelRegistry } from '../../governance/directory.ts';
import { evaluateCriteria, loadShadowPeriod } from '../../governance/promotion.ts';
import type { ModelRegistry } from '../../governance/registry.ts';
import {
  addModel,
  approveModel,
  type GovernanceContext,
  promoteModel,
  rollbackModel,
  rolloutModel,
} from '../../governance/service.ts';
import type { CriterionResult, ModelChange, RegisteredVersion, RolloutMode } from '../../governance/types.ts';
import type { ControlLog } from '../../identity/types.ts';
import { systemClock } from '../../runtime/clock.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { ModelRoute } from '../../runtime/models.ts';
import {
  MODEL_ROLLOUTS_FILE,
  type ModelRolloutsSource,
  modelRolloutsLog as runnerLog,
} from '../../runtime/runners/model-rollouts.ts';
import { openReadStore } from '../store.ts';
import { type ControlAuditFlags, controlAudit, controlAuditOptions } from './control-audit.ts';

export { MODEL_ROLLOUTS_FILE };

const MODES: readonly RolloutMode[] = ['shadow', 'canary', 'live'];

interface SharedFlags extends ControlAuditFlags {
  controlDir?: string;
  modelsRoot: string;
  json?: boolean;
}

interface ChangeFlags extends SharedFlags {
  by?: string;
  reason?: string;
}

/**
 * The model-rollouts log a process should use: the file under `controlDir` when given, else the Kafka topic.
 *
 * @example
 * const log = modelRolloutsLog({ controlDir: '.vigil/control' }); // embedded mode
 * const registry = await readModelRegistry(log);
 */
export function modelRolloutsLog(options: { controlDir?: string; brokers?: string } = {}): ControlLog<ModelChange> {
  // The runners' one definition of where the log lives (file name, topic); a CLI command always has a log.
  const source: ModelRolloutsSource = options.controlDir
    ? { kind: 'file', controlDir: options.controlDir }
    : { kind: 'kafka', brokers: options.brokers ?? resolveEndpoints().kafkaBrokers };
  const log = runnerLog(source);
  if (log === null) throw new VigilError('INTERNAL', 'a file or Kafka source always has a model-rollouts log');
  return log;
}

/** `<name>@<version>` (version required) or, with `versionOptional`, `<name>`. Names never contain '@'. */
export function parseModelRef(text: string, versionOptional = false): { model: string; version: string | undefined } {
  const at = text.indexOf('@');
  const model = at < 0 ? text : text.slice(0, at);
  const version = at < 0 ? undefined : text.slice(at + 1);
  if (model === '' || version === '' || (version === undefined && !versionOptional)) {
    throw new VigilError('CONFIG_INVALID', `${text}: expected <name>@<version>${versionOptional ? ' or <name>' : ''}`);
  }
  return { model, version };
}

/** An ISO 8601 instant with a zone (or epoch ms), as epoch ms. */
export function parseInstant(text: string, flag: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : /(Z|[+-]\d\d:?\d\d)$/i.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms)) throw new VigilError('CONFIG_INVALID', `${flag} ${text}: expected ISO 8601 with a zone`);
  return ms;
}

function defaultActor(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

function required(value: string | undefined, flag: string): string {
  const trimmed = value?.trim();
  if (!trimmed) throw new VigilError('CONFIG_INVALID', `${flag} is required and may not be empty`);
  return trimmed;
}

async function withContext<R>(
  flags: SharedFlags,
  run: (ctx: GovernanceContext) => Promise<R>,
  audited = true,
): Promise<R> {
  const audit = audited ? controlAudit(flags) : undefined;
  const log = modelRolloutsLog(flags.controlDir ? { controlDir: flags.controlDir } : {});
  try {
    return await run({ log, clock: systemClock, modelsRoot: flags.modelsRoot, ...(audit ? { audit } : {}) });
  } finally {
    await log.close();
  }
}

async function withRegistry<R>(flags: SharedFlags, run: (registry: ModelRegistry) => R): Promise<R> {
  return withContext(flags, async (ctx) => run(await readModelRegistry(ctx.log)), false);
}

function logOptions(command: Command): Command {
  return command
    .option('--control-dir <dir>', `use the file log <dir>/${MODEL_ROLLOUTS_FILE} instead of Kafka (embedded mode)`)
    .option('--models-root <dir>', 'the models folder (<root>/<name>/<version>/)', DEFAULT_MODELS_ROOT);
}

function changing(command: Command, byRequired: boolean): Command {
  return controlAuditOptions(logOptions(command))
    .option('--by <principal>', `who makes the change${byRequired ? '' : ' (default: the OS user name)'}`)
    .option('--reason <text>', 'why, kept with the change');
}

/** `--json` of the commands that append one record. */
const RECORD_JSON =
  'print the record appended, as on the log: {"change_id","model","at","actor","reason","kind","version",...the kind\'s keys}';

function printChange(change: ModelChange, json: boolean | undefined, text: string): void {
  if (json) process.stdout.write(`${JSON.stringify(change)}\n`);
  else process.stdout.write(`${text} (change ${change.change_id} by ${change.actor})\n`);
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The mode a version runs in now (null: not routed). */
function modeOf(route: ModelRoute | undefined, version: string): RolloutMode | null {
  if (!route) return null;
  if (route.live?.version === version) return 'live';
  if (route.canary?.version === version) return 'canary';
  return route.shadows.some((s) => s.version === version) ? 'shadow' : null;
}

/** `list --json`: one entry per model. */
export function listJson(registry: ModelRegistry): unknown[] {
  return registry.models().map((model) => {
    const route = registry.route(model);
    return {
      model,
      live: route?.live?.version ?? null,
      canary: route?.canary
        ? { version: route.canary.version, percent: route.canary.percent, cohort: route.canary.cohort_expr }
        : null,
      shadows: route?.shadows.map((s) => s.version) ?? [],
      versions: registry.versions(model).map((v) => ({
        version: v.version,
        artifact_sha256: v.artifact_sha256,
        approved: v.approvals.length > 0,
        mode: modeOf(route, v.version),
      })),
    };
  });
}

function versionJson(v: RegisteredVersion, route: ModelRoute | undefined) {
  return {
    version: v.version,
    artifact_sha256: v.artifact_sha256,
    manifest_sha256: v.manifest_sha256,
    output: v.manifest.output.kind,
    pccp_modification_id: v.manifest.pccp.modification_id,
    added: { change_id: v.added.change_id, at: iso(v.added.at), actor: v.added.actor },
    approvals: v.approvals.map((a) => ({ ...a, at: iso(a.at) })),
    mode: modeOf(route, v.version),
  };
}

/** A history entry: the record as on the log, `at` in ISO 8601, without the manifest an `added` record carries. */
function historyJson(change: ModelChange): Record<string, unknown> {
  const { manifest: _manifest, ...rest } = change as ModelChange & { manifest?: unknown };
  return { ...rest, at: iso(change.at) };
}

function routeJson(route: ModelRoute | undefined) {
  return {
    live: route?.live ? { version: route.live.version, rollout_id: route.live.rollout_id } : null,
    canary: route?.canary
      ? {
          version: route.canary.version,
          rollout_id: route.canary.rollout_id,
          percent: route.canary.percent,
          cohort: route.canary.cohort_expr,
        }
      : null,
    shadows: route?.shadows.map((s) => ({ version: s.version, rollout_id: s.rollout_id })) ?? [],
  };
}

/**
 * `show --json`: `{"model","route":{"live","canary","shadows"},"versions":[{"version","artifact_sha256",
 * "manifest_sha256","output","pccp_modification_id","added","approvals","mode"}],"history":[...]}`; with a version,
 * `versions` and `history` hold that version's only.
 */
export function showJson(registry: ModelRegistry, model: string, version?: string): Record<string, unknown> {
  const versions = registry.versions(model).filter((v) => version === undefined || v.version === version);
  if (versions.length === 0) {
    const what = version === undefined ? model : `${model}@${version}`;
    throw new VigilError('CONFIG_INVALID', `${what} is not in the registry: vigil models add <dir> first`);
  }
  const route = registry.route(model);
  const history = registry.history(model).filter((c) => version === undefined || c.version === version);
  return {
    model,
    route: routeJson(route),
    versions: versions.map((v) => versionJson(v, route)),
    history: history.map(historyJson),
  };
}

function describeChange(change: ModelChange): string {
  switch (change.kind) {
    case 'added':
      return `added ${change.version} (artifact sha256 ${change.artifact_sha256})`;
    case 'approved':
      return `approved ${change.version} as ${change.role}`;
    case 'rollout': {
      const scope = change.mode === 'canary' ? ` ${change.percent}% of ${change.cohort_expr || 'everyone'}` : '';
      return `rollout ${change.version} ${change.mode}${scope}`;
    }
    case 'rollback':
      return `rollback ${change.version} from ${change.from_mode}${change.restored ? `, restored ${change.restored}` : ''} (${change.trigger})`;
    case 'promoted':
      return `promoted ${change.version}${change.previous ? ` over ${change.previous}` : ''} (${change.criteria.length} criteria held)`;
  }
}

function printShow(view: ReturnType<typeof showJson>): void {
  const route = view.route as ReturnType<typeof routeJson>;
  const lines = [`${view.model}`];
  lines.push(
    `  routing: live ${route.live?.version ?? '-'}; canary ${route.canary ? `${route.canary.version} ${route.canary.percent}% of ${route.canary.cohort || 'everyone'}` : '-'}; shadows ${route.shadows.map((s) => s.version).join(', ') || '-'}`,
  );
  for (const v of view.versions as ReturnType<typeof versionJson>[]) {
    lines.push(`  ${v.version}  ${v.mode ?? 'not routed'}  ${v.output}  PCCP ${v.pccp_modification_id}`);
    lines.push(`    artifact sha256 ${v.artifact_sha256}`, `    manifest sha256 ${v.manifest_sha256}`);
    lines.push(`    added ${v.added.at} by ${v.added.actor}`);
    for (const a of v.approvals) lines.push(`    approved ${a.at} by ${a.actor} (${a.role}): ${a.reason}`);
    if (v.approvals.length === 0) lines.push('    not approved: may run in shadow only');
  }
  lines.push('  history:');
  for (const change of view.history as (ModelChange & { at: string })[]) {
    lines.push(`    ${change.at}  ${describeChange({ ...change, at: 0 })}  by ${change.actor}: ${change.reason}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function percentOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || n > 100) {
    throw new VigilError('CONFIG_INVALID', `--percent ${text}: expected a number in (0, 100]`);
  }
  return n;
}

function modeFrom(text: string): RolloutMode {
  if (!(MODES as readonly string[]).includes(text)) {
    throw new VigilError('CONFIG_INVALID', `--mode ${text}: expected one of ${MODES.join(', ')}`);
  }
  return text as RolloutMode;
}

/** Where a shadow period starts by default: the latest rollout of the version in shadow or canary. */
export function periodStart(registry: ModelRegistry, model: string, version: string): number | undefined {
  const rollouts = registry
    .history(model)
    .filter((c) => c.kind === 'rollout' && c.version === version && c.mode !== 'live');
  return rollouts.at(-1)?.at;
}

function criteriaTable(criteria: readonly CriterionResult[]): string {
  const rows = [
    ['criterion', 'required', 'observed', 'pass'],
    ...criteria.map((c) => [c.criterion, c.required, c.observed, c.passed ? 'yes' : 'NO']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        `  ${r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}`,
    )
    .join('\n');
}

export function registerModels(program: Command): Command {
  const models = program
    .command('models')
    .description('The model registry: add, approve, roll out, roll back and promote model versions');

  changing(models.command('add <dir>'), false)
    .option('--json', RECORD_JSON)
    .description('add the version in <dir> (manifest.json + artifact) to the registry, content-addressed')
    .action(async (dir: string, flags: ChangeFlags) => {
      const actor = flags.by?.trim() || defaultActor();
      const { change, version } = await withContext(flags, (ctx) =>
        addModel(ctx, dir, { actor, reason: flags.reason?.trim() || 'added' }),
      );
      printChange(change, flags.json, `added ${version.model}@${version.version} sha256 ${version.artifact_sha256}`);
    });

  changing(models.command('approve <ref>'), true)
    .option('--json', RECORD_JSON)
    .description('approve <name>@<version> (its artifact as added): only approved versions may run canary or live')
    .option('--role <role>', "the approver's role (e.g. clinical-safety-officer, ml-lead)")
    .action(async (ref: string, flags: ChangeFlags & { role?: string }) => {
      const { model, version } = parseModelRef(ref);
      const by = {
        actor: required(flags.by, '--by'),
        role: required(flags.role, '--role'),
        reason: required(flags.reason, '--reason'),
      };
      const change = await withContext(flags, (ctx) => approveModel(ctx, model, version as string, by));
      printChange(change, flags.json, `approved ${model}@${version} as ${by.role}`);
    });

  logOptions(models.command('list'))
    .description('every model: its versions, approvals and routing now')
    .option(
      '--json',
      'one JSON array [{"model","live","canary":{"version","percent","cohort"}|null,"shadows",' +
        '"versions":[{"version","artifact_sha256","approved","mode"}]}]',
    )
    .action(async (flags: SharedFlags) => {
      const listing = await withRegistry(flags, listJson);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(listing)}\n`);
        return;
      }
      if (listing.length === 0) process.stdout.write('no models in the registry\n');
      for (const entry of listing as ReturnType<typeof listJson> as {
        model: string;
        versions: { version: string; artifact_sha256: string; approved: boolean; mode: string | null }[];
      }[]) {
        process.stdout.write(`${entry.model}\n`);
        for (const v of entry.versions) {
          process.stdout.write(
            `  ${v.version}  ${v.artifact_sha256.slice(0, 12)}  ${v.approved ? 'approved' : 'unapproved'}  ${v.mode ?? 'not routed'}\n`,
          );
        }
      }
    });

  logOptions(models.command('show <ref>'))
    .description('<name>[@<version>]: versions, sha256s, approvals, routing now and the full rollout history')
    .option(
      '--json',
      'one JSON object {"model","route":{"live","canary","shadows"},"versions":[{"version","artifact_sha256",' +
        '"manifest_sha256","output","pccp_modification_id","added","approvals","mode"}],"history":[records]}',
    )
    .action(async (ref: string, flags: SharedFlags) => {
      const { model, version } = parseModelRef(ref, true);
      const view = await withRegistry(flags, (registry) => showJson(registry, model, version));
      if (flags.json) process.stdout.write(`${JSON.stringify(view)}\n`);
      else printShow(view);
    });

  changing(models.command('rollout <ref>'), true)
    .option('--json', RECORD_JSON)
    .description('route <name>@<version>: live replaces the live version, canary any canary, shadow runs beside')
    .option('--mode <mode>', 'shadow | canary | live')
    .option('--percent <p>', "canary: share of the cohort's patients, (0, 100] (default 100)")
    .option('--cohort <expr>', 'canary: e.g. "site=A,B and firmware=2.1.0 and subgroup=age:65-79 and batch=B7"')
    .action(async (ref: string, flags: ChangeFlags & { mode?: string; percent?: string; cohort?: string }) => {
      const { model, version } = parseModelRef(ref);
      const mode = modeFrom(required(flags.mode, '--mode'));
      const percent = percentOf(flags.percent);
      if (mode !== 'canary' && (percent !== undefined || flags.cohort !== undefined)) {
        throw new VigilError('CONFIG_INVALID', '--percent and --cohort apply to --mode canary only');
      }
      const request = {
        mode,
        actor: required(flags.by, '--by'),
        reason: required(flags.reason, '--reason'),
        ...(percent === undefined ? {} : { percent }),
        ...(flags.cohort === undefined ? {} : { cohortExpr: flags.cohort }),
      };
      const change = await withContext(flags, (ctx) => rolloutModel(ctx, model, version as string, request));
      printChange(change, flags.json, `${model}@${version} rolled out ${mode}`);
    });

  changing(models.command('rollback <name>'), true)
    .option('--json', RECORD_JSON)
    .description(
      'take a version out of routing (default: the canary if one runs, else the live one, restoring the previous live)',
    )
    .option('--version <v>', 'the version to take out')
    .action(async (model: string, flags: ChangeFlags & { version?: string }) => {
      const request = {
        actor: required(flags.by, '--by'),
        reason: required(flags.reason, '--reason'),
        trigger: 'manual' as const,
        ...(flags.version === undefined ? {} : { version: flags.version }),
      };
      const change = await withContext(flags, (ctx) => rollbackModel(ctx, model, request));
      const restored = change.kind === 'rollback' && change.restored ? `, ${change.restored} live again` : '';
      printChange(change, flags.json, `${model}@${change.version} rolled back${restored}`);
    });

  changing(models.command('promote <ref>'), true)
    .description("make <name>@<version> live if its manifest's acceptance criteria hold on its shadow/canary period")
    .option('--since <iso>', "period start (default: the version's latest shadow or canary rollout)")
    .option('--until <iso>', 'period end, exclusive (default: now)')
    .option('--server', 'read the ClickHouse server at CLICKHOUSE_URL instead of the embedded store')
    .option('--data-dir <dir>', 'embedded store directory (default: the one npm start fills)')
    .option(
      '--json',
      'print {"model","version","live_version","period":{"from","to"},"passed","criteria":[{"criterion","required",' +
        '"observed","passed"}],"change_id"} (also when refused: change_id null)',
    )
    .action(
      async (
        ref: string,
        flags: ChangeFlags & { since?: string; until?: string; server?: boolean; dataDir?: string },
      ) => {
        const { model, version } = parseModelRef(ref) as { model: string; version: string };
        const by = { actor: required(flags.by, '--by'), reason: required(flags.reason, '--reason') };
        await withContext(flags, async (ctx) => {
          const registry = await readModelRegistry(ctx.log);
          const candidate = registry.version(model, version);
          if (!candidate) {
            throw new VigilError(
              'CONFIG_INVALID',
              `${model}@${version} is not in the registry: vigil models add <dir> first`,
            );
          }
          const since =
            flags.since === undefined ? periodStart(registry, model, version) : parseInstant(flags.since, '--since');
          if (since === undefined) {
            throw new VigilError(
              'CONFIG_INVALID',
              `${model}@${version} never ran in shadow or canary: roll it out first, or pass --since`,
            );
          }
          const until = flags.until === undefined ? ctx.clock.now() : parseInstant(flags.until, '--until');
          const liveVersion = registry.route(model)?.live?.version ?? null;
          const live = liveVersion === null ? undefined : registry.version(model, liveVersion);
          const store = openReadStore(flags);
          const data = await (async () => {
            try {
              return await loadShadowPeriod(store, {
                model,
                version,
                since,
                until,
                liveVersion,
                liveOutput: live?.manifest.output.kind ?? null,
                // Outcomes are known up to now: an event's window may close after the period ends.
                asOf: ctx.clock.now(),
              });
            } finally {
              await store.close();
            }
          })();
          const criteria = evaluateCriteria(candidate.manifest, data);
          const passed = criteria.every((c) => c.passed);
          const summary = {
            model,
            version,
            live_version: liveVersion,
            period: { from: iso(since), to: iso(until) },
            passed,
            criteria,
          };
          const print = (changeId: string | null) => {
            if (flags.json) process.stdout.write(`${JSON.stringify({ ...summary, change_id: changeId })}\n`);
          };
          if (!flags.json) {
            process.stdout.write(
              `${model}@${version} against live ${liveVersion ?? '(none)'}, ${iso(since)} .. ${iso(until)}\n${criteriaTable(criteria)}\n`,
            );
          }
          try {
            const change = await promoteModel(ctx, model, version, {
              ...by,
              criteria,
              period: { from: since, to: until },
              liveVersion,
            });
            print(change.change_id);
            if (!flags.json)
              process.stdout.write(`promoted ${model}@${version} (change ${change.change_id} by ${change.actor})\n`);
          } catch (error) {
            print(null);
            throw error;
          }
        });
      },
    );

  return models;
}
