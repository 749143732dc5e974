import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REASON_CODES, reasonCodesOf } from '../../runtime/errors.ts';
import { PAYLOAD_RECORD } from '../../schemas/types.ts';
import { DEFAULT_SCHEMA_DIR, envelopeReaderType, loadSchemaRepo } from './schemas.ts';

const dirs: string[] = [];
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-schemas-'));
  dirs.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const subjects = (extra: object = {}) =>
  JSON.stringify({ subjects: [{ name: 'thing', subject: 'thing-value', topic: 'thing', ...extra }] });
const schema = JSON.stringify({ type: 'record', name: 'Thing', fields: [{ name: 'a', type: 'int' }] });

describe('schema repo', () => {
  it('loads every subject with its versions oldest first, newest last', () => {
    const repo = loadSchemaRepo();
    const envelope = repo.get('envelope');
    expect(envelope.versions.map((v) => v.version)).toEqual([1, 2, 3]);
    expect(envelope.newest.version).toBe(3);
    expect(repo.get('vigil.telemetry.raw-value')).toBe(envelope);
    expect(envelopeReaderType()).toBe(envelope.newest.type);
    expect(() => repo.get('nope')).toThrow(/no schema subject nope/);
  });

  it('merges extra schema trees (a pipeline that brings its own schemas) and refuses a name defined twice', () => {
    const extra = tree({ 'subjects.json': subjects(), 'thing/v1.avsc': schema });
    const repo = loadSchemaRepo([DEFAULT_SCHEMA_DIR, extra]);
    expect(repo.dirs).toEqual([DEFAULT_SCHEMA_DIR, extra]);
    expect(repo.get('thing').newest.version).toBe(1);
    expect(repo.get('envelope').newest.type).toBe(loadSchemaRepo().get('envelope').newest.type);
    expect(repo.subjects.at(-1)?.spec.name).toBe('thing');
    const again = tree({ 'subjects.json': subjects(), 'thing/v1.avsc': schema });
    expect(() => loadSchemaRepo([extra, again])).toThrow(/schema thing is defined twice/);
  });

  it('caches parsed Types per file', () => {
    expect(loadSchemaRepo().get('envelope').newest.type).toBe(loadSchemaRepo().get('envelope').newest.type);
  });

  it('orders versions numerically (v10 after v9) and defaults the level to BACKWARD_TRANSITIVE', () => {
    const files: Record<string, string> = { 'subjects.json': subjects() };
    for (const v of [1, 2, 9, 10]) files[`thing/v${v}.avsc`] = schema;
    const repo = loadSchemaRepo(tree(files));
    expect(repo.get('thing').versions.map((v) => v.version)).toEqual([1, 2, 9, 10]);
    expect(repo.get('thing').spec.compatibility).toBe('BACKWARD_TRANSITIVE');
  });

  it('rejects a bad subjects.json, a missing version, or a file that is not Avro, naming the file', () => {
    expect(() => loadSchemaRepo(tree({ 'subjects.json': subjects({ extra: 1 }), 'thing/v1.avsc': schema }))).toThrow(
      /subjects\.json.*extra/,
    );
    expect(() => loadSchemaRepo(tree({ 'subjects.json': subjects({ compatibility: 'SOMETIMES' }) }))).toThrow(
      /compatibility/,
    );
    expect(() => loadSchemaRepo(tree({ 'subjects.json': subjects(), 'thing/notes.txt': '' }))).toThrow(
      /holds no v<N>\.avsc/,
    );
    expect(() => loadSchemaRepo(tree({ 'subjects.json': subjects(), 'thing/v1.avsc': '{"type":"recrod"}' }))).toThrow(
      /thing\/v1\.avsc is not a valid Avro schema/,
    );
  });

  it("the newest dead-letter schema's ReasonCode enum is exactly REASON_CODES plus the trailing UNCLASSIFIED default", () => {
    const deadLetter = loadSchemaRepo().get('dead-letter');
    const symbolsOf = (schema: unknown) => {
      const field = (
        schema as { fields: { name: string; type: { symbols: string[]; default: string } }[] }
      ).fields.find((f) => f.name === 'reason_code')!;
      expect(field.type.default).toBe('UNCLASSIFIED');
      return field.type.symbols;
    };
    expect(symbolsOf(deadLetter.newest.schema)).toEqual([...REASON_CODES, 'UNCLASSIFIED']);
    // Older versions only ever lose nothing: every code they knew is still in the table (a code is never retired).
    for (const version of deadLetter.versions) {
      for (const symbol of symbolsOf(version.schema)) expect([...REASON_CODES, 'UNCLASSIFIED']).toContain(symbol);
    }
  });

  it("the gateway-rejection reason enum is the gateway's codes of the table, CLOCK_SKEW and a trailing UNCLASSIFIED", () => {
    const field = (
      loadSchemaRepo().get('gateway-rejection').newest.schema as {
        fields: { name: string; type: { symbols: string[]; default: string } }[];
      }
    ).fields.find((f) => f.name === 'reason')!;
    expect([...field.type.symbols].sort()).toEqual([...reasonCodesOf('gateway'), 'CLOCK_SKEW', 'UNCLASSIFIED'].sort());
    expect(field.type.symbols.at(-1)).toBe('UNCLASSIFIED');
    expect(field.type.default).toBe('UNCLASSIFIED');
  });

  it('the payload union reads wrapped by full name, nullable fields unwrapped (what schemas/types.ts relies on)', () => {
    const type = envelopeReaderType();
    const payload = (
      type as unknown as { fields: { name: string; type: { types: { branchName: string }[] } }[] }
    ).fields.find((f) => f.name === 'payload')!.type;
    expect(payload.types.map((b) => b.branchName).sort()).toEqual(Object.values(PAYLOAD_RECORD).sort());
    expect(type.typeName).toBe('record');
    expect(
      (type as unknown as { fields: { name: string; type: { typeName: string } }[] }).fields.find(
        (f) => f.name === 'model_version',
      )!.type.typeName,
    ).toBe('union:unwrapped');
  });
});
