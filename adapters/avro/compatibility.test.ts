import { describe, expect, it } from 'vitest';
import { checkAgainstRegistered, checkRepoCompatibility, compatibilityProblems } from './compatibility.ts';
import { loadSchemaRepo, parseAvroSchema } from './schemas.ts';

const record = (fields: object[]) => parseAvroSchema({ type: 'record', name: 'R', namespace: 't', fields } as never);
const v1 = record([{ name: 'a', type: 'int' }]);
const v2 = record([
  { name: 'a', type: 'int' },
  { name: 'b', type: 'string', default: '' },
]);
const v3 = record([
  { name: 'a', type: 'int' },
  { name: 'b', type: 'string' },
]);
const history = [
  { version: 1, type: v1 },
  { version: 2, type: v2 },
];

describe('compatibility levels', () => {
  it('BACKWARD looks at the previous version only; BACKWARD_TRANSITIVE at all of them', () => {
    expect(compatibilityProblems('BACKWARD', { version: 3, type: v3 }, history)).toEqual([]);
    const problems = compatibilityProblems('BACKWARD_TRANSITIVE', { version: 3, type: v3 }, history);
    expect(problems.map((p) => [p.reader, p.writer])).toEqual([['v3', 'v1']]);
    expect(problems[0]!.message).toBe('v3 cannot read data written with v1: no matching field for default-less t.R.b');
  });

  it('FORWARD asks the old schema to read the new one; FULL asks both ways; NONE asks nothing', () => {
    const dropped = record([]);
    expect(compatibilityProblems('BACKWARD', { version: 2, type: dropped }, [{ version: 1, type: v1 }])).toEqual([]);
    expect(
      compatibilityProblems('FORWARD', { version: 2, type: dropped }, [{ version: 1, type: v1 }]).map((p) => p.reader),
    ).toEqual(['v1']);
    expect(
      compatibilityProblems('FULL', { version: 3, type: v3 }, history).map((p) => `${p.reader}<-${p.writer}`),
    ).toEqual([]);
    expect(
      compatibilityProblems('FULL_TRANSITIVE', { version: 3, type: v3 }, history).map(
        (p) => `${p.reader}<-${p.writer}`,
      ),
    ).toEqual(['v3<-v1']);
    expect(
      compatibilityProblems('NONE', { version: 3, type: record([{ name: 'a', type: 'string' }]) }, history),
    ).toEqual([]);
  });

  it('names the field path inside unions of records when a payload field changes type', () => {
    const envelope = loadSchemaRepo().get('envelope').newest;
    const changed = JSON.parse(JSON.stringify(envelope.schema));
    const vitals = changed.fields.find((f: { name: string }) => f.name === 'payload').type[0];
    vitals.fields.find((f: { name: string }) => f.name === 'spo2').type = ['null', 'string'];
    const [problem] = compatibilityProblems('BACKWARD', { version: 4, type: parseAvroSchema(changed) }, [envelope]);
    expect(problem?.message).toMatch(/^v4 cannot read data written with v3: field Envelope\.payload<VitalSigns>\.spo2/);
  });

  it("passes on this repo's schemas", () => {
    const results = checkRepoCompatibility(loadSchemaRepo());
    expect(results.length).toBeGreaterThanOrEqual(4);
    for (const r of results) expect(r.problems, r.spec.name).toEqual([]);
    expect(results.find((r) => r.spec.name === 'envelope')?.summary).toBe('v3 against v1, v2 (BACKWARD_TRANSITIVE)');
  });

  it('checks the newest repo version against registered versions, skipping the identical one', () => {
    const spec = { name: 'r', subject: 'r-value', topic: 'r', compatibility: 'BACKWARD_TRANSITIVE' as const };
    const text = (t: typeof v1) => JSON.stringify(t.schema());
    const ok = checkAgainstRegistered(spec, { version: 2, type: v2 }, [
      { version: 1, id: 11, schema: text(v1) },
      { version: 2, id: 12, schema: text(v2) },
    ]);
    expect(ok.problems).toEqual([]);
    const bad = checkAgainstRegistered(spec, { version: 3, type: v3 }, [
      { version: 1, id: 11, schema: text(v1) },
      { version: 2, id: 12, schema: text(v2) },
      { version: 3, id: 13, schema: '{"type":"nope"}' },
    ]);
    expect(bad.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/^registry version 3 \(id 13\) is not Avro: /),
      'repo v3 cannot read data written with registry version 1 (id 11): no matching field for default-less t.R.b',
    ]);
  });
});
