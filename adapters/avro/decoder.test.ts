import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.ts';
import { isReasonCode, VigilError } from '../../runtime/errors.ts';
import { arbitraryEnvelope, arbitraryFor } from '../../test/property/arbitrary.ts';
import { ConfluentSchemaRegistry } from '../registry/confluent.ts';
import { InProcessSchemaRegistry } from '../registry/in-process.ts';
import { createEnvelopeDecoder, DECODE_FAILURE_CODES, type DecodeResult } from './decoder.ts';
import { encodeFramed } from './framing.ts';
import { envelopeLimits } from './limits.ts';
import { loadSchemaRepo } from './schemas.ts';

const repo = loadSchemaRepo();
const envelope = repo.get('envelope');
const v1 = envelope.versions.find((v) => v.version === 1)!;
const v2 = envelope.versions.find((v) => v.version === 2)!;
const registry = new InProcessSchemaRegistry(repo);
const idOf = (subject: string, version: number): number =>
  registry.idOf(repo.get(subject).spec.subject, repo.get(subject).versions.find((v) => v.version === version)!.schema)!;
const V1_ID = idOf('envelope', 1);
const V2_ID = idOf('envelope', 2);
const INFERENCE_ID = idOf('inference', 1);

const v1Envelope = {
  event_id: '01KF001Q6Y4M3N2P1R0S9T8V7W',
  device_id: 'dev-1',
  patient_ref: 'psn:k1:clinical:abc',
  site_id: 'site-1',
  event_type: 'vital_signs',
  observed_at: 1_768_000_000_000,
  received_at: 1_768_000_000_500,
  firmware_version: '4.2.1',
  model_version: null,
  schema_version: 'telemetry-envelope-v1',
  integrity_hash: 'sha256:00',
  consent_context: 'care-delivery',
  processing_policy: 'clinical-standard',
  payload: {
    'vigil.telemetry.payload.VitalSigns': {
      respiratory_rate: 18,
      spo2: 96,
      on_oxygen: false,
      systolic_bp: 120,
      pulse: 80,
      consciousness: 'A',
      temperature_c: 37,
    },
  },
};

function header(id: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeInt32BE(id, 1);
  return b;
}

function failed<T>(result: DecodeResult<T>): { code: string; detail: string } {
  if (result.ok) throw new Error('expected a failure');
  return { code: result.code, detail: result.detail };
}

describe('envelope decoder', () => {
  it('reads v1-written data as the newest envelope, with the defaults of every later version', async () => {
    const decoder = createEnvelopeDecoder(registry);
    const result = await decoder.decode(encodeFramed(V1_ID, v1.type, v1Envelope));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.schemaId).toBe(V1_ID);
    expect(result.value).toEqual({
      ...v1Envelope,
      sequence: null,
      nonce: null,
      device_cert_fingerprint: null,
      key_id: null,
      device_batch: null,
      patient_subgroup: null,
      transformation_version: null,
      parent_event_ids: [],
      signed_event: null,
      gateway_id: null,
    });
  });

  it('decodes synchronously once the schema id is cached', async () => {
    const decoder = createEnvelopeDecoder(registry);
    const frame = encodeFramed(V1_ID, v1.type, v1Envelope);
    expect(decoder.tryDecode(frame)).toBeUndefined();
    await decoder.prefetch([V1_ID]);
    expect(decoder.tryDecode(frame)?.ok).toBe(true);
  });

  it('classifies every kind of bad frame', async () => {
    const decoder = createEnvelopeDecoder(registry);
    const good = encodeFramed(V2_ID, v2.type, { ...v1Envelope, parent_event_ids: ['a', 'b'] });
    const cases: [string, Buffer, string][] = [
      ['empty', Buffer.alloc(0), 'TRUNCATED_FRAME'],
      ['header only partly there', Buffer.from([0, 0, 0]), 'TRUNCATED_FRAME'],
      ['wrong magic byte', Buffer.concat([Buffer.from([1]), good.subarray(1)]), 'BAD_MAGIC_BYTE'],
      ['plain JSON', Buffer.from('{"event_id":"x"}'), 'BAD_MAGIC_BYTE'],
      ['body cut short', good.subarray(0, good.length - 3), 'TRUNCATED_FRAME'],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), 'AVRO_DECODE_FAILED'],
      ['unknown schema id', Buffer.from([0, 0, 0, 0x7f, 0x7f, 2]), 'UNKNOWN_SCHEMA_ID'],
      ['schema id 0', Buffer.from([0, 0, 0, 0, 0, 2]), 'UNKNOWN_SCHEMA_ID'],
      ['negative schema id', Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 2]), 'UNKNOWN_SCHEMA_ID'],
    ];
    for (const [name, bytes, code] of cases) {
      expect(failed(await decoder.decode(bytes)).code, name).toBe(code);
    }
  });

  it('says SCHEMA_NOT_ENVELOPE (naming the schema) for a schema that cannot be read as an envelope', async () => {
    const decoder = createEnvelopeDecoder(registry);
    const { code, detail } = failed(
      await decoder.decode(Buffer.concat([header(INFERENCE_ID), Buffer.from([2, 0x61])])),
    );
    expect(code).toBe('SCHEMA_NOT_ENVELOPE');
    expect(detail).toContain(`schema id ${INFERENCE_ID}`);
    expect(detail).toContain('vigil.clinical.Inference');
  });

  it('says AVRO_DECODE_FAILED for an invalid union branch or enum symbol', async () => {
    const decoder = createEnvelopeDecoder(registry);
    const good = encodeFramed(V1_ID, v1.type, v1Envelope);
    // The event_type enum index follows the four strings; patch it to an index the enum does not have.
    const strings = ['01KF001Q6Y4M3N2P1R0S9T8V7W', 'dev-1', 'psn:k1:clinical:abc', 'site-1'];
    const enumAt = 5 + strings.reduce((n, s) => n + 1 + Buffer.byteLength(s), 0);
    const bad = Buffer.from(good);
    bad[enumAt] = 2 * 9; // zig-zag 9
    const { code, detail } = failed(await decoder.decode(bad));
    expect(code).toBe('AVRO_DECODE_FAILED');
    expect(detail).toMatch(/enum index/);
  });

  it('asks the registry again about an unknown id once its TTL has passed', async () => {
    const clock = new ManualClock();
    const live = new InProcessSchemaRegistry(repo);
    const decoder = createEnvelopeDecoder(live, { clock, unknownIdTtlMs: 1_000 });
    const nextId = Math.max(V1_ID, V2_ID, INFERENCE_ID) + 100;
    const frame = encodeFramed(nextId, v1.type, v1Envelope);
    expect(failed(await decoder.decode(frame)).code).toBe('UNKNOWN_SCHEMA_ID');
    // Registered meanwhile under a new id: still "unknown" inside the TTL (cached), readable after it.
    let id = 0;
    while (id < nextId)
      id = await live.register(`scratch-${id}`, { ...(v1.schema as object), doc: `copy ${id}` } as never);
    expect(id).toBe(nextId);
    expect(failed(await decoder.decode(frame)).code).toBe('UNKNOWN_SCHEMA_ID');
    clock.advance(1_001);
    expect((await decoder.decode(frame)).ok).toBe(true);
  });

  it('remembers at most maxUnknownIds unknown ids, forgetting the oldest first', async () => {
    const asked: number[] = [];
    const inner = new InProcessSchemaRegistry(repo);
    // The embedded registry, with its lookups recorded.
    const counting = Object.assign(Object.create(inner) as InProcessSchemaRegistry, {
      getWriterType: (id: number) => {
        asked.push(id);
        return inner.getWriterType(id);
      },
    });
    const decoder = createEnvelopeDecoder(counting, { clock: new ManualClock(), maxUnknownIds: 3 });
    const frame = (id: number) => Buffer.concat([header(id), Buffer.from([2, 0x61])]);
    for (const id of [5001, 5002, 5003, 5004])
      expect(failed(await decoder.decode(frame(id))).code).toBe('UNKNOWN_SCHEMA_ID');
    await decoder.decode(frame(5004)); // cached
    await decoder.decode(frame(5002)); // cached
    await decoder.decode(frame(5001)); // forgotten (oldest): asked again
    expect(asked).toEqual([5001, 5002, 5003, 5004, 5001]);
    // Ids 0 and below are never asked about.
    await decoder.decode(frame(0));
    await decoder.decode(frame(-7));
    expect(asked).toHaveLength(5);
  });

  it('throws REGISTRY_UNAVAILABLE (retriable) when the registry cannot be reached, and caches no verdict', async () => {
    // A real HTTP client against a port nothing listens on: connection refused, not a mock.
    const down = new ConfluentSchemaRegistry({ url: 'http://127.0.0.1:9/apis/ccompat/v7' });
    const decoder = createEnvelopeDecoder(down);
    const frame = encodeFramed(V1_ID, v1.type, v1Envelope);
    const error = await decoder.decode(frame).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VigilError);
    expect((error as VigilError).code).toBe('REGISTRY_UNAVAILABLE');
    expect((error as VigilError).retriable).toBe(true);
    expect(decoder.tryDecode(frame)).toBeUndefined();
    // Bad bytes still need no registry at all.
    expect(failed(await decoder.decode(Buffer.from([7]))).code).toBe('BAD_MAGIC_BYTE');
  });

  it('decodes a batch with one lookup per distinct id, in order', async () => {
    const decoder = createEnvelopeDecoder(registry);
    const batch = [
      encodeFramed(V1_ID, v1.type, v1Envelope),
      Buffer.from([9, 9]),
      encodeFramed(V2_ID, v2.type, { ...v1Envelope, sequence: 5 }),
      encodeFramed(V1_ID, v1.type, { ...v1Envelope, device_id: 'dev-2' }),
    ];
    const results = await decoder.decodeBatch(batch);
    expect(results.map((r) => (r.ok ? (r.value as { device_id: string }).device_id : r.code))).toEqual([
      'dev-1',
      'BAD_MAGIC_BYTE',
      'dev-1',
      'dev-2',
    ]);
    expect(results[2]?.ok && results[2].value.sequence).toBe(5);
  });
});

describe('envelope decoder properties', () => {
  const decoder = createEnvelopeDecoder(registry);
  const knownIds = [V1_ID, V2_ID, INFERENCE_ID, 999_999];

  it('never throws on arbitrary bytes and always answers with a decode reason code', async () => {
    await decoder.prefetch(knownIds);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), async (bytes) => {
        const result = await decoder.decode(Buffer.from(bytes));
        if (!result.ok) {
          expect(DECODE_FAILURE_CODES).toContain(result.code);
          expect(isReasonCode(result.code)).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('never throws on arbitrary bodies behind a valid header, nor on corrupted envelopes', async () => {
    await decoder.prefetch(knownIds);
    const frames = fc.oneof(
      fc
        .tuple(fc.constantFrom(...knownIds), fc.uint8Array({ maxLength: 200 }))
        .map(([id, body]) => Buffer.concat([header(id), Buffer.from(body)])),
      // Valid envelopes with bytes flipped, cut or appended: the realistic corruptions.
      fc
        .tuple(
          arbitraryEnvelope(),
          fc.nat(),
          fc.integer({ min: 0, max: 255 }),
          fc.constantFrom('flip', 'cut', 'append'),
        )
        .map(([value, at, byte, how]) => {
          const frame = encodeFramed(V2_ID, v2.type, value);
          const i = 5 + (at % Math.max(1, frame.length - 5));
          if (how === 'cut') return frame.subarray(0, i);
          if (how === 'append') return Buffer.concat([frame, Buffer.from([byte])]);
          const copy = Buffer.from(frame);
          copy[i] = byte;
          return copy;
        }),
    );
    await fc.assert(
      fc.asyncProperty(frames, async (bytes) => {
        const result = await decoder.decode(bytes);
        if (!result.ok) expect(DECODE_FAILURE_CODES).toContain(result.code);
      }),
      { numRuns: 2_000 },
    );
  });

  it('round-trips arbitrary v2 envelopes, or refuses them as ENVELOPE_INVALID exactly when beyond the limits', async () => {
    const limits = envelopeLimits();
    await fc.assert(
      fc.asyncProperty(arbitraryEnvelope(v2.type), async (value) => {
        const result = await decoder.decode(encodeFramed(V2_ID, v2.type, value));
        const problem = limits(value);
        if (problem === null) expect(result).toMatchObject({ ok: true, value });
        else expect(result).toEqual({ ok: false, code: 'ENVELOPE_INVALID', detail: problem });
      }),
      { numRuns: 500 },
    );
  });

  it('reads arbitrary v1 envelopes as v2: the same fields, v2 defaults for the rest', async () => {
    const defaults = Object.fromEntries(
      (v2.type as unknown as { fields: { name: string; defaultValue(): unknown }[] }).fields
        .filter((f) => !(v1.type as unknown as { fields: { name: string }[] }).fields.some((g) => g.name === f.name))
        .map((f) => [f.name, f.defaultValue()]),
    );
    expect(Object.keys(defaults)).toContain('sequence');
    await fc.assert(
      fc.asyncProperty(arbitraryFor(v1.type), async (value) => {
        const result = await decoder.decode(encodeFramed(V1_ID, v1.type, value));
        const expected = { ...(value as object), ...defaults };
        const problem = envelopeLimits()(expected);
        if (problem === null) expect(result).toMatchObject({ ok: true, value: expected });
        else expect(result).toEqual({ ok: false, code: 'ENVELOPE_INVALID', detail: problem });
      }),
      { numRuns: 300 },
    );
  });
});
