import { describe, expect, it } from 'vitest';
import { VigilError } from '../../runtime/errors.ts';
import { loadSchemaRepo, registrySubjects } from '../avro/schemas.ts';
import { InProcessSchemaRegistry } from './in-process.ts';
import { registerRepo } from './register.ts';

const repo = loadSchemaRepo();

describe('in-process registry (embedded mode)', () => {
  it('numbers the repo versions from 1, sorted by subject then version, the same way every time', async () => {
    const a = new InProcessSchemaRegistry(repo);
    const b = new InProcessSchemaRegistry(loadSchemaRepo());
    const expected = repo.subjects
      .flatMap((s) =>
        registrySubjects(s.spec).flatMap((subject) => s.versions.map((v) => ({ subject, version: v.version }))),
      )
      .sort((x, y) => (x.subject < y.subject ? -1 : x.subject > y.subject ? 1 : x.version - y.version))
      .map((x, i) => ({ ...x, id: i + 1 }));
    const actual = [];
    for (const s of repo.subjects) {
      for (const subject of registrySubjects(s.spec))
        for (const v of await a.listVersions(subject))
          actual.push({ subject: v.subject, version: v.version, id: v.id });
    }
    expect(actual.sort((x, y) => x.id - y.id)).toEqual(expected);
    for (const s of repo.subjects)
      expect(await b.listVersions(s.spec.subject)).toEqual(await a.listVersions(s.spec.subject));
  });

  it("gives an alias topic (the alarm lane) its own subject with the envelope's versions, at the same level", async () => {
    const registry = new InProcessSchemaRegistry(repo);
    const envelope = repo.get('envelope');
    expect(registrySubjects(envelope.spec)).toEqual([
      'vigil.telemetry.raw-value',
      'vigil.telemetry.raw-priority-value',
    ]);
    expect(repo.get('vigil.telemetry.raw-priority-value')).toBe(envelope);
    const lane = await registry.listVersions('vigil.telemetry.raw-priority-value');
    expect(lane.map((v) => v.version)).toEqual(envelope.versions.map((v) => v.version));
    expect(await registry.getCompatibility('vigil.telemetry.raw-priority-value')).toBe('BACKWARD_TRANSITIVE');
    const report = await registerRepo(registry, repo);
    expect(report.subjects.filter((s) => s.name === 'envelope').map((s) => s.subject)).toEqual([
      'vigil.telemetry.raw-value',
      'vigil.telemetry.raw-priority-value',
    ]);
  });

  it('serves writer Types by id and knows nothing of other ids', async () => {
    const registry = new InProcessSchemaRegistry(repo);
    const envelope = repo.get('envelope');
    const id = registry.idOf(envelope.spec.subject, envelope.versions[0]!.schema)!;
    expect((await registry.getWriterType(id))?.name).toBe('vigil.telemetry.Envelope');
    expect(await registry.getWriterType(10_000)).toBeNull();
    expect(await registry.getCompatibility(envelope.spec.subject)).toBe('BACKWARD_TRANSITIVE');
  });

  it('register: finds what exists, appends what is compatible, refuses what breaks the level', async () => {
    const registry = new InProcessSchemaRegistry(repo);
    const envelope = repo.get('envelope');
    const existing = registry.idOf(envelope.spec.subject, envelope.newest.schema)!;
    expect(await registry.register(envelope.spec.subject, envelope.newest.schema)).toBe(existing);

    const next = envelope.newest.version + 1;
    const v3 = JSON.parse(JSON.stringify(envelope.newest.schema));
    v3.fields.push({ name: 'ward_id', type: ['null', 'string'], default: null });
    const id = await registry.register(envelope.spec.subject, v3);
    expect(id).toBeGreaterThan(existing);
    expect(await registry.lookup(envelope.spec.subject, v3)).toEqual({ id, version: next });

    const broken = JSON.parse(JSON.stringify(v3));
    broken.fields.push({ name: 'bed', type: 'string' });
    const error = await registry.register(envelope.spec.subject, broken).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VigilError);
    expect((error as VigilError).code).toBe('SCHEMA_INCOMPATIBLE');
    expect((error as VigilError).message).toMatch(new RegExp(`v${next + 1} cannot read data written with v1: .*bed`));
  });

  it('registerRepo over it is a no-op that reports every version as already registered', async () => {
    const registry = new InProcessSchemaRegistry(repo);
    const report = await registerRepo(registry, repo);
    expect(report.subjects.map((s) => s.subject)).toEqual(repo.subjects.flatMap((s) => registrySubjects(s.spec)));
    for (const s of report.subjects) {
      expect(s.versions.every((v) => v.action === 'already registered')).toBe(true);
      expect(s.latest.version).toBe(s.versions.length);
    }
  });

  it('registerRepo into an empty subject registers oldest first and sets the level', async () => {
    const registry = new InProcessSchemaRegistry(loadSchemaRepo('test/fixtures/schemas/compatible'));
    const fresh = loadSchemaRepo('test/fixtures/schemas/compatible');
    const renamed = {
      ...fresh,
      subjects: fresh.subjects.map((s) => ({ ...s, spec: { ...s.spec, subject: 'fresh-value' } })),
    };
    const report = await registerRepo(registry, renamed);
    expect(report.subjects[0]!.versions.map((v) => [v.repoVersion, v.version, v.action])).toEqual([
      [1, 1, 'registered'],
      [2, 2, 'registered'],
    ]);
    expect(report.subjects[0]!.previousCompatibility).toBeNull();
    expect(await registry.getCompatibility('fresh-value')).toBe('BACKWARD_TRANSITIVE');
  });
});
