/**
 * `vigil schemas check|register`: thin wrappers over adapters/avro/check.ts and adapters/registry/register.ts.
 *
 * - `check` exits 1 when a check fails (each failure on stderr: subject, versions, avsc's resolver error), 2 when the
 *   schema tree itself cannot be read (bad subjects.json, a .avsc that is not Avro).
 * - `register` registers every subject's versions oldest first and sets each subject's compatibility level; running
 *   it again changes nothing. Each version it registers is an audit entry `schema.register` (target
 *   `schema:<subject>@<version> id:<id> sha256:<canonical JSON digest>`: a schema holds nothing personal, so no
 *   hashing key is needed) and each level it sets a `schema.compatibility` entry, actor `--actor` (default the OS
 *   user), role operator; the audit log must open before anything is registered (cli/commands/control-audit.ts).
 */
import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { checkSchemas } from '../../adapters/avro/check.ts';
import { DEFAULT_SCHEMA_DIR, loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { createSchemaRegistry, type RegisterReport, registerRepo } from '../../adapters/registry/index.ts';
import { canonicalJson } from '../../audit/entry.ts';
import type { ControlChange } from '../../identity/service.ts';
import { VigilError } from '../../runtime/errors.ts';
import { type ControlAuditFlags, controlAudit, controlAuditOptions } from './control-audit.ts';

interface CommonOptions extends ControlAuditFlags {
  actor?: string;
  dir: string;
  json?: boolean;
  registryUrl?: string;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function check(options: CommonOptions & { registry?: boolean }): Promise<void> {
  const repo = loadSchemaRepo(options.dir);
  const registry = options.registry || options.registryUrl ? createSchemaRegistry(options.registryUrl) : undefined;
  const report = await checkSchemas(repo, registry ? { registry } : {});
  if (options.json) {
    print(JSON.stringify(report));
    for (const problem of report.problems) process.stderr.write(`vigil: schemas check: ${problem}\n`);
  } else {
    const mark = (ok: boolean): string => (ok ? 'ok  ' : 'FAIL');
    const details = (problems: readonly { message: string }[]): void => {
      for (const p of problems) print(`          ${p.message}`);
    };
    print(`schemas check: ${report.dir}${report.registry ? ` and registry ${report.registry}` : ''}`);
    for (const s of report.subjects) {
      print(`  ${mark(s.repo.problems.length === 0)}  ${s.name} (${s.subject}): ${s.repo.summary}`);
      details(s.repo.problems);
      if (s.registry) {
        print(`  ${mark(s.registry.problems.length === 0)}  ${s.name} in the registry: ${s.registry.summary}`);
        details(s.registry.problems);
      }
    }
    const t = report.types;
    if (t.status === 'skipped') print(`  skip  generated types: ${t.reason}`);
    else print(`  ${mark(t.status === 'current')}  generated types: ${t.files.length} ${t.status}`);
    if (t.status === 'stale') for (const file of t.files) print(`          ${file} (run npm run schemas:types)`);
    const f = report.fixtures;
    if (f.kept) {
      print(
        `  ${mark(f.problems.length === 0 && f.missing.length === 0)}  golden fixtures: ${f.checked - f.problems.length} of ${f.checked} decode with the newest reader`,
      );
      for (const p of f.problems) print(`          ${p}`);
      for (const m of f.missing) print(`          ${m} has no fixtures (run npm run schemas:fixtures)`);
    } else {
      print('  skip  golden fixtures: none kept in this tree');
    }
  }
  if (!report.ok) {
    process.stderr.write(`vigil: schemas check failed: ${report.problems.length} problem(s)\n`);
    process.exitCode = 1;
  }
}

function osUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** The audit entries of what a registration changed (nothing when it was all registered already). */
export function schemaChanges(
  report: RegisterReport,
  repo: ReturnType<typeof loadSchemaRepo>,
  actor: string,
  at: number,
): ControlChange[] {
  const changes: ControlChange[] = [];
  for (const s of report.subjects) {
    const versions = repo.get(s.name).versions;
    for (const v of s.versions) {
      if (v.action !== 'registered') continue;
      const schema = versions.find((x) => x.version === v.repoVersion)?.schema;
      const sha256 = createHash('sha256').update(canonicalJson(schema)).digest('hex');
      const target = `schema:${s.subject}@${v.version} id:${v.id} sha256:${sha256}`;
      changes.push({ actor, action: 'schema.register', target, at });
    }
    if (s.previousCompatibility !== s.compatibility) {
      changes.push({ actor, action: 'schema.compatibility', target: `schema:${s.subject} ${s.compatibility}`, at });
    }
  }
  return changes;
}

async function register(options: CommonOptions): Promise<void> {
  const repo = loadSchemaRepo(options.dir);
  const registry = createSchemaRegistry(options.registryUrl);
  const audit = controlAudit(options, { hashKey: false });
  await audit.ready();
  const report = await registerRepo(registry, repo);
  for (const change of schemaChanges(report, repo, options.actor?.trim() || osUser(), Date.now())) {
    await audit.record(change).catch((error: unknown) => {
      throw new VigilError(
        'AUDIT_UNAVAILABLE',
        `${change.target} is registered but its audit entry could not be appended: ${(error as Error).message}`,
        { cause: error },
      );
    });
  }
  if (options.json) {
    print(JSON.stringify(Object.fromEntries(report.subjects.map((s) => [s.subject, s.latest]))));
    return;
  }
  print(`schemas register: ${repo.dir} -> ${report.registry}`);
  for (const s of report.subjects) {
    const versions = s.versions
      .map((v) => `v${v.repoVersion} id ${v.id} as version ${v.version} (${v.action})`)
      .join('; ');
    const level =
      s.previousCompatibility === s.compatibility
        ? `${s.compatibility} (already set)`
        : `${s.compatibility} (set; was ${s.previousCompatibility ?? 'unset'})`;
    print(`  ${s.name} -> ${s.subject}: ${versions}; compatibility ${level}`);
  }
}

export function registerSchemas(program: Command): void {
  const schemas = program
    .command('schemas')
    .description('Check and register the Avro schemas (schemas/avro): compatibility, generated types, golden fixtures');

  schemas
    .command('check')
    .description(
      'Fail when the newest version of a subject breaks its compatibility level (BACKWARD_TRANSITIVE) with an ' +
        'earlier version, when generated types are stale, or when a golden fixture no longer decodes',
    )
    .option('--dir <dir>', 'schema tree: subjects.json and <name>/v<N>.avsc', DEFAULT_SCHEMA_DIR)
    .option('--registry', 'also check against the versions registered in the registry (SCHEMA_REGISTRY_URL)')
    .option('--registry-url <url>', 'the registry to check against (implies --registry)')
    .option('--json', 'print the report as one JSON object')
    .action(check);

  controlAuditOptions(schemas.command('register'))
    .description(
      "Register every subject's versions (oldest first) in the registry and set each subject's compatibility level",
    )
    .option('--dir <dir>', 'schema tree: subjects.json and <name>/v<N>.avsc', DEFAULT_SCHEMA_DIR)
    .option('--registry-url <url>', 'registry base URL (default SCHEMA_REGISTRY_URL or the local stack)')
    .option('--json', 'print {"<subject>": {"id": n, "version": n}} for each subject')
    .option('--actor <name>', 'who registers (recorded in the audit log; default: the OS user name)')
    .action(register);
}
