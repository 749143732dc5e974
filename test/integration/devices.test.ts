/**
 * Device identity on the real Kafka (issue 10): `vigil devices` enrol / rotate / suspend / resume / assign / revoke,
 * each a separate CLI process appending to an isolated device-identity topic (VIGIL_TOPIC_PREFIX), while this process
 * (a gateway's view) follows the topic with openDeviceDirectory and must see each change live, within seconds. At the
 * end the compacted topic holds every change, one key each, and a fresh directory replays the same registry; the
 * isolated audit topic holds one audit entry per change (issue 11), and `vigil audit verify` accepts them.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaControlLog } from '../../adapters/kafka/control-log.ts';
import { PlainProducer } from '../../adapters/kafka/producer.ts';
import { type OpenDeviceDirectory, openDeviceDirectory } from '../../identity/directory.ts';
import { parseIdentityChange } from '../../identity/records.ts';
import type { IdentityChange } from '../../identity/types.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { waitFor } from '../support/process.ts';
import { isolatedTopics, lastJsonLine, readTopic, spawnVigil } from './helpers.ts';

const LIVE_WITHIN_MS = 5_000;

let dir: string;
let env: Record<string, string>;
let topic: string;
let auditTopic: string;
let log: KafkaControlLog<IdentityChange>;
let directory: OpenDeviceDirectory;
const withdrawn: { deviceId: string; fingerprints: readonly string[] }[] = [];
/** For each change: from its stamp (`at`, taken just before the CLI appends it) to this follower applying it (ms). */
const lags: number[] = [];

async function vigil(...args: string[]): Promise<string> {
  const run = spawnVigil(args, env);
  const exited = await run.done;
  expect(exited.code, `vigil ${args.join(' ')}: ${exited.stderr}`).toBe(0);
  return exited.stdout;
}

const hashKeyFlag = () => ['--audit-hash-key', join(dir, 'audit-keys', 'hash.key')];

function devices(...args: string[]): Promise<string> {
  return vigil('devices', ...args, '--pki-dir', join(dir, 'pki'), '--actor', 'it-operator', ...hashKeyFlag());
}

/** Waits until the follower's registry satisfies `check` (the CLI has returned: the change is durable). */
async function seenLive(what: string, check: () => boolean): Promise<void> {
  await waitFor(what, check, LIVE_WITHIN_MS, 20);
}

beforeAll(async () => {
  const topics = await isolatedTopics('devices');
  topic = topics.name('vigil.control.device-identity');
  auditTopic = topics.name('vigil.audit.log');
  env = { VIGIL_TOPIC_PREFIX: topics.prefix };
  dir = mkdtempSync(join(tmpdir(), 'vigil-it-devices-'));
  await vigil('pki', 'init', '--dir', join(dir, 'pki'));
  await vigil('audit', 'keygen', '--key-dir', join(dir, 'audit-keys'));
  log = new KafkaControlLog({ brokers: resolveEndpoints().kafkaBrokers, topic, parse: parseIdentityChange });
  directory = await openDeviceDirectory(log);
  await directory.caughtUp;
  directory.registry.onTrustWithdrawn((deviceId, fingerprints) => withdrawn.push({ deviceId, fingerprints }));
  directory.registry.onApplied((change) => lags.push(Date.now() - change.at));
}, 120_000);

afterAll(async () => {
  await directory?.close();
  await log?.close();
});

describe('vigil devices on Kafka, followed live by another process', () => {
  it('enrol, rotate, suspend, resume, reassign, revoke: each change seen live; the topic keeps every change', async () => {
    const registry = directory.registry;
    const out = join(dir, 'fleet');

    const enrolled = lastJsonLine<{ device_id: string; fingerprint: string; not_after: string }>(
      await devices(
        'enroll',
        'it-dev-1',
        '--out',
        out,
        '--site',
        'ward-7',
        '--patient-ref',
        'p-old',
        '--consent',
        'rpm',
        '--json',
      ),
    );
    await seenLive('enrolment', () => registry.assignmentAt('it-dev-1', Date.now())?.patient_ref === 'p-old');
    const pem = readFileSync(join(out, 'it-dev-1.crt'), 'utf8');
    expect(registry.byFingerprint(enrolled.fingerprint)?.device.device_id).toBe('it-dev-1');
    expect(registry.device('it-dev-1')?.certificates[0]?.not_after).toBe(Date.parse(enrolled.not_after));
    expect(new X509Certificate(pem).subjectAltName).toBe('URI:urn:vigil:device:it-dev-1');

    const rotated = lastJsonLine<{ fingerprint: string }>(await devices('rotate', 'it-dev-1', '--out', out, '--json'));
    await seenLive('rotation', () => registry.device('it-dev-1')?.certificates.length === 2);
    expect(registry.device('it-dev-1')?.certificates.map((c) => [c.fingerprint, c.revoked])).toEqual([
      [enrolled.fingerprint, false],
      [rotated.fingerprint, false],
    ]);

    await devices('suspend', 'it-dev-1', '--reason', 'reported lost');
    await seenLive('suspension', () => registry.device('it-dev-1')?.status === 'suspended');
    expect(withdrawn).toEqual([{ deviceId: 'it-dev-1', fingerprints: [enrolled.fingerprint, rotated.fingerprint] }]);

    await devices('resume', 'it-dev-1');
    await seenLive('resumption', () => registry.device('it-dev-1')?.status === 'active');

    const t = Date.now() + 60_000;
    await devices(
      'assign',
      'it-dev-1',
      '--patient-ref',
      'p-new',
      '--site',
      'ward-8',
      '--consent',
      'rpm',
      '--from',
      new Date(t).toISOString(),
    );
    await seenLive('reassignment', () => registry.device('it-dev-1')?.assignments.length === 2);
    expect(registry.assignmentAt('it-dev-1', t - 1)?.patient_ref).toBe('p-old');
    expect(registry.assignmentAt('it-dev-1', t)).toMatchObject({ patient_ref: 'p-new', site_id: 'ward-8' });

    await devices('revoke', 'it-dev-1', '--certificate', enrolled.fingerprint, '--reason', 'key leaked');
    await seenLive(
      'certificate revocation',
      () => registry.byFingerprint(enrolled.fingerprint)?.certificate.revoked === true,
    );
    expect(withdrawn.at(-1)).toEqual({ deviceId: 'it-dev-1', fingerprints: [enrolled.fingerprint] });

    await devices('revoke', 'it-dev-1', '--reason', 'decommissioned');
    await seenLive('revocation', () => registry.device('it-dev-1')?.status === 'revoked');
    expect(withdrawn).toHaveLength(3);

    // Refusals append nothing: revoked is final, an id is enrolled once.
    const resume = spawnVigil(['devices', 'resume', 'it-dev-1', ...hashKeyFlag()], env);
    expect((await resume.done).stderr).toContain('revocation is final');
    const again = spawnVigil(
      ['devices', 'enroll', 'it-dev-1', '--out', out, '--pki-dir', join(dir, 'pki'), ...hashKeyFlag()],
      env,
    );
    const refused = await again.done;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('already enrolled');

    // enrolled + assigned, certificate_added, suspended, active, assigned, certificate_revoked, revoked
    const expected = 8;
    expect(registry.appliedCount).toBe(expected);
    expect(directory.invalidRecords()).toBe(0);
    const records = await readTopic(topic, 2_000);
    expect(records).toHaveLength(expected);
    const changes = records.map((m) => parseIdentityChange(JSON.parse((m.value as Buffer).toString('utf8'))));
    expect(records.map((m) => m.key?.toString())).toEqual(changes.map((c) => `${c.device_id}/${c.change_id}`));
    expect(new Set(changes.map((c) => c.change_id)).size).toBe(expected);
    expect(changes.every((c) => c.actor === 'it-operator')).toBe(true);
    expect(changes.map((c) => c.kind)).toEqual([
      'enrolled',
      'assigned',
      'certificate_added',
      'status',
      'status',
      'assigned',
      'certificate_revoked',
      'status',
    ]);

    // Each change is one audit entry on the (isolated) audit topic: who, as operator, which change (its key).
    const audit = (await readTopic(auditTopic, 2_000)).map((m) => JSON.parse((m.value as Buffer).toString('utf8')));
    const entries = audit.filter((r) => r.kind === 'entry').map((r) => r.entry);
    expect(entries.map((e) => e.action)).toEqual([
      'device.enroll',
      'device.assign',
      'device.rotate',
      'device.suspend',
      'device.resume',
      'device.assign',
      'device.certificate_revoke',
      'device.revoke',
    ]);
    expect(entries.map((e) => e.target)).toEqual(changes.map((c) => `device:${c.device_id}/${c.change_id}`));
    expect(entries.every((e) => e.actor === 'it-operator' && e.role === 'operator')).toBe(true);
    expect(audit.map((r) => JSON.stringify(r)).join('\n')).not.toContain('p-old');
    const keys = join(dir, 'audit-keys');
    await vigil('audit', 'checkpoint', '--key', join(keys, 'checkpoint.key'));
    const verified = lastJsonLine<{ ok: boolean; entries: number }>(
      await vigil('audit', 'verify', '--json', '--pub', join(keys, 'checkpoint.pub')),
    );
    expect(verified).toMatchObject({ ok: true, entries: 8 });

    // A directory opened now (a gateway starting) replays the same registry from the topic alone.
    const replay = await openDeviceDirectory(log);
    await replay.caughtUp;
    expect(replay.registry.list()).toEqual(registry.list());
    await replay.close();

    // list reads the same topic.
    const [listed] = lastJsonLine<{ device_id: string; status: string }[]>(await devices('list', '--json'));
    expect(listed).toMatchObject({ device_id: 'it-dev-1', status: 'revoked' });

    console.log(
      `device-identity changes applied by the follower, from their stamp: max ${Math.max(...lags)} ms (${lags.join(', ')})`,
    );
    expect(Math.max(...lags)).toBeLessThan(LIVE_WITHIN_MS);
  }, 240_000);

  it('a record that is not a valid change is skipped and counted; following goes on', async () => {
    const producer = new PlainProducer(resolveEndpoints().kafkaBrokers);
    await producer.connect();
    try {
      await producer.send([
        { topic, key: 'it-dev-1/garbage', value: Buffer.from('{"kind":"deleted"}') },
        { topic, key: 'it-dev-1/not-json', value: Buffer.from('not json') },
      ]);
    } finally {
      await producer.disconnect();
    }
    await waitFor('invalid records counted', () => directory.invalidRecords() === 2, LIVE_WITHIN_MS, 20);
    await devices('enroll', 'it-dev-2', '--out', join(dir, 'fleet'));
    await seenLive('an enrolment after the invalid records', () => directory.registry.device('it-dev-2') !== undefined);
    expect(directory.registry.device('it-dev-1')?.status).toBe('revoked');
  }, 60_000);
});
