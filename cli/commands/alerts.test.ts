import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { addPrincipal } from '../../access/principals.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { openChdbStore } from '../../adapters/clickhouse/index.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { generateAuditKeys, KEY_FILES } from '../../audit/keys.ts';
import { AUDIT_FILE } from '../../audit/stores/file.ts';
import { raiseAlerts } from '../../operators/raise-alerts/index.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { ModelStore } from '../../runtime/models.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import type { ClinicalAlert } from '../../schemas/generated/clinical-alert.ts';
import { envelope, VITALS } from '../../test/fixtures/envelope.ts';
import { consumed, inferenceOf } from '../../test/helpers/alerts.ts';
import { type AlertSummary, actionFor, listSql, registerAlerts } from './alerts.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 6, 0, 0);

/** Alert records as raise-alerts makes them: one alert opened, escalated and still open; one opened and resolved. */
async function raised(): Promise<ClinicalAlert[]> {
  const clock = new ManualClock(T0);
  const op = raiseAlerts({ rules: { news2: { version: '1' } }, escalateAfterMs: { medium: 10 * MIN } });
  await op.open?.({
    pipeline: 'alerts@1',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: {} as ModelStore,
  });
  const five = { ...VITALS, respiratory_rate: 22, spo2: 94, pulse: 105, temperature_c: 38.5 };
  const rec = (minute: number, patient: string, vitals: typeof VITALS, n: number) => {
    const e = envelope({
      event_id: `01KG${String(n).padStart(22, '0')}`,
      patient_ref: patient,
      device_id: `dev-${patient}`,
      observed_at: T0 + minute * MIN,
      vitals,
    });
    return consumed(inferenceOf(e)!, TOPICS.inferences, n, T0 + minute * MIN + 1000);
  };
  const results = await op.process!([
    rec(0, 'psn-a', five, 0),
    rec(5, 'psn-a', five, 1), // suppressed
    rec(12, 'psn-a', five, 2), // escalate
    rec(1, 'psn-b', five, 3),
    rec(6, 'psn-b', VITALS, 4), // resolve
  ]);
  return results.out.flatMap((r) => r.value.alerts);
}

let dir: string;
let store: ClickHouseStore;
let alerts: ClinicalAlert[];

beforeAll(async () => {
  alerts = await raised();
  dir = await mkdtemp(path.join(tmpdir(), 'vigil-alerts-cli-'));
  store = openChdbStore({ path: dir });
  await store.migrate(); // clinical_alerts as infra/clickhouse/migrations creates it
  const rows = [...alerts, alerts[0]!]; // the open stored twice: counted once
  await store.command(
    `INSERT INTO clinical_alerts FORMAT JSONEachRow ${rows.map((r) => JSON.stringify(r)).join('\n')}`,
  );
}, 60_000);

afterAll(async () => {
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('vigil alerts', () => {
  it('list: one row per alert, its state the latest transition; --open leaves resolved ones out', async () => {
    const all = await store.query<AlertSummary>(listSql(false), { limit: 10 });
    expect(
      all.map((a) => [
        a.patient_ref,
        a.state,
        a.band,
        Number(a.escalations),
        Number(a.notifications),
        Number(a.suppressed),
      ]),
    ).toEqual([
      ['psn-b', 'resolve', 'medium', 0, 1, 0],
      ['psn-a', 'escalate', 'medium', 1, 2, 1],
    ]);
    const open = await store.query<AlertSummary>(listSql(true), { limit: 10 });
    expect(open.map((a) => a.patient_ref)).toEqual(['psn-a']);
  });

  it('ack / escalate: an alert-action record that names the alert fully, valid against its schema', async () => {
    const [alert] = await store.query<AlertSummary>(listSql(true), { limit: 1 });
    const action = actionFor(
      alert!,
      'ack',
      'nurse-psn-0042',
      'seen, reviewing',
      T0 + 20 * MIN,
      '01KG0000000000000000000042',
    );
    expect(action).toMatchObject({
      alert_id: alerts[0]!.alert_id,
      device_id: 'dev-psn-a',
      rule_id: 'news2.response',
      alarm_code: null,
    });
    expect(loadSchemaRepo().get('alert-action').newest.type.isValid(action)).toBe(true);
    expect(() => actionFor(alert!, 'ack', 'Dr Jane Smith', null, 0)).toThrow(VigilError);
  });
});

describe('vigil alerts list: a clinical read', () => {
  /** `vigil alerts list` in-process as the holder of `token`, on the test store; what it printed. */
  async function list(token: string, ...args: string[]): Promise<string> {
    vi.stubEnv('VIGIL_PRINCIPALS', path.join(dir, 'principals.json'));
    vi.stubEnv('VIGIL_TOKEN', token);
    const program = new Command().exitOverride();
    registerAlerts(program);
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    try {
      await program.parseAsync([
        'node',
        'vigil',
        'alerts',
        'list',
        ...args,
        ...['--audit-dir', path.join(dir, 'audit'), '--audit-hash-key', path.join(dir, 'keys', KEY_FILES.hash)],
      ]);
    } finally {
      spy.mockRestore();
      vi.unstubAllEnvs();
    }
    return out;
  }

  it("shows a clinician its sites' alerts with a purpose, refuses without one, and audits both", async () => {
    await store.close(); // the command opens the store itself (chdb: one handle per directory)
    generateAuditKeys(path.join(dir, 'keys'), 'vigil.test/alerts');
    const site = alerts[0]!.site_id;
    const { token } = addPrincipal(path.join(dir, 'principals.json'), {
      name: 'nurse-1',
      roles: ['clinician'],
      sites: [site],
    });
    const shown = JSON.parse(await list(token, '--purpose', 'treatment', '--json', '--data-dir', dir)) as {
      alerts: AlertSummary[];
    };
    expect(shown.alerts.map((a) => a.site_id)).toEqual([site, site]);
    await expect(list(token, '--data-dir', dir)).rejects.toMatchObject({ code: 'ACCESS_DENIED', reason: 'purpose' });
    const entries = (await readFile(path.join(dir, 'audit', AUDIT_FILE), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).entry);
    // The read, then its companion naming the events the alerts cite by keyed reference (access/event-refs.ts).
    expect(entries.map((e) => [e.actor, e.action, e.purpose])).toEqual([
      ['nurse-1', 'alerts.list', 'treatment'],
      ['nurse-1', 'alerts.list.events', 'treatment'],
      ['nurse-1', 'alerts.list.denied', 'none'],
    ]);
    const cited = new Set(shown.alerts.flatMap((a) => a.event_ids));
    expect(cited.size).toBeGreaterThan(0);
    expect(entries[1].target).toMatch(new RegExp(`^events:h:[0-9a-f]{32}(,[0-9a-f]{32}){${cited.size - 1}}$`));
    for (const id of cited) expect(JSON.stringify(entries)).not.toContain(id);
    store = openChdbStore({ path: dir });
  });
});
