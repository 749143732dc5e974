/**
 * `vigil schemas register`: puts every subject of the repo into a registry, versions oldest first, so the registry's
 * history equals the repo's, and sets each subject's compatibility level from subjects.json. Idempotent: a version
 * already registered is found (not registered again), a level already set is left alone.
 */
import { type CompatibilityLevel, registrySubjects, type SchemaRepo } from '../avro/schemas.ts';
import type { SchemaRegistry } from './types.ts';

export interface VersionRegistration {
  /** The repo's version number (`v2.avsc` -> 2). */
  readonly repoVersion: number;
  readonly id: number;
  /** The registry's version number for it. */
  readonly version: number;
  readonly action: 'registered' | 'already registered';
}

export interface SubjectRegistration {
  readonly name: string;
  readonly subject: string;
  readonly compatibility: CompatibilityLevel;
  /** The level the subject had before (null: none set). */
  readonly previousCompatibility: CompatibilityLevel | null;
  readonly versions: readonly VersionRegistration[];
  /** The newest repo version's registration. */
  readonly latest: { readonly id: number; readonly version: number };
}

export interface RegisterReport {
  readonly registry: string;
  readonly subjects: readonly SubjectRegistration[];
}

/**
 * Registers every subject of `repo` in `registry`.
 *
 * @example
 * const report = await registerRepo(createSchemaRegistry(), loadSchemaRepo());
 * report.subjects[0].latest; // { id: 3, version: 2 }
 */
export async function registerRepo(registry: SchemaRegistry, repo: SchemaRepo): Promise<RegisterReport> {
  const subjects: SubjectRegistration[] = [];
  for (const { spec: own, versions } of repo.subjects) {
    // An alias (another topic with the same records) gets the same versions under its own subject.
    for (const subjectName of registrySubjects(own)) {
      const spec = { ...own, subject: subjectName };
      const previousCompatibility = await registry.getCompatibility(spec.subject);
      let compatibilitySet = previousCompatibility === spec.compatibility;
      const done: VersionRegistration[] = [];
      for (const v of versions) {
        const found = await registry.lookup(spec.subject, v.schema);
        if (found) {
          done.push({ repoVersion: v.version, ...found, action: 'already registered' });
        } else {
          // The level must be in force before a second version arrives, so the registry checks it; a subject that does
          // not exist yet may not accept a config, hence after its first version.
          if (!compatibilitySet && done.length > 0) {
            await registry.setCompatibility(spec.subject, spec.compatibility);
            compatibilitySet = true;
          }
          const id = await registry.register(spec.subject, v.schema);
          const registered = await registry.lookup(spec.subject, v.schema);
          done.push({ repoVersion: v.version, id, version: registered?.version ?? 0, action: 'registered' });
        }
      }
      if (!compatibilitySet) await registry.setCompatibility(spec.subject, spec.compatibility);
      const last = done.at(-1)!;
      subjects.push({
        name: spec.name,
        subject: spec.subject,
        compatibility: spec.compatibility,
        previousCompatibility,
        versions: done,
        latest: { id: last.id, version: last.version },
      });
    }
  }
  return { registry: registry.location, subjects };
}
