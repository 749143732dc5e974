/**
 * `vigil alerts`: for the people who act on clinical alerts.
 *
 *   vigil alerts list [--open] [--limit N] [--json] [--server] [--data-dir DIR]
 *   vigil alerts ack <alert-id> --principal <id> [--reason TEXT] [--json] [--server] [--data-dir DIR]
 *   vigil alerts escalate <alert-id> --principal <id> [--reason TEXT] [--json] [--server] [--data-dir DIR]
 *
 * `list` reads `clinical_alerts_current` (each alert's transitions in its current derivation; its state is the latest) from the
 * embedded store unless `--data-dir` names another, or the server at CLICKHOUSE_URL with `--server`. It is a clinical
 * read: it needs a principal (VIGIL_TOKEN / VIGIL_TOKEN_FILE) in the clinician (or auditor) role, shows only the
 * principal's sites, needs `--purpose`, and is recorded in the audit log before it prints (access/read.ts).
 * `ack` / `escalate` never change a row: each is an alert-action record (schemas/avro/alert-action) produced, framed
 * with its registry id and keyed by the alert's device, to the alert actions topic, where the alerts pipeline reads
 * it (an `ack` or `escalate` transition of the alert follows in `clinical_alerts`) and the sink keeps it.
 * `--json` prints one line: list `{"alerts":[...]}`, an action `{"topic":"...","action":{...}}`.
 */
import type { Command } from 'commander';
import { ulid } from 'ulid';
import {
  type AccessFlags,
  accessAuditAppender,
  accessOptions,
  authenticatorFromEnv,
  credentialFromEnv,
} from '../../access/cli.ts';
import { auditedQuery, auditTarget } from '../../access/read.ts';
import { encodeFramed } from '../../adapters/avro/framing.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { PlainProducer } from '../../adapters/kafka/producer.ts';
import { createSchemaRegistry } from '../../adapters/registry/index.ts';
import { ALERT_ACTIONS_TOPIC, ALERTS_TABLE } from '../../pipelines/alerts.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { AlertAction } from '../../schemas/generated/alert-action.ts';
import { openReadStore } from '../store.ts';

/** One alert as `list` shows it: its latest transition and what it has been through. */
export interface AlertSummary {
  readonly alert_id: string;
  readonly rule_id: string;
  readonly rule_version: string;
  readonly kind: string;
  readonly band: string;
  readonly state: string;
  readonly patient_ref: string;
  readonly site_id: string;
  readonly device_id: string;
  readonly alarm_code: string | null;
  /** When it opened (event time, UTC). */
  readonly opened: string;
  /** The latest event time it heard of. */
  readonly last_observed: string;
  readonly notifications: number;
  readonly escalations: number;
  readonly acked: number;
  readonly suppressed: number;
  /** The events its transitions cite (the read records a keyed reference to each: who saw them, `vigil trace`). */
  readonly event_ids: readonly string[];
}

/**
 * The alerts as they stand: `clinical_alerts_current` (0012), each alert's current derivation (a re-run of the alerts
 * pipeline under a new rule or pipeline version keeps the old transitions in `clinical_alerts` beside the new ones),
 * one row per transition (a transition stored twice, e.g. a re-formed sink batch outside the dedup window, counts once).
 */
export const ALERTS_CURRENT = 'clinical_alerts_current';

/**
 * The list query: one row per alert, its state the latest transition by event time then raise time, read from the
 * current derivation of each alert (ALERTS_CURRENT).
 */
/** Each alert's latest state; `alertId` narrows it to one alert (bound as `{alert:String}`). */
export function listSql(open: boolean, options: { alertId?: boolean } = {}): string {
  return `
SELECT alert_id,
       any(rule_id) AS rule_id,
       argMax(rule_version, (observed_at, raised_at)) AS rule_version,
       any(kind) AS kind,
       argMax(band, (observed_at, raised_at)) AS band,
       argMax(transition, (observed_at, raised_at)) AS state,
       any(patient_ref) AS patient_ref,
       any(site_id) AS site_id,
       argMax(device_id, (observed_at, raised_at)) AS device_id,
       any(alarm_code) AS alarm_code,
       toString(min(opened_at)) AS opened,
       toString(max(observed_at)) AS last_observed,
       toUInt32(countIf(transition IN ('open', 'renotify', 'escalate'))) AS notifications,
       toUInt32(countIf(transition = 'escalate')) AS escalations,
       toUInt32(countIf(transition = 'ack')) AS acked,
       toUInt32(sum(suppressed)) AS suppressed,
       arraySort(groupUniqArrayArray(event_ids)) AS event_ids
FROM ${ALERTS_CURRENT}
${options.alertId ? 'WHERE alert_id = {alert:String}\n' : ''}GROUP BY alert_id
${open ? "HAVING state != 'resolve'" : ''}
ORDER BY opened DESC, alert_id
LIMIT {limit:UInt32}`;
}

/** Alerts raised (opened) by rule and opening band, optionally at one site. FINAL: a row stored twice counts once. */
function raisedSql(site: boolean): string {
  return `
SELECT rule_id, toString(band) AS band, toUInt32(count()) AS n
FROM ${ALERTS_TABLE} FINAL
WHERE transition = 'open'${site ? ' AND site_id = {site:String}' : ''}
GROUP BY rule_id, band
ORDER BY rule_id, band`;
}

/** Repeats suppressed within the window (each notification carries those since the previous one), optionally at a site. */
function suppressedSql(site: boolean): string {
  return `SELECT toUInt64(sum(suppressed)) AS n FROM ${ALERTS_TABLE} FINAL${site ? ' WHERE site_id = {site:String}' : ''}`;
}

/** Alerts raised by rule and band, and repeats suppressed, as `npm start` reports them (at `site`, or everywhere). */
export async function alertCounts(
  store: ClickHouseStore,
  site?: string,
): Promise<{ raised: Record<string, Record<string, number>>; suppressed: number }> {
  const params: Record<string, string> = site ? { site } : {};
  const raised: Record<string, Record<string, number>> = {};
  for (const r of await store.query<{ rule_id: string; band: string; n: number | string }>(raisedSql(!!site), params)) {
    const byBand = raised[r.rule_id] ?? {};
    raised[r.rule_id] = byBand;
    byBand[r.band] = Number(r.n);
  }
  const [row] = await store.query<{ n: number | string }>(suppressedSql(!!site), params);
  return { raised, suppressed: Number(row?.n ?? 0) };
}

/** The action record a person's ack or escalate is: everything the pipeline needs to find the alert's state. */
export function actionFor(
  alert: Pick<AlertSummary, 'alert_id' | 'patient_ref' | 'device_id' | 'rule_id' | 'alarm_code'>,
  action: AlertAction['action'],
  principal: string,
  reason: string | null,
  at: number,
  id: string = ulid(at),
): AlertAction {
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(principal)) {
    throw new VigilError('CONFIG_INVALID', '--principal must be a staff pseudonym or role id (letters, digits, ._:-)');
  }
  return {
    action_id: id,
    alert_id: alert.alert_id,
    patient_ref: alert.patient_ref,
    device_id: alert.device_id,
    rule_id: alert.rule_id,
    alarm_code: alert.alarm_code,
    action,
    principal,
    reason,
    at,
  };
}

interface StoreFlags {
  readonly server?: boolean;
  readonly dataDir?: string;
}

async function findAlert(store: ClickHouseStore, alertId: string): Promise<AlertSummary> {
  const rows = await store.query<AlertSummary>(listSql(false, { alertId: true }), { alert: alertId, limit: 1 });
  const alert = rows[0];
  if (!alert) throw new VigilError('CONFIG_INVALID', `no alert ${alertId} in ${ALERTS_TABLE}`);
  return alert;
}

/** Produces one action (acks=all), framed with the alert-action schema's registry id (registered idempotently). */
async function produceAction(action: AlertAction): Promise<void> {
  const endpoints = resolveEndpoints();
  const subject = loadSchemaRepo().get('alert-action');
  const id = await createSchemaRegistry(endpoints.schemaRegistryUrl).register(
    subject.spec.subject,
    subject.newest.schema,
  );
  const producer = new PlainProducer(endpoints.kafkaBrokers);
  await producer.connect();
  try {
    await producer.send([
      { topic: ALERT_ACTIONS_TOPIC, key: action.device_id, value: encodeFramed(id, subject.newest.type, action) },
    ]);
  } finally {
    await producer.disconnect();
  }
}

export function registerAlerts(program: Command): void {
  const alerts = program
    .command('alerts')
    .description(
      'Clinical alerts: list them, acknowledge or escalate one (each action is a record, never an overwrite)',
    );

  accessOptions(alerts.command('list'))
    .description('Alerts with their latest transition, newest first (your sites only; needs --purpose; audited)')
    .option('--open', 'only alerts not resolved')
    .option('--limit <n>', 'most alerts to show', '100')
    .option('--json', 'one JSON line: {"alerts":[...]}')
    .option('--server', 'read the ClickHouse server at CLICKHOUSE_URL instead of the embedded store')
    .option('--data-dir <dir>', 'embedded store directory', undefined)
    .action(async (flags: StoreFlags & AccessFlags & { open?: boolean; limit: string; json?: boolean }) => {
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new VigilError('CONFIG_INVALID', '--limit must be a positive integer');
      const audit = accessAuditAppender(flags);
      const store = openReadStore(flags, 'run the alerts sink first, or pass --server');
      try {
        const open = flags.open === true;
        const { rows } = await auditedQuery<AlertSummary & Record<string, unknown>>(
          { audit, authenticator: authenticatorFromEnv(), credential: credentialFromEnv(), store },
          {
            action: 'alerts.list',
            target: auditTarget('alerts', 'list', { open, limit }),
            sql: listSql(open),
            params: { limit },
            role: flags.role,
            purpose: flags.purpose,
          },
        );
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ alerts: rows })}\n`);
          return;
        }
        for (const a of rows) {
          process.stdout.write(
            `${a.alert_id}  ${a.state.padEnd(8)} ${a.band.padEnd(10)} ${a.rule_id}${a.alarm_code ? `(${a.alarm_code})` : ''}  ` +
              `${a.patient_ref} ${a.site_id}  opened ${a.opened}  escalations ${a.escalations}  acked ${a.acked}  ` +
              `suppressed ${a.suppressed}\n`,
          );
        }
        if (rows.length === 0) process.stdout.write('no alerts\n');
      } finally {
        await store.close();
      }
    });

  for (const kind of ['ack', 'escalate'] as const) {
    alerts
      .command(kind)
      .description(kind === 'ack' ? 'Acknowledge an alert (stops its escalation)' : 'Escalate an alert by hand')
      .argument('<alert-id>', 'the alert (see `vigil alerts list`)')
      .requiredOption('--principal <id>', 'who acts: a staff pseudonym or role id, never a name')
      .option('--reason <text>', 'why (kept with the action record)')
      .option('--json', 'one JSON line: {"topic","action"}')
      .option('--server', 'look the alert up on the ClickHouse server at CLICKHOUSE_URL')
      .option('--data-dir <dir>', 'embedded store directory', undefined)
      .action(async (alertId: string, flags: StoreFlags & { principal: string; reason?: string; json?: boolean }) => {
        const store = openReadStore(flags, 'run the alerts sink first, or pass --server');
        let alert: AlertSummary;
        try {
          alert = await findAlert(store, alertId);
        } finally {
          await store.close();
        }
        const action = actionFor(alert, kind, flags.principal, flags.reason ?? null, Date.now());
        await produceAction(action);
        if (flags.json) process.stdout.write(`${JSON.stringify({ topic: ALERT_ACTIONS_TOPIC, action })}\n`);
        else process.stdout.write(`${kind} ${alert.alert_id}: action ${action.action_id} on ${ALERT_ACTIONS_TOPIC}\n`);
      });
  }
}
