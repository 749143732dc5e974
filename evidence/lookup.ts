/**
 * The stored evidence of one event, read from the planes by the tables' keys and skip indexes (never a full scan):
 * the normalised derivations (bloom filter idx_event_id), the raw record at the log position they name (primary key;
 * the raw bloom filter of 0010_trace.sql when the event never normalised), the inferences (bloom filter idx_event_id)
 * and the clinical alerts citing the event or its inferences (primary key prefix site_id, patient_ref).
 *
 * Every row of every derivation is returned: the planes are append-only (0009) and a trace shows the whole history,
 * not only the current derivation. Retried inserts not yet merged are collapsed here by their identity.
 *
 * `lookupEvent` reads no byte column (no `raw`, no `signed_event`): it runs through the caller's access scope
 * (access/read.ts openReadScope), whose policy refuses those to every role. `withRawBytes` reads the two byte facts
 * verification needs (the JWS and a hash of the stored frame) by the raw record's primary key: only `vigil trace
 * --verify` calls it, on the store directly, and never shows the bytes.
 */
import type { QueryParams } from '../adapters/clickhouse/store.ts';

/** What the lookups query through: an access scope (access/read.ts ReadScope) or a store. */
export interface PlaneReader {
  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<T[]>;
}

export interface RawEvidence {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly consumed_at: number;
  /** Hex SHA-256 of the Kafka record's bytes, as stored. */
  readonly raw_sha256: string;
  /** Hex SHA-256 of the bytes still stored (recomputed now; withRawBytes); null once the TTL emptied them. */
  readonly raw_sha256_now: string | null;
  readonly device_id: string | null;
  /** The device's JWS as received (withRawBytes); null before, or when the record came through no gateway. */
  readonly signed_event: string | null;
  readonly gateway_id: string | null;
  readonly device_cert_fingerprint: string | null;
  readonly key_id: string | null;
  readonly integrity_hash: string | null;
}

export interface Derivation {
  readonly device_id: string;
  readonly site_id: string;
  readonly patient_ref: string;
  readonly received_at: number;
  readonly integrity_hash: string;
  readonly device_cert_fingerprint: string | null;
  readonly source_topic: string;
  readonly source_partition: number;
  readonly source_offset: number;
  readonly transformation_version: string;
  readonly processed_at: number;
}

export interface InferenceEvidence {
  readonly inference_id: string;
  readonly model: string;
  readonly version: string;
  readonly artifact_sha256: string;
  readonly runtime: string;
  readonly runtime_version: string;
  readonly config_hash: string;
  readonly rollout: string;
  /** change_id of the model-rollouts record that routed the version; null when the pipeline's default ran it. */
  readonly rollout_id: string | null;
  /** The routing decision (inference-v2, 0013); rows written before routing read source 'pipeline', bucket null. */
  readonly routing: InferenceRouting;
  readonly score: number;
  readonly risk_band: string;
  readonly transformation_version: string;
  readonly scored_at: number;
}

export interface InferenceRouting {
  readonly source: string;
  readonly cohort_bucket: number | null;
  readonly in_canary: boolean;
  /** Whether the output was clinical (could alert): never for a shadow. */
  readonly clinical: boolean;
}

export interface AlertEvidence {
  readonly alert_id: string;
  readonly record_id: string;
  readonly rule: string;
  readonly rule_version: string;
  readonly kind: string;
  readonly band: string;
  readonly transition: string;
  readonly raised_at: number;
  /** What the alert cites of this event: the event itself, or one of its inferences. */
  readonly cites: 'event' | 'inference';
}

export interface EventEvidence {
  readonly event_id: string;
  readonly raw: RawEvidence | null;
  readonly derivations: readonly Derivation[];
  readonly inferences: readonly InferenceEvidence[];
  readonly alerts: readonly AlertEvidence[];
}

type Row = Record<string, unknown>;
const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number => Number(v);
/** A Bool column as the store returns it (true/false, or 1/0 from some formats). */
const bool = (v: unknown): boolean => v === true || Number(v) === 1;

const RAW_COLUMNS = `source_topic, source_partition, source_offset, toUnixTimestamp64Milli(consumed_at) AS consumed_ms,
  raw_sha256, device_id, gateway_id, device_cert_fingerprint, key_id, integrity_hash`;

function rawOf(row: Row): RawEvidence {
  return {
    topic: String(row.source_topic),
    partition: num(row.source_partition),
    offset: num(row.source_offset),
    consumed_at: num(row.consumed_ms),
    raw_sha256: String(row.raw_sha256),
    raw_sha256_now: null,
    device_id: text(row.device_id),
    signed_event: null,
    gateway_id: text(row.gateway_id),
    device_cert_fingerprint: text(row.device_cert_fingerprint),
    key_id: text(row.key_id),
    integrity_hash: text(row.integrity_hash),
  };
}

async function derivationsOf(store: PlaneReader, eventId: string): Promise<Derivation[]> {
  const rows = await store.query<Row>(
    `SELECT device_id, site_id, patient_ref, toUnixTimestamp64Milli(received_at) AS received_ms, integrity_hash,
            device_cert_fingerprint, source_topic, source_partition, source_offset, transformation_version,
            min(toUnixTimestamp64Milli(processed_at)) AS processed_ms
     FROM normalised_events
     WHERE event_id = {event_id:String}
     GROUP BY device_id, site_id, patient_ref, received_at, integrity_hash, device_cert_fingerprint, source_topic,
              source_partition, source_offset, raw_sha256, transformation_version
     ORDER BY processed_ms, transformation_version`,
    { event_id: eventId },
  );
  return rows.map((row) => ({
    device_id: String(row.device_id),
    site_id: String(row.site_id),
    patient_ref: String(row.patient_ref),
    received_at: num(row.received_ms),
    integrity_hash: String(row.integrity_hash),
    device_cert_fingerprint: text(row.device_cert_fingerprint),
    source_topic: String(row.source_topic),
    source_partition: num(row.source_partition),
    source_offset: num(row.source_offset),
    transformation_version: String(row.transformation_version),
    processed_at: num(row.processed_ms),
  }));
}

async function rawOfEvent(
  store: PlaneReader,
  eventId: string,
  position: Derivation | undefined,
): Promise<RawEvidence | null> {
  // By the primary key when a derivation names the position; by the event_id bloom filter (0010) otherwise.
  const where = position
    ? `source_topic = {topic:String} AND source_partition = {partition:Int32} AND source_offset = {offset:Int64}
       AND event_id = {event_id:String}`
    : 'event_id = {event_id:String}';
  const rows = await store.query<Row>(
    `SELECT ${RAW_COLUMNS} FROM raw_events WHERE ${where}
     ORDER BY source_topic, source_partition, source_offset, consumed_at LIMIT 1`,
    position
      ? {
          event_id: eventId,
          topic: position.source_topic,
          partition: position.source_partition,
          offset: position.source_offset,
        }
      : { event_id: eventId },
  );
  return rows[0] ? rawOf(rows[0]) : null;
}

async function inferencesOf(store: PlaneReader, eventId: string): Promise<InferenceEvidence[]> {
  const rows = await store.query<Row>(
    `SELECT inference_id, model_name, model_version, model_artifact_sha256, runtime, runtime_version, config_hash,
            rollout, rollout_id, routing_source, cohort_bucket, in_canary, clinical, score, risk_band,
            transformation_version, min(toUnixTimestamp64Milli(scored_at)) AS scored_ms
     FROM inferences
     WHERE event_id = {event_id:String}
     GROUP BY inference_id, model_name, model_version, model_artifact_sha256, runtime, runtime_version, config_hash,
              rollout, rollout_id, routing_source, cohort_bucket, in_canary, clinical, score, risk_band,
              transformation_version, feature_vector_hash
     ORDER BY scored_ms, model_name, model_version, rollout, ifNull(rollout_id, '')`,
    { event_id: eventId },
  );
  return rows.map((row) => ({
    inference_id: String(row.inference_id),
    model: String(row.model_name),
    version: String(row.model_version),
    artifact_sha256: String(row.model_artifact_sha256),
    runtime: String(row.runtime),
    runtime_version: String(row.runtime_version),
    config_hash: String(row.config_hash),
    rollout: String(row.rollout),
    rollout_id: text(row.rollout_id),
    routing: {
      source: String(row.routing_source),
      cohort_bucket: row.cohort_bucket === null || row.cohort_bucket === undefined ? null : num(row.cohort_bucket),
      in_canary: bool(row.in_canary),
      clinical: bool(row.clinical),
    },
    score: num(row.score),
    risk_band: String(row.risk_band),
    transformation_version: String(row.transformation_version),
    scored_at: num(row.scored_ms),
  }));
}

async function alertsOf(
  store: PlaneReader,
  eventId: string,
  subject: Derivation,
  inferenceIds: readonly string[],
): Promise<AlertEvidence[]> {
  const rows = await store.query<Row>(
    `SELECT alert_id, record_id, rule_id, rule_version, toString(kind) AS kind, toString(band) AS band,
            toString(transition) AS transition, min(toUnixTimestamp64Milli(raised_at)) AS raised_ms,
            has(event_ids, {event_id:String}) AS cites_event
     FROM clinical_alerts
     WHERE site_id = {site:String} AND patient_ref = {patient:String}
       AND (has(event_ids, {event_id:String}) OR hasAny(inference_ids, {inferences:Array(String)}))
     GROUP BY alert_id, record_id, rule_id, rule_version, kind, band, transition, cites_event
     ORDER BY raised_ms, alert_id, record_id`,
    { event_id: eventId, site: subject.site_id, patient: subject.patient_ref, inferences: [...inferenceIds] },
  );
  return rows.map((row) => ({
    alert_id: String(row.alert_id),
    record_id: String(row.record_id),
    rule: String(row.rule_id),
    rule_version: String(row.rule_version),
    kind: String(row.kind),
    band: String(row.band),
    transition: String(row.transition),
    raised_at: num(row.raised_ms),
    cites: bool(row.cites_event) ? 'event' : 'inference',
  }));
}

/**
 * Everything the planes hold about one event.
 *
 * @example
 * const evidence = await lookupEvent(openClickHouseStore({ mode: 'embedded', path: dir }), '01J...');
 * evidence.raw?.signed_event; // the device's JWS exactly as the gateway received it
 */
export async function lookupEvent(store: PlaneReader, eventId: string): Promise<EventEvidence> {
  const [derivations, inferences] = await Promise.all([derivationsOf(store, eventId), inferencesOf(store, eventId)]);
  const first = derivations[0];
  const [raw, alerts] = await Promise.all([
    rawOfEvent(store, eventId, first),
    first
      ? alertsOf(
          store,
          eventId,
          first,
          inferences.map((i) => i.inference_id),
        )
      : Promise.resolve([]),
  ]);
  return { event_id: eventId, raw, derivations, inferences, alerts };
}

/**
 * The evidence with the raw record's byte facts filled in: its signed_event and the SHA-256 of its stored frame,
 * read by the record's primary key (its log position). For verification only: never shown.
 *
 * @example
 * const full = await withRawBytes(store, await lookupEvent(scope, eventId));
 * checkRawHash(full);
 */
export async function withRawBytes(store: PlaneReader, evidence: EventEvidence): Promise<EventEvidence> {
  const raw = evidence.raw;
  if (!raw) return evidence;
  const [row] = await store.query<Row>(
    `SELECT signed_event, if(length(raw) = 0, '', lower(hex(SHA256(raw)))) AS frame_sha256
     FROM raw_events
     WHERE source_topic = {topic:String} AND source_partition = {partition:Int32} AND source_offset = {offset:Int64}
       AND raw_sha256 = {raw_sha256:String}
     ORDER BY consumed_at LIMIT 1`,
    { topic: raw.topic, partition: raw.partition, offset: raw.offset, raw_sha256: raw.raw_sha256 },
  );
  if (!row) return evidence;
  return {
    ...evidence,
    raw: { ...raw, signed_event: text(row.signed_event), raw_sha256_now: text(row.frame_sha256) },
  };
}
