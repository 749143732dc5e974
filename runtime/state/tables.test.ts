import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClaimTable, ownerCode, ownerOf, SequenceTable, Stream } from './tables.ts';

/** A deterministic PRNG (mulberry32), so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
function ulidOf(random: () => number): string {
  let out = CROCKFORD[Math.floor(random() * 8)]!;
  for (let i = 1; i < 26; i++) out += CROCKFORD[Math.floor(random() * 32)]!;
  return out;
}

describe('ClaimTable', () => {
  it('answers like a Map with a FIFO beside it through growth, wrap-around and churn (ULID and other keys)', () => {
    const random = prng(7);
    const table = new ClaimTable();
    const model = new Map<string, string>();
    const order: string[] = [];
    const pool = Array.from({ length: 3000 }, (_, i) => {
      const kind = i % 4;
      if (kind === 0 || kind === 1) return ulidOf(random); // packed
      if (kind === 2) return `e${i}`; // a string key
      return ulidOf(random).toLowerCase(); // 26 characters, not canonical: kept as a string
    });
    let checked = 0;
    for (let step = 0; step < 60_000; step++) {
      const key = pool[Math.floor(random() * pool.length)]!;
      const held = table.get(key);
      if (held === model.get(key)) checked++;
      if (held === undefined) {
        const owner = `0:${step}`;
        table.add(key, owner);
        model.set(key, owner);
        order.push(key);
      }
      // Keep between ~500 and ~1,500 entries: the ring wraps and the index shifts entries back on every drop.
      if (model.size > 500 + (step % 1000)) {
        const n = 1 + Math.floor(random() * 3);
        table.dropOldest(n);
        for (const old of order.splice(0, n)) model.delete(old);
      }
      if (table.size !== model.size) throw new Error(`size ${table.size} at step ${step}, expected ${model.size}`);
    }
    for (const key of pool) expect(table.get(key)).toBe(model.get(key));
    expect(checked).toBe(60_000);
  });

  it('keeps a canonical ULID and every other spelling of it apart', () => {
    const table = new ClaimTable();
    const id = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    table.add(id, '0:1');
    for (const other of [
      id.toLowerCase(), // the same ULID in Crockford's lenient reading, but another string
      `${id.slice(0, 25)}W`, // last character
      `1${id.slice(1)}`, // first character (its top bits)
      `${id.slice(0, 1)}2${id.slice(2)}`, // second character
      `${id}0`, // 27 characters
      id.slice(0, 25),
      `8${id.slice(1)}`, // beyond 128 bits: a string key
    ]) {
      expect(table.get(other)).toBeUndefined();
      table.add(other, other);
    }
    expect(table.get(id)).toBe('0:1');
    expect(table.get(`8${id.slice(1)}`)).toBe(`8${id.slice(1)}`);
    expect(table.get(id.toLowerCase())).toBe(id.toLowerCase());
    expect(table.setOwner(id, '0:2')).toBe(true);
    expect(table.get(id)).toBe('0:2');
    expect(table.setOwner('absent', '0:3')).toBe(false);
    expect(table.size).toBe(8);
  });

  it('packs ULIDs injectively (property: two canonical ULIDs are equal keys exactly when they are equal strings)', () => {
    const ulid = fc.tuple(
      fc.constantFrom(...CROCKFORD.slice(0, 8)),
      fc.array(fc.constantFrom(...CROCKFORD), { minLength: 25, maxLength: 25 }),
    );
    fc.assert(
      fc.property(ulid, ulid, ([a0, a], [b0, b]) => {
        const x = a0 + a.join('');
        const y = b0 + b.join('');
        const table = new ClaimTable();
        table.add(x, 'x');
        expect(table.get(y)).toBe(x === y ? 'x' : undefined);
      }),
    );
  });
});

describe('SequenceTable', () => {
  it('answers like a Map per stream through churn, and reports a stream whose last sequence it dropped', () => {
    const random = prng(11);
    const emptied: string[] = [];
    const table = new SequenceTable((stream) => emptied.push(stream.name));
    const streams = Array.from({ length: 40 }, (_, i) => new Stream(`d${i}`, 0, i));
    const model = new Map<string, string>();
    const order: [Stream, number][] = [];
    const heldBy = new Map<Stream, number>();
    let emptiedSeen = 0;
    for (let step = 0; step < 40_000; step++) {
      const stream = streams[Math.floor(random() * streams.length)]!;
      // Small, large and negative safe integers: both 32-bit halves of the hash input vary.
      const sequence = [Math.floor(random() * 300), 2 ** 40 + Math.floor(random() * 5), -Math.floor(random() * 3)][
        step % 3
      ]!;
      const key = `${stream.name}/${sequence}`;
      expect(table.get(stream, sequence)).toBe(model.get(key));
      if (!model.has(key)) {
        table.add(stream, sequence, `0:${step}`);
        model.set(key, `0:${step}`);
        order.push([stream, sequence]);
        heldBy.set(stream, (heldBy.get(stream) ?? 0) + 1);
      }
      if (model.size > 20 + (step % 400)) {
        const n = 1 + Math.floor(random() * 3);
        table.dropOldest(n);
        const expected: string[] = [];
        for (const [s, q] of order.splice(0, n)) {
          model.delete(`${s.name}/${q}`);
          const left = heldBy.get(s)! - 1;
          heldBy.set(s, left);
          if (left === 0) expected.push(s.name);
        }
        expect(emptied.splice(0)).toEqual(expected);
        emptiedSeen += expected.length;
      }
      expect(table.size).toBe(model.size);
    }
    for (const s of streams) expect(s.held).toBe(heldBy.get(s) ?? 0);
    expect(emptiedSeen).toBeGreaterThan(20); // streams did run empty (the table dips to ~20 entries over 40 streams)
  });
});

describe('owner codes', () => {
  it('round-trip every canonical owner token exactly (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4095 }),
        fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 2 ** 38 - 1 })),
        fc.integer({ min: 0, max: 7 }),
        (partition, offset, lane) => {
          const token = lane === 0 ? `${partition}:${offset}` : `${partition}:${offset}/${lane}`;
          const code = ownerCode(token);
          expect(code).toBeGreaterThanOrEqual(0);
          expect(ownerOf(code)).toBe(token);
        },
      ),
    );
  });

  it('code a string only when the code gives that very string back, so no two tokens share a code (property)', () => {
    const near = fc
      .array(fc.constantFrom('0', '1', '9', ':', '/', '7', '8', ' ', '-', 'x', '00'), { maxLength: 18 })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), near), (token) => {
        const code = ownerCode(token);
        if (code >= 0) expect(ownerOf(code)).toBe(token);
        else expect(code).toBe(-1);
      }),
      { numRuns: 5000 },
    );
    for (const token of ['01:5', '0:01', '0:1/0', '0:1/8', '0:1/10', '4096:1', '0:274877906944', '0:', ':1', '', 'a:b'])
      expect(ownerCode(token)).toBe(-1);
    expect(ownerOf(ownerCode('4095:274877906943/7'))).toBe('4095:274877906943/7');
  });

  it('keeps a non-canonical owner as its string, beside coded ones, through growth', () => {
    const table = new ClaimTable();
    const owners = ['0:1', '01:1', '3:7/1', 'x', '0:1/0', '4096:5'];
    for (let i = 0; i < 100; i++) table.add(`e${i}`, owners[i % owners.length]!);
    for (let i = 0; i < 100; i++) expect(table.get(`e${i}`)).toBe(owners[i % owners.length]);
    table.dropOldest(50);
    expect(table.setOwner('e60', '0:9')).toBe(true);
    expect(table.setOwner('e61', 'not:canonical')).toBe(true);
    expect([table.get('e60'), table.get('e61'), table.get('e62'), table.get('e0')]).toEqual([
      '0:9',
      'not:canonical',
      owners[62 % owners.length],
      undefined,
    ]);
  });
});
