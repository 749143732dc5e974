/**
 * runtime/source.ts decodeBatch: every consumed record gets its origin (position, bytes, sha256, headers, key,
 * producer time), in offset order, and lands in exactly one of records / rejected. Compared with the earlier
 * two-pass form (origins first, then a forEach over the decoded results), kept here as the reference.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BatchDecoder, Decoded } from './codec.ts';
import type { SourceBatch } from './engine.ts';
import type { Rejection } from './operator.ts';
import type { InFlight, Origin } from './record.ts';
import { decodeBatch, originOf, type RawRecord } from './source.ts';

/** The earlier decodeBatch, verbatim but for names. */
async function referenceDecodeBatch<T>(
  records: readonly RawRecord[],
  decoder: BatchDecoder<T>,
  consumedAt: number,
): Promise<SourceBatch<T>> {
  const first = records[0]!;
  const last = records.at(-1)!;
  const origins = records.map((r) => originOf(r, consumedAt));
  const decoded = await decoder.decodeBatch(records.map((r) => r.value));
  const ok: InFlight<T>[] = [];
  const rejected: Rejection[] = [];
  decoded.forEach((result, i) => {
    const origin = origins[i] as Origin;
    if (result.ok) ok.push({ value: result.value, origin });
    else rejected.push({ record: { value: undefined, origin }, code: result.code, detail: result.detail });
  });
  return {
    range: { topic: first.topic, partition: first.partition, firstOffset: first.offset, lastOffset: last.offset },
    origins,
    records: ok,
    rejected,
  };
}

/** Bytes starting with '{' decode to their text; anything else fails. */
const decoder: BatchDecoder<string> = {
  decodeBatch: async (values) =>
    values.map(
      (v): Decoded<string> =>
        v[0] === 0x7b
          ? { ok: true, value: v.toString('latin1') }
          : { ok: false, code: 'AVRO_DECODE_FAILED', detail: `byte ${v[0]}` },
    ),
};

const raw = fc.record({
  value: fc.oneof(
    fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b)),
    fc.string({ maxLength: 20 }).map((t) => Buffer.from(`{${t}`)),
  ),
  key: fc.option(fc.string({ maxLength: 8 })),
  timestamp: fc.option(fc.integer({ min: -1, max: 2 ** 41 }), { nil: undefined }),
  headers: fc.array(fc.record({ key: fc.string({ maxLength: 4 }), value: fc.constant(null) }), { maxLength: 2 }),
});

describe('decodeBatch', () => {
  it('equals the two-pass reference on any batch', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(raw, { minLength: 1, maxLength: 40 }), fc.nat(), async (specs, partition) => {
        const records: RawRecord[] = specs.map((s, i) => ({ topic: 't', partition, offset: 100 + i, ...s }));
        const got = await decodeBatch(records, decoder, 12345);
        expect(got).toEqual(await referenceDecodeBatch(records, decoder, 12345));
        expect(got.records.length + got.rejected.length).toBe(records.length);
        got.origins.forEach((o, i) => {
          expect(o.rawSha256).toBe(createHash('sha256').update(records[i]!.value).digest('hex'));
          expect(o.raw).toBe(records[i]!.value);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an empty batch', async () => {
    await expect(decodeBatch([], decoder, 0)).rejects.toThrow(/at least one record/);
  });
});
