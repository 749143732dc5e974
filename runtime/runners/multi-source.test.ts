/**
 * A pipeline with two sources, each topic with its own schema, run embedded end to end: each record is decoded as its
 * own source's schema (a record framed with the other source's schema on a topic is a dead letter, not a misread),
 * `fromSource` tells the operator where a record came from, and the raw plane keeps every record of both topics.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeFramed } from '../../adapters/avro/framing.ts';
import { InProcessSchemaRegistry } from '../../adapters/registry/in-process.ts';
import { SCHEMA_DIR } from '../../test/third-pipeline/pipeline.ts';
import { systemClock } from '../clock.ts';
import { silentLogger } from '../log.ts';
import { ResultsBuilder } from '../operator.ts';
import { definePipeline, fromSource, type SourceSpec } from '../pipeline.ts';
import { runEmbeddedSession, withEmbeddedStore } from './embedded-session.ts';
import { framedSource, type SourceInput } from './embedded-sources.ts';
import { pipelineSchemaRepo } from './pipeline-schemas.ts';

interface Reading {
  reading_id: string;
  device_id: string;
  celsius: number;
}
interface Converted extends Reading {
  fahrenheit: number;
}
const readings: SourceSpec<Reading> = { topic: 'ms.readings', schema: 'third-reading' };
const converted: SourceSpec<Converted> = { topic: 'ms.converted', schema: 'third-converted' };

const merged = definePipeline({ name: 'merge', version: '1', sources: [readings, converted], schemaDirs: [SCHEMA_DIR] })
  .pipe({
    name: 'merge',
    stage: 'validate',
    process: (batch) => {
      const results = new ResultsBuilder<{ id: string; from: string; celsius: number }>();
      for (const r of batch) {
        if (fromSource(converted, r))
          results.pass(r.origin, { id: r.value.reading_id, from: 'converted', celsius: r.value.celsius });
        else if (fromSource(readings, r))
          results.pass(r.origin, { id: r.value.reading_id, from: 'readings', celsius: r.value.celsius });
      }
      return results;
    },
  })
  .outputs({
    records: [
      {
        name: 'merged',
        topic: 'ms.merged',
        schema: 'third-reading',
        table: 'ms_merged',
        rows: { columns: ['id', 'origin'], row: (v) => ({ id: v.reading_id, origin: v.device_id }) },
        select: (r) => ({
          key: r.value.id,
          value: { reading_id: r.value.id, device_id: r.value.from, celsius: r.value.celsius },
        }),
      },
    ],
    side: {},
  });

const dir = mkdtempSync(join(tmpdir(), 'vigil-multi-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a pipeline with two sources, embedded', () => {
  it('decodes each topic as its own schema and lands both in the raw plane', async () => {
    const repo = pipelineSchemaRepo(merged);
    const registry = new InProcessSchemaRegistry(repo);
    const readingSchema = repo.get('third-reading').newest;
    const readingId = registry.idOf(repo.get('third-reading').spec.subject, readingSchema.schema) as number;
    const inputs: SourceInput[] = [
      ...Array.from({ length: 20 }, (_, i) => ({
        topic: readings.topic,
        key: `d${i % 3}`,
        value: { reading_id: `r${i}`, device_id: `d${i % 3}`, celsius: i },
      })),
      ...Array.from({ length: 10 }, (_, i) => ({
        topic: converted.topic,
        key: `d${i % 3}`,
        value: {
          reading_id: `c${i}`,
          device_id: `d${i % 3}`,
          celsius: i,
          fahrenheit: i * 1.8 + 32,
          source_topic: 't',
          source_partition: 0,
          source_offset: i,
        },
      })),
      // A reading framed with the readings schema, sent to the converted topic: the converted reader cannot read it.
      {
        topic: converted.topic,
        key: 'd0',
        value: encodeFramed(readingId, readingSchema.type, { reading_id: 'x', device_id: 'd0', celsius: 1 }),
      },
    ];
    await withEmbeddedStore({ dataDir: dir, log: silentLogger }, async (store) => {
      await store.command('CREATE TABLE ms_merged (id String, origin String) ENGINE = ReplacingMergeTree ORDER BY id');
      const result = await runEmbeddedSession(
        merged,
        framedSource(merged, inputs, { clock: systemClock, partitions: 3 }),
        store,
        silentLogger,
      );
      expect(result.accounting).toEqual({ consumed: 31, emitted: 30, deadLettered: 1, duplicates: 0 });
      expect(Object.keys(result.deadLetters)).toHaveLength(1);
      expect(result.stored).toMatchObject({ raw_events: 31, ms_merged: 30, dead_letters: 1 });
      const origins = await store.query<{ origin: string; n: number }>(
        'SELECT origin, count() AS n FROM ms_merged FINAL GROUP BY origin ORDER BY origin',
      );
      expect(origins.map((o) => [o.origin, Number(o.n)])).toEqual([
        ['converted', 10],
        ['readings', 20],
      ]);
      const topics = await store.query<{ t: string; n: number }>(
        'SELECT source_topic AS t, count() AS n FROM raw_events FINAL GROUP BY t ORDER BY t',
      );
      expect(topics.map((t) => [t.t, Number(t.n)])).toEqual([
        ['ms.converted', 11],
        ['ms.readings', 20],
      ]);
    });
  });
});
