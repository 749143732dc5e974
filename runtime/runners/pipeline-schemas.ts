/**
 * What a runner needs to know about a pipeline's schemas, read from its definition: the schema tree (this checkout's
 * `schemas/avro` plus the definition's `schemaDirs`), one decoder per source topic (reader: the newest version of that
 * source's schema; writer: the registry id in each record's frame) and the schemas its outputs are encoded with. No
 * runner hard-wires a pipeline's envelope.
 */
import { FramedDecoder } from '../../adapters/avro/decoder.ts';
import { compileLimits } from '../../adapters/avro/limits.ts';
import { DEFAULT_SCHEMA_DIR, loadSchemaRepo, type SchemaRepo } from '../../adapters/avro/schemas.ts';
import type { SchemaRegistry } from '../../adapters/registry/types.ts';
import { VigilError } from '../errors.ts';
import { type EmittedBatch, STANDARD_OUTPUTS } from '../outputs.ts';
import { declaredTables, type PipelineDefinition, type TableRows } from '../pipeline.ts';
import { Unmappable } from '../sinks/clickhouse.ts';

/** This checkout's schema tree merged with the trees the definition brings (`schemaDirs`). */
export function pipelineSchemaRepo(definition: Pick<PipelineDefinition, 'schemaDirs'>): SchemaRepo {
  return loadSchemaRepo([DEFAULT_SCHEMA_DIR, ...(definition.schemaDirs ?? [])]);
}

/**
 * One decoder per source topic. Every decoded value must also keep the limits its schema implies
 * (adapters/avro/limits.ts): a value that breaks one is ENVELOPE_INVALID, whichever source it came from.
 *
 * @example
 * const decoders = sourceDecoders(definition, registry, pipelineSchemaRepo(definition));
 * const decoded = await decoders.get(message.topic)?.decodeBatch([message.value]);
 */
export function sourceDecoders<I>(
  definition: Pick<PipelineDefinition<I>, 'sources'>,
  registry: SchemaRegistry,
  repo: SchemaRepo,
): Map<string, FramedDecoder<I>> {
  const decoders = new Map<string, FramedDecoder<I>>();
  for (const source of definition.sources) {
    const reader = repo.get(source.schema).newest;
    decoders.set(source.topic, new FramedDecoder<I>(registry, reader.type, { limits: compileLimits(reader.schema) }));
  }
  return decoders;
}

/** The decoder of one source topic; a topic the pipeline does not read is a bug in the caller. */
export function decoderOf<D>(decoders: ReadonlyMap<string, D>, topic: string): D {
  const decoder = decoders.get(topic);
  if (!decoder) throw new VigilError('INTERNAL', `no source of this pipeline reads topic ${topic}`);
  return decoder;
}

/** Every schema the pipeline's outputs are encoded with (its record and side outputs, dead letters, duplicates). */
export function outputSchemas(definition: Pick<PipelineDefinition, 'outputs'>): string[] {
  return [
    ...new Set([
      ...definition.outputs.records.map((o) => o.schema),
      ...Object.values(definition.outputs.side).map((s) => s.schema),
      STANDARD_OUTPUTS.deadLetters.schema,
      STANDARD_OUTPUTS.duplicates.schema,
    ]),
  ];
}

/**
 * Maps values to rows with an output's declared mapping (`TableRows.row`); a value it cannot map becomes an
 * `Unmappable` (quarantined by the sink, ROW_TYPE_MISMATCH), never a failed batch.
 */
export function mapDeclared(
  table: string,
  row: NonNullable<TableRows['row']>,
  values: readonly unknown[],
): (Record<string, unknown> | Unmappable)[] {
  return values.map((v) => {
    try {
      return row(v as Record<string, unknown>);
    } catch (error) {
      // VigilError messages name fields and bounds, never values; any other error's text is not ours to repeat.
      return new Unmappable(
        error instanceof VigilError ? error.message : `the record does not map to a row of ${table}`,
      );
    }
  });
}

/**
 * An emitted batch whose outputs with a declared mapping carry rows instead of values (the embedded mode lands what
 * the distributed sink would). Rows keep their lineage columns, which the sink uses to attribute a quarantined row.
 */
export function withDeclaredRows(
  definition: Pick<PipelineDefinition, 'outputs'>,
): (batch: EmittedBatch) => EmittedBatch {
  const tables = declaredTables(definition);
  if (![...tables.values()].some((t) => t.row)) return (batch) => batch;
  return (batch) => ({
    ...batch,
    outputs: batch.outputs.map((o) => {
      const row = tables.get(o.table)?.row;
      if (!row) return o;
      const rows = mapDeclared(
        o.table,
        row,
        o.values.map((v) => v.value),
      );
      return { ...o, values: o.values.map((v, i) => ({ key: v.key, value: rows[i] as Record<string, unknown> })) };
    }),
  });
}
