/**
 * Saved surveillance queries: `surveillance/queries/<name>.sql`, each a single SELECT with named parameters in
 * ClickHouse's `{name:Type}` syntax (bound by ClickHouse, never spliced into the text) and a header comment:
 *
 *   -- Title on the first line
 *   --
 *   -- Purpose: what it shows and why (free text, any number of lines)
 *   -- @param from  What the parameter means.
 *   -- @default from 1970-01-01 00:00:00          (optional: without one the parameter is required)
 *   -- @example vigil query run <name> --param from=2026-03-01
 *
 * The parameter's type is the one its placeholder declares; every placeholder must be documented by a @param and
 * every @param must be used (checked when the file is loaded, and by the tests).
 *
 * Exactness (the `Exactness:` line says how): the normalised and clinical planes keep every derivation of an event
 * side by side (infra/clickhouse/migrations/0009_append_only.sql), so a query over them reads the current derivation
 * through `normalised_events_current` / `inferences_current`, or reads only columns every derivation shares and counts
 * distinct events over `FINAL`; the other tables read `FINAL`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseStore, QueryParams } from '../adapters/clickhouse/store.ts';
import { VigilError } from '../runtime/errors.ts';

export const QUERIES_DIR = fileURLToPath(new URL('./queries/', import.meta.url));

export interface SavedQueryParam {
  readonly name: string;
  /** The ClickHouse type its placeholder declares, e.g. `DateTime64(3, 'UTC')`. */
  readonly type: string;
  readonly description: string;
  /** Text value used when the caller gives none; absent for a required parameter. */
  readonly default?: string;
}

export interface SavedQuery {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly params: readonly SavedQueryParam[];
  readonly examples: readonly string[];
  readonly sql: string;
}

const NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*):([^{}]+)\}/g;

/** Parses one saved query's text. Throws CONFIG_INVALID when the header and the placeholders disagree. */
export function parseSavedQuery(name: string, text: string): SavedQuery {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const header: string[] = [];
  for (const line of lines) {
    if (!line.startsWith('--')) break;
    header.push(line.replace(/^--\s?/, ''));
  }
  const sql = lines.slice(header.length).join('\n').trim();
  const fail = (why: string) => new VigilError('CONFIG_INVALID', `saved query ${name}: ${why}`);
  if (!sql) throw fail('has no SQL after its header');
  if (/;\s*\S/.test(stripStrings(sql))) throw fail('must be a single statement');

  const title = header[0]?.trim() ?? '';
  if (!title || title.startsWith('@')) throw fail('needs a title on its first comment line');
  const prose: string[] = [];
  const described = new Map<string, string>();
  const defaults = new Map<string, string>();
  const examples: string[] = [];
  for (const line of header.slice(1)) {
    const tag = /^@(\w+)\s*(.*)$/.exec(line.trim());
    if (!tag) {
      if (described.size === 0 && examples.length === 0) prose.push(line);
      continue;
    }
    const [, kind, rest = ''] = tag;
    const [word = '', ...more] = rest.split(/\s+/);
    if (kind === 'param') described.set(word, more.join(' ').trim());
    else if (kind === 'default') defaults.set(word, more.join(' ').trim());
    else if (kind === 'example') examples.push(rest.trim());
    else throw fail(`unknown header tag @${kind}`);
  }

  const types = new Map<string, string>();
  for (const match of sql.matchAll(PLACEHOLDER)) {
    const [, param = '', type = ''] = match;
    const previous = types.get(param);
    if (previous && previous !== type.trim()) throw fail(`parameter ${param} is declared as ${previous} and ${type}`);
    types.set(param, type.trim());
  }
  for (const param of types.keys()) if (!described.has(param)) throw fail(`parameter ${param} has no @param line`);
  for (const param of described.keys()) if (!types.has(param)) throw fail(`@param ${param} is not used in the SQL`);
  for (const param of defaults.keys()) if (!types.has(param)) throw fail(`@default ${param} is not a parameter`);

  return {
    name,
    title,
    description: prose.join(' ').replace(/\s+/g, ' ').trim(),
    params: [...types].map(([param, type]) => {
      const fallback = defaults.get(param);
      return {
        name: param,
        type,
        description: described.get(param) ?? '',
        ...(fallback === undefined ? {} : { default: fallback }),
      };
    }),
    examples,
    sql,
  };
}

export async function listSavedQueries(dir = QUERIES_DIR): Promise<SavedQuery[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return Promise.all(files.map((file) => loadSavedQuery(file.slice(0, -4), dir)));
}

export async function loadSavedQuery(name: string, dir = QUERIES_DIR): Promise<SavedQuery> {
  if (!NAME.test(name)) throw new VigilError('CONFIG_INVALID', `"${name}" is not a saved query name (kebab-case)`);
  let text: string;
  try {
    text = await readFile(path.join(dir, `${name}.sql`), 'utf8');
  } catch {
    const known = (await readdir(dir)).filter((f) => f.endsWith('.sql')).map((f) => f.slice(0, -4));
    throw new VigilError('CONFIG_INVALID', `no saved query "${name}"; known: ${known.join(', ')}`);
  }
  return parseSavedQuery(name, text);
}

/**
 * The parameters a run binds: the caller's text values (e.g. from `--param k=v`), defaults for the rest. Unknown and
 * missing parameters are CONFIG_INVALID. Date-time values may be given as `2026-03-01`, `2026-03-01 08:00:00[.000]`,
 * ISO-8601 with `T` and a zone, or epoch milliseconds; they are passed on as UTC `YYYY-MM-DD hh:mm:ss.sss`.
 */
export function resolveParams(query: SavedQuery, given: Readonly<Record<string, string>>): QueryParams {
  const known = new Set(query.params.map((p) => p.name));
  for (const name of Object.keys(given)) {
    if (!known.has(name)) {
      throw new VigilError(
        'CONFIG_INVALID',
        `saved query ${query.name} has no parameter "${name}"; it takes: ${[...known].join(', ') || 'none'}`,
      );
    }
  }
  const params: Record<string, string> = {};
  for (const param of query.params) {
    const value = given[param.name] ?? param.default;
    if (value === undefined) {
      throw new VigilError('CONFIG_INVALID', `saved query ${query.name} needs --param ${param.name}=<${param.type}>`);
    }
    params[param.name] = /^(Nullable\()?DateTime/.test(param.type) ? normaliseDateTime(value, param.name) : value;
  }
  return params;
}

export function normaliseDateTime(value: string, name = 'value'): string {
  const text = value.trim();
  let ms: number;
  if (/^\d{11,}$/.test(text)) ms = Number(text);
  else if (/^\d{4}-\d{2}-\d{2}$/.test(text)) ms = Date.parse(`${text}T00:00:00Z`);
  else if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(text))
    ms = Date.parse(`${text.replace(' ', 'T')}Z`);
  else ms = Date.parse(text);
  if (!Number.isFinite(ms)) {
    throw new VigilError(
      'CONFIG_INVALID',
      `${name}="${value}" is not a date-time (use 2026-03-01, 2026-03-01 08:00:00, ISO-8601 or epoch ms; UTC)`,
    );
  }
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/**
 * Runs a saved query on a store.
 *
 * @example
 * const rows = await runSavedQuery(store, 'alarm-rate-by-firmware', { from: '2026-03-01', to: '2026-04-01' });
 */
export async function runSavedQuery<T = Record<string, unknown>>(
  store: Pick<ClickHouseStore, 'query'>,
  query: string | SavedQuery,
  given: Readonly<Record<string, string>> = {},
  dir = QUERIES_DIR,
): Promise<T[]> {
  const saved = typeof query === 'string' ? await loadSavedQuery(query, dir) : query;
  return store.query<T>(saved.sql, resolveParams(saved, given));
}

function stripStrings(sql: string): string {
  return sql.replace(/'(?:[^'\\]|\\.)*'/g, "''").replace(/--[^\n]*/g, '');
}
