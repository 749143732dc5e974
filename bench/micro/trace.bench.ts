/**
 * `vigil trace` lookup latency (run: `node --import tsx bench/micro/trace.bench.ts [events] [store-dir]`; not a test:
 * the figures depend on the machine). Fills an embedded ClickHouse (the real migrations) with `events` (default
 * 10,000,000) normalised events, one raw record and one inference each, spread like a fleet (10 firmware versions, 20
 * sites, 10,000 devices, a year of observation time), unless `store-dir` already holds them; then looks up 100
 * random event ids with evidence/lookup.ts (everything `vigil trace` reads from the planes) and prints p50/p99, and
 * how many granules the skip indexes left to read for one lookup (EXPLAIN indexes = 1).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openChdbStore } from '../../adapters/clickhouse/chdb.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { lookupEvent } from '../../evidence/lookup.ts';

const events = Number(process.argv[2] ?? 10_000_000);
const dir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'vigil-trace-bench-'));
const LOOKUPS = 100;
const T0 = Date.UTC(2026, 0, 1);

const eventId = (n: string) => `concat('01J', leftPad(toString(${n}), 23, '0'))`;

async function fill(store: ClickHouseStore): Promise<void> {
  const chunk = 1_000_000;
  for (let from = 0; from < events; from += chunk) {
    const n = Math.min(chunk, events - from);
    const numbers = `numbers(${from}, ${n})`;
    const observed = `toDateTime64(${T0 / 1000} + intDiv(number * 31536, ${Math.max(1, Math.floor(events / 1000))}), 3, 'UTC')`;
    await store.command(
      `INSERT INTO normalised_events (event_id, device_id, patient_ref, site_id, event_type, observed_at, received_at,
         firmware_version, schema_version, integrity_hash, consent_context, processing_policy, parent_event_ids,
         provenance_flags, source_topic, source_partition, source_offset, raw_sha256, transformation_version,
         processed_at)
       SELECT ${eventId('number')}, concat('dev-', toString(number % 10000)), concat('pt-', toString(number % 10000)),
         concat('site-', toString(number % 10000 % 20)), 'vital_signs', ${observed}, ${observed},
         concat('4.', toString(number % 10), '.0'), 'telemetry-envelope-v3',
         concat('sha256:', lower(hex(SHA256(toString(number))))), 'care', 'clinical-v1', [], [],
         'vigil.telemetry.raw', toInt32(number % 12), toInt64(intDiv(number, 12)), lower(hex(SHA256(toString(number)))),
         'vitals@1/validate/dedupe', ${observed}
       FROM ${numbers}`,
    );
    await store.command(
      `INSERT INTO raw_events (source_topic, source_partition, source_offset, consumed_at, raw_sha256, raw_b64, raw_size,
         headers_b64, record_key, event_id, device_id, integrity_hash)
       SELECT 'vigil.telemetry.raw', toInt32(number % 12), toInt64(intDiv(number, 12)), ${observed},
         lower(hex(SHA256(toString(number)))), '', 0, [], concat('dev-', toString(number % 10000)), ${eventId('number')},
         concat('dev-', toString(number % 10000)), concat('sha256:', lower(hex(SHA256(toString(number)))))
       FROM ${numbers}`,
    );
    await store.command(
      `INSERT INTO inferences (inference_id, event_id, parent_event_ids, device_id, patient_ref, site_id,
         firmware_version, observed_at, scored_at, model_name, model_version, model_artifact_sha256, runtime,
         runtime_version, config_hash, rollout, feature_names, features, feature_vector_hash, score, subscores,
         risk_band, transformation_version)
       SELECT lower(hex(SHA256(concat(toString(number), '|news2')))), ${eventId('number')}, [],
         concat('dev-', toString(number % 10000)), concat('pt-', toString(number % 10000)),
         concat('site-', toString(number % 10000 % 20)), concat('4.', toString(number % 10), '.0'), ${observed},
         ${observed}, 'news2', '1.0.0', 'abc', 'onnxruntime-node', '1.30.0', 'cfg', 'live', [], [], 'fv',
         toFloat64(number % 9), [], 'low', 'vitals@1/validate/dedupe/score'
       FROM ${numbers}`,
    );
    process.stderr.write(`filled ${from + n} / ${events}\n`);
  }
}

async function main(): Promise<void> {
  const store = openChdbStore({ path: dir });
  await store.migrate();
  const [present] = await store.query<{ n: string }>('SELECT count() AS n FROM normalised_events');
  if (Number(present?.n) < events) {
    const t0 = performance.now();
    await fill(store);
    await store.command('OPTIMIZE TABLE raw_events FINAL');
    process.stderr.write(`fill: ${Math.round((performance.now() - t0) / 1000)} s in ${dir}\n`);
  }
  const ids = Array.from({ length: LOOKUPS }, () => Math.floor(Math.random() * events));
  const ms: number[] = [];
  for (const n of ids) {
    const id = `01J${String(n).padStart(23, '0')}`;
    const t0 = performance.now();
    const evidence = await lookupEvent(store, id);
    ms.push(performance.now() - t0);
    if (evidence.derivations.length !== 1 || evidence.inferences.length !== 1 || !evidence.raw) {
      throw new Error(`lookup of event ${n} found ${JSON.stringify(evidence).slice(0, 200)}`);
    }
  }
  ms.sort((a, b) => a - b);
  const probe = `01J${String(ids[0]).padStart(23, '0')}`;
  const granules: Record<string, string> = {};
  for (const table of ['normalised_events', 'inferences', 'raw_events']) {
    const plan = await store.query<{ explain: string }>(
      `EXPLAIN indexes = 1 SELECT count() FROM ${table} WHERE event_id = {id:String}`,
      { id: probe },
    );
    granules[table] = plan
      .map((r) => r.explain.trim())
      .filter((l) => /^(Name|Granules|Parts):/.test(l))
      .join(' ');
  }
  process.stdout.write(
    `${JSON.stringify({
      bench: 'trace',
      events,
      lookups: LOOKUPS,
      p50_ms: Number(ms[Math.floor(LOOKUPS * 0.5)]!.toFixed(1)),
      p99_ms: Number(ms[Math.floor(LOOKUPS * 0.99)]!.toFixed(1)),
      max_ms: Number(ms.at(-1)!.toFixed(1)),
      granules,
    })}\n`,
  );
  await store.close();
}

await main();
