/**
 * Encodes pipeline outputs in the Confluent wire format with the ids the registry gives the newest version of each
 * output schema. The ids are resolved once at start-up (registering the schema when the subject lacks it, which the
 * registry checks against the subject's compatibility level), so encoding on the hot path is one Map lookup and one
 * call of the schema's generated writer (adapters/avro/writer.ts: avsc's bytes, written into shared chunks, one view
 * per value; librdkafka copies values as they are produced).
 */

import type avsc from 'avsc';
import type { SchemaRepo } from '../../adapters/avro/schemas.ts';
import { FramedWriter } from '../../adapters/avro/writer.ts';
import type { SchemaRegistry } from '../../adapters/registry/types.ts';
import type { ValueEncoder } from '../codec.ts';
import { VigilError } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';

let startupLog: Logger | null = null;
const defaultLog = (): Logger => (startupLog ??= createLogger('vigil-encoder'));

export class RegistryValueEncoder implements ValueEncoder {
  readonly #ids = new Map<string, { id: number; type: avsc.Type }>();
  readonly #writer = new FramedWriter();

  /**
   * Resolves every schema's id. A registry that does not answer (REGISTRY_UNAVAILABLE) is waited for, with backoff
   * and a warn line per attempt, up to `waitMs` (default 10 min): a worker started during a registry outage starts
   * when the registry is back instead of exiting. Any other refusal fails at once.
   */
  static async create(
    registry: SchemaRegistry,
    repo: SchemaRepo,
    schemas: readonly string[],
    options: { waitMs?: number; log?: Logger; sleep?: (ms: number) => Promise<void> } = {},
  ): Promise<RegistryValueEncoder> {
    const encoder = new RegistryValueEncoder();
    const deadline = Date.now() + (options.waitMs ?? 600_000);
    const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (const name of new Set(schemas)) {
      const subject = repo.get(name);
      for (let attempt = 0; ; attempt++) {
        try {
          const id = await registry.register(subject.spec.subject, subject.newest.schema);
          if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
            throw new VigilError('CONFIG_INVALID', `schema id must be an int32 >= 0, got ${id}`);
          }
          encoder.#ids.set(name, { id, type: subject.newest.type });
          break;
        } catch (error) {
          if (!(error instanceof VigilError) || error.code !== 'REGISTRY_UNAVAILABLE' || Date.now() >= deadline) {
            throw error;
          }
          const wait = Math.min(10_000, 500 * 2 ** Math.min(attempt, 5));
          (options.log ?? defaultLog()).warn(
            { dependency: 'schema_registry', code: error.code, backoffMs: wait },
            'schema registry unavailable at start-up: waiting for it',
          );
          await sleep(wait);
        }
      }
    }
    return encoder;
  }

  encode(schema: string, value: unknown): Buffer {
    const entry = this.#ids.get(schema);
    if (!entry) throw new VigilError('INTERNAL', `no registry id resolved for schema ${schema}`);
    try {
      return this.#writer.frame(entry.id, entry.type, value);
    } catch (error) {
      // As encodeFramed: a value that does not fit its schema is a bug in the pipeline, never a bad input record.
      throw new VigilError(
        'CONFIG_INVALID',
        `value does not match Avro type ${entry.type.name ?? entry.type.typeName}`,
        {
          cause: error,
        },
      );
    }
  }
}
