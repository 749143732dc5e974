/**
 * `vigil trace` latency on a store of N events (issue 11: p50/p99 over 100 random event ids at 10,000,000 events).
 *
 *   node --import tsx bench/micro/trace.bench.ts [--events N] [--devices D] [--dir DIR] [--lookups 100]
 *                                                [--audit-entries A] [--no-cli] [--keep]
 *   npm run bench -- micro --only trace          # the same with its defaults (10,000,000 events: ~GBs on disk)
 *
 * Not a test: the figures depend on the machine, and every line carries the load average it was taken under.
 *
 * The store: an embedded ClickHouse (chdb) with the real migrations, filled by INSERT ... SELECT FROM numbers(N)
 * (fillTraceStore below) with what a run of the simulator's fleet would have landed: D devices
 * (default 1,000, the simulator's default) built by the simulator's own buildFleet (20 sites of falling size,
 * firmware releases and the 12% pilot candidate), each device's share of the events by its reporting interval
 * (wearables every minute, monitors every five), observation time advancing at the fleet's event rate, ULID event
 * ids, 92.5% vital signs / 5% device status / 2% alarms / 0.5% config changes, 1% dead-lettered (a raw record and
 * nothing else), raw records with Avro-sized bytes and a JWS-sized signed_event, one live NEWS2 inference per vital
 * signs event plus a shadow one for 20%, and clinical alert rows citing 0.3% of the vital signs events and their
 * inference. Build time and the size on disk (system.parts, per table) are printed.
 *
 * Measured, each as one JSON line:
 * - `lookup`: evidence/lookup.ts's lookupEvent (every plane read `vigil trace` does) for `--lookups` event ids drawn
 *   at random from the normalised plane, in-process: p50 / p99 / max ms; and for 10 dead-lettered ids (the raw
 *   plane's fallback by its event_id bloom filter);
 * - `trace`: evidence/trace.ts's traceEvent in-process (authentication, the lookup, reading the whole audit log for
 *   who saw the event, the audit append of the trace itself) with a file audit log of `--audit-entries` entries;
 * - `cli`: one `node bin/vigil.js trace <id> --json` process (the process start, tsx's loader, chdb's start and the
 *   same work once): the wall time a person at a terminal waits;
 * - `explain`: for one id, the parts and granules each plane's lookup reads after the primary key and the skip
 *   indexes (EXPLAIN indexes = 1), the evidence for why a lookup is or is not cheap.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { accessAuditAppender } from '../../access/cli.ts';
import { addPrincipal, fileAuthenticator } from '../../access/principals.ts';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { generateAuditKeys, KEY_FILES, loadHashKey } from '../../audit/keys.ts';
import { openAuditLog } from '../../audit/log.ts';
import { readAll } from '../../audit/store.ts';
import { openFileAuditStore } from '../../audit/stores/file.ts';
import { lookupEvent } from '../../evidence/lookup.ts';
import { type TraceDeps, traceEvent } from '../../evidence/trace.ts';
import { eventRef, viewsOf } from '../../evidence/views.ts';
import { systemClock } from '../../runtime/clock.ts';
import { buildFleet, DEFAULT_BIASED_FIRMWARE, fleetEventRate, VITALS_INTERVAL_MS } from '../../simulator/fleet.ts';
import { spawnNode, VIGIL } from '../lib/proc.ts';

const { values: flags } = parseArgs({
  options: {
    events: { type: 'string', default: '10000000' },
    devices: { type: 'string', default: '1000' },
    dir: { type: 'string' },
    lookups: { type: 'string', default: '100' },
    'audit-entries': { type: 'string', default: '100000' },
    'no-cli': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const events = Number(flags.events);
const devices = Number(flags.devices);
const lookups = Number(flags.lookups);
const auditEntries = Number(flags['audit-entries']);
const work = mkdtempSync(join(tmpdir(), 'vigil-trace-bench-'));
const dir = flags.dir ?? join(work, 'store');

const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const emit = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ bench: 'trace', ...line, loadavg: load() })}\n`);

function percentiles(ms: number[]): { p50_ms: number; p99_ms: number; max_ms: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) =>
    Number((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0).toFixed(1));
  return { p50_ms: at(0.5), p99_ms: at(0.99), max_ms: Number((sorted.at(-1) ?? 0).toFixed(1)) };
}

async function sampleIds(store: ClickHouseStore, sql: string, n: number): Promise<string[]> {
  const rows = await store.query<{ id: string }>(sql, { n });
  return rows.map((r) => r.id);
}

/**
 * Parts and granules each plane's lookup reads for one event id, after each index in turn (EXPLAIN indexes = 1):
 * e.g. `{"normalised_events": {"Partition": "2/2 parts, 1221/1221 granules", ..., "Skip idx_event_id": "2/2 parts,
 * 8/1221 granules"}}`. The raw plane is read by the position the normalised row names (its primary key), and by its
 * event_id bloom filter for an event that never normalised.
 */
async function explain(store: ClickHouseStore, id: string): Promise<Record<string, Record<string, string>>> {
  const [position] = await store.query<{ t: string; p: number; o: string }>(
    `SELECT source_topic AS t, source_partition AS p, source_offset AS o FROM normalised_events
     WHERE event_id = {id:String} LIMIT 1`,
    { id },
  );
  const plans: Record<string, string> = {
    normalised_events: 'SELECT count() FROM normalised_events WHERE event_id = {id:String}',
    inferences: 'SELECT count() FROM inferences WHERE event_id = {id:String}',
    raw_events_by_position: `SELECT count() FROM raw_events WHERE source_topic = '${position?.t}'
      AND source_partition = ${Number(position?.p)} AND source_offset = ${Number(position?.o)} AND event_id = {id:String}`,
    raw_events_by_event_id: 'SELECT count() FROM raw_events WHERE event_id = {id:String}',
  };
  const out: Record<string, Record<string, string>> = {};
  for (const [name, sql] of Object.entries(plans)) {
    const plan = await store.query<{ explain: string }>(`EXPLAIN indexes = 1 ${sql}`, { id });
    const steps: Record<string, string> = {};
    let step: string | null = null;
    let parts = '';
    for (const line of plan.map((r) => r.explain.trim())) {
      if (/^(MinMax|Partition|PrimaryKey|Skip)$/.test(line)) step = line;
      else if (step && line.startsWith('Name: ')) step = `${step} ${line.slice(6)}`;
      else if (step && line.startsWith('Parts: ')) parts = line.slice(7);
      else if (step && line.startsWith('Granules: ')) steps[step] = `${parts} parts, ${line.slice(10)} granules`;
    }
    out[name] = steps;
  }
  return out;
}

// --- the store ------------------------------------------------------------------------------------------------------

const T0 = Date.UTC(2026, 0, 28); // ten days at 1,000 devices: the store spans a month boundary (two partitions)
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const FLEET = 'bench_trace_fleet';

/** n-th character group of a ULID: `count` base32 digits of `value`, most significant first. */
const base32 = (value: string, count: number) =>
  `arrayStringConcat(arrayMap(i -> substring('${CROCKFORD}', toUInt8(bitAnd(bitShiftRight(${value}, 5 * (${count - 1} - i)), 31)) + 1, 1), range(${count})))`;

/**
 * One row per event number: everything the planes hold of it, computed from `number` alone (so every plane's insert
 * derives the same event, and a chunk can be re-run). ClickHouse drops the columns an insert does not read.
 */
function eventsSql(from: number, count: number, slots: number, usPerEvent: number): string {
  return `SELECT
      number AS n,
      ${T0} + intDiv(n * ${usPerEvent}, 1000) AS obs_ms,
      concat(${base32('toUInt64(obs_ms)', 10)}, ${base32("cityHash64(n, 'ulid')", 12)},
             ${base32("cityHash64(n, 'ulid2')", 4)}) AS id,
      f.device_id AS dev, f.site_id AS site, f.firmware AS firmware, f.patient_ref AS patient,
      f.fingerprint AS fingerprint, f.key_id AS key_id, f.consent AS consent, f.policy AS policy,
      f.batch AS batch, f.subgroup AS subgroup,
      cityHash64(n, 'type') % 1000 AS t,
      multiIf(t < 925, 'vital_signs', t < 975, 'device_status', t < 995, 'alarm', 'config_change') AS type,
      cityHash64(n, 'dead-letter') % 100 = 0 AS dead,
      toInt32(n % 6) AS partition, toInt64(intDiv(n, 6)) AS offset, toInt64(intDiv(n, ${slots})) AS seq,
      lower(hex(cityHash64(n, 'nonce'))) AS nonce,
      toFloat64(12 + n % 11) AS rr, toInt32(90 + n % 9) AS spo2, toInt32(95 + n % 50) AS sbp,
      toInt32(55 + n % 60) AS pulse, round(36 + (n % 25) / 10, 1) AS temp,
      concat('{"respiratory_rate":', toString(rr), ',"spo2":', toString(spo2), ',"on_oxygen":false,"systolic_bp":',
             toString(sbp), ',"pulse":', toString(pulse), ',"consciousness":"A","temperature_c":', toString(temp), '}')
        AS payload,
      concat('{"event_id":"', id, '","device_id":"', dev, '","event_type":"', type, '","observed_at":', toString(obs_ms),
             ',"firmware_version":"', firmware, '","sequence":', toString(seq), ',"nonce":"', nonce, '","payload":',
             payload, '}') AS signed_payload,
      concat(base64Encode(concat('{"alg":"EdDSA","kid":"', fingerprint, '"}')), '.', base64Encode(signed_payload), '.',
             base64Encode(concat(unhex(hex(SHA256(concat(id, 'r')))), unhex(hex(SHA256(concat(id, 's'))))))) AS signed_event,
      concat('sha256:', lower(hex(SHA256(signed_event)))) AS integrity_hash,
      concat(unhex('0000000001'), id, dev, payload, unhex(hex(SHA256(signed_event)))) AS raw,
      lower(hex(SHA256(raw))) AS raw_sha256,
      toDateTime64(obs_ms / 1000, 3, 'UTC') AS observed_at,
      toDateTime64((obs_ms + 250 + n % 200) / 1000, 3, 'UTC') AS received_at,
      toDateTime64((obs_ms + 600 + n % 400) / 1000, 3, 'UTC') AS consumed_at,
      toDateTime64((obs_ms + 1200 + n % 800) / 1000, 3, 'UTC') AS processed_at,
      toFloat64(intDiv(abs(rr - 16), 4) + intDiv(abs(pulse - 80), 20) + (spo2 < 94) * 2) AS score
    FROM numbers(${from}, ${count}) AS e
    INNER JOIN ${FLEET} AS f ON f.slot = e.number % ${slots}`;
}

async function insertChunk(store: ClickHouseStore, events: string): Promise<void> {
  await store.command(
    `INSERT INTO raw_events (source_topic, source_partition, source_offset, consumed_at, raw_sha256, raw, raw_size,
       headers, record_key, event_id, device_id, signed_event, gateway_id, device_cert_fingerprint, key_id,
       integrity_hash)
     SELECT 'vigil.telemetry.raw', partition, offset, consumed_at, raw_sha256, raw, toUInt32(length(raw)),
       [('vigil-gateway', 'gw-bench-1')], dev, id, dev, signed_event, 'gw-bench-1', fingerprint, key_id, integrity_hash
     FROM (${events})`,
  );
  await store.command(
    `INSERT INTO normalised_events (event_id, device_id, patient_ref, site_id, event_type, observed_at, received_at,
       firmware_version, schema_version, integrity_hash, consent_context, processing_policy, sequence, nonce,
       device_cert_fingerprint, key_id, device_batch, patient_subgroup, parent_event_ids, provenance_flags,
       respiratory_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temperature_c, battery_pct, signal_dbm,
       device_state, source_topic, source_partition, source_offset, raw_sha256, transformation_version, processed_at)
     SELECT id, dev, patient, site, type, observed_at, received_at, firmware, 'telemetry-envelope-v3', integrity_hash,
       consent, policy, seq, nonce, fingerprint, key_id, batch, subgroup, [], [],
       if(type = 'vital_signs', rr, NULL), if(type = 'vital_signs', spo2, NULL), if(type = 'vital_signs', false, NULL),
       if(type = 'vital_signs', sbp, NULL), if(type = 'vital_signs', pulse, NULL), if(type = 'vital_signs', 'A', NULL),
       if(type = 'vital_signs', temp, NULL), if(type = 'device_status', toInt32(20 + n % 80), NULL),
       if(type = 'device_status', toInt32(-90 + n % 40), NULL), if(type = 'device_status', 'ok', NULL),
       'vigil.telemetry.raw', partition, offset, raw_sha256, 'vitals@1/validate/dedupe', processed_at
     FROM (${events}) WHERE NOT dead`,
  );
  // One live NEWS2 inference per vital signs event; a shadow candidate version scores 20% of them as well.
  await store.command(
    `INSERT INTO inferences (inference_id, event_id, parent_event_ids, device_id, patient_ref, site_id,
       firmware_version, device_batch, patient_subgroup, observed_at, scored_at, model_name, model_version,
       model_artifact_sha256, runtime, runtime_version, config_hash, rollout, feature_names, features,
       feature_vector_hash, score, subscores, risk_band, transformation_version)
     SELECT lower(hex(SHA256(concat(id, '|news2|', m.1)))), id, [], dev, patient, site, firmware, batch, subgroup,
       observed_at, processed_at, 'news2', m.1, lower(hex(SHA256(concat('artifact', m.1)))), 'onnxruntime-node',
       '1.20.1', 'cfg-7f3a', m.2,
       ['respiratory_rate', 'spo2', 'on_oxygen', 'systolic_bp', 'pulse', 'consciousness', 'temperature_c'],
       [rr, toFloat64(spo2), 0, toFloat64(sbp), toFloat64(pulse), 0, temp], lower(hex(cityHash64(n, 'features'))),
       score, [0, 0, 0, 0, 0, 0, 0], multiIf(score >= 7, 'high', score >= 5, 'medium', score >= 1, 'low_medium', 'low'),
       concat('vitals@1/score/news2@', m.1)
     FROM (${events})
     ARRAY JOIN if(cityHash64(n, 'shadow') % 5 = 0, [('1.0.0', 'live'), ('1.1.0', 'shadow')], [('1.0.0', 'live')]) AS m
     WHERE type = 'vital_signs' AND NOT dead`,
  );
  // An alert opened on 0.3% of the vital signs events, citing the event and its live inference.
  await store.command(
    `INSERT INTO clinical_alerts (record_id, alert_id, patient_ref, site_id, device_id, rule_id, rule_version, kind,
       band, transition, opened_at, observed_at, received_at, raised_at, suppressed, inference_ids, event_ids,
       model_name, model_version, rollout, score, transformation_version)
     SELECT lower(hex(SHA256(concat(id, '|alert|open')))), lower(hex(cityHash64(id, 'alert'))), patient, site, dev,
       'news2-escalation', '1', 'physiological', if(n % 3 = 0, 'high', 'medium'), 'open', observed_at, observed_at,
       received_at, processed_at, 0, [lower(hex(SHA256(concat(id, '|news2|1.0.0'))))], [id], 'news2', '1.0.0', 'live',
       score, 'alerts@1/raise-alerts'
     FROM (${events}) WHERE type = 'vital_signs' AND NOT dead AND cityHash64(n, 'alert') % 1000 < 3`,
  );
}

/** The simulator's fleet as a table of slots: each device holds as many as its reporting rate weighs. */
async function loadFleet(store: ClickHouseStore, devices: number): Promise<number> {
  const fleet = buildFleet({
    devices,
    sites: 20,
    seed: 'bench',
    startTime: T0,
    horizonMs: 86_400_000,
    candidateFirmware: DEFAULT_BIASED_FIRMWARE,
    biasOn: true,
    candidateFraction: 0.12,
  });
  await store.command(`DROP TABLE IF EXISTS ${FLEET}`);
  await store.command(
    `CREATE TABLE ${FLEET} (slot UInt64, device_id String, site_id String, firmware String, patient_ref String,
       fingerprint String, key_id String, consent String, policy String, batch String, subgroup String) ENGINE = Memory`,
  );
  const q = (s: string) => `'${s.replace(/'/g, "\\'")}'`;
  let slot = 0;
  const rows: string[] = [];
  for (const d of fleet.devices) {
    // A wearable reports every minute, a monitor every five: a wearable has five times the events.
    const weight = Math.round(VITALS_INTERVAL_MS.monitor / d.vitalsIntervalMs);
    for (let w = 0; w < weight; w++) {
      rows.push(
        `(${slot++}, ${[d.id, d.siteId, d.firmware, d.patientRef, d.certFingerprint, d.keyId, d.consent, d.policy, d.batch, d.subgroup].map(q).join(', ')})`,
      );
    }
  }
  for (let i = 0; i < rows.length; i += 500) {
    await store.command(`INSERT INTO ${FLEET} VALUES ${rows.slice(i, i + 500).join(', ')}`);
  }
  return slot;
}

/** Fills the planes with `events` events unless the store already holds them; returns the build time. */
async function fillTraceStore(
  store: ClickHouseStore,
  options: { events: number; devices: number; log: (line: string) => void },
): Promise<{ seconds: number; reused: boolean }> {
  const [present] = await store.query<{ n: string }>('SELECT count() AS n FROM raw_events');
  if (Number(present?.n) >= options.events) return { seconds: 0, reused: true };
  if (Number(present?.n) > 0) throw new Error('the store holds another fill: pass a fresh --dir');
  const t0 = performance.now();
  const slots = await loadFleet(store, options.devices);
  const usPerEvent = Math.round(1e6 / fleetEventRate(options.devices));
  const chunk = 1_000_000;
  for (let from = 0; from < options.events; from += chunk) {
    await insertChunk(store, eventsSql(from, Math.min(chunk, options.events - from), slots, usPerEvent));
    options.log(
      `filled ${Math.min(from + chunk, options.events).toLocaleString('en-GB')} / ${options.events.toLocaleString('en-GB')} events (${Math.round((performance.now() - t0) / 1000)} s, load ${load().join(' ')})`,
    );
  }
  await store.command(`DROP TABLE IF EXISTS ${FLEET}`);
  return { seconds: Math.round((performance.now() - t0) / 100) / 10, reused: false };
}

/** Rows, parts and bytes on disk per plane (active parts), and their total. */
async function storeSize(store: ClickHouseStore): Promise<Record<string, unknown>> {
  const rows = await store.query<{ table: string; rows: string; parts: string; bytes: string }>(
    `SELECT table, sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytes FROM system.parts
     WHERE active AND database = currentDatabase()
       AND table IN ('raw_events', 'normalised_events', 'inferences', 'clinical_alerts')
     GROUP BY table ORDER BY table`,
  );
  const tables: Record<string, { rows: number; parts: number; mb: number }> = {};
  let bytes = 0;
  for (const r of rows) {
    tables[r.table] = { rows: Number(r.rows), parts: Number(r.parts), mb: Math.round(Number(r.bytes) / 1e5) / 10 };
    bytes += Number(r.bytes);
  }
  return { disk_mb: Math.round(bytes / 1e5) / 10, tables };
}

async function main(): Promise<void> {
  process.stderr.write(`trace bench: ${events.toLocaleString('en-GB')} events, ${devices} devices, store ${dir}\n`);
  const store = openChdbStore({ path: dir });
  await store.migrate();
  const built = await fillTraceStore(store, { events, devices, log: (l) => process.stderr.write(`${l}\n`) });
  const size = await storeSize(store);
  emit({ case: 'store', events, devices, build_s: built.seconds, reused: built.reused, ...size });

  // The lookups: ids drawn at random from the store (outside the timing), then read one at a time.
  const ids = await sampleIds(
    store,
    'SELECT event_id AS id FROM normalised_events ORDER BY rand() LIMIT {n:UInt32}',
    lookups,
  );
  const deadLettered = await sampleIds(
    store,
    `SELECT assumeNotNull(event_id) AS id FROM raw_events
     WHERE event_id IS NOT NULL AND (source_topic, source_partition, source_offset) NOT IN
       (SELECT source_topic, source_partition, source_offset FROM normalised_events)
     ORDER BY rand() LIMIT {n:UInt32}`,
    10,
  );
  await lookupEvent(store, ids[0] ?? ''); // first query pays chdb's caches: not a lookup a user repeats
  const ms: number[] = [];
  const cpuMs: number[] = [];
  let alerts = 0;
  for (const id of ids) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const evidence = await lookupEvent(store, id);
    ms.push(performance.now() - t0);
    const used = process.cpuUsage(c0);
    cpuMs.push((used.user + used.system) / 1000);
    if (evidence.derivations.length !== 1 || evidence.raw === null) {
      throw new Error(`lookup found ${evidence.derivations.length} derivations and raw ${evidence.raw !== null}`);
    }
    alerts += evidence.alerts.length;
  }
  emit({
    case: 'lookup (in-process, normalised events)',
    events,
    lookups: ids.length,
    alerts_found: alerts,
    ...percentiles(ms),
    // CPU of the whole process (chdb's threads included): what the lookup costs whatever else the machine runs.
    cpu_p50_ms: percentiles(cpuMs).p50_ms,
    cpu_p99_ms: percentiles(cpuMs).p99_ms,
  });
  const deadMs: number[] = [];
  for (const id of deadLettered) {
    const t0 = performance.now();
    const evidence = await lookupEvent(store, id);
    deadMs.push(performance.now() - t0);
    if (evidence.derivations.length !== 0 || evidence.raw === null) throw new Error('dead-lettered lookup missed');
  }
  emit({
    case: 'lookup (in-process, dead-lettered: raw only)',
    events,
    lookups: deadLettered.length,
    ...percentiles(deadMs),
  });
  emit({
    case: 'explain',
    events,
    event_id_probe: 'a random normalised event',
    granules: await explain(store, ids[0] ?? ''),
  });

  // The whole trace in-process: auth, lookup, the audit log read for who saw it, the trace's own audit entry.
  const principals = join(work, 'principals.json');
  const { token } = addPrincipal(principals, { name: 'auditor-bench', roles: ['auditor'], sites: ['*'] });
  const keys = join(work, 'keys');
  generateAuditKeys(keys, 'vigil.bench/trace');
  const hashKey = loadHashKey(join(keys, KEY_FILES.hash));
  const auditDir = join(work, 'audit');
  {
    const log = await openAuditLog({ store: openFileAuditStore(auditDir), clock: systemClock, hashKey });
    // Earlier reads of the store, some of them views of the traced events (1 in 1,000 entries).
    for (let g = 0; g < auditEntries; g += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, auditEntries - g) }, (_, i) =>
          log.append({
            actor: `clinician-${(g + i) % 50}`,
            role: 'clinician',
            action: 'data.read',
            target: (g + i) % 1000 === 0 ? eventRef(hashKey, ids[(g / 1000) % ids.length] ?? '') : 'site:site-01',
            purpose: 'treatment',
          }),
        ),
      );
    }
    await log.close();
  }
  // What the CLI records a trace through: the access layer's appender (one append, the log opened at its end).
  const audit = accessAuditAppender({ auditDir, auditHashKey: join(keys, KEY_FILES.hash) });
  const deps: TraceDeps = {
    store,
    audit,
    hashKey,
    auditRecords: () => readAll(openFileAuditStore(auditDir)),
    authenticator: fileAuthenticator(principals),
    credential: token,
  };
  const traceIds = ids.slice(0, Math.min(20, ids.length));
  const traceMs: number[] = [];
  for (const eventId of traceIds) {
    const t0 = performance.now();
    await traceEvent(deps, { eventId, verify: false });
    traceMs.push(performance.now() - t0);
  }
  // The part of a trace that grows with the audit log, not the store: every record read and parsed to find the views.
  const auditMs: number[] = [];
  for (const eventId of traceIds.slice(0, 5)) {
    const t0 = performance.now();
    viewsOf(await readAll(openFileAuditStore(auditDir)), eventRef(hashKey, eventId));
    auditMs.push(performance.now() - t0);
  }
  const auditPart = percentiles(auditMs);
  emit({
    case: 'trace: who saw it (read the audit log + viewsOf)',
    audit_entries: auditEntries,
    ...auditPart,
    us_per_audit_entry: Number(((auditPart.p50_ms * 1000) / Math.max(1, auditEntries)).toFixed(2)),
  });
  emit({
    case: 'trace (in-process, with the audit log read)',
    events,
    audit_entries: auditEntries,
    traces: traceIds.length,
    ...percentiles(traceMs),
  });
  await store.close();

  // One CLI process, as a person runs it (the embedded store is closed first: one process opens it at a time).
  if (!flags['no-cli']) {
    const cli = (args: string[]) => {
      const t0 = performance.now();
      return spawnNode(VIGIL, args, { VIGIL_PRINCIPALS: principals, VIGIL_TOKEN: token }).done.then((done) => ({
        ms: performance.now() - t0,
        done,
      }));
    };
    const help = await cli(['--help']);
    const traced = await cli([
      'trace',
      ids[1] ?? ids[0] ?? '',
      '--json',
      '--data-dir',
      dir,
      '--audit-dir',
      auditDir,
      '--audit-hash-key',
      join(keys, KEY_FILES.hash),
    ]);
    if (traced.done.code !== 0) throw new Error(`vigil trace failed:\n${traced.done.stderr.slice(-2000)}`);
    emit({
      case: 'cli (one vigil trace process)',
      events,
      audit_entries: auditEntries + traceIds.length,
      wall_ms: Math.round(traced.ms),
      process_start_ms: Math.round(help.ms),
      note: 'process_start_ms: `vigil --help` (node + tsx + the CLI modules), the floor of any vigil command',
    });
  }
}

try {
  await main();
} finally {
  if (!flags.keep) rmSync(work, { recursive: true, force: true });
  else process.stderr.write(`kept ${work}\n`);
}
