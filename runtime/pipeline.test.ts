import { describe, expect, it } from 'vitest';
import { definePipeline, type SourceSpec } from './pipeline.ts';

const a: SourceSpec<{ id: string }> = { topic: 'a', schema: 'sa' };
const b: SourceSpec<{ id: string }> = { topic: 'b', schema: 'sb' };
const pass = {
  name: 'pass',
  stage: 'validate' as const,
  process: (batch: readonly { value: { id: string }; origin: never }[]) => ({
    out: [...batch],
    rejected: [],
    duplicates: [],
    side: {},
  }),
};
const output = (topic: string) => ({
  name: 'o',
  topic,
  schema: 's',
  table: 't',
  select: () => null,
});

describe('definePipeline at run time', () => {
  it('normalises one source and several into `sources` (the first is also `source`)', () => {
    const one = definePipeline({ name: 'one', version: '1', source: a }).outputs({ records: [output('x')], side: {} });
    expect(one.sources).toEqual([a]);
    expect(one.source).toBe(a);
    expect(one.schemaDirs).toEqual([]);
    const two = definePipeline({ name: 'two', version: '1', sources: [a, b], schemaDirs: ['/s'] })
      .pipe(pass as never)
      .outputs({ records: [output('x')], side: {} });
    expect(two.sources.map((s) => s.topic)).toEqual(['a', 'b']);
    expect(two.schemaDirs).toEqual(['/s']);
  });

  it('refuses a topic read twice, both source and sources, and an output back onto a source', () => {
    expect(() => definePipeline({ name: 'p', version: '1', sources: [a, a] })).toThrow(/listed twice/);
    expect(() => definePipeline({ name: 'p', version: '1', source: a, sources: [b] } as never)).toThrow(/not both/);
    expect(() =>
      definePipeline({ name: 'p', version: '1', sources: [a, b] }).outputs({ records: [output('b')], side: {} }),
    ).toThrow(/output topic b is also a source/);
  });
});
