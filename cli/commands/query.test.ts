import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { deadLetterRow } from '../../adapters/clickhouse/tables.ts';
import { generateAuditKeys, KEY_FILES } from '../../audit/keys.ts';
import { AUDIT_FILE } from '../../audit/stores/file.ts';
import { normalisedEventRow } from '../../pipelines/outputs.ts';
import { deadLetter, normalisedEvent } from '../../test/fixtures/clickhouse.ts';
import { parseParams, registerQuery, renderTable } from './query.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-query-cli-'));
  const store = openChdbStore({ path: path.join(dir, 'store') });
  await store.migrate();
  await store.insert(
    'normalised_events',
    [
      normalisedEvent({ n: 1, firmware: '4.1.0' }),
      normalisedEvent({ n: 2, firmware: '4.2.0', type: 'alarm' }),
      normalisedEvent({ n: 3, firmware: '4.2.0' }),
    ].map(normalisedEventRow),
    { dedupToken: 'cli' },
  );
  await store.insert('dead_letters', [deadLetterRow(deadLetter(1))], { dedupToken: 'cli' });
  await store.close();
  // `run` reads data: it needs a principal and records each read in the audit log (access/). An auditor of every
  // site reads these tables without suppression; access/access.test.ts covers the roles, sites and refusals.
  generateAuditKeys(path.join(dir, 'keys'), 'vigil.test/query');
  const principals = path.join(dir, 'principals.json');
  const { token } = addPrincipal(principals, { name: 'auditor-1', roles: ['auditor'], sites: ['*'] });
  vi.stubEnv('VIGIL_PRINCIPALS', principals);
  vi.stubEnv('VIGIL_TOKEN', token);
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs `vigil <args>` in-process and returns what it printed on stdout. */
async function vigil(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerQuery(program);
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const audit =
    args[1] === 'run'
      ? ['--audit-dir', path.join(dir, 'audit'), '--audit-hash-key', path.join(dir, 'keys', KEY_FILES.hash)]
      : [];
  try {
    await program.parseAsync(['node', 'vigil', ...args, ...audit]);
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

describe('vigil query', () => {
  it('list names every saved query with its parameters', async () => {
    const json = JSON.parse(await vigil('query', 'list', '--json')) as { name: string; params: { name: string }[] }[];
    expect(json.map((q) => q.name)).toContain('alarm-rate-by-firmware');
    expect(json.find((q) => q.name === 'alarm-rate-by-firmware')?.params.map((p) => p.name)).toEqual(['from', 'to']);
    const text = await vigil('query', 'list');
    expect(text).toContain('dead-letters-by-reason\n  Dead letters by reason and stage\n');
    expect(text).toContain("--param pipeline=<String>  Pipeline name; empty for every pipeline. (default '')");
  });

  it('show prints the purpose and the SQL', async () => {
    const text = await vigil('query', 'show', 'alarm-rate-by-firmware');
    expect(text).toContain('alarm-rate-by-firmware: Alarm rate by firmware version');
    expect(text).toContain('FROM normalised_events FINAL');
  });

  it('run prints one JSON line with the bound parameters and the rows', async () => {
    const out = await vigil(
      'query',
      'run',
      'alarm-rate-by-firmware',
      '--data-dir',
      path.join(dir, 'store'),
      '--param',
      'from=2026-03-01',
      '-p',
      'to=2026-04-01T00:00:00Z',
      '--json',
    );
    expect(out.endsWith('\n')).toBe(true);
    expect(out.trim().split('\n')).toHaveLength(1);
    const result = JSON.parse(out) as { query: string; params: unknown; rows: Record<string, unknown>[] };
    expect(result.query).toBe('alarm-rate-by-firmware');
    expect(result.params).toEqual({ from: '2026-03-01 00:00:00.000', to: '2026-04-01 00:00:00.000' });
    expect(result.rows.map((r) => [r.firmware_version, r.vital_signs, r.alarms_raised])).toEqual([
      ['4.1.0', 1, 0],
      ['4.2.0', 1, 1],
    ]);
    const last = (await readFile(path.join(dir, 'audit', AUDIT_FILE), 'utf8')).trim().split('\n').at(-1)!;
    expect(JSON.parse(last).entry).toMatchObject({ actor: 'auditor-1', role: 'auditor', action: 'query.run' });
  });

  it('run prints a table for people', async () => {
    const out = await vigil('query', 'run', 'dead-letters-by-reason', '--data-dir', path.join(dir, 'store'));
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^Dead letters by reason and stage \(embedded: .*store\)$/);
    expect(lines[1]).toMatch(/^stage\s+reason_code\s+dead_letters\s+share/);
    expect(lines[3]).toMatch(/^decode\s+BAD_MAGIC_BYTE\s+1\s+1\s+1 /);
  });

  it('run refuses unknown queries, unknown parameters and a missing store, saying what to do', async () => {
    await expect(vigil('query', 'run', 'no-such-query')).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('known: alarm-rate-by-firmware'),
    });
    await expect(
      vigil('query', 'run', 'alarm-rate-by-firmware', '--param', 'firmware=4.1.0', '--data-dir', dir),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('has no parameter "firmware"'),
    });
    await expect(
      vigil('query', 'run', 'alarm-rate-by-firmware', '--data-dir', path.join(dir, 'missing')),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('run `npm start` first') });
  });
});

describe('helpers', () => {
  it('parseParams splits at the first = and refuses a pair without a key', () => {
    expect(parseParams(['a=1', 'b=x=y', 'c='])).toEqual({ a: '1', b: 'x=y', c: '' });
    expect(() => parseParams(['=1'])).toThrow(/expected key=value/);
    expect(() => parseParams(['novalue'])).toThrow(/expected key=value/);
  });

  it('renderTable aligns columns and right-aligns numbers', () => {
    expect(
      renderTable([
        { site: 'a', n: 5, tags: ['x'] },
        { site: 'long-site', n: 12, tags: [] },
      ]),
    ).toBe(['site        n  tags', '---------  --  -----', 'a           5  ["x"]', 'long-site  12  []'].join('\n'));
    expect(renderTable([])).toBe('(no rows)');
  });
});
