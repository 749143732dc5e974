/**
 * `vigil schemas check`: everything that must hold before a schema change lands.
 * 1. The newest version of every subject keeps its compatibility level (BACKWARD_TRANSITIVE for all of Vigil's) with
 *    every earlier version kept in the repo, and, when a registry is given, with every version registered there.
 * 2. The generated TypeScript types are current (when the tree has generated types beside it).
 * 3. Every golden fixture of every version decodes with the newest reader and equals its JSON (plus defaults), and
 *    every version has fixtures (when the tree keeps fixtures at all).
 */
import { existsSync } from 'node:fs';
import type { SchemaRegistry } from '../registry/types.ts';
import type { CompatibilityProblem, SubjectCompatibility } from './compatibility.ts';
import { checkAgainstRegistered, checkRepoCompatibility } from './compatibility.ts';
import { fixturesDir, verifyGoldenFixtures } from './fixtures.ts';
import type { CompatibilityLevel, SchemaRepo } from './schemas.ts';
import { generateSchemaTypes, hasGeneratedTypes } from './typegen.ts';

export interface SubjectReport {
  readonly name: string;
  readonly subject: string;
  readonly compatibility: CompatibilityLevel;
  readonly versions: number[];
  readonly repo: { readonly summary: string; readonly problems: readonly CompatibilityProblem[] };
  readonly registry?: { readonly summary: string; readonly problems: readonly CompatibilityProblem[] };
}

export interface CheckReport {
  readonly ok: boolean;
  readonly dir: string;
  readonly registry: string | null;
  readonly subjects: readonly SubjectReport[];
  readonly types:
    | { readonly status: 'current'; readonly files: readonly string[] }
    | { readonly status: 'stale'; readonly files: readonly string[] }
    | { readonly status: 'skipped'; readonly reason: string };
  readonly fixtures: {
    /** Whether the tree keeps golden fixtures at all (a `fixtures/` folder). */
    readonly kept: boolean;
    readonly checked: number;
    readonly problems: readonly string[];
    readonly missing: readonly string[];
  };
  /** Every failure as one line: subject, versions, and the resolver error or what is stale or broken. */
  readonly problems: readonly string[];
}

function lines(spec: { name: string; subject: string }, result: SubjectCompatibility): string[] {
  return result.problems.map((p) => `${spec.name} (${spec.subject}): ${p.message}`);
}

/**
 * Runs every check over a schema tree; never throws for a failed check (the report says what failed), only when the
 * registry cannot be reached (VigilError REGISTRY_UNAVAILABLE).
 *
 * @example
 * const report = await checkSchemas(loadSchemaRepo(), { registry: createSchemaRegistry() });
 * if (!report.ok) for (const line of report.problems) console.error(line);
 */
export async function checkSchemas(
  repo: SchemaRepo,
  options: { registry?: SchemaRegistry } = {},
): Promise<CheckReport> {
  const problems: string[] = [];
  const repoResults = checkRepoCompatibility(repo);
  const subjects: SubjectReport[] = [];
  for (const [i, s] of repo.subjects.entries()) {
    const repoResult = repoResults[i]!;
    problems.push(...lines(s.spec, repoResult));
    let registry: SubjectReport['registry'];
    if (options.registry) {
      const registered = await options.registry.listVersions(s.spec.subject);
      const result = checkAgainstRegistered(s.spec, s.newest, registered);
      problems.push(...lines(s.spec, result));
      registry = { summary: result.summary, problems: result.problems };
    }
    subjects.push({
      name: s.spec.name,
      subject: s.spec.subject,
      compatibility: s.spec.compatibility,
      versions: s.versions.map((v) => v.version),
      repo: { summary: repoResult.summary, problems: repoResult.problems },
      ...(registry ? { registry } : {}),
    });
  }

  let types: CheckReport['types'];
  if (!hasGeneratedTypes(repo)) {
    types = { status: 'skipped', reason: 'no generated/ folder beside this schema tree' };
  } else {
    try {
      const report = await generateSchemaTypes(repo, { check: true });
      if (report.changed.length > 0) {
        types = { status: 'stale', files: report.changed };
        for (const file of report.changed)
          problems.push(`generated types ${file} are stale (run npm run schemas:types)`);
      } else {
        types = { status: 'current', files: report.current };
      }
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
      types = { status: 'skipped', reason: '@ovotech/avro-ts is not installed (a development dependency)' };
    }
  }

  const { outcomes, missing } = verifyGoldenFixtures(repo);
  const fixtureProblems = outcomes.flatMap((o) => (o.problem ? [o.problem] : []));
  problems.push(
    ...fixtureProblems,
    ...missing.map((m) => `${m} has no golden fixtures (run npm run schemas:fixtures)`),
  );

  return {
    ok: problems.length === 0,
    dir: repo.dir,
    registry: options.registry?.location ?? null,
    subjects,
    types,
    fixtures: { kept: existsSync(fixturesDir(repo)), checked: outcomes.length, problems: fixtureProblems, missing },
    problems,
  };
}
