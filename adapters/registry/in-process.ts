/**
 * The embedded mode's schema registry: in memory, seeded with every schema version in the repo.
 *
 * Embedded mode (`npm start`, `vigil run --embedded`) runs without any services, yet its records are framed exactly as
 * on Kafka, so the same decoder runs in both modes. Ids are stable and deterministic: the repo's versions sorted by
 * subject, then version, numbered from 1. A schema registered later gets the next free id. Compatibility levels come
 * from subjects.json and are enforced on register like a real registry would.
 *
 * This is not a substitute for a registry service: integration tests and the distributed mode use
 * `ConfluentSchemaRegistry` against Apicurio (or whatever `SCHEMA_REGISTRY_URL` names).
 */
import { createHash } from 'node:crypto';
import type avsc from 'avsc';
import { VigilError } from '../../runtime/errors.ts';
import { compatibilityProblems } from '../avro/compatibility.ts';
import type { CompatibilityLevel, SchemaRepo } from '../avro/schemas.ts';
import { loadSchemaRepo, parseAvroSchema, registrySubjects } from '../avro/schemas.ts';
import type { RegisteredVersion, SchemaRegistry } from './types.ts';

interface Stored extends RegisteredVersion {
  readonly type: avsc.Type;
  readonly fingerprint: string;
}

/** Identity of a schema: its full form (defaults and docs included), so a changed default is a new version. */
function fingerprintOf(type: avsc.Type): string {
  return createHash('sha256')
    .update(JSON.stringify(type.schema({ exportAttrs: true })))
    .digest('hex');
}

export class InProcessSchemaRegistry implements SchemaRegistry {
  readonly kind = 'in-process' as const;
  readonly location = 'in-process';
  readonly #byId = new Map<number, Stored>();
  readonly #bySubject = new Map<string, Stored[]>();
  readonly #compatibility = new Map<string, CompatibilityLevel>();
  #nextId = 1;

  /** Seeds the registry from a schema tree (default: this checkout's `schemas/avro`). */
  constructor(repo: SchemaRepo = loadSchemaRepo()) {
    const seeds = repo.subjects
      .flatMap((s) => registrySubjects(s.spec).flatMap((subject) => s.versions.map((v) => ({ subject, version: v }))))
      .sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : a.version.version - b.version.version));
    for (const { subject, version } of seeds) this.#store(subject, version.schema, version.type);
    for (const s of repo.subjects) {
      for (const subject of registrySubjects(s.spec)) this.#compatibility.set(subject, s.spec.compatibility);
    }
  }

  async getWriterType(id: number): Promise<avsc.Type | null> {
    return this.#byId.get(id)?.type ?? null;
  }

  /** The id of a schema already stored, synchronously (embedded producers frame records with it). */
  idOf(subject: string, schema: avsc.Schema): number | null {
    const fingerprint = fingerprintOf(parseAvroSchema(schema));
    return this.#bySubject.get(subject)?.find((s) => s.fingerprint === fingerprint)?.id ?? null;
  }

  async register(subject: string, schema: avsc.Schema): Promise<number> {
    const type = parseAvroSchema(schema);
    const existing = this.#find(subject, type);
    if (existing) return existing.id;
    const level = this.#compatibility.get(subject) ?? 'BACKWARD';
    const history = (this.#bySubject.get(subject) ?? []).map((s) => ({ version: s.version, type: s.type }));
    const problems = compatibilityProblems(level, { version: history.length + 1, type }, history);
    if (problems.length > 0) {
      throw new VigilError(
        'SCHEMA_INCOMPATIBLE',
        `${subject}: the new schema breaks ${level}: ${problems.map((p) => p.message).join('; ')}`,
      );
    }
    return this.#store(subject, schema, type).id;
  }

  async lookup(subject: string, schema: avsc.Schema): Promise<{ id: number; version: number } | null> {
    const found = this.#find(subject, parseAvroSchema(schema));
    return found ? { id: found.id, version: found.version } : null;
  }

  async listVersions(subject: string): Promise<RegisteredVersion[]> {
    return (this.#bySubject.get(subject) ?? []).map(({ subject: s, version, id, schema }) => ({
      subject: s,
      version,
      id,
      schema,
    }));
  }

  async getCompatibility(subject: string): Promise<CompatibilityLevel | null> {
    return this.#compatibility.get(subject) ?? null;
  }

  async setCompatibility(subject: string, level: CompatibilityLevel): Promise<void> {
    this.#compatibility.set(subject, level);
  }

  #find(subject: string, type: avsc.Type): Stored | undefined {
    const fingerprint = fingerprintOf(type);
    return this.#bySubject.get(subject)?.find((s) => s.fingerprint === fingerprint);
  }

  #store(subject: string, schema: avsc.Schema, type: avsc.Type): Stored {
    const versions = this.#bySubject.get(subject) ?? [];
    const stored: Stored = {
      subject,
      version: versions.length + 1,
      id: this.#nextId++,
      schema: JSON.stringify(schema),
      type,
      fingerprint: fingerprintOf(type),
    };
    versions.push(stored);
    this.#bySubject.set(subject, versions);
    this.#byId.set(stored.id, stored);
    return stored;
  }
}
