/**
 * fast-check arbitraries derived from Avro Types: any valid value of a schema, in the shape avsc reads and writes
 * (`wrapUnions: 'auto'`). For property-based tests only (fast-check is a development dependency): decoders, validators
 * and sinks can all draw envelopes from here instead of hand-picking examples.
 */
import type avsc from 'avsc';
import fc from 'fast-check';
import { envelopeReaderType } from '../../adapters/avro/schemas.ts';
import type { Envelope, EventType } from '../../schemas/types.ts';
import { PAYLOAD_RECORD } from '../../schemas/types.ts';

interface Node {
  typeName: string;
  fields?: { name: string; type: avsc.Type }[];
  types?: avsc.Type[];
  itemsType?: avsc.Type;
  valuesType?: avsc.Type;
  symbols?: string[];
  size?: number;
  branchName?: string;
  name?: string;
}

const text = fc.string({ unit: 'grapheme', maxLength: 12 });

/**
 * Any valid value of `type`. Longs stay within the safe-integer range (avsc refuses others), strings are whole
 * graphemes (a lone surrogate does not survive UTF-8), arrays and maps are short.
 *
 * @example
 * fc.assert(fc.property(arbitraryFor(type), (v) => expect(type.fromBuffer(type.toBuffer(v))).toEqual(v)));
 */
export function arbitraryFor(type: avsc.Type, path: readonly avsc.Type[] = []): fc.Arbitrary<unknown> {
  if (path.includes(type)) throw new Error(`recursive schema ${type.name ?? ''}: not supported by arbitraryFor`);
  const inner = [...path, type];
  const t = type as unknown as Node;
  switch (t.typeName) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'int':
      return fc.integer();
    case 'long':
      // avsc 5.7 zig-zags longs through float arithmetic: beyond ±2^52 it writes them wrong (silently). Real longs here
      // (epoch ms, sequences, offsets) are far below that.
      return fc.integer({ min: -(2 ** 52), max: 2 ** 52 });
    case 'float':
      return fc.float();
    case 'double':
      return fc.double();
    case 'string':
      return text;
    case 'bytes':
      return fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a));
    case 'fixed':
      return fc.uint8Array({ minLength: t.size!, maxLength: t.size! }).map((a) => Buffer.from(a));
    case 'enum':
      return fc.constantFrom(...t.symbols!);
    case 'array':
      return fc.array(arbitraryFor(t.itemsType!, inner), { maxLength: 4 });
    case 'map':
      return fc.dictionary(
        text.filter((k) => k !== '__proto__'),
        arbitraryFor(t.valuesType!, inner),
        { maxKeys: 3 },
      );
    case 'record':
    case 'error':
      return fc.record(Object.fromEntries(t.fields!.map((f) => [f.name, arbitraryFor(f.type, inner)])));
    case 'union:unwrapped':
      return fc.oneof(...t.types!.map((b) => arbitraryFor(b, inner)));
    case 'union:wrapped':
      return fc.oneof(
        ...t.types!.map((b) =>
          b.typeName === 'null'
            ? fc.constant(null)
            : arbitraryFor(b, inner).map((v) => ({ [(b as unknown as Node).branchName!]: v })),
        ),
      );
    default:
      throw new Error(`no arbitrary for Avro type ${t.typeName}`);
  }
}

const EVENT_TYPE_OF = Object.fromEntries(Object.entries(PAYLOAD_RECORD).map(([k, v]) => [v, k])) as Record<
  string,
  EventType
>;

/**
 * Any valid envelope of `type` (default: the newest envelope), with `event_type` matching the payload it carries.
 *
 * @example
 * fc.assert(fc.property(arbitraryEnvelope(), (e) => validate(e) !== undefined));
 */
export function arbitraryEnvelope(type: avsc.Type = envelopeReaderType()): fc.Arbitrary<Envelope> {
  return arbitraryFor(type).map((value) => {
    const envelope = value as Record<string, unknown> & { payload: Record<string, unknown> };
    const [branch] = Object.keys(envelope.payload);
    return { ...envelope, event_type: EVENT_TYPE_OF[branch!] ?? envelope.event_type } as unknown as Envelope;
  });
}
