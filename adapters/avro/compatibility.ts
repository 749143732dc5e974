/**
 * Schema compatibility, decided by avsc's own resolution rules (the same code that decodes records): a reader can read
 * a writer's data exactly when `reader.createResolver(writer)` succeeds (fields added without a default, changed types,
 * removed enum symbols without a default all fail it).
 *
 * Levels follow the Confluent registry's meaning:
 * - BACKWARD: the new schema reads data written with the previous one; *_TRANSITIVE: with every earlier one.
 * - FORWARD: the previous schema reads data written with the new one; FORWARD_TRANSITIVE: every earlier one does.
 * - FULL: both; FULL_TRANSITIVE: both against every earlier version. NONE: no check.
 */
import type avsc from 'avsc';
import type { CompatibilityLevel, SchemaRepo, SubjectSpec } from './schemas.ts';
import { parseAvroSchema } from './schemas.ts';

export interface LabelledType {
  /** How messages name this schema: `v2`, `registry version 3 (id 7)`. */
  readonly label: string;
  readonly type: avsc.Type;
}

export interface CompatibilityProblem {
  /** The schema that could not read... */
  readonly reader: string;
  /** ...data written with this one. */
  readonly writer: string;
  /** avsc's resolver error: names the field or type that breaks. */
  readonly error: string;
  readonly message: string;
}

interface Walkable {
  name?: string;
  branchName?: string;
  typeName: string;
  symbols?: string[];
  size?: number;
  fields?: { name: string; aliases?: string[]; type: avsc.Type }[];
  types?: avsc.Type[];
  itemsType?: avsc.Type;
  valuesType?: avsc.Type;
}

function findNamed(type: avsc.Type, name: string): Walkable | undefined {
  const seen = new Set<unknown>();
  const stack = [type as unknown as Walkable];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.name === name) return t;
    for (const f of t.fields ?? []) stack.push(f.type as unknown as Walkable);
    for (const b of t.types ?? []) stack.push(b as unknown as Walkable);
    if (t.itemsType) stack.push(t.itemsType as unknown as Walkable);
    if (t.valuesType) stack.push(t.valuesType as unknown as Walkable);
  }
  return undefined;
}

function rawError(reader: avsc.Type, writer: avsc.Type): string | null {
  try {
    reader.createResolver(writer);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * The innermost field whose types do not resolve (`Envelope.payload<VitalSigns>.spo2`) and avsc's error there, or null
 * when the failure is not inside a field (e.g. a record lacking a default-less field: avsc names that one itself).
 */
function locate(reader: avsc.Type, writer: avsc.Type, path: string, depth = 0): { path: string; error: string } | null {
  if (depth > 32) return null;
  const r = reader as unknown as Walkable;
  const w = writer as unknown as Walkable;
  const descend = (rt: avsc.Type, wt: avsc.Type, here: string): { path: string; error: string } | null => {
    const error = rawError(rt, wt);
    if (error === null) return null;
    return locate(rt, wt, here, depth + 1) ?? { path: here, error };
  };
  if (r.fields && w.fields) {
    for (const rf of r.fields) {
      const wf = w.fields.find((f) => f.name === rf.name || (rf.aliases ?? []).includes(f.name));
      const found = wf ? descend(rf.type, wf.type, `${path}.${rf.name}`) : null;
      if (found) return found;
    }
    return null;
  }
  if (r.itemsType && w.itemsType) return descend(r.itemsType, w.itemsType, `${path}[]`);
  if (r.valuesType && w.valuesType) return descend(r.valuesType, w.valuesType, `${path}{}`);
  if (r.types && w.types) {
    for (const wb of w.types) {
      const name = (wb as unknown as Walkable).branchName;
      const rb = r.types.find((b) => (b as unknown as Walkable).branchName === name);
      const found = rb ? descend(rb, wb, `${path}<${(name ?? '').split('.').pop()}>`) : null;
      if (found) return found;
    }
  }
  return null;
}

/**
 * avsc's resolver errors name types, not places (`cannot read "int" as "string"`): add the field path, and for a
 * changed enum or fixed (`cannot read "x.State" as "x.State"`) what changed.
 */
function explain(reader: avsc.Type, writer: avsc.Type, message: string): string {
  let out = message;
  let inner = message;
  if (message.startsWith('cannot read ')) {
    const found = locate(reader, writer, reader.name?.split('.').pop() ?? reader.typeName);
    if (found) {
      inner = found.error;
      out = `field ${found.path}: ${found.error}`;
    }
  }
  const m = /^cannot read "([^"]+)" as "([^"]+)"$/.exec(inner);
  if (m && m[1] === m[2]) {
    const w = findNamed(writer, m[1]!);
    const r = findNamed(reader, m[2]!);
    if (w?.typeName === 'enum' && r?.typeName === 'enum') {
      const gone = w.symbols!.filter((s) => !r.symbols!.includes(s));
      out = `${out} (symbols ${gone.join(', ')} removed and the new enum has no default)`;
    }
    if (w?.typeName === 'fixed' && r?.typeName === 'fixed') out = `${out} (size ${w.size} became ${r.size})`;
  }
  return out;
}

/** null when `reader` can read data written with `writer`; otherwise avsc's resolver error. */
export function resolutionError(reader: avsc.Type, writer: avsc.Type): string | null {
  try {
    reader.createResolver(writer);
    return null;
  } catch (error) {
    return explain(reader, writer, error instanceof Error ? error.message : String(error));
  }
}

function problem(reader: LabelledType, writer: LabelledType): CompatibilityProblem | null {
  const error = resolutionError(reader.type, writer.type);
  if (error === null) return null;
  return {
    reader: reader.label,
    writer: writer.label,
    error,
    message: `${reader.label} cannot read data written with ${writer.label}: ${error}`,
  };
}

/**
 * Everything that keeps `candidate` from joining `earlier` (oldest first) under `level`. Empty means compatible.
 *
 * @example
 * compatibilityProblems('BACKWARD_TRANSITIVE', { label: 'v3', type: v3 }, [{ label: 'v1', type: v1 }, { label: 'v2', type: v2 }]);
 */
export function compatibilityProblems(
  level: CompatibilityLevel,
  candidate: LabelledType | { version: number; type: avsc.Type },
  earlier: readonly (LabelledType | { version: number; type: avsc.Type })[],
): CompatibilityProblem[] {
  const label = (t: LabelledType | { version: number; type: avsc.Type }): LabelledType =>
    'label' in t ? t : { label: `v${t.version}`, type: t.type };
  const next = label(candidate);
  const all = earlier.map(label);
  if (level === 'NONE' || all.length === 0) return [];
  const transitive = level.endsWith('_TRANSITIVE');
  const against = transitive ? all : all.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const problems: CompatibilityProblem[] = [];
  for (const old of against) {
    const b = backward ? problem(next, old) : null;
    if (b) problems.push(b);
    const f = forward ? problem(old, next) : null;
    if (f) problems.push(f);
  }
  return problems;
}

export interface SubjectCompatibility {
  readonly spec: SubjectSpec;
  /** What was checked, e.g. `v2 against v1` or `v2 against registry versions 1, 2`. */
  readonly summary: string;
  readonly problems: readonly CompatibilityProblem[];
}

/** The newest version of every subject against the earlier versions kept in the repo, under its level. */
export function checkRepoCompatibility(repo: SchemaRepo): SubjectCompatibility[] {
  return repo.subjects.map(({ spec, versions, newest }) => {
    const earlier = versions.slice(0, -1);
    const summary =
      earlier.length === 0
        ? `v${newest.version} (only version)`
        : `v${newest.version} against ${earlier.map((v) => `v${v.version}`).join(', ')} (${spec.compatibility})`;
    return { spec, summary, problems: compatibilityProblems(spec.compatibility, newest, earlier) };
  });
}

/** A registered version as the registry check needs it. */
export interface RegisteredSchema {
  readonly version: number;
  readonly id: number;
  readonly schema: string;
}

/**
 * The newest repo version of a subject against the versions a registry already holds (the registry's history can
 * differ from the repo's: versions registered by hand, or by another branch). A registered schema that does not parse
 * is a problem too. A registered version identical to the newest repo version is skipped.
 */
export function checkAgainstRegistered(
  spec: SubjectSpec,
  newest: { version: number; type: avsc.Type },
  registered: readonly RegisteredSchema[],
): SubjectCompatibility {
  const candidate: LabelledType = { label: `repo v${newest.version}`, type: newest.type };
  const unparsable: CompatibilityProblem[] = [];
  const earlier: LabelledType[] = [];
  for (const r of registered) {
    const label = `registry version ${r.version} (id ${r.id})`;
    let type: avsc.Type;
    try {
      type = parseAvroSchema(r.schema);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      unparsable.push({
        reader: candidate.label,
        writer: label,
        error: text,
        message: `${label} is not Avro: ${text}`,
      });
      continue;
    }
    if (type.equals(newest.type) && JSON.stringify(type.schema()) === JSON.stringify(newest.type.schema())) continue;
    earlier.push({ label, type });
  }
  const summary =
    registered.length === 0
      ? 'not registered yet'
      : `repo v${newest.version} against registry versions ${registered.map((r) => r.version).join(', ')} (${spec.compatibility})`;
  return { spec, summary, problems: [...unparsable, ...compatibilityProblems(spec.compatibility, candidate, earlier)] };
}
