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

describe('the raw plane', () => {
  it('keeps every consumed record in offset order with the ids its decoded value carried, or nulls', () => {
    const envelope = {
      event_id: 'e1',
      device_id: 'd1',
      signed_event: 'jws',
      gateway_id: 'gw',
      device_cert_fingerprint: 'fp',
      key_id: 'k',
      integrity_hash: 'h',
    };
    const outcome = {
      range: { topic: 'in', partition: 0, firstOffset: 0, lastOffset: 4 },
      origins: [origin(0), origin(1), origin(2), origin(3), origin(4)],
      // A checked event carries its envelope one level down.
      completed: [{ value: { envelope, flags: [] }, origin: origin(0) }],
      rejected: [
        { record: { value: Buffer.from('not avro'), origin: origin(1) }, stage: 'decode', code: 'X', detail: '' },
        {
          record: { value: { event_id: '', device_id: 7 }, origin: origin(3) },
          stage: 'validate',
          code: 'X',
          detail: '',
        },
      ],
      duplicates: [{ record: { value: { event_id: 'e2', device_id: 'd2' }, origin: origin(2) }, kind: 'exact' }],
      side: {},
    };
    const none = {
      eventId: null,
      deviceId: null,
      signedEvent: null,
      gatewayId: null,
      deviceCertFingerprint: null,
      keyId: null,
      integrityHash: null,
    };
    const raw = materialise({ ...definition, outputs: { records: [], side: {} } } as never, outcome as never, 0).raw;
    expect(raw).toEqual([
      {
        origin: origin(0),
        eventId: 'e1',
        deviceId: 'd1',
        signedEvent: 'jws',
        gatewayId: 'gw',
        deviceCertFingerprint: 'fp',
        keyId: 'k',
        integrityHash: 'h',
      },
      { origin: origin(1), ...none },
      { origin: origin(2), ...none, eventId: 'e2', deviceId: 'd2' },
      { origin: origin(3), ...none },
      { origin: origin(4), ...none },
    ]);
  });
});
