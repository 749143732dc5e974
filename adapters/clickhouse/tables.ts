/**
 * Where a record becomes a ClickHouse row: the row type, column list and mapper of the tables every pipeline has (raw
 * plane, dead letters, duplicates, quarantine), the value conversions every mapper shares, and the registry through
 * which a pipeline's own tables join them (`registerTable`, called beside the output that fills the table, e.g.
 * pipelines/outputs.ts): the adapter names no pipeline's records or tables.
 *
 * Rows are what is sent as JSONEachRow:
 * - timestamps (epoch ms in the records) become `YYYY-MM-DD hh:mm:ss.sss` UTC strings, which every ClickHouse
 *   version parses the same way into DateTime64(3, 'UTC');
 * - bytes (raw record value, header values) travel base64-encoded in the tables' EPHEMERAL `*_b64` columns and are
 *   stored decoded, because JSON cannot carry arbitrary bytes;
 * - non-finite floats become the strings `nan` / `inf` / `-inf` (JSON.stringify would turn them into null, which a
 *   non-Nullable Float64 silently reads as 0).
 * Inserts name their columns (`TABLE_COLUMNS`), which the EPHEMERAL columns require and which keeps a table that
 * gained a column in a later migration insertable by an older worker.
 */
import { VigilError } from '../../runtime/errors.ts';
import type { Origin } from '../../runtime/record.ts';
import type { DeadLetter, Duplicate } from '../../schemas/types.ts';

/** A DateTime64(3, 'UTC') value as sent: `2026-01-31 23:59:59.123`. */
export type DateTime64String = string;
/** A Float64 as sent: a number, or `nan` / `inf` / `-inf`. */
export type FloatValue = number | 'nan' | 'inf' | '-inf';

export interface RawEventRow {
  source_topic: string;
  source_partition: number;
  source_offset: number;
  consumed_at: DateTime64String;
  raw_sha256: string;
  raw_b64: string;
  raw_size: number;
  headers_b64: { key: string; value_b64: string | null }[];
  record_key: string | null;
  event_id: string | null;
  device_id: string | null;
  /** The gateway's evidence (0007_gateway.sql): NULL for a record that did not decode or came through no gateway. */
  signed_event: string | null;
  gateway_id: string | null;
  device_cert_fingerprint: string | null;
  key_id: string | null;
  integrity_hash: string | null;
}

export interface DeadLetterRow {
  dead_letter_id: string;
  failed_at: DateTime64String;
  pipeline: string;
  stage: string;
  operator: string;
  reason_code: string;
  reason_detail: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  raw_sha256: string;
  raw_size: number;
  event_id: string | null;
  claimed_device_id: string | null;
  firmware_version: string | null;
  sequence: number | null;
  nonce: string | null;
  key_id: string | null;
  device_cert_fingerprint: string | null;
  trace_id: string;
}

export interface DuplicateRow {
  pipeline: string;
  event_id: string;
  device_id: string;
  site_id: string;
  sequence: number | null;
  kind: string;
  first_seen: string | null;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  raw_sha256: string;
  detected_at: DateTime64String;
}

export interface QuarantineRow {
  pipeline: string;
  target_table: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  row_ordinal: number;
  reason_code: string;
  reason_detail: string;
  clickhouse_code: number | null;
  clickhouse_name: string | null;
  record_sha256: string;
  record_size: number;
  record_b64: string;
  batch_token: string;
  quarantined_at: DateTime64String;
}

/**
 * The row type of each table Vigil writes through a mapper: the standard tables here; a pipeline's own table joins by
 * module augmentation beside its output (`declare module '.../adapters/clickhouse/tables.ts' { interface TableRows {
 * my_table: MyRow } }`, with `TableSources`) and `registerTable`.
 */
export interface TableRows {
  raw_events: RawEventRow;
  dead_letters: DeadLetterRow;
  duplicates: DuplicateRow;
  quarantine: QuarantineRow;
}

export type TableName = keyof TableRows;

/** The record each table's mapper takes (what the sinks receive for it). */
export interface TableSources {
  raw_events: Origin;
  dead_letters: DeadLetter;
  duplicates: Duplicate;
  quarantine: Quarantined;
}

/** A row ClickHouse cannot store, set aside by the sink (runtime/sinks/clickhouse.ts) into `quarantine`. */
export interface Quarantined {
  /** `name@version`, as in the batch's dedup token. */
  readonly pipeline: string;
  readonly target_table: string;
  readonly source_topic: string;
  readonly source_partition: number;
  readonly source_offset: number;
  /** Numbers the rows a batch sent to target_table from one source position. */
  readonly row_ordinal: number;
  /** A record code with stage `sink` (ROW_TYPE_MISMATCH, ROW_REFUSED_BY_STORE). */
  readonly reason_code: string;
  /** Column and rule, or the engine's code and name: never a value. */
  readonly reason_detail: string;
  readonly clickhouse_code: number | null;
  readonly clickhouse_name: string | null;
  /** The record's exact bytes (kept up to QUARANTINE_RECORD_MAX_BYTES). */
  readonly record: Uint8Array;
  readonly record_sha256: string;
  readonly batch_token: string;
  /** Epoch ms. */
  readonly quarantined_at: number;
}

/** Lists every key of a row type exactly once: the compiler fails when a row type and its column list drift. */
export function columnsOf<Row>(): <const C extends { readonly [K in keyof Row]-?: true }>(
  spec: C,
) => readonly (keyof Row & string)[] {
  return (spec) => Object.keys(spec) as (keyof Row & string)[];
}

type ColumnLists = { readonly [T in TableName]: readonly (keyof TableRows[T] & string)[] };
type RowMappers = { readonly [T in TableName]: (source: TableSources[T]) => TableRows[T] };

/**
 * The column list of each table's inserts, in row-type order: the standard tables', then each registered one's
 * (`registerTable`). A test checks them against the migrated tables.
 */
export const TABLE_COLUMNS: ColumnLists = {
  raw_events: columnsOf<RawEventRow>()({
    source_topic: true,
    source_partition: true,
    source_offset: true,
    consumed_at: true,
    raw_sha256: true,
    raw_b64: true,
    raw_size: true,
    headers_b64: true,
    record_key: true,
    event_id: true,
    device_id: true,
    signed_event: true,
    gateway_id: true,
    device_cert_fingerprint: true,
    key_id: true,
    integrity_hash: true,
  }),
  dead_letters: columnsOf<DeadLetterRow>()({
    dead_letter_id: true,
    failed_at: true,
    pipeline: true,
    stage: true,
    operator: true,
    reason_code: true,
    reason_detail: true,
    source_topic: true,
    source_partition: true,
    source_offset: true,
    raw_sha256: true,
    raw_size: true,
    event_id: true,
    claimed_device_id: true,
    firmware_version: true,
    sequence: true,
    nonce: true,
    key_id: true,
    device_cert_fingerprint: true,
    trace_id: true,
  }),
  duplicates: columnsOf<DuplicateRow>()({
    pipeline: true,
    event_id: true,
    device_id: true,
    site_id: true,
    sequence: true,
    kind: true,
    first_seen: true,
    source_topic: true,
    source_partition: true,
    source_offset: true,
    raw_sha256: true,
    detected_at: true,
  }),
  quarantine: columnsOf<QuarantineRow>()({
    pipeline: true,
    target_table: true,
    source_topic: true,
    source_partition: true,
    source_offset: true,
    row_ordinal: true,
    reason_code: true,
    reason_detail: true,
    clickhouse_code: true,
    clickhouse_name: true,
    record_sha256: true,
    record_size: true,
    record_b64: true,
    batch_token: true,
    quarantined_at: true,
  }),
} as ColumnLists;

export function isTableName(name: string): name is TableName {
  return Object.hasOwn(TABLE_COLUMNS, name);
}

// --- value conversions ---------------------------------------------------------------------------------------------

/**
 * The range DateTime64 holds (1900-01-01 .. 2299-12-31 UTC). An event time outside it cannot be stored: the validate
 * stage must reject such a record (VALUE_OUT_OF_RANGE) before it reaches a sink.
 */
export const DATETIME64_MIN_MS = Date.UTC(1900, 0, 1);
export const DATETIME64_MAX_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);
const MIN_MS = DATETIME64_MIN_MS;
const MAX_MS = DATETIME64_MAX_MS;

/** Epoch ms -> DateTime64(3) text. Throws on a time DateTime64 cannot hold (the validate stage bounds event times). */
export function toDateTime64(ms: number, column = 'timestamp'): DateTime64String {
  if (!Number.isFinite(ms) || ms < MIN_MS || ms > MAX_MS) {
    throw new VigilError('INTERNAL', `${column} is outside the DateTime64 range 1900..2299 and cannot be stored`);
  }
  // What `new Date(ms).toISOString()` gives (`YYYY-MM-DD hh:mm:ss.sss`), without a Date and an ISO string per call:
  // the day's date text is cached (a batch's timestamps share a few days) and the time of day is plain arithmetic.
  // Date truncates fractional milliseconds toward zero; so does this. The text up to the second is cached too (the
  // times of a batch's rows fall in few seconds): then one concatenation makes the value.
  const t = Math.trunc(ms);
  const second = Math.floor(t / 1000);
  if (second === cachedSecond) return cachedSecondText + MILLIS[t - second * 1000];
  const day = Math.floor(t / DAY_MS);
  if (day !== cachedDay) {
    cachedDayText = `${new Date(day * DAY_MS).toISOString().slice(0, 10)} `;
    cachedDay = day;
  }
  let rest = t - day * DAY_MS;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  const milli = rest - s * 1000;
  cachedSecondText = `${cachedDayText}${TWO_DIGITS[h]}:${TWO_DIGITS[m]}:${TWO_DIGITS[s]}`;
  cachedSecond = second;
  return cachedSecondText + MILLIS[milli];
}

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
/** `.000` .. `.999`. */
const MILLIS = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}`);
let cachedDay = Number.NaN;
let cachedDayText = '';
let cachedSecond = Number.NaN;
let cachedSecondText = '';

/**
 * An optional device-reported time: a value DateTime64 cannot hold is stored as NULL rather than failing the whole
 * batch (it is the device's claim, not the event's identity).
 */
export function optionalDateTime64(ms: number | null | undefined): DateTime64String | null {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < MIN_MS || ms > MAX_MS) return null;
  return toDateTime64(ms);
}

/** DateTime64(3, 'UTC') text as ClickHouse returns it -> epoch ms. */
export function fromDateTime64(text: string): number {
  return Date.parse(`${text.replace(' ', 'T')}Z`);
}

export function toFloat(value: number): FloatValue {
  if (Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return 'nan';
  return value > 0 ? 'inf' : '-inf';
}

export function optionalFloat(value: number | null | undefined): FloatValue | null {
  return value === null || value === undefined ? null : toFloat(value);
}

function bytes(value: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

// --- mappers -------------------------------------------------------------------------------------------------------

/** What the pipeline learnt about a raw record, when it decoded far enough to know. */
export interface RawKnown {
  readonly eventId?: string | null;
  readonly deviceId?: string | null;
  /** The gateway's evidence the decoded envelope carried, so a signature can be re-verified from the raw plane. */
  readonly signedEvent?: string | null;
  readonly gatewayId?: string | null;
  readonly deviceCertFingerprint?: string | null;
  readonly keyId?: string | null;
  readonly integrityHash?: string | null;
}

const textOrNull = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/**
 * What the raw plane keeps of a decoded envelope-shaped value (a rejected record's value may be anything: fields that
 * are not non-empty strings are NULL). The decoders already capped every string (adapters/avro/limits.ts).
 *
 * @example
 * rawEventRow(origin, rawKnownOf(decoded.value)); // event_id, device_id and the gateway's evidence, when present
 */
export function rawKnownOf(value: Partial<Record<string, unknown>>): RawKnown {
  return {
    eventId: textOrNull(value.event_id),
    deviceId: textOrNull(value.device_id),
    signedEvent: textOrNull(value.signed_event),
    gatewayId: textOrNull(value.gateway_id),
    deviceCertFingerprint: textOrNull(value.device_cert_fingerprint),
    keyId: textOrNull(value.key_id),
    integrityHash: textOrNull(value.integrity_hash),
  };
}

/** A consumed record (valid or not) -> `raw_events`. */
export function rawEventRow(origin: Origin, known: RawKnown = {}): RawEventRow {
  const raw = bytes(origin.raw);
  return {
    source_topic: origin.topic,
    source_partition: origin.partition,
    source_offset: origin.offset,
    consumed_at: toDateTime64(origin.consumedAt, 'consumed_at'),
    raw_sha256: origin.rawSha256,
    raw_b64: raw.toString('base64'),
    raw_size: raw.length,
    headers_b64: origin.headers.map((h) => ({
      key: h.key,
      value_b64: h.value === null ? null : bytes(h.value).toString('base64'),
    })),
    record_key: origin.key,
    event_id: known.eventId ?? null,
    device_id: known.deviceId ?? null,
    signed_event: known.signedEvent ?? null,
    gateway_id: known.gatewayId ?? null,
    device_cert_fingerprint: known.deviceCertFingerprint ?? null,
    key_id: known.keyId ?? null,
    integrity_hash: known.integrityHash ?? null,
  };
}

/** A dead letter -> `dead_letters` (without its bytes and headers: those stay in `raw_events`). */
export function deadLetterRow(deadLetter: DeadLetter): DeadLetterRow {
  return {
    dead_letter_id: deadLetter.dead_letter_id,
    failed_at: toDateTime64(deadLetter.failed_at, 'failed_at'),
    pipeline: deadLetter.pipeline,
    stage: deadLetter.stage,
    operator: deadLetter.operator,
    reason_code: deadLetter.reason_code,
    reason_detail: deadLetter.reason_detail,
    source_topic: deadLetter.source_topic,
    source_partition: deadLetter.source_partition,
    source_offset: deadLetter.source_offset,
    raw_sha256: deadLetter.raw_sha256,
    raw_size: deadLetter.raw_bytes ? bytes(deadLetter.raw_bytes).length : 0,
    event_id: deadLetter.event_id ?? null,
    claimed_device_id: deadLetter.claimed_device_id ?? null,
    firmware_version: deadLetter.firmware_version ?? null,
    sequence: deadLetter.sequence ?? null,
    nonce: deadLetter.nonce ?? null,
    key_id: deadLetter.key_id ?? null,
    device_cert_fingerprint: deadLetter.device_cert_fingerprint ?? null,
    trace_id: deadLetter.trace_id,
  };
}

/** A duplicate record -> `duplicates`. */
export function duplicateRow(duplicate: Duplicate): DuplicateRow {
  return {
    pipeline: duplicate.pipeline,
    event_id: duplicate.event_id,
    device_id: duplicate.device_id,
    site_id: duplicate.site_id,
    sequence: duplicate.sequence ?? null,
    kind: duplicate.kind,
    first_seen: duplicate.first_seen ?? null,
    source_topic: duplicate.source_topic,
    source_partition: duplicate.source_partition,
    source_offset: duplicate.source_offset,
    raw_sha256: duplicate.raw_sha256,
    detected_at: toDateTime64(duplicate.detected_at, 'detected_at'),
  };
}

/** Bytes of a quarantined record kept in `quarantine.record`; beyond, only its size and sha256 are kept. */
export const QUARANTINE_RECORD_MAX_BYTES = 8 * 1024 * 1024;

/** A quarantined row -> `quarantine`. */
export function quarantineRow(q: Quarantined): QuarantineRow {
  const record = bytes(q.record);
  return {
    pipeline: q.pipeline,
    target_table: q.target_table,
    source_topic: q.source_topic,
    source_partition: q.source_partition,
    source_offset: q.source_offset,
    row_ordinal: q.row_ordinal,
    reason_code: q.reason_code,
    reason_detail: q.reason_detail,
    clickhouse_code: q.clickhouse_code,
    clickhouse_name: q.clickhouse_name,
    record_sha256: q.record_sha256,
    record_size: record.length,
    record_b64: record.length <= QUARANTINE_RECORD_MAX_BYTES ? record.toString('base64') : '',
    batch_token: q.batch_token,
    quarantined_at: toDateTime64(q.quarantined_at, 'quarantined_at'),
  };
}

/**
 * Each table's mapper, for sinks that route by table name (`RecordOutput.table`, `STANDARD_OUTPUTS`): the standard
 * tables', then each registered one's (`registerTable`).
 */
export const ROW_MAPPERS: RowMappers = {
  raw_events: (origin: Origin) => rawEventRow(origin),
  dead_letters: deadLetterRow,
  duplicates: duplicateRow,
  quarantine: quarantineRow,
} as RowMappers;

/**
 * Adds a pipeline's own table, declared beside the output that fills it: its insert columns (row-type order) and its
 * mapper join `TABLE_COLUMNS` and `ROW_MAPPERS`, so the sinks map its records by table name in both modes and the
 * embedded store sends its rows by column list (chdb.ts, compact rows through a compiled serialiser). Called once, at
 * the declaring module's load; registering a table again with other columns or another mapper is a bug.
 *
 * @example
 * declare module '../adapters/clickhouse/tables.ts' {
 *   interface TableRows { readings: ReadingRow }
 *   interface TableSources { readings: Reading }
 * }
 * registerTable('readings', columnsOf<ReadingRow>()({ reading_id: true, celsius: true }), readingRow);
 */
export function registerTable<T extends TableName>(
  table: T,
  columns: ColumnLists[T],
  map: (source: TableSources[T]) => TableRows[T],
): void {
  const columnLists = TABLE_COLUMNS as Record<string, readonly string[]>;
  const mappers = ROW_MAPPERS as Record<string, unknown>;
  const known = columnLists[table];
  if (known && (mappers[table] !== map || known.join() !== columns.join())) {
    throw new VigilError('INTERNAL', `table ${table} is registered twice, with different columns or mappers`);
  }
  columnLists[table] = columns;
  mappers[table] = map;
}

/** Maps a batch of records for `table` into its rows. */
export function toRows<T extends TableName>(table: T, sources: readonly TableSources[T][]): TableRows[T][] {
  const map = ROW_MAPPERS[table] as (source: TableSources[T]) => TableRows[T];
  return sources.map(map);
}
