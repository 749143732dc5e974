/**
 * `vigil query`: the saved surveillance queries (surveillance/queries/*.sql) for analysts.
 *
 *   vigil query list [--json]
 *   vigil query show <name>
 *   vigil query run <name> [--param k=v ...] [--json] [--server] [--data-dir DIR]
 *                          [--role R] [--purpose SLUG] [--audit-dir DIR | --audit-topic T] [--audit-hash-key FILE]
 *
 * `run` reads the embedded store `npm start` fills (.vigil/embedded/clickhouse) unless `--data-dir` names another, or
 * the server at CLICKHOUSE_URL with `--server`. It never migrates or writes. `--json` prints one line:
 * `{"query":"<name>","params":{...},"rows":[...]}` (plus `"suppressed":n` for analysts).
 *
 * `run` is a read of data: it needs a principal (VIGIL_TOKEN / VIGIL_TOKEN_FILE, access/cli.ts), runs constrained to
 * the principal's sites and role (access/policy.ts), suppresses small cells for analysts, and is recorded in the audit
 * log before anything is printed; a refusal is recorded too (access/read.ts). `list` and `show` read no data.
 */
import type { Command } from 'commander';
import {
  type AccessFlags,
  accessAuditAppender,
  accessOptions,
  authenticatorFromEnv,
  credentialFromEnv,
  minCellFromEnv,
} from '../../access/cli.ts';
import { auditedQuery, auditTarget } from '../../access/read.ts';
import { DEFAULT_EMBEDDED_DIR } from '../../adapters/clickhouse/index.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { VigilError } from '../../runtime/errors.ts';
import { listSavedQueries, loadSavedQuery, resolveParams, type SavedQuery } from '../../surveillance/queries.ts';
import { openReadStore } from '../store.ts';

interface RunOptions extends AccessFlags {
  readonly param: string[];
  readonly json?: boolean;
  readonly server?: boolean;
  readonly dataDir?: string;
}

export function registerQuery(program: Command): void {
  const query = program
    .command('query')
    .description('Saved surveillance queries over the ClickHouse planes (embedded store by default)');

  query
    .command('list')
    .description('List the saved queries and their parameters')
    .option('--json', 'one JSON line: [{"name","title","params":[...]}]')
    .action(async (options: { json?: boolean }) => {
      const queries = await listSavedQueries();
      if (options.json) {
        const out = queries.map((q) => ({ name: q.name, title: q.title, params: q.params }));
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      for (const q of queries) {
        process.stdout.write(`${q.name}\n  ${q.title}\n`);
        for (const p of q.params) {
          const fallback = p.default === undefined ? 'required' : `default ${p.default === '' ? "''" : p.default}`;
          process.stdout.write(`    --param ${p.name}=<${p.type}>  ${p.description} (${fallback})\n`);
        }
      }
    });

  query
    .command('show')
    .description('Print a saved query: what it answers, its parameters and its SQL')
    .argument('<name>', 'saved query name (see `vigil query list`)')
    .action(async (name: string) => {
      const q = await loadSavedQuery(name);
      process.stdout.write(`${describe(q)}\n${q.sql}\n`);
    });

  accessOptions(query.command('run'))
    .description('Run a saved query and print its rows (needs a principal; audited)')
    .argument('<name>', 'saved query name (see `vigil query list`)')
    .option('-p, --param <key=value>', 'a parameter value; repeat for more', collect, [])
    .option('--json', 'print one JSON line {"query","params","rows"}')
    .option('--server', 'query the ClickHouse server at CLICKHOUSE_URL instead of the embedded store')
    .option('--data-dir <dir>', 'embedded store directory', DEFAULT_EMBEDDED_DIR)
    .action(async (name: string, options: RunOptions) => {
      const saved = await loadSavedQuery(name);
      const params = resolveParams(saved, parseParams(options.param));
      const audit = accessAuditAppender(options);
      const store = openReadStore(options);
      try {
        await requireTables(store);
        const read = await auditedQuery(
          {
            audit,
            authenticator: authenticatorFromEnv(),
            credential: credentialFromEnv(),
            store,
            minCell: minCellFromEnv(),
          },
          {
            action: 'query.run',
            target: auditTarget('query', saved.name, params),
            sql: saved.sql,
            params,
            role: options.role,
            purpose: options.purpose,
          },
        );
        const rows = read.rows;
        if (options.json) {
          const suppressed = read.role === 'analyst' ? { suppressed: read.suppressed } : {};
          process.stdout.write(`${JSON.stringify({ query: saved.name, params, rows, ...suppressed })}\n`);
        } else {
          process.stdout.write(`${saved.title} (${store.kind}: ${store.location})\n`);
          process.stdout.write(`${renderTable(rows)}\n`);
          if (read.suppressed > 0) process.stdout.write(`(${read.suppressed} small cells suppressed)\n`);
        }
      } finally {
        await store.close();
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function parseParams(pairs: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new VigilError('CONFIG_INVALID', `--param ${pair}: expected key=value`);
    params[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
  }
  return params;
}

async function requireTables(store: ClickHouseStore): Promise<void> {
  const [row] = await store.query<{ n: number }>(
    "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'",
  );
  if (Number(row?.n) === 0) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the store at ${store.location} has no Vigil tables yet: run a pipeline (\`npm start\`) to create and fill them`,
    );
  }
}

function describe(q: SavedQuery): string {
  const lines = [`${q.name}: ${q.title}`, '', q.description, ''];
  for (const p of q.params) {
    lines.push(
      `  ${p.name} (${p.type}${p.default === undefined ? ', required' : `, default '${p.default}'`}): ${p.description}`,
    );
  }
  for (const example of q.examples) lines.push('', `  ${example}`);
  return `${lines.join('\n')}\n`;
}

/** Rows as an aligned text table (numbers right-aligned). */
export function renderTable(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '(no rows)';
  const columns = Object.keys(rows[0]!);
  const cell = (value: unknown) =>
    value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const numeric = columns.map((c) => rows.every((row) => row[c] === null || typeof row[c] === 'number'));
  const line = (values: string[]) =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
