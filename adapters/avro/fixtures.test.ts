import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PAYLOAD_RECORD } from '../../schemas/types.ts';
import { InProcessSchemaRegistry } from '../registry/in-process.ts';
import { createEnvelopeDecoder } from './decoder.ts';
import {
  fixtureLabel,
  listGoldenFixtures,
  projectToReader,
  verifyGoldenFixture,
  verifyGoldenFixtures,
} from './fixtures.ts';
import { FRAME_HEADER_SIZE } from './framing.ts';
import { loadSchemaRepo } from './schemas.ts';

const repo = loadSchemaRepo();
const fixtures = listGoldenFixtures(repo);

describe('golden fixtures', () => {
  it('exist for every version of every subject', () => {
    const { missing } = verifyGoldenFixtures(repo);
    expect(missing).toEqual([]);
    expect(fixtures.length).toBeGreaterThanOrEqual(repo.subjects.length * 2);
  });

  it.each(fixtures.map((f) => [fixtureLabel(f), f] as const))(
    '%s decodes with the newest reader as expected',
    (_, f) => {
      expect(verifyGoldenFixture(repo, f).problem).toBeNull();
    },
  );

  it('cover every payload type in every envelope version', () => {
    for (const v of repo.get('envelope').versions) {
      const branches = fixtures
        .filter((f) => f.name === 'envelope' && f.version === v.version)
        .map((f) => Object.keys((JSON.parse(readFileSync(f.jsonFile, 'utf8')) as { payload: object }).payload)[0]);
      expect(new Set(branches), `envelope v${v.version}`).toEqual(new Set(Object.values(PAYLOAD_RECORD)));
    }
  });

  it('every envelope fixture, framed with its version id, goes through the decoder (v1 gains v2 defaults)', async () => {
    const registry = new InProcessSchemaRegistry(repo);
    const decoder = createEnvelopeDecoder(registry);
    const envelope = repo.get('envelope');
    for (const f of fixtures.filter((x) => x.name === 'envelope')) {
      const version = envelope.versions.find((v) => v.version === f.version)!;
      const id = registry.idOf(envelope.spec.subject, version.schema)!;
      const header = Buffer.alloc(FRAME_HEADER_SIZE);
      header.writeInt32BE(id, 1);
      const frame = Buffer.concat([header, readFileSync(f.avroFile)]);
      const result = await decoder.decode(frame);
      expect(result.ok, fixtureLabel(f)).toBe(true);
      const expected = projectToReader(envelope.newest.schema, JSON.parse(readFileSync(f.jsonFile, 'utf8')));
      if (result.ok) expect(JSON.parse(envelope.newest.type.toString(result.value))).toEqual(expected);
      // Every proper prefix of the frame is a truncated frame, never anything else.
      for (let cut = 0; cut < frame.length; cut++) {
        const r = await decoder.decode(frame.subarray(0, cut));
        expect(r.ok ? 'ok' : r.code, `${fixtureLabel(f)} cut at ${cut}`).toBe('TRUNCATED_FRAME');
      }
    }
  });

  it('notice a fixture whose bytes and JSON disagree, and one the newest reader can no longer read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-fixtures-'));
    try {
      cpSync(repo.dir, dir, { recursive: true });
      const copy = loadSchemaRepo(dir);
      const target = listGoldenFixtures(copy).find(
        (f) => f.name === 'envelope' && f.caseName === 'alarm' && f.version === 1,
      )!;
      const json = JSON.parse(readFileSync(target.jsonFile, 'utf8'));
      json.site_id = 'site-elsewhere';
      writeFileSync(target.jsonFile, JSON.stringify(json));
      expect(verifyGoldenFixture(copy, target).problem).toMatch(
        /envelope\/v1\/alarm: the \.avro does not decode to the \.json/,
      );

      // A v4 that adds a field without a default: the fixtures of every earlier version no longer read.
      const v4 = JSON.parse(readFileSync(join(dir, 'envelope', 'v3.avsc'), 'utf8'));
      v4.fields.push({ name: 'ward_id', type: 'string' });
      writeFileSync(join(dir, 'envelope', 'v4.avsc'), JSON.stringify(v4));
      const next = loadSchemaRepo(dir);
      const { outcomes, missing } = verifyGoldenFixtures(next);
      expect(missing).toEqual(['envelope/v4']);
      const broken = outcomes.filter((o) => o.problem).map((o) => o.problem!);
      expect(broken.length).toBe(listGoldenFixtures(next).filter((f) => f.name === 'envelope').length);
      expect(broken.find((p) => p.startsWith('envelope/v2/vital-signs:'))).toMatch(
        /v4 \(newest\) cannot read it: no matching field for default-less vigil\.telemetry\.Envelope\.ward_id/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('projectToReader (the expected value, computed from schema JSON alone)', () => {
  const reader = {
    type: 'record',
    name: 'R',
    namespace: 'n',
    fields: [
      { name: 'a', type: 'long' },
      { name: 'renamed', aliases: ['old'], type: 'string' },
      { name: 'opt', type: ['null', 'string'], default: null },
      { name: 'level', type: { type: 'enum', name: 'Level', symbols: ['lo', 'hi', 'unknown'], default: 'unknown' } },
      {
        name: 'inner',
        type: [
          {
            type: 'record',
            name: 'In',
            fields: [
              { name: 'x', type: 'int' },
              { name: 'y', type: 'int', default: 3 },
            ],
          },
        ],
      },
      { name: 'list', type: { type: 'array', items: 'In' }, default: [] },
      { name: 'nested_default', type: 'In', default: { x: 1 } },
      { name: 'again', type: 'Level', default: 'lo' },
    ],
  };

  it('drops fields the reader lacks, follows aliases, fills defaults (wrapped as Avro JSON), maps unknown symbols', () => {
    const written = { a: 1, old: 's', gone: true, level: 'mid', inner: { 'n.In': { x: 5 } } };
    expect(projectToReader(reader as never, written)).toEqual({
      a: 1,
      renamed: 's',
      opt: null,
      level: 'unknown',
      inner: { 'n.In': { x: 5, y: 3 } },
      list: [],
      nested_default: { x: 1, y: 3 },
      again: 'lo',
    });
  });

  it('refuses a missing field without a default', () => {
    expect(() => projectToReader(reader as never, { old: 's' })).toThrow(/field a is missing and has no default/);
  });
});
