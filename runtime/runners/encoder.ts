/**
 * Encodes pipeline outputs in the Confluent wire format with the ids the registry gives the newest version of each
 * output schema. The ids are resolved once at start-up (registering the schema when the subject lacks it, which the
 * registry checks against the subject's compatibility level), so encoding on the hot path is one Map lookup and one
 * avsc encode.
 */

import type avsc from 'avsc';
import { encodeFramed } from '../../adapters/avro/framing.ts';
import type { SchemaRepo } from '../../adapters/avro/schemas.ts';
import type { SchemaRegistry } from '../../adapters/registry/types.ts';
import type { ValueEncoder } from '../codec.ts';
import { VigilError } from '../errors.ts';

export class RegistryValueEncoder implements ValueEncoder {
  readonly #ids = new Map<string, { id: number; type: avsc.Type }>();

  static async create(
    registry: SchemaRegistry,
    repo: SchemaRepo,
    schemas: readonly string[],
  ): Promise<RegistryValueEncoder> {
    const encoder = new RegistryValueEncoder();
    for (const name of new Set(schemas)) {
      const subject = repo.get(name);
      const id = await registry.register(subject.spec.subject, subject.newest.schema);
      encoder.#ids.set(name, { id, type: subject.newest.type });
    }
    return encoder;
  }

  encode(schema: string, value: unknown): Buffer {
    const entry = this.#ids.get(schema);
    if (!entry) throw new VigilError('INTERNAL', `no registry id resolved for schema ${schema}`);
    return encodeFramed(entry.id, entry.type, value);
  }
}
