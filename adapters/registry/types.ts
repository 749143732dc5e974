/**
 * The one schema-registry interface Vigil codes against. Two implementations:
 * - `ConfluentSchemaRegistry` (./confluent.ts): any Confluent-compatible registry over HTTP (Apicurio's ccompat API
 *   locally, Confluent or Apicurio in staging/production), through `@kafkajs/confluent-schema-registry` 3.x.
 * - `InProcessSchemaRegistry` (./in-process.ts): the embedded mode's registry, in memory, with stable ids assigned
 *   to the repo's schema versions. Never used by integration tests.
 */
import type avsc from 'avsc';
import type { CompatibilityLevel } from '../avro/schemas.ts';

export type { CompatibilityLevel } from '../avro/schemas.ts';

/** One version of a subject as the registry holds it. */
export interface RegisteredVersion {
  readonly subject: string;
  readonly version: number;
  readonly id: number;
  /** The schema text as the registry returns it. */
  readonly schema: string;
}

export interface SchemaRegistry {
  /** `confluent` (HTTP) or `in-process` (embedded mode). */
  readonly kind: 'confluent' | 'in-process';
  /** Where it lives, for messages: a URL or `in-process`. */
  readonly location: string;

  /**
   * The writer Type registered under `id` (cached: ids are immutable), or null when the registry has no schema with
   * that id. A schema that exists but is not Avro (JSON Schema, Protobuf) or does not parse comes back as
   * `UNREADABLE_WRITER` (../avro/decoder.ts), which no envelope reader resolves.
   * Throws VigilError REGISTRY_UNAVAILABLE (retriable) when the registry cannot be reached.
   */
  getWriterType(id: number): Promise<avsc.Type | null>;

  /**
   * Registers `schema` under `subject` (or finds it, when that exact schema is already registered there) and returns
   * its id. The registry enforces the subject's compatibility level: an incompatible schema throws VigilError
   * SCHEMA_INCOMPATIBLE.
   */
  register(subject: string, schema: avsc.Schema): Promise<number>;

  /** The version and id of `schema` under `subject`, or null when that exact schema is not registered there. */
  lookup(subject: string, schema: avsc.Schema): Promise<{ id: number; version: number } | null>;

  /** Every version of `subject`, oldest first; empty when the subject does not exist. */
  listVersions(subject: string): Promise<RegisteredVersion[]>;

  /** The subject's own compatibility level, or null when it has none set (the global default applies). */
  getCompatibility(subject: string): Promise<CompatibilityLevel | null>;

  setCompatibility(subject: string, level: CompatibilityLevel): Promise<void>;
}
