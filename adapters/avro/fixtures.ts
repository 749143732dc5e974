/**
 * Golden fixtures: for every version of every subject, a few records as Avro binary written with that version, next
 * to the JSON they were made from. Layout: `<schema dir>/fixtures/<subject name>/v<N>/<case>.avro` (the raw Avro body,
 * no framing, no container) and `<case>.json` (the same record in the Avro JSON encoding of the spec, which avsc's
 * `Type#toString` writes and any Avro tool reads).
 *
 * The promise they keep: data written with any version still decodes with the newest reader, and equals its JSON with
 * the newest schema's defaults for fields the writer did not have (and without fields the newest schema dropped).
 * That expectation is computed here straight from the schema JSON, independently of avsc's resolver, so the check
 * is not the decoder grading itself.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type avsc from 'avsc';
import type { SchemaRepo, SubjectSchemas } from './schemas.ts';

export interface GoldenFixture {
  readonly name: string;
  readonly version: number;
  readonly caseName: string;
  readonly avroFile: string;
  readonly jsonFile: string;
}

export function fixturesDir(repo: SchemaRepo): string {
  return join(repo.dir, 'fixtures');
}

/** Every fixture of the tree, by subject, version and case name. Empty when the tree has no `fixtures/` folder. */
export function listGoldenFixtures(repo: SchemaRepo): GoldenFixture[] {
  const root = fixturesDir(repo);
  if (!existsSync(root)) return [];
  const out: GoldenFixture[] = [];
  for (const name of readdirSync(root).sort()) {
    const subjectDir = join(root, name);
    for (const versionDir of readdirSync(subjectDir).sort()) {
      const m = /^v([1-9]\d*)$/.exec(versionDir);
      if (!m) continue;
      const dir = join(subjectDir, versionDir);
      const files = readdirSync(dir);
      const cases = new Set(files.filter((f) => /\.(avro|json)$/.test(f)).map((f) => f.replace(/\.(avro|json)$/, '')));
      for (const caseName of [...cases].sort()) {
        out.push({
          name,
          version: Number(m[1]),
          caseName,
          avroFile: join(dir, `${caseName}.avro`),
          jsonFile: join(dir, `${caseName}.json`),
        });
      }
    }
  }
  return out;
}

export function fixtureLabel(f: GoldenFixture): string {
  return `${f.name}/v${f.version}/${f.caseName}`;
}

export interface FixtureOutcome {
  readonly fixture: GoldenFixture;
  /** null when it decodes as promised. */
  readonly problem: string | null;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Checks one fixture against the tree's schemas. */
export function verifyGoldenFixture(repo: SchemaRepo, fixture: GoldenFixture): FixtureOutcome {
  const fail = (problem: string): FixtureOutcome => ({ fixture, problem: `${fixtureLabel(fixture)}: ${problem}` });
  let subject: SubjectSchemas;
  try {
    subject = repo.get(fixture.name);
  } catch {
    return fail('no such subject in subjects.json');
  }
  const writer = subject.versions.find((v) => v.version === fixture.version);
  if (!writer) return fail(`the subject has no v${fixture.version}.avsc`);
  if (!existsSync(fixture.avroFile) || !existsSync(fixture.jsonFile))
    return fail('needs both a .avro and a .json file');
  const body = readFileSync(fixture.avroFile);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(fixture.jsonFile, 'utf8'));
  } catch (error) {
    return fail(`the .json does not parse: ${message(error)}`);
  }
  // 1. The body is what its JSON says, under the version that wrote it.
  try {
    const asWritten = JSON.parse(writer.type.toString(writer.type.fromBuffer(body)));
    if (!isDeepStrictEqual(asWritten, json))
      return fail(`the .avro does not decode to the .json with v${writer.version}`);
  } catch (error) {
    return fail(`the .avro does not decode with v${writer.version}: ${message(error)}`);
  }
  // 2. The newest reader reads it, and sees the JSON plus the newest schema's defaults.
  const reader = subject.newest;
  let decoded: unknown;
  try {
    const resolver = reader === writer ? undefined : reader.type.createResolver(writer.type);
    decoded = reader.type.fromBuffer(body, resolver);
  } catch (error) {
    return fail(`v${reader.version} (newest) cannot read it: ${message(error)}`);
  }
  let expected: unknown;
  try {
    expected = projectToReader(reader.schema, json);
  } catch (error) {
    return fail(`cannot compute the expected v${reader.version} value: ${message(error)}`);
  }
  const actual = JSON.parse(reader.type.toString(decoded));
  if (!isDeepStrictEqual(actual, expected)) {
    return fail(
      `v${reader.version} (newest) reads ${JSON.stringify(actual).slice(0, 400)} but expected ${JSON.stringify(expected).slice(0, 400)}`,
    );
  }
  return { fixture, problem: null };
}

/** Every fixture checked, plus a problem for each version of each subject that has none (when the tree keeps any). */
export function verifyGoldenFixtures(repo: SchemaRepo): { outcomes: FixtureOutcome[]; missing: string[] } {
  const fixtures = listGoldenFixtures(repo);
  const outcomes = fixtures.map((f) => verifyGoldenFixture(repo, f));
  const missing: string[] = [];
  if (existsSync(fixturesDir(repo))) {
    const have = new Set(fixtures.map((f) => `${f.name}/v${f.version}`));
    for (const s of repo.subjects) {
      for (const v of s.versions) {
        if (!have.has(`${s.spec.name}/v${v.version}`)) missing.push(`${s.spec.name}/v${v.version}`);
      }
    }
  }
  return { outcomes, missing };
}

// --- the expected reader value, from schema JSON alone ---------------------------------------------------------------

type SchemaNode = avsc.Schema | string | SchemaNode[] | Record<string, unknown>;
type Named = Record<string, unknown> & { name: string; namespace?: string };

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

function fullName(name: string, namespace: string | undefined): string {
  return name.includes('.') || !namespace ? name : `${namespace}.${name}`;
}

function namespaceOf(fqn: string): string | undefined {
  const i = fqn.lastIndexOf('.');
  return i < 0 ? undefined : fqn.slice(0, i);
}

/** All named types a schema defines, by full name (with the namespace each one's children inherit). */
function collectNames(node: SchemaNode, ns: string | undefined, out: Map<string, { node: Named; ns?: string }>): void {
  if (Array.isArray(node)) {
    for (const n of node) collectNames(n, ns, out);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const obj = node as Record<string, unknown>;
  let inner = ns;
  if (typeof obj.name === 'string' && ['record', 'error', 'enum', 'fixed'].includes(obj.type as string)) {
    const fqn = fullName(obj.name, (obj.namespace as string | undefined) ?? ns);
    inner = namespaceOf(fqn);
    out.set(fqn, { node: obj as Named, ns: inner });
  }
  if (Array.isArray(obj.fields)) for (const f of obj.fields as { type: SchemaNode }[]) collectNames(f.type, inner, out);
  if (obj.items !== undefined) collectNames(obj.items as SchemaNode, inner, out);
  if (obj.values !== undefined) collectNames(obj.values as SchemaNode, inner, out);
  if (typeof obj.type === 'object') collectNames(obj.type as SchemaNode, inner, out);
}

/**
 * A value in the Avro JSON encoding, as written with some earlier version, seen through `readerSchema`: fields the
 * reader lacks dropped, fields the writer lacked filled with the reader's defaults. Handles records (with field
 * aliases), enums, arrays, maps and unions; type promotions inside unions are out of its scope.
 */
export function projectToReader(readerSchema: avsc.Schema, value: unknown): unknown {
  const names = new Map<string, { node: Named; ns?: string }>();
  collectNames(readerSchema as SchemaNode, undefined, names);

  const deref = (node: SchemaNode, ns: string | undefined): { node: SchemaNode; ns: string | undefined } => {
    if (typeof node === 'string' && !PRIMITIVES.has(node)) {
      const found = names.get(fullName(node, ns)) ?? names.get(node);
      if (!found) throw new Error(`unknown type name ${node}`);
      return { node: found.node, ns: found.ns };
    }
    if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
      const obj = node as Record<string, unknown>;
      if (typeof obj.name === 'string') {
        const fqn = fullName(obj.name, (obj.namespace as string | undefined) ?? ns);
        return { node, ns: namespaceOf(fqn) };
      }
    }
    return { node, ns };
  };

  const branchName = (node: SchemaNode, ns: string | undefined): string => {
    if (typeof node === 'string') return PRIMITIVES.has(node) ? node : fullName(node, ns);
    const obj = node as Record<string, unknown>;
    if (typeof obj.name === 'string' && ['record', 'error', 'enum', 'fixed'].includes(obj.type as string)) {
      return fullName(obj.name, (obj.namespace as string | undefined) ?? ns);
    }
    return typeof obj.type === 'string' ? obj.type : branchName(obj.type as SchemaNode, ns);
  };

  const defaultOf = (node: SchemaNode, ns: string | undefined, def: unknown): unknown => {
    if (Array.isArray(node)) {
      const first = node[0]!;
      if (first === 'null') return null;
      return { [branchName(first, ns)]: defaultOf(first, ns, def) };
    }
    const { node: target, ns: inner } = deref(node, ns);
    const obj = target as Record<string, unknown>;
    if (typeof target === 'object' && (obj.type === 'record' || obj.type === 'error')) {
      const out: Record<string, unknown> = {};
      for (const f of obj.fields as { name: string; type: SchemaNode; default?: unknown }[]) {
        const d = (def as Record<string, unknown>)[f.name];
        out[f.name] = defaultOf(f.type, inner, d === undefined ? f.default : d);
      }
      return out;
    }
    if (typeof target === 'object' && obj.type === 'array')
      return (def as unknown[]).map((d) => defaultOf(obj.items as SchemaNode, inner, d));
    if (typeof target === 'object' && obj.type === 'map') {
      return Object.fromEntries(
        Object.entries(def as object).map(([k, d]) => [k, defaultOf(obj.values as SchemaNode, inner, d)]),
      );
    }
    return def;
  };

  const project = (node: SchemaNode, ns: string | undefined, v: unknown): unknown => {
    if (Array.isArray(node)) {
      if (v === null) return null;
      const [key] = Object.keys(v as object);
      const branch = node.find((b) => branchName(b, ns) === key);
      if (branch === undefined || key === undefined) return v;
      return { [key]: project(branch, ns, (v as Record<string, unknown>)[key]) };
    }
    const { node: target, ns: inner } = deref(node, ns);
    if (typeof target !== 'object' || target === null) return v;
    const obj = target as Record<string, unknown>;
    switch (obj.type) {
      case 'record':
      case 'error': {
        const source = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const f of obj.fields as { name: string; type: SchemaNode; default?: unknown; aliases?: string[] }[]) {
          const key = [f.name, ...(f.aliases ?? [])].find((k) => Object.hasOwn(source, k));
          if (key !== undefined) out[f.name] = project(f.type, inner, source[key]);
          else if (Object.hasOwn(f, 'default')) out[f.name] = defaultOf(f.type, inner, f.default);
          else throw new Error(`field ${f.name} is missing and has no default`);
        }
        return out;
      }
      case 'enum': {
        const symbols = obj.symbols as string[];
        return symbols.includes(v as string) || obj.default === undefined ? v : obj.default;
      }
      case 'array':
        return (v as unknown[]).map((item) => project(obj.items as SchemaNode, inner, item));
      case 'map':
        return Object.fromEntries(
          Object.entries(v as object).map(([k, item]) => [k, project(obj.values as SchemaNode, inner, item)]),
        );
      default:
        return typeof obj.type === 'object' ? project(obj.type as SchemaNode, inner, v) : v;
    }
  };

  return project(readerSchema as SchemaNode, undefined, value);
}
