/**
 * A third pipeline, defined entirely in the test tree (issue 9: a runtime that runs any pipeline): its own Avro
 * schemas (./schemas, brought along with `schemaDirs`), one operator (`convert`: Celsius -> Fahrenheit, refusing
 * readings outside what a thermometer can read), its own table (declared beside its output: columns and row; created by
 * ./migrations, applied by the test and checked against the declaration). Nothing in
 * runtime/ or adapters/ knows it: the runners read everything from this definition.
 *
 *   node bin/vigil.js run test/third-pipeline/pipeline.ts      a worker (topics under VIGIL_TOPIC_PREFIX)
 *   node bin/vigil.js sink test/third-pipeline/pipeline.ts     its sink
 */
import { fileURLToPath } from 'node:url';
import { type Operator, ResultsBuilder } from '../../runtime/operator.ts';
import { definePipeline, type RecordOutput, type SourceSpec, type TableRows } from '../../runtime/pipeline.ts';

export const SCHEMA_DIR = fileURLToPath(new URL('./schemas', import.meta.url));
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations', import.meta.url));
export const TABLE = 'third_converted';

/** The pipeline's topics under a prefix (`VIGIL_TOPIC_PREFIX`, as every Vigil topic). */
export function thirdTopics(prefix: string): { readings: string; converted: string } {
  const topic = (name: string) => (prefix ? `${prefix}.${name}` : name);
  return { readings: topic('vigil.test.third.readings'), converted: topic('vigil.test.third.converted') };
}

export interface Reading {
  readonly reading_id: string;
  readonly device_id: string;
  readonly celsius: number;
}

export interface Converted extends Reading {
  readonly fahrenheit: number;
}

/** Colder or hotter than this is a broken sensor, not a reading. */
export const RANGE_C = { min: -90, max: 60 } as const;

export function convert(): Operator<Reading, Converted> {
  return {
    name: 'convert',
    stage: 'validate',
    process: (batch) => {
      const results = new ResultsBuilder<Converted>();
      for (const record of batch) {
        const { celsius } = record.value;
        if (!Number.isFinite(celsius) || celsius < RANGE_C.min || celsius > RANGE_C.max) {
          results.reject(record, 'VALUE_OUT_OF_RANGE', `celsius outside ${RANGE_C.min}..${RANGE_C.max}`);
          continue;
        }
        results.pass(record.origin, { ...record.value, fahrenheit: (celsius * 9) / 5 + 32 });
      }
      return results;
    },
  };
}

const topics = thirdTopics(process.env.VIGIL_TOPIC_PREFIX?.trim() ?? '');
const readings: SourceSpec<Reading> = { topic: topics.readings, schema: 'third-reading' };

/** The table's knowledge, beside the output: its columns (checked against ./migrations) and the row of a value. */
export const convertedRows: TableRows = {
  columns: ['reading_id', 'device_id', 'celsius', 'fahrenheit', 'source_topic', 'source_partition', 'source_offset'],
  row: (v) => ({
    reading_id: v.reading_id,
    device_id: v.device_id,
    celsius: v.celsius,
    // Stored to the whole degree, whichever mode landed it (the topic keeps the exact value).
    fahrenheit: Math.round(Number(v.fahrenheit)),
    source_topic: v.source_topic,
    source_partition: v.source_partition,
    source_offset: v.source_offset,
  }),
};

const convertedOutput: RecordOutput<Converted> = {
  name: 'converted',
  topic: topics.converted,
  schema: 'third-converted',
  table: TABLE,
  rows: convertedRows,
  select: ({ value, origin }) => ({
    key: value.device_id,
    value: {
      reading_id: value.reading_id,
      device_id: value.device_id,
      celsius: value.celsius,
      fahrenheit: value.fahrenheit,
      source_topic: origin.topic,
      source_partition: origin.partition,
      source_offset: origin.offset,
    },
  }),
};

export default definePipeline({ name: 'third', version: '1', source: readings, schemaDirs: [SCHEMA_DIR] })
  .pipe(convert())
  .outputs({ records: [convertedOutput], side: {} });
