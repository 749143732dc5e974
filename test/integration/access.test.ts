/**
 * Access on the real stack: `vigil query run` and `vigil alerts list` as CLI processes, recorded in the audit log on
 * the real Kafka audit topic (isolated by VIGIL_TOPIC_PREFIX; the default place, as `vigil audit` reads it), then
 * `vigil audit checkpoint` and `vigil audit verify` as CLI processes on that topic. An analyst of site A sees only
 * site A with the small cell suppressed and is refused the operational query; a clinician of site B sees only site B
 * alerts; refusals are entries like reads; two reads at once take distinct indexes and the log verifies.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import { generateAuditKeys, KEY_FILES } from '../../audit/keys.ts';
import { readAll } from '../../audit/store.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import type { VerifyReport } from '../../audit/verify.ts';
import { normalisedEventRow } from '../../pipelines/outputs.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { normalisedEvent, T0 } from '../fixtures/clickhouse.ts';
import { isolatedTopics, lastJsonLine, spawnVigil } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-it-access-'));
const storeDir = join(dir, 'store');
const keyDir = join(dir, 'keys');
const principals = join(dir, 'principals.json');
let prefix: string;
let auditTopic: string;
const tokens: Record<string, string> = {};

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

beforeAll(async () => {
  const topics = await isolatedTopics('access');
  prefix = topics.prefix;
  auditTopic = topics.name(TOPICS.auditLog);
  generateAuditKeys(keyDir, 'vigil.it/access');
  const store = openChdbStore({ path: storeDir });
  await store.migrate();
  let n = 0;
  const events = [];
  for (const [site, firmware, devices] of [
    ['site-a', '4.1.0', 12],
    ['site-a', '4.2.0', 3],
    ['site-b', '4.1.0', 20],
  ] as const) {
    for (let d = 0; d < devices; d++) {
      events.push(normalisedEvent({ n: n++, siteId: site, firmware, deviceId: `dev-${site}-${firmware}-${d}` }));
    }
  }
  await store.insert('normalised_events', events.map(normalisedEventRow), { dedupToken: 'it-access' });
  const alerts = ['site-a', 'site-a', 'site-b'].map((site, i) => ({
    record_id: `rec-${i}`,
    alert_id: `alert-${site}-${i}`,
    patient_ref: `pt:v1:${i}`,
    site_id: site,
    device_id: `dev-${i}`,
    rule_id: 'news2.response',
    rule_version: '1',
    kind: 'physiological',
    band: 'medium',
    transition: 'open',
    opened_at: iso(T0 + i * 60_000),
    observed_at: iso(T0 + i * 60_000),
    received_at: iso(T0 + i * 60_000),
    raised_at: iso(T0 + i * 60_000),
    suppressed: 0,
    inference_ids: [],
    event_ids: [],
    transformation_version: 'alerts@1',
  }));
  await store.command(
    `INSERT INTO clinical_alerts FORMAT JSONEachRow ${alerts.map((a) => JSON.stringify(a)).join('\n')}`,
  );
  await store.close();
  cpSync(storeDir, join(dir, 'store-copy'), { recursive: true }); // chdb: one process per directory
  tokens.analyst = addPrincipal(principals, { name: 'analyst-a', roles: ['analyst'], sites: ['site-a'] }).token;
  tokens.nurse = addPrincipal(principals, { name: 'nurse-b', roles: ['clinician'], sites: ['site-b'] }).token;
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The real CLI as the holder of `token`, recording on the isolated audit topic. */
async function vigil(token: string, args: string[], store = storeDir) {
  const done = await spawnVigil([...args, '--data-dir', store, '--audit-hash-key', join(keyDir, KEY_FILES.hash)], {
    VIGIL_TOPIC_PREFIX: prefix,
    VIGIL_PRINCIPALS: principals,
    VIGIL_TOKEN: token,
  }).done;
  return done;
}

const entries = async () =>
  (await readAll(openKafkaAuditStore({ brokers: resolveEndpoints().kafkaBrokers, topic: auditTopic, writer: false })))
    .filter((r) => (r as { kind: string }).kind === 'entry')
    .map((r) => (r as { entry: Record<string, unknown> }).entry);

describe('reads through the CLI, audited on the Kafka audit topic', () => {
  it('an analyst of site A: own site only, small cell suppressed; the operational query refused', async () => {
    const run = await vigil(tokens.analyst!, ['query', 'run', 'alarm-rate-by-firmware', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const { rows, suppressed } = lastJsonLine<{ rows: Record<string, unknown>[]; suppressed: number }>(run.stdout);
    expect(rows.map((r) => [r.firmware_version, r.devices])).toEqual([
      ['4.1.0', 12],
      ['4.2.0', 'suppressed'],
    ]);
    expect(suppressed).toBe(1);
    const refused = await vigil(tokens.analyst!, ['query', 'run', 'dead-letters-by-reason', '--json']);
    expect(refused.code).toBe(3); // ACCESS_DENIED
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('access denied (table)');
  });

  it('a clinician of site B: site B alerts only, and a purpose is required', async () => {
    const list = await vigil(tokens.nurse!, ['alerts', 'list', '--purpose', 'handover', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(lastJsonLine<{ alerts: { site_id: string }[] }>(list.stdout).alerts.map((a) => a.site_id)).toEqual([
      'site-b',
    ]);
    const noPurpose = await vigil(tokens.nurse!, ['alerts', 'list', '--json']);
    expect(noPurpose.code).toBe(3); // ACCESS_DENIED
    expect(noPurpose.stderr).toContain('access denied (purpose)');
  });

  it('two reads at once take distinct indexes; every read and refusal is an entry; the log verifies', async () => {
    const [one, two] = await Promise.all([
      vigil(tokens.analyst!, ['query', 'run', 'completeness-by-site', '--json']),
      vigil(tokens.analyst!, ['query', 'run', 'completeness-by-site', '--json'], join(dir, 'store-copy')),
    ]);
    expect([one.code, two.code], `${one.stderr}${two.stderr}`).toEqual([0, 0]);
    expect(lastJsonLine<{ rows: { site_id: string }[] }>(one.stdout).rows.map((r) => r.site_id)).toEqual(['site-a']);

    const log = await entries();
    expect(log.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(log.map((e) => [e.actor, e.role, e.action, e.purpose])).toEqual([
      ['analyst-a', 'analyst', 'query.run', 'surveillance'],
      ['analyst-a', 'analyst', 'query.run.denied', 'surveillance'],
      ['nurse-b', 'clinician', 'alerts.list', 'handover'],
      ['nurse-b', 'clinician', 'alerts.list.denied', 'none'],
      ['analyst-a', 'analyst', 'query.run', 'surveillance'],
      ['analyst-a', 'analyst', 'query.run', 'surveillance'],
    ]);
    expect(
      log
        .filter((e) => !String(e.action).endsWith('.denied'))
        .every((e) => /^[0-9a-f]{64}$/.test(String(e.read_sha256))),
    ).toBe(true);

    const env = { VIGIL_TOPIC_PREFIX: prefix };
    const signed = await spawnVigil(['audit', 'checkpoint', '--key', join(keyDir, KEY_FILES.signer)], env).done;
    expect(signed.code, signed.stderr).toBe(0);
    const verified = await spawnVigil(['audit', 'verify', '--json', '--pub', join(keyDir, KEY_FILES.verifier)], env)
      .done;
    expect(lastJsonLine<VerifyReport>(verified.stdout)).toMatchObject({
      ok: true,
      entries: 6,
      checkpoints: 1,
      verified_size: 6,
    });
    expect(verified.code).toBe(0);
  });
});
