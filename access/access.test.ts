/**
 * Access end to end on the embedded store (chdb) and the file audit store, through the real command handlers:
 * an analyst of site A sees only site A's rows with small cells suppressed and is refused raw bytes and operational
 * tables; a clinician of site B never sees site A's alerts and must give a purpose; every read and every refusal is an
 * audit entry written before anything is printed; `vigil audit verify` (the real CLI process) verifies the log after.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openChdbStore } from '../adapters/clickhouse/chdb.ts';
import { generateAuditKeys, KEY_FILES } from '../audit/keys.ts';
import { AUDIT_FILE } from '../audit/stores/file.ts';
import { registerAlerts } from '../cli/commands/alerts.ts';
import { registerQuery } from '../cli/commands/query.ts';
import { normalisedEventRow } from '../pipelines/outputs.ts';
import { normalisedEvent, T0 } from '../test/fixtures/clickhouse.ts';
import { spawnNode, VIGIL } from '../test/support/process.ts';
import { accessAuditAppender } from './cli.ts';
import { addPrincipal, fileAuthenticator } from './principals.ts';
import { auditedQuery, openReadScope } from './read.ts';

let dir: string;
let storeDir: string;
let keyDir: string;
let auditDir: string;
let principals: string;
const tokens: Record<string, string> = {};

/** site-a: firmware 4.1.0 on 12 devices (a cell shown), 4.2.0 on 3 devices (suppressed); site-b: 4.1.0 on 20. */
function fleet() {
  const events: ReturnType<typeof normalisedEvent>[] = [];
  let n = 0;
  const add = (site: string, firmware: string, devices: number) => {
    for (let d = 0; d < devices; d++) {
      for (let k = 0; k < 2; k++) {
        events.push(
          normalisedEvent({ n: n++, siteId: site, firmware, deviceId: `dev-${site}-${firmware}-${d}`, offset: n }),
        );
      }
    }
  };
  add('site-a', '4.1.0', 12);
  add('site-a', '4.2.0', 3);
  add('site-b', '4.1.0', 20);
  return events;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

function alertRow(site: string, i: number) {
  return {
    record_id: `rec-${site}-${i}`,
    alert_id: `alert-${site}-${i}`,
    patient_ref: `pt:v1:${site}-${i}`,
    site_id: site,
    device_id: `dev-${site}-${i}`,
    rule_id: 'news2.response',
    rule_version: '1',
    kind: 'physiological',
    band: 'medium',
    transition: 'open',
    opened_at: iso(T0 + i * 60_000),
    observed_at: iso(T0 + i * 60_000),
    received_at: iso(T0 + i * 60_000 + 500),
    raised_at: iso(T0 + i * 60_000 + 900),
    suppressed: 0,
    inference_ids: [],
    event_ids: [],
    transformation_version: 'alerts@1',
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-access-'));
  storeDir = join(dir, 'store');
  keyDir = join(dir, 'keys');
  auditDir = join(dir, 'audit');
  principals = join(dir, 'principals.json');
  generateAuditKeys(keyDir, 'vigil.test/access');
  const store = openChdbStore({ path: storeDir });
  await store.migrate();
  await store.insert('normalised_events', fleet().map(normalisedEventRow), { dedupToken: 'access' });
  const alerts = [alertRow('site-a', 1), alertRow('site-a', 2), alertRow('site-b', 3)];
  await store.command(
    `INSERT INTO clinical_alerts FORMAT JSONEachRow ${alerts.map((r) => JSON.stringify(r)).join('\n')}`,
  );
  await store.command(
    "INSERT INTO raw_events (source_topic, source_partition, source_offset, consumed_at, raw_sha256, raw_b64, raw_size) VALUES ('vigil.telemetry.raw', 0, 1, now64(3), 'x', 'aGVsbG8=', 5)",
  );
  await store.close();
  tokens.analystA = addPrincipal(principals, { name: 'analyst-a', roles: ['analyst'], sites: ['site-a'] }).token;
  tokens.clinicianB = addPrincipal(principals, { name: 'nurse-b', roles: ['clinician'], sites: ['site-b'] }).token;
}, 60_000);

afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

const auditLines = (): { kind: string; entry?: Record<string, unknown> }[] => {
  try {
    return readFileSync(join(auditDir, AUDIT_FILE), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
};

/**
 * Runs `vigil <args>` in-process as the holder of `token`; returns what it printed and how many audit entries were
 * stored at the moment of its first write to stdout.
 */
async function vigil(token: string | null, ...args: string[]): Promise<{ out: string; entriesAtPrint: number | null }> {
  vi.stubEnv('VIGIL_PRINCIPALS', principals);
  vi.stubEnv('VIGIL_TOKEN', token ?? '');
  const program = new Command().exitOverride();
  registerQuery(program);
  registerAlerts(program);
  let out = '';
  let entriesAtPrint: number | null = null;
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    entriesAtPrint ??= auditLines().length;
    out += String(chunk);
    return true;
  });
  const audit = ['--audit-dir', auditDir, '--audit-hash-key', join(keyDir, KEY_FILES.hash)];
  try {
    await program.parseAsync(['node', 'vigil', ...args, ...audit, '--data-dir', storeDir]);
  } finally {
    spy.mockRestore();
  }
  return { out, entriesAtPrint };
}

describe('an analyst of site A', () => {
  it('sees only site A in a saved query, with the small cell suppressed, audited before printing', async () => {
    const before = auditLines().length;
    const { out, entriesAtPrint } = await vigil(tokens.analystA!, 'query', 'run', 'alarm-rate-by-firmware', '--json');
    const result = JSON.parse(out) as { rows: Record<string, unknown>[]; suppressed: number };
    // 12 devices of site A on 4.1.0 (site B's 20 are not counted); 4.2.0's 3 devices are under k = 11.
    expect(result.rows.map((r) => [r.firmware_version, r.devices, r.vital_signs])).toEqual([
      ['4.1.0', 12, 24],
      ['4.2.0', 'suppressed', 'suppressed'],
    ]);
    expect(result.suppressed).toBe(1);
    expect(entriesAtPrint).toBe(before + 1);
    const entry = auditLines().at(-1)!.entry!;
    expect(entry).toMatchObject({ actor: 'analyst-a', role: 'analyst', action: 'query.run', purpose: 'surveillance' });
    expect(entry.target).toMatch(/^query:alarm-rate-by-firmware \{"from":/);
    expect(entry.read_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(entry)).not.toContain('4.1.0'); // the rows are digested, never stored
  });

  it('never sees another site in a per-site query (CTEs and joins filtered too)', async () => {
    const completeness = JSON.parse(
      (await vigil(tokens.analystA!, 'query', 'run', 'completeness-by-site', '--json')).out,
    );
    expect(completeness.rows.map((r: { site_id: string; devices: number }) => [r.site_id, r.devices])).toEqual([
      ['site-a', 15],
    ]);
    const duplicates = JSON.parse((await vigil(tokens.analystA!, 'query', 'run', 'duplicates-by-site', '--json')).out);
    expect(duplicates.rows.map((r: { site: string; events: number }) => [r.site, r.events])).toEqual([['site-a', 30]]);
  });

  it('is refused operational tables and clinical reads, each refusal audited before the error', async () => {
    const before = auditLines().length;
    await expect(vigil(tokens.analystA!, 'query', 'run', 'dead-letters-by-reason')).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      reason: 'table',
      message: expect.stringContaining('not granted dead_letters'),
    });
    await expect(
      vigil(tokens.analystA!, 'alerts', 'list', '--purpose', 'treatment', '--role', 'clinician'),
    ).rejects.toMatchObject({ code: 'ACCESS_DENIED', reason: 'role' });
    const denied = auditLines()
      .slice(before)
      .map((r) => r.entry!);
    expect(denied.map((e) => [e.actor, e.action, e.target])).toEqual([
      ['analyst-a', 'query.run.denied', expect.stringMatching(/^query:dead-letters-by-reason .* denied=table$/)],
      ['analyst-a', 'alerts.list.denied', expect.stringMatching(/denied=role$/)],
    ]);
  });
});

describe('a clinician of site B', () => {
  it('lists only site B alerts, with a purpose, and the read is audited before printing', async () => {
    const before = auditLines().length;
    const { out, entriesAtPrint } = await vigil(
      tokens.clinicianB!,
      'alerts',
      'list',
      '--purpose',
      'treatment',
      '--json',
    );
    const { alerts } = JSON.parse(out) as { alerts: { alert_id: string; site_id: string }[] };
    expect(alerts.map((a) => [a.alert_id, a.site_id])).toEqual([['alert-site-b-3', 'site-b']]);
    expect(entriesAtPrint).toBe(before + 1);
    expect(auditLines().at(-1)!.entry).toMatchObject({
      actor: 'nurse-b',
      role: 'clinician',
      action: 'alerts.list',
      purpose: 'treatment',
      target: 'alerts:list {"open":false,"limit":100}',
    });
  });

  it('is refused without a purpose, and an unknown token is refused: both audited', async () => {
    const before = auditLines().length;
    await expect(vigil(tokens.clinicianB!, 'alerts', 'list')).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      reason: 'purpose',
    });
    const forged = `vgl_${'0'.repeat(16)}_${'A'.repeat(43)}`;
    await expect(vigil(forged, 'alerts', 'list', '--purpose', 'treatment')).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: 'unauthenticated',
    });
    await expect(vigil(null, 'query', 'run', 'completeness-by-site')).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: 'unauthenticated',
    });
    expect(
      auditLines()
        .slice(before)
        .map((r) => [r.entry!.actor, r.entry!.role, r.entry!.action]),
    ).toEqual([
      ['nurse-b', 'clinician', 'alerts.list.denied'],
      ['unauthenticated', 'none', 'alerts.list.denied'],
      ['unauthenticated', 'none', 'query.run.denied'],
    ]);
  });
});

describe('raw bytes', () => {
  it('an analyst (or anyone through a query) is refused raw_events bytes, each refusal audited', async () => {
    const audit = accessAuditAppender({ auditDir, auditHashKey: join(keyDir, KEY_FILES.hash) });
    const store = openChdbStore({ path: storeDir });
    const deps = { audit, authenticator: fileAuthenticator(principals), credential: tokens.analystA!, store };
    const attempts = [
      'SELECT raw FROM raw_events',
      'SELECT * FROM raw_events',
      'SELECT n.site_id, r.raw_sha256 FROM normalised_events AS n JOIN raw_events AS r ON n.raw_sha256 = r.raw_sha256',
    ];
    try {
      for (const sql of attempts) {
        await expect(auditedQuery(deps, { action: 'query.sql', target: 'sql:adhoc', sql })).rejects.toMatchObject({
          reason: 'raw_bytes',
        });
      }
    } finally {
      await store.close();
    }
    expect(
      auditLines()
        .slice(-3)
        .map((r) => [r.entry!.actor, r.entry!.action, r.entry!.target]),
    ).toEqual(Array(3).fill(['analyst-a', 'query.sql.denied', 'sql:adhoc denied=raw_bytes']));
  });
});

describe('a read of several queries (the shape of `vigil trace`)', () => {
  it('authorises each query, records the read once, and audits a refusal inside it', async () => {
    const { token } = addPrincipal(principals, { name: 'auditor-1', roles: ['auditor'], sites: ['*'] });
    const audit = accessAuditAppender({ auditDir, auditHashKey: join(keyDir, KEY_FILES.hash) });
    const store = openChdbStore({ path: storeDir });
    try {
      const scope = await openReadScope(
        { audit, authenticator: fileAuthenticator(principals), credential: token, store },
        { action: 'trace.show', target: 'event:h:0123456789abcdef' },
      );
      expect([scope.role, scope.purpose]).toEqual(['auditor', 'audit']);
      const [events] = await scope.query<{ n: number }>('SELECT count() AS n FROM normalised_events FINAL');
      const [alerts] = await scope.query<{ n: number }>('SELECT count() AS n FROM clinical_alerts FINAL');
      expect([events?.n, alerts?.n]).toEqual([70, 3]); // all sites
      await expect(scope.query('SELECT raw FROM raw_events')).rejects.toMatchObject({ reason: 'raw_bytes' });
      const index = await scope.record({ events: events?.n, alerts: alerts?.n });
      expect(auditLines().at(-1)!.entry).toMatchObject({ index, actor: 'auditor-1', action: 'trace.show' });
      expect(auditLines().at(-2)!.entry).toMatchObject({ action: 'trace.show.denied', role: 'auditor' });
    } finally {
      await store.close();
    }
  });
});

describe('the audit log after the reads', () => {
  it('verifies with `vigil audit verify` once signed by `vigil audit checkpoint`', async () => {
    const entries = auditLines().length;
    expect(entries).toBe(14); // 9 reads and refusals through the commands, 3 raw-byte refusals, 2 of the scope
    const signed = await spawnNode(
      VIGIL,
      ['audit', 'checkpoint', '--dir', auditDir, '--key', join(keyDir, KEY_FILES.signer)],
      {},
    ).done;
    expect(signed.code).toBe(0);
    const verified = await spawnNode(
      VIGIL,
      ['audit', 'verify', '--json', '--dir', auditDir, '--pub', join(keyDir, KEY_FILES.verifier)],
      {},
    ).done;
    const report = JSON.parse(verified.stdout.trim().split('\n').at(-1)!);
    expect(report).toMatchObject({ ok: true, entries, checkpoints: 1, verified_size: entries, unsigned_tail: 0 });
    expect(verified.code).toBe(0);
  }, 60_000);
});
