import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.ts';
import { REASON_CODES, VigilError } from '../../runtime/errors.ts';
import { type Envelope, payloadOf } from '../../schemas/types.ts';
import { simulateFleet } from '../../simulator/simulate.ts';
import { loadSchemaRepo } from '../avro/schemas.ts';
import { writeAvroContainer } from './avro-container.ts';
import { envelopeSchema } from './envelope-schema.ts';
import { readLines } from './lines.ts';
import { envelopeToNdjson } from './ndjson.ts';
import { detectFileFormat, type FileBatch, type FileSourceOptions, openFileSource } from './source.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-file-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;
const file = (name: string, content: string | Buffer): string => {
  const path = join(dir, `${fileCounter++}-${name}`);
  writeFileSync(path, content);
  return path;
};
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

const envelopes: Envelope[] = [];
for (const r of simulateFleet({
  devices: 50,
  events: 600,
  seed: 8,
  duplicateRate: 0,
  replayRate: 0,
  malformedRate: 0,
})) {
  if (r.kind === 'envelope') envelopes.push(r.envelope);
}
const [e1, e2, e3] = envelopes as [Envelope, Envelope, Envelope];

async function readAll(path: string, options: FileSourceOptions = {}): Promise<FileBatch[]> {
  const batches: FileBatch[] = [];
  for await (const batch of openFileSource(path, options)) batches.push(batch);
  return batches;
}

const flatten = (batches: FileBatch[]) => ({
  records: batches.flatMap((b) => b.records),
  rejected: batches.flatMap((b) => b.rejected),
  consumed: batches.reduce((n, b) => n + b.consumed, 0),
});

describe('NDJSON file source', () => {
  it('handles a BOM, CRLF, blank lines and a last line without newline; offsets are line numbers', async () => {
    const l1 = envelopeToNdjson(e1);
    const l3 = envelopeToNdjson(e2, { timestamps: 'iso' });
    const content = `\ufeff${l1}\r\n\r\n${l3}\r\n   \t\r\nnot json\n\n${envelopeToNdjson(e3)}`;
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const path = file('forms.ndjson', content);
    const { records, rejected, consumed } = flatten(await readAll(path, { clock }));
    expect(consumed).toBe(4);
    expect(records.map((r) => r.value)).toEqual([e1, e2, e3]);
    expect(records.map((r) => r.origin.offset)).toEqual([1, 3, 7]);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.code).toBe('JSON_PARSE_FAILED');
    expect(rejected[0]?.record.origin.offset).toBe(5);
    expect(rejected[0]?.record.value).toBeNull();
    const first = records[0]?.origin;
    // raw is the line's bytes: no BOM, no CR, no LF.
    expect(first?.raw.toString()).toBe(l1);
    expect(first?.rawSha256).toBe(sha256(l1));
    expect(records[1]?.origin.raw.toString()).toBe(l3);
    expect(first?.topic).toMatch(/^file:\d+-forms\.ndjson$/);
    expect(first?.partition).toBe(0);
    expect(first?.consumedAt).toBe(clock.now());
    expect(first?.key).toBe(e1.device_id);
    expect(first?.headers).toEqual([]);
  });

  it('counts every non-empty line, in batches of the configured size', async () => {
    const lines = envelopes.slice(0, 10).map((e) => envelopeToNdjson(e));
    lines.splice(4, 0, '{"broken":', '');
    const path = file('batches.ndjson', `${lines.join('\n')}\n`);
    const batches = await readAll(path, { batchSize: 4 });
    expect(batches.map((b) => b.consumed)).toEqual([4, 4, 3]);
    for (const b of batches) expect(b.consumed).toBe(b.records.length + b.rejected.length);
    const { records, rejected } = flatten(batches);
    expect(records).toHaveLength(10);
    expect(rejected.map((r) => [r.record.origin.offset, r.code])).toEqual([[5, 'JSON_PARSE_FAILED']]);
  });

  it('rejects bad envelopes with ENVELOPE_INVALID and keeps only their claims, in storable form', async () => {
    const plain = JSON.parse(envelopeToNdjson(e1));
    const path = file('invalid.ndjson', `${JSON.stringify({ ...plain, site_id: 7 })}\n`);
    const { rejected } = flatten(await readAll(path));
    expect(rejected[0]?.code).toBe('ENVELOPE_INVALID');
    expect(rejected[0]?.detail).toBe('site_id: expected string');
    // The claimed fields only (a dead letter cites them), each storable or null (site_id 7 is not a text).
    expect(rejected[0]?.record.value).toEqual({
      event_id: e1.event_id,
      device_id: e1.device_id,
      site_id: null,
      firmware_version: e1.firmware_version,
      nonce: e1.nonce,
      key_id: e1.key_id,
      device_cert_fingerprint: e1.device_cert_fingerprint,
      sequence: e1.sequence,
    });
    expect(rejected[0]?.record.origin.key).toBe(e1.device_id);
  });

  it('reads very long lines across read chunks, and refuses lines over the limit without buffering them', async () => {
    // A valid envelope several MB long (a derived record citing many parents).
    const parents = Array.from({ length: 120_000 }, (_, i) => `01KE6BVBRDG38ZY1ZV1DF${String(i).padStart(5, '0')}`);
    const long: Envelope = { ...e1, parent_event_ids: parents };
    const longLine = envelopeToNdjson(long);
    expect(longLine.length).toBeGreaterThan(3_000_000);
    const path = file('long.ndjson', `${longLine}\n${envelopeToNdjson(e2)}\n`);
    const ok = flatten(await readAll(path));
    expect(ok.records.map((r) => r.value)).toEqual([long, e2]);
    expect(ok.records[0]?.origin.rawSha256).toBe(sha256(longLine));
    const limited = flatten(await readAll(path, { maxLineBytes: 1_000_000 }));
    expect(limited.consumed).toBe(2);
    expect(limited.rejected[0]?.code).toBe('JSON_PARSE_FAILED');
    expect(limited.rejected[0]?.detail).toMatch(/exceeds the 1000000-byte limit/);
    expect(limited.rejected[0]?.record.origin.raw).toHaveLength(0);
    expect(limited.rejected[0]?.record.origin.rawSha256).toBe(sha256(longLine));
    expect(limited.records.map((r) => [r.origin.offset, r.value])).toEqual([[2, e2]]);
  });

  it('yields nothing for an empty or blank file', async () => {
    expect(await readAll(file('empty.ndjson', ''))).toEqual([]);
    expect(await readAll(file('blank.ndjson', '\n\r\n  \t\n\r'))).toEqual([]);
    expect(await readAll(file('bom.ndjson', '\ufeff'))).toEqual([]);
  });

  it('fails with CONFIG_INVALID naming the file when it cannot be read', async () => {
    const missing = join(dir, 'does-not-exist.ndjson');
    await expect(readAll(missing)).rejects.toThrow(VigilError);
    await expect(readAll(missing)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(readAll(missing, { format: 'ndjson' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(readAll(file('x.ndjson', '{}'), { batchSize: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('ends every arbitrary line as a record or a rejection with a code from the table', async () => {
    const good = envelopes.slice(0, 20).map((e) => envelopeToNdjson(e));
    const line = fc.oneof(
      fc.constantFrom(...good),
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      fc.constantFrom(...good).chain((g) => fc.nat(g.length).map((n) => g.slice(0, n))),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), async (lines, eol) => {
        const path = file('prop.ndjson', lines.join(eol));
        const { records, rejected, consumed } = flatten(await readAll(path, { batchSize: 5 }));
        // Lines as the reader sees them: split on LF (a line may hold a CR or LF of its own), blank ones dropped.
        const expected = lines
          .join(eol)
          .split('\n')
          .map((l) => l.replace(/\r$/, ''))
          .filter((l) => !/^[ \t\r]*$/.test(l));
        expect(consumed).toBe(expected.length);
        expect(records.length + rejected.length).toBe(consumed);
        for (const r of rejected) expect(REASON_CODES).toContain(r.code);
      }),
      { numRuns: 150 },
    );
  });
});

describe('readLines', () => {
  it('splits any content the same way whatever the chunk size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', ' ', '\r', '\t \r')), { maxLength: 20 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.integer({ min: 64, max: 200 }),
        async (parts, eol, bom, chunkBytes) => {
          const text = (bom ? '\ufeff' : '') + parts.join(eol);
          const path = file('lines.txt', text);
          const got: [number, string][] = [];
          for await (const line of readLines(path, { chunkBytes }))
            got.push([line.number, line.bytes?.toString() ?? '']);
          const want: [number, string][] = [];
          (bom ? text.slice(1) : text).split('\n').forEach((l, i) => {
            const stripped = l.replace(/\r$/, '');
            if (!/^[ \t\r]*$/.test(stripped)) want.push([i + 1, stripped]);
          });
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('Avro container file source', () => {
  const syncMarker = Buffer.alloc(16, 7);

  it('round-trips envelopes with each record’s exact Avro bytes, null and deflate codecs', async () => {
    const { type } = envelopeSchema();
    for (const codec of ['null', 'deflate'] as const) {
      const path = join(dir, `roundtrip-${codec}.avro`);
      await writeAvroContainer(path, envelopes, { codec, syncMarker, blockSize: 8 * 1024 });
      expect(await detectFileFormat(path)).toBe('avro');
      const clock = new ManualClock(5);
      const batches = await readAll(path, { clock, batchSize: 100 });
      const { records, rejected, consumed } = flatten(batches);
      expect(rejected).toEqual([]);
      expect(consumed).toBe(envelopes.length);
      expect(batches.map((b) => b.consumed)).toEqual([100, 100, 100, 100, 100, envelopes.length - 500]);
      expect(records.map((r) => r.value)).toEqual(envelopes);
      records.forEach((r, i) => {
        expect(r.origin.offset).toBe(i);
        expect(r.origin.raw.equals(type.toBuffer(envelopes[i]))).toBe(true);
        expect(r.origin.rawSha256).toBe(sha256(r.origin.raw));
        expect(r.origin.key).toBe(envelopes[i]?.device_id);
        expect(r.origin.consumedAt).toBe(5);
      });
    }
  });

  it('writes byte-identical files for identical input and sync marker', async () => {
    const a = join(dir, 'same-a.avro');
    const b = join(dir, 'same-b.avro');
    await writeAvroContainer(a, envelopes, { syncMarker });
    await writeAvroContainer(b, envelopes, { syncMarker });
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });

  it('resolves an older writer schema (envelope v1) to the newest envelope, defaults filled', async () => {
    const v1 = loadSchemaRepo()
      .get('envelope')
      .versions.find((v) => v.version === 1);
    expect(v1).toBeDefined();
    const v1Type = avro.Type.forSchema(v1?.schema as avro.Schema, { wrapUnions: 'auto' });
    const v1Records = envelopes.slice(0, 5).map((e) => {
      const {
        sequence,
        nonce,
        device_cert_fingerprint,
        key_id,
        device_batch,
        patient_subgroup,
        transformation_version,
        parent_event_ids,
        ...rest
      } = e;
      return { ...rest, schema_version: 'telemetry-envelope-v1' };
    });
    const path = join(dir, 'v1.avro');
    const encoder = new avro.streams.BlockEncoder(v1Type, { syncMarker });
    const done = new Promise<void>((resolve, reject) => {
      const chunks: Buffer[] = [];
      encoder.on('data', (c: Buffer) => chunks.push(c));
      encoder.on('end', () => {
        writeFileSync(path, Buffer.concat(chunks));
        resolve();
      });
      encoder.on('error', reject);
    });
    for (const r of v1Records) encoder.write(r);
    encoder.end();
    await done;
    const { records, rejected } = flatten(await readAll(path));
    expect(rejected).toEqual([]);
    expect(records.map((r) => r.value)).toEqual(
      v1Records.map((r) => ({
        ...r,
        sequence: null,
        nonce: null,
        device_cert_fingerprint: null,
        key_id: null,
        device_batch: null,
        patient_subgroup: null,
        transformation_version: null,
        parent_event_ids: [],
      })),
    );
    expect(records[0]?.origin.raw.equals(v1Type.toBuffer(v1Records[0]))).toBe(true);
  });

  /** A container whose single block holds exactly `records` (raw Avro bytes each), written by hand. */
  function handmade(
    name: string,
    records: Buffer[],
    schema: avro.Schema = loadSchemaRepo().get('envelope').newest.schema,
  ): string {
    const header = avro.Type.forSchema({
      type: 'record',
      name: 'org.apache.avro.file.Header',
      fields: [
        { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
        { name: 'meta', type: { type: 'map', values: 'bytes' } },
        { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
      ],
    });
    const long = avro.Type.forSchema('long');
    const data = Buffer.concat(records);
    const head = header.toBuffer({
      magic: Buffer.from('Obj\x01', 'latin1'),
      meta: { 'avro.schema': Buffer.from(JSON.stringify(schema)), 'avro.codec': Buffer.from('null') },
      sync: syncMarker,
    });
    return file(
      name,
      Buffer.concat([head, long.toBuffer(records.length), long.toBuffer(data.length), data, syncMarker]),
    );
  }

  it('rejects a record that does not decode, and the rest of its block, without stopping the file', async () => {
    const { type } = envelopeSchema();
    const good = type.toBuffer(e1);
    // Four short strings, then an event_type enum index far past the last symbol: decoding throws.
    const garbage = Buffer.from([2, 65, 2, 66, 2, 67, 2, 68, 100, 1, 2, 3]);
    const path = handmade('bad-record.avro', [good, garbage, type.toBuffer(e2)]);
    const { records, rejected, consumed } = flatten(await readAll(path));
    expect(consumed).toBe(3);
    expect(records.map((r) => [r.origin.offset, r.value])).toEqual([[0, e1]]);
    expect(rejected.map((r) => [r.record.origin.offset, r.code])).toEqual([
      [1, 'AVRO_DECODE_FAILED'],
      [2, 'AVRO_DECODE_FAILED'],
    ]);
    expect(rejected[0]?.record.origin.raw.length).toBeGreaterThan(0);
    expect(rejected[1]?.detail).toMatch(/cannot be located/);
  });

  it('rejects a record that runs past its block as TRUNCATED_FRAME', async () => {
    const { type } = envelopeSchema();
    const body = type.toBuffer(e1);
    const path = handmade('truncated-record.avro', [body.subarray(0, body.length - 10)]);
    const { rejected, consumed } = flatten(await readAll(path));
    expect(consumed).toBe(1);
    expect(rejected.map((r) => r.code)).toEqual(['TRUNCATED_FRAME']);
  });

  it('rejects every record of a file whose writer schema is not an envelope as SCHEMA_NOT_ENVELOPE', async () => {
    const other = {
      type: 'record',
      name: 'Other',
      namespace: 'x',
      fields: [{ name: 'n', type: 'int' }],
    } as avro.Schema;
    const t = avro.Type.forSchema(other);
    const path = handmade('other.avro', [t.toBuffer({ n: 1 }), t.toBuffer({ n: 2 })], other);
    const { records, rejected, consumed } = flatten(await readAll(path));
    expect(consumed).toBe(2);
    expect(records).toEqual([]);
    expect(rejected.map((r) => r.code)).toEqual(['SCHEMA_NOT_ENVELOPE', 'SCHEMA_NOT_ENVELOPE']);
  });

  it('refuses a broken container with CONFIG_INVALID: bad magic, sync mismatch, cut mid-block, unknown codec', async () => {
    const path = join(dir, 'intact.avro');
    await writeAvroContainer(path, envelopes.slice(0, 50), { syncMarker });
    const intact = readFileSync(path);
    const badSync = Buffer.from(intact);
    badSync[badSync.length - 1] = (badSync[badSync.length - 1] as number) ^ 0xff;
    const notAvro = Buffer.concat([Buffer.from('Obj\x02', 'latin1'), intact.subarray(4)]);
    const cases: [string, Buffer, RegExp][] = [
      ['bad-sync.avro', badSync, /sync marker mismatch/],
      ['cut.avro', intact.subarray(0, intact.length - 100), /file ends inside block/],
      ['cut-header.avro', intact.subarray(0, 40), /file ends inside the header/],
      ['not-avro.avro', notAvro, /bad magic/],
    ];
    for (const [name, bytes, message] of cases) {
      const p = file(name, bytes);
      await expect(readAll(p, { format: 'avro' }), name).rejects.toMatchObject({ code: 'CONFIG_INVALID', message });
    }
    const header = avro.Type.forSchema({
      type: 'record',
      name: 'H',
      fields: [
        { name: 'magic', type: { type: 'fixed', name: 'M', size: 4 } },
        { name: 'meta', type: { type: 'map', values: 'bytes' } },
        { name: 'sync', type: { type: 'fixed', name: 'S', size: 16 } },
      ],
    });
    const snappyFile = file(
      'snappy.avro',
      header.toBuffer({
        magic: Buffer.from('Obj\x01', 'latin1'),
        meta: { 'avro.schema': Buffer.from('"int"'), 'avro.codec': Buffer.from('snappy') },
        sync: syncMarker,
      }),
    );
    await expect(readAll(snappyFile)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: /unsupported codec "snappy"/,
    });
  });

  it('reads what the simulator wrote and keeps semantic faults for validate', async () => {
    const faulty: Envelope[] = [];
    for (const r of simulateFleet({ devices: 30, events: 400, seed: 2, malformedRate: 0.3, rawFaultShare: 0 })) {
      if (r.kind === 'envelope') faulty.push(r.envelope);
    }
    expect(faulty.some((e) => payloadOf(e.payload)?.type !== e.event_type)).toBe(true);
    const path = join(dir, 'faulty.avro');
    await writeAvroContainer(path, faulty, { syncMarker });
    const { records } = flatten(await readAll(path));
    expect(records.map((r) => r.value)).toEqual(faulty);
  });
});
