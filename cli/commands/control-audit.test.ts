/**
 * Control-plane changes other than devices (issue 11), through the real CLI on the file audit store:
 * `vigil principals add|revoke` are audit entries that `vigil audit verify` accepts, with no token in the stored
 * bytes; an audit log that cannot open refuses the change; `schemas register` records exactly what it registered.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import type { RegisterReport } from '../../adapters/registry/index.ts';
import { pipelineDeployChange } from './control-audit.ts';
import { schemaChanges } from './schemas.ts';

const root = new URL('../../', import.meta.url).pathname;
let dir: string;

function vigil(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/vigil.js', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, VIGIL_PRINCIPALS: join(dir, 'principals.json'), ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const auditFlags = () => ['--audit-dir', join(dir, 'audit'), '--audit-hash-key', join(dir, 'keys', 'hash.key')];
const entries = () =>
  readFileSync(join(dir, 'audit', 'audit.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.kind === 'entry')
    .map((r) => r.entry);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-control-audit-'));
  expect(vigil(['audit', 'keygen', '--key-dir', join(dir, 'keys')]).status).toBe(0);
}, 60_000);

describe('vigil principals: audited changes', () => {
  it('add and revoke are entries (actor, operator, principal target) that audit verify accepts; no token is stored', () => {
    const add = vigil([
      'principals',
      'add',
      'auditor-1',
      '--role',
      'auditor',
      '--all-sites',
      '--json',
      '--actor',
      'sec-admin',
      ...auditFlags(),
    ]);
    expect(add.status, add.stderr).toBe(0);
    const token = JSON.parse(add.stdout).token as string;
    const revoke = vigil(['principals', 'revoke', 'auditor-1', '--actor', 'sec-admin', ...auditFlags()]);
    expect(revoke.status, revoke.stderr).toBe(0);
    const got = entries();
    expect(got.map((e) => [e.action, e.target, e.actor, e.role])).toEqual([
      ['principal.add', 'principal:auditor-1', 'sec-admin', 'operator'],
      ['principal.revoke', 'principal:auditor-1', 'sec-admin', 'operator'],
    ]);
    expect(got.every((e) => /^[0-9a-f]{64}$/.test(e.details_sha256))).toBe(true);
    const stored = readFileSync(join(dir, 'audit', 'audit.jsonl'), 'utf8');
    expect(stored).not.toContain(token);
    expect(stored).not.toContain(token.slice(4, 20)); // not even the token id
    expect(
      vigil(['audit', 'checkpoint', '--dir', join(dir, 'audit'), '--key', join(dir, 'keys', 'checkpoint.key')]).status,
    ).toBe(0);
    const verify = vigil([
      'audit',
      'verify',
      '--json',
      '--dir',
      join(dir, 'audit'),
      '--pub',
      join(dir, 'keys', 'checkpoint.pub'),
    ]);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, entries: 2, unsigned_tail: 0 });
  }, 120_000);

  it('without the hashing key the change is refused and the principals file is untouched', () => {
    const before = existsSync(join(dir, 'principals.json')) ? readFileSync(join(dir, 'principals.json'), 'utf8') : '';
    const r = vigil([
      'principals',
      'add',
      'analyst-9',
      '--role',
      'analyst',
      '--site',
      's',
      '--audit-dir',
      join(dir, 'audit'),
      '--audit-hash-key',
      join(dir, 'nope.key'),
    ]);
    expect(r.status).toBe(2);
    expect(readFileSync(join(dir, 'principals.json'), 'utf8')).toBe(before);
  }, 60_000);
});

describe('schemas register: the entries of what changed', () => {
  it('one schema.register per version registered (subject, registry version, id, schema digest), one per level set, none for what was there', () => {
    const repo = loadSchemaRepo();
    const first = repo.subjects[0]!;
    const report: RegisterReport = {
      registry: 'http://registry',
      subjects: [
        {
          name: first.spec.name,
          subject: first.spec.subject,
          compatibility: first.spec.compatibility,
          previousCompatibility: null,
          versions: first.versions.map((v, i) => ({
            repoVersion: v.version,
            id: 40 + i,
            version: i + 1,
            action: i === 0 ? ('already registered' as const) : ('registered' as const),
          })),
          latest: { id: 40, version: 1 },
        },
      ],
    };
    const changes = schemaChanges(report, repo, 'ops-1', 1_000);
    const registered = first.versions.length - 1;
    expect(changes.filter((c) => c.action === 'schema.register')).toHaveLength(registered);
    expect(changes.at(-1)).toEqual({
      actor: 'ops-1',
      action: 'schema.compatibility',
      target: `schema:${first.spec.subject} ${first.spec.compatibility}`,
      at: 1_000,
    });
    for (const c of changes.slice(0, registered)) {
      expect(c.target).toMatch(
        new RegExp(`^schema:${first.spec.subject.replaceAll('.', '\\.')}@\\d+ id:\\d+ sha256:[0-9a-f]{64}$`),
      );
      expect(c.details).toBeUndefined();
    }
  });
});

describe('pipeline.deploy', () => {
  it('names the pipeline, its version and the SHA-256 of its source; nothing to digest', () => {
    const source = readFileSync(join(root, 'pipelines', 'vitals.ts'));
    const change = pipelineDeployChange({ name: 'vitals', version: '1' }, source, 'ops-1', 5);
    expect(change).toEqual({
      actor: 'ops-1',
      action: 'pipeline.deploy',
      target: `pipeline:vitals@1 sha256:${createHash('sha256').update(source).digest('hex')}`,
      at: 5,
    });
  });
});
