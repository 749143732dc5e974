/**
 * `vigil schemas register` on the real registry records what it changed on the (isolated) Kafka audit topic
 * (issue 11): one schema.register per version it registered and one schema.compatibility per level it set, none on a
 * rerun that changes nothing; `vigil audit verify` accepts the topic.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { isolatedTopics, readTopic } from './helpers.ts';

const root = new URL('../../', import.meta.url).pathname;
const name = `vigil.test.audited.${ulid().toLowerCase()}`;
const subject = `${name}-value`;
let dir: string;
let env: Record<string, string>;
let auditTopic: string;

function vigil(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/vigil.js', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 90_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function entries(): Promise<{ action: string; target: string; actor: string; role: string }[]> {
  return (await readTopic(auditTopic, 2_000))
    .map((m) => JSON.parse((m.value as Buffer).toString('utf8')))
    .filter((r) => r.kind === 'entry')
    .map((r) => r.entry);
}

beforeAll(async () => {
  const topics = await isolatedTopics('schemas-audit');
  env = { VIGIL_TOPIC_PREFIX: topics.prefix };
  auditTopic = topics.name('vigil.audit.log');
  dir = mkdtempSync(join(tmpdir(), 'vigil-schemas-audit-'));
  mkdirSync(join(dir, 'schemas', 'reading'), { recursive: true });
  writeFileSync(
    join(dir, 'schemas', 'subjects.json'),
    JSON.stringify({ subjects: [{ name: 'reading', subject, topic: name, compatibility: 'BACKWARD_TRANSITIVE' }] }),
  );
  const fields = [{ name: 'level', type: 'int' }];
  writeFileSync(
    join(dir, 'schemas', 'reading', 'v1.avsc'),
    JSON.stringify({ type: 'record', name: 'Reading', namespace: 'vigil.test', fields }),
  );
  writeFileSync(
    join(dir, 'schemas', 'reading', 'v2.avsc'),
    JSON.stringify({
      type: 'record',
      name: 'Reading',
      namespace: 'vigil.test',
      fields: [...fields, { name: 'unit', type: 'string', default: 'x' }],
    }),
  );
  expect(vigil('audit', 'keygen', '--key-dir', join(dir, 'keys')).status).toBe(0);
}, 120_000);

afterAll(async () => {
  const base = `${resolveEndpoints().schemaRegistryUrl}/subjects/${encodeURIComponent(subject)}`;
  await fetch(base, { method: 'DELETE' });
  await fetch(`${base}?permanent=true`, { method: 'DELETE' });
});

describe('vigil schemas register is audited', () => {
  it('records each version registered and the level set, nothing on a rerun, and the topic verifies', async () => {
    const first = vigil('schemas', 'register', '--dir', join(dir, 'schemas'), '--actor', 'schema-owner', '--json');
    expect(first.status, first.stderr).toBe(0);
    const ids = JSON.parse(first.stdout)[subject];
    const got = await entries();
    expect(got.map((e) => e.action)).toEqual(['schema.register', 'schema.register', 'schema.compatibility']);
    expect(got[0]?.target).toMatch(
      new RegExp(`^schema:${subject.replaceAll('.', '\\.')}@1 id:\\d+ sha256:[0-9a-f]{64}$`),
    );
    expect(got[1]?.target).toMatch(new RegExp(`@2 id:${ids.id} sha256:`));
    expect(got[2]?.target).toBe(`schema:${subject} BACKWARD_TRANSITIVE`);
    expect(got.every((e) => e.actor === 'schema-owner' && e.role === 'operator')).toBe(true);

    expect(vigil('schemas', 'register', '--dir', join(dir, 'schemas')).status).toBe(0);
    expect(await entries()).toHaveLength(3);

    const keys = join(dir, 'keys');
    expect(vigil('audit', 'checkpoint', '--key', join(keys, 'checkpoint.key')).status).toBe(0);
    const verify = vigil('audit', 'verify', '--json', '--pub', join(keys, 'checkpoint.pub'));
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, entries: 3 });
  }, 180_000);
});
