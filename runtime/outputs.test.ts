import { describe, expect, it } from 'vitest';
import type { BatchOutcome } from './engine.ts';
import { materialise } from './outputs.ts';
import { definePipeline, type SourceSpec } from './pipeline.ts';
import type { InFlight, Origin } from './record.ts';

const source: SourceSpec<{ id: string; n: number }> = { topic: 'in', schema: 'normalised' };

function origin(offset: number): Origin {
  return {
    topic: 'in',
    partition: 0,
    offset,
    consumedAt: 0,
    rawSha256: '0',
    raw: Buffer.alloc(0),
    headers: [],
    key: null,
  };
}

const definition = definePipeline({ name: 'fan', version: '1', source }).outputs({
  records: [
    // One value per record: as the vitals outputs.
    {
      name: 'one',
      topic: 'one',
      schema: 's',
      table: 'one',
      select: (r) => ({ key: r.value.id, value: { id: r.value.id } }),
    },
    // Several values per record (none for n = 0): as the alerts output, one per rule a record raised.
    {
      name: 'many',
      topic: 'many',
      schema: 's',
      table: 'many',
      select: (r) => Array.from({ length: r.value.n }, (_, i) => ({ key: r.value.id, value: { id: r.value.id, i } })),
    },
    { name: 'none', topic: 'none', schema: 's', table: 'none', select: () => null },
  ],
  side: {},
});

describe('materialise', () => {
  it('takes one value, several in order, or none from each completed record', () => {
    const completed: InFlight<{ id: string; n: number }>[] = [
      { value: { id: 'a', n: 2 }, origin: origin(0) },
      { value: { id: 'b', n: 0 }, origin: origin(1) },
      { value: { id: 'c', n: 1 }, origin: origin(2) },
    ];
    const outcome: BatchOutcome<{ id: string; n: number }> = {
      range: { topic: 'in', partition: 0, firstOffset: 0, lastOffset: 2 },
      origins: completed.map((r) => r.origin),
      completed,
      rejected: [],
      duplicates: [],
      side: {},
    };
    const out = materialise(definition as never, outcome as never, 0).outputs;
    expect(Object.fromEntries(out.map((o) => [o.name, o.values.map((v) => v.value)]))).toEqual({
      one: [{ id: 'a' }, { id: 'b' }, { id: 'c' }],
      many: [
        { id: 'a', i: 0 },
        { id: 'a', i: 1 },
        { id: 'c', i: 0 },
      ],
      none: [],
    });
  });
});
