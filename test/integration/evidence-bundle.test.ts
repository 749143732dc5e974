/**
 * `vigil evidence export` and `verify` (issue 11) as CLI processes over an embedded store and a file audit log:
 * control-plane changes made through `vigil devices` (each an audit entry), derivations and inferences landed in a
 * chdb store migrated by the real migrations, a signed checkpoint; the bundle holds each control's evidence, proves
 * every control-plane entry, has no patient pseudonym in clear, verifies, and one changed byte is named by file.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { generateAuditKeys, KEY_FILES } from '../../audit/keys.ts';
import { AUDIT_FILE } from '../../audit/stores/file.ts';
import { deviceIdentityLog } from '../../cli/commands/devices.ts';
import { loadPki } from '../../identity/pki.ts';
import { enrollDevice } from '../../identity/service.ts';
import { inferenceRow, normalisedEventRow } from '../../pipelines/outputs.ts';
import { systemClock } from '../../runtime/clock.ts';
import { inferenceFor, normalisedEvent } from '../fixtures/clickhouse.ts';
import { spawnVigil } from './helpers.ts';

const run = promisify(execFile);
const PATIENT = 'p-bundle-secret-0042';
let dir: string;
let env: Record<string, string>;
let tokens: { auditor: string; analyst: string };

const keyPath = (name: string) => path.join(dir, 'keys', name);
const auditFlags = () => ['--audit-dir', path.join(dir, 'audit'), '--audit-hash-key', keyPath(KEY_FILES.hash)];

async function vigil(args: string[], extra: Record<string, string> = {}) {
  const run = spawnVigil(args, { ...env, ...extra });
  return run.done;
}

async function ok(args: string[], extra: Record<string, string> = {}): Promise<string> {
  const exited = await vigil(args, extra);
  expect(exited.code, `vigil ${args.join(' ')}: ${exited.stderr}`).toBe(0);
  return exited.stdout;
}

const devices = (...args: string[]) =>
  ok([
    'devices',
    ...args,
    '--pki-dir',
    path.join(dir, 'pki'),
    '--control-dir',
    path.join(dir, 'control'),
    '--actor',
    'ops-1',
    ...auditFlags(),
  ]);

const exportArgs = (out: string) => [
  'evidence',
  'export',
  '--from',
  '2020-01-01T00:00:00Z',
  '--to',
  new Date(Date.now() + 3_600_000).toISOString(),
  '--out',
  out,
  '--json',
  '--data-dir',
  path.join(dir, 'store'),
  '--control-dir',
  path.join(dir, 'control'),
  '--key',
  keyPath(KEY_FILES.signer),
  '--pub',
  keyPath(KEY_FILES.verifier),
  ...auditFlags(),
];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-evidence-'));
  generateAuditKeys(path.join(dir, 'keys'), 'vigil.test/evidence');
  const principals = path.join(dir, 'principals.json');
  tokens = {
    auditor: addPrincipal(principals, { name: 'auditor-1', roles: ['auditor'], sites: ['*'] }).token,
    analyst: addPrincipal(principals, { name: 'analyst-1', roles: ['analyst'], sites: ['site-a'] }).token,
  };
  env = { VIGIL_PRINCIPALS: principals };
  await ok(['pki', 'init', '--dir', path.join(dir, 'pki')]);
  const fleet = path.join(dir, 'fleet');
  await devices('enroll', 'ev-1', '--out', fleet, '--site', 'site-a', '--patient-ref', PATIENT, '--consent', 'rpm');
  await devices('assign', 'ev-1', '--patient-ref', `${PATIENT}-b`, '--site', 'site-a', '--consent', 'rpm');
  await devices('revoke', 'ev-1', '--reason', 'decommissioned');

  const store = openChdbStore({ path: path.join(dir, 'store') });
  await store.migrate();
  const events = [1, 2, 3].map((n) => normalisedEvent({ n, deviceId: 'ev-1', siteId: 'site-a', offset: n }));
  await store.insert('normalised_events', events.map(normalisedEventRow), { dedupToken: 'evidence/normalised' });
  const inferences = events.map((e, i) => inferenceFor(e, { score: i + 5 }));
  await store.insert('inferences', inferences.map(inferenceRow), { dedupToken: 'evidence/inferences' });
  await store.close();

  await ok(['audit', 'checkpoint', '--dir', path.join(dir, 'audit'), '--key', keyPath(KEY_FILES.signer)]);
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('vigil evidence export / verify', () => {
  it('an auditor exports a bundle that verifies: per-control files, proofs of every control-plane entry, no pseudonym in clear', async () => {
    const out = path.join(dir, 'bundle');
    const summary = JSON.parse(await ok(exportArgs(out), { VIGIL_TOKEN: tokens.auditor }));
    expect(summary).toMatchObject({
      identity_changes: 4, // enrolled, assigned, assigned, revoked
      unaudited_changes: 0,
      control_entries: 4,
      proofs: 4,
      awaiting_checkpoint: 0,
      audit_ok: true,
      promtool: expect.stringMatching(/^(passed|unavailable)$/),
    });

    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    const paths = manifest.files.map((f: { path: string }) => f.path);
    for (const control of [
      'device-identity/',
      'ingestion-security/',
      'provenance/',
      'model-governance/',
      'audit-logging/',
      'monitoring/',
    ]) {
      expect(
        paths.some((p: string) => p.startsWith(control)),
        control,
      ).toBe(true);
    }
    expect(manifest.exported_by).toMatchObject({ principal: 'auditor-1', role: 'auditor' });
    const models = JSON.parse(await readFile(path.join(out, 'model-governance/models-in-use.json'), 'utf8'));
    expect(models.models.reduce((n: number, m: { inferences: string | number }) => n + Number(m.inferences), 0)).toBe(
      3,
    );
    const derivations = JSON.parse(await readFile(path.join(out, 'provenance/transformations.json'), 'utf8'));
    expect(derivations.versions.length).toBeGreaterThan(0);

    // No patient pseudonym anywhere in the bundle (assignments carry a keyed digest).
    for (const p of paths) expect(await readFile(path.join(out, p), 'utf8'), p).not.toContain(PATIENT);

    // The export itself is an audited access, recorded before the bundle was written.
    const audit = (await readFile(path.join(dir, 'audit', AUDIT_FILE), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const exportEntry = audit.filter((r) => r.kind === 'entry').at(-1).entry;
    expect(exportEntry).toMatchObject({ action: 'evidence.export', actor: 'auditor-1', role: 'auditor' });
    expect(exportEntry.index).toBe(manifest.exported_by.audit_index);

    // Each proof is checkable without Vigil, by the standalone verifier the repo ships.
    const { proofs } = JSON.parse(await readFile(path.join(out, 'audit-logging/proofs.json'), 'utf8'));
    await writeFile(path.join(dir, 'proof-0.json'), JSON.stringify(proofs[0]));
    const standalone = await run(process.execPath, [
      'tools/audit-verifier/verify.mjs',
      '--key',
      keyPath(KEY_FILES.verifier),
      path.join(dir, 'proof-0.json'),
    ]);
    expect(JSON.parse(standalone.stdout)).toMatchObject({ ok: true });

    const verified = JSON.parse(await ok(['evidence', 'verify', out, '--json', '--pub', keyPath(KEY_FILES.verifier)]));
    expect(verified).toEqual({ ok: true, files: paths.length, proofs: 4, problems: [] });
  }, 180_000);

  it('one changed byte in one file is named by evidence verify (exit 1); so is an edited manifest', async () => {
    const out = path.join(dir, 'bundle');
    const target = path.join(out, 'provenance/transformations.json');
    const original = await readFile(target);
    const changed = Buffer.from(original);
    changed[10] = changed[10]! ^ 0x01;
    await writeFile(target, changed);
    const r = await vigil(['evidence', 'verify', out, '--json', '--pub', keyPath(KEY_FILES.verifier)]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      { file: 'provenance/transformations.json', problem: 'SHA-256 differs from the manifest' },
    ]);
    await writeFile(target, original);

    // A manifest re-hashed to match an edit no longer matches its signed note.
    const manifestPath = path.join(out, 'manifest.json');
    const manifest = await readFile(manifestPath, 'utf8');
    await writeFile(manifestPath, manifest.replace('"auditor-1"', '"auditor-9"'));
    const forged = JSON.parse(
      (await vigil(['evidence', 'verify', out, '--json', '--pub', keyPath(KEY_FILES.verifier)])).stdout,
    );
    expect(forged.problems).toEqual([{ file: 'manifest.json', problem: 'its SHA-256 is not the one signed' }]);
    await writeFile(manifestPath, manifest);
  }, 60_000);

  it('an analyst is refused (audited); nothing is written', async () => {
    const out = path.join(dir, 'bundle-analyst');
    const r = await vigil(exportArgs(out), { VIGIL_TOKEN: tokens.analyst });
    expect(r.code).toBe(3); // ACCESS_DENIED
    expect(r.stderr).toContain('auditor');
    const audit = (await readFile(path.join(dir, 'audit', AUDIT_FILE), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(audit.at(-1).entry).toMatchObject({ action: 'evidence.export.denied', actor: 'analyst-1' });
    await expect(readFile(path.join(out, 'manifest.json'))).rejects.toThrow();
  }, 60_000);

  it('a change made without its audit entry (a library caller) is listed as unaudited', async () => {
    const log = deviceIdentityLog({ controlDir: path.join(dir, 'control') });
    try {
      const ctx = { log, pki: loadPki(path.join(dir, 'pki')), actor: 'script', clock: systemClock };
      await enrollDevice(ctx, 'ev-unaudited', { outDir: path.join(dir, 'fleet') });
    } finally {
      await log.close();
    }
    const out = path.join(dir, 'bundle-2');
    const summary = JSON.parse(await ok(exportArgs(out), { VIGIL_TOKEN: tokens.auditor }));
    expect(summary).toMatchObject({ identity_changes: 5, unaudited_changes: 1 });
    const identity = JSON.parse(await readFile(path.join(out, 'device-identity/summary.json'), 'utf8'));
    expect(identity.unaudited).toEqual([expect.stringMatching(/^ev-unaudited\/[0-9A-Z]{26}$/)]);
  }, 120_000);
});
