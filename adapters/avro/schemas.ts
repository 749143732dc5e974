/**
 * The repo's Avro schemas as the code sees them: `schemas/avro/subjects.json` names every subject, and each subject's
 * folder keeps every version it ever had (`v1.avsc`, `v2.avsc`, ... oldest first). Writers use the newest version;
 * compatibility checks and golden fixtures use all of them.
 *
 * Parsed avsc Types are cached per file (parsing the envelope takes ~1 ms; the hot path must never do it), and every
 * Type built here is hardened against hostile array/map counts (see ./harden.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import avsc from 'avsc';
import { z } from 'zod';
import { VigilError } from '../../runtime/errors.ts';
import { hardenedTypeHook, isHardened } from './harden.ts';

/** `schemas/avro` of this checkout: the default schema tree. */
export const DEFAULT_SCHEMA_DIR = fileURLToPath(new URL('../../schemas/avro/', import.meta.url)).replace(/\/$/, '');

/** The compatibility levels a Confluent-compatible registry understands. */
export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];

const subjectsFileSchema = z.strictObject({
  $comment: z.string().optional(),
  subjects: z
    .array(
      z.strictObject({
        /** Folder under the schema dir holding v<N>.avsc files, e.g. `envelope`. */
        name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
        /** Registry subject (TopicNameStrategy: `<topic>-value`). */
        subject: z.string().min(1),
        /** Kafka topic whose record values this subject describes. */
        topic: z.string().min(1),
        compatibility: z.enum(COMPATIBILITY_LEVELS).default('BACKWARD_TRANSITIVE'),
        /**
         * Other topics whose values are the same records (the alarm lane beside the raw topic): each gets its own
         * registry subject (TopicNameStrategy) holding the same versions, at the same level.
         */
        aliases: z.array(z.strictObject({ subject: z.string().min(1), topic: z.string().min(1) })).default([]),
      }),
    )
    .min(1),
});

export interface SubjectSpec {
  readonly name: string;
  readonly subject: string;
  readonly topic: string;
  readonly compatibility: CompatibilityLevel;
  /** Further subjects (other topics) holding the same versions: see subjects.json `aliases`. */
  readonly aliases?: readonly { readonly subject: string; readonly topic: string }[];
}

/** Every registry subject a subject spec names: its own, then its aliases'. */
export function registrySubjects(spec: SubjectSpec): string[] {
  return [spec.subject, ...(spec.aliases ?? []).map((a) => a.subject)];
}

/** One `v<N>.avsc` file. */
export interface SchemaVersion {
  readonly name: string;
  readonly version: number;
  /** Absolute path of the .avsc file. */
  readonly file: string;
  /** The schema exactly as the file holds it (parsed JSON): what `vigil schemas register` sends. */
  readonly schema: avsc.Schema;
  /** The parsed avsc Type (cached, hardened, avsc defaults: `wrapUnions: 'auto'`). */
  readonly type: avsc.Type;
}

export interface SubjectSchemas {
  readonly spec: SubjectSpec;
  /** Oldest first. Never empty. */
  readonly versions: readonly SchemaVersion[];
  readonly newest: SchemaVersion;
}

export interface SchemaRepo {
  /** The (first) schema tree this was loaded from (absolute). */
  readonly dir: string;
  /** Every schema tree this was loaded from (absolute), `dir` first. */
  readonly dirs: readonly string[];
  /** In subjects.json order. */
  readonly subjects: readonly SubjectSchemas[];
  /** A subject by folder name (`envelope`) or registry subject (`vigil.telemetry.raw-value`). */
  get(nameOrSubject: string): SubjectSchemas;
}

/** The options every Type in Vigil is built with. `wrapUnions: 'auto'` is avsc's default, spelt out: schemas/types.ts
 * relies on the payload union of records arriving wrapped by full name and `["null", X]` arriving unwrapped. */
export const AVSC_OPTIONS: Readonly<Partial<avsc.ForSchemaOptions>> = { wrapUnions: 'auto' };

/** Builds a hardened Type (see ./harden.ts) from a schema (JSON object or text) with Vigil's options. */
export function parseAvroSchema(schema: avsc.Schema | string): avsc.Type {
  const parsed = typeof schema === 'string' ? (JSON.parse(schema) as avsc.Schema) : schema;
  return avsc.Type.forSchema(parsed, { ...AVSC_OPTIONS, typeHook: hardenedTypeHook as never });
}

/** The Type itself when it is already hardened, else the same schema parsed again through `parseAvroSchema`. */
export function hardened(type: avsc.Type): avsc.Type {
  return isHardened(type) ? type : parseAvroSchema(type.schema({ exportAttrs: true }));
}

const typeCache = new Map<string, { mtimeMs: number; size: number; version: SchemaVersion }>();

function loadVersion(name: string, version: number, file: string): SchemaVersion {
  const stat = statSync(file);
  const cached = typeCache.get(file);
  if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.version;
  let schema: avsc.Schema;
  try {
    schema = JSON.parse(readFileSync(file, 'utf8')) as avsc.Schema;
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  let type: avsc.Type;
  try {
    type = parseAvroSchema(schema);
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `${file} is not a valid Avro schema: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const loaded: SchemaVersion = { name, version, file, schema, type };
  typeCache.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, version: loaded });
  return loaded;
}

/** The `v<N>.avsc` files of one subject folder, oldest first. */
export function listVersionFiles(subjectDir: string): { version: number; file: string }[] {
  let entries: string[];
  try {
    entries = readdirSync(subjectDir);
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `schema folder ${subjectDir} cannot be read`, { cause: error });
  }
  const versions = entries
    .map((file) => /^v([1-9]\d*)\.avsc$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), file: join(subjectDir, m[0]) }))
    .sort((a, b) => a.version - b.version);
  if (versions.length === 0) throw new VigilError('CONFIG_INVALID', `${subjectDir} holds no v<N>.avsc`);
  return versions;
}

/** Reads and validates `<dir>/subjects.json`. */
export function readSubjects(dir: string): SubjectSpec[] {
  const file = join(dir, 'subjects.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `${file} cannot be read as JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const parsed = subjectsFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new VigilError('CONFIG_INVALID', `${file}: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  }
  const seen = new Set<string>();
  for (const s of parsed.data.subjects) {
    for (const key of [`name:${s.name}`, ...registrySubjects(s).map((subject) => `subject:${subject}`)]) {
      if (seen.has(key)) throw new VigilError('CONFIG_INVALID', `${file}: duplicate ${key.replace(':', ' ')}`);
      seen.add(key);
    }
  }
  return parsed.data.subjects;
}

/**
 * Loads a schema tree (default: this checkout's `schemas/avro`), or several merged (`[DEFAULT_SCHEMA_DIR, extra]`: a
 * pipeline that brings its own schemas, see `PipelineDefinition.schemaDirs`); a folder or subject named by two trees
 * is an error. Cheap to call again: parsed Types are cached per file and reused while the file is unchanged.
 *
 * @example
 * const repo = loadSchemaRepo();
 * const reader = repo.get('envelope').newest.type; // telemetry-envelope-v2
 * const withTests = loadSchemaRepo([DEFAULT_SCHEMA_DIR, '/abs/test/third-pipeline/schemas']);
 */
export function loadSchemaRepo(dir: string | readonly string[] = DEFAULT_SCHEMA_DIR): SchemaRepo {
  const roots = [...new Set((typeof dir === 'string' ? [dir] : dir).map((d) => resolve(d)))];
  const first = roots[0];
  if (first === undefined) throw new VigilError('CONFIG_INVALID', 'loadSchemaRepo needs at least one schema tree');
  const subjects = roots.flatMap((root) =>
    readSubjects(root).map((spec): SubjectSchemas => {
      const versions = listVersionFiles(join(root, spec.name)).map(({ version, file }) =>
        loadVersion(spec.name, version, file),
      );
      return { spec, versions, newest: versions.at(-1)! };
    }),
  );
  const byKey = new Map<string, SubjectSchemas>();
  for (const s of subjects) {
    for (const key of [s.spec.name, ...registrySubjects(s.spec)]) {
      if (byKey.has(key)) {
        throw new VigilError('CONFIG_INVALID', `schema ${key} is defined twice across ${roots.join(', ')}`);
      }
      byKey.set(key, s);
    }
  }
  const where = roots.length === 1 ? `${first}/subjects.json` : roots.map((r) => `${r}/subjects.json`).join(', ');
  return {
    dir: first,
    dirs: roots,
    subjects,
    get(nameOrSubject: string): SubjectSchemas {
      const found = byKey.get(nameOrSubject);
      if (!found) throw new VigilError('CONFIG_INVALID', `no schema subject ${nameOrSubject} in ${where}`);
      return found;
    },
  };
}

/** The newest envelope Type of this checkout: the reader every decoder resolves incoming data to. */
export function envelopeReaderType(): avsc.Type {
  return loadSchemaRepo().get('envelope').newest.type;
}
