/**
 * One error hierarchy and one table of codes for the whole of Vigil.
 *
 * Two kinds of code share the table:
 * - record codes (`deadLetter: true`): why one record left the chain. They are the fixed reason-code table of the
 *   dead-letter record (`schemas/avro/dead-letter/v1.avsc` enumerates exactly these; a test keeps them equal), and
 *   the only values the `reason` metric label can take.
 * - system codes: why a component could not start or an external call failed. `retriable` tells the runtime
 *   whether to retry (with backoff) or to stop and say what to fix.
 */

export type Stage = 'gateway' | 'decode' | 'validate' | 'dedupe' | 'score' | 'detect_drift' | 'raise_alerts' | 'sink';

interface CodeSpec {
  readonly deadLetter: boolean;
  readonly retriable: boolean;
  readonly stage?: Stage;
  readonly description: string;
}

export const CODES = {
  // --- record codes: gateway (a signed event or request refused at the ingestion boundary: a gateway-rejection
  // record on its own topic and table, never on the dead-letter topic; CLOCK_SKEW below is reused by the gateway) --
  MALFORMED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description:
      'The request or a line of its body is not a JWS compact serialisation, or its header or payload is not the ' +
      'expected JSON (header alg/kid, envelope fields and types).',
  },
  UNTRUSTED_CERTIFICATE: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'The client certificate is missing or does not chain to the device CA.',
  },
  CERT_EXPIRED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'The device certificate is outside its validity period at receipt (expired or not yet valid).',
  },
  UNKNOWN_DEVICE: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'The device registry has no device for the certificate or the claimed device id.',
  },
  DEVICE_REVOKED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'The device, or the certificate it presents, is revoked.',
  },
  DEVICE_SUSPENDED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'The device is suspended: it may not send until resumed.',
  },
  CERT_DEVICE_MISMATCH: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: "The event's device_id is not the device the connection's certificate names.",
  },
  KEY_MISMATCH: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description:
      "The JWS kid (or algorithm) is not the key bound to the connection's certificate: another device's key.",
  },
  BAD_SIGNATURE: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: "The JWS signature does not verify with the device's key over the bytes received.",
  },
  NONCE_REPLAYED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: "The event's nonce was already seen from this device within the allowed skew.",
  },
  SEQUENCE_REPLAYED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: "The event's sequence was already accepted from this device, or is left of its replay window.",
  },
  PAYLOAD_TOO_LARGE: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'The request body or one signed event is over its size cap.',
  },
  RATE_LIMITED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'The device or the connection is over its rate limit, or the certificate over its connection cap.',
  },
  DEVICE_UNASSIGNED: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description: 'No assignment (patient pseudonym, site, consent) is in force for the device at receipt.',
  },
  ASSIGNMENT_MISMATCH: {
    deadLetter: true,
    retriable: false,
    stage: 'gateway',
    description:
      "The event names a patient_ref, site_id or consent_context that contradicts the device's assignment at receipt.",
  },
  // --- record codes: decode (Kafka / file adapters) -------------------------------------------------------------
  BAD_MAGIC_BYTE: {
    deadLetter: true,
    retriable: false,
    stage: 'decode',
    description: 'First byte is not the Confluent wire-format magic byte 0.',
  },
  TRUNCATED_FRAME: {
    deadLetter: true,
    retriable: false,
    stage: 'decode',
    description: 'Fewer than 5 bytes, or the Avro body ends early.',
  },
  UNKNOWN_SCHEMA_ID: {
    deadLetter: true,
    retriable: false,
    stage: 'decode',
    description: 'The registry has no schema with the framed id.',
  },
  SCHEMA_NOT_ENVELOPE: {
    deadLetter: true,
    retriable: false,
    stage: 'decode',
    description: 'The framed schema exists but cannot be read as a telemetry envelope.',
  },
  AVRO_DECODE_FAILED: {
    deadLetter: true,
    retriable: false,
    stage: 'decode',
    description: 'The bytes do not decode with the framed schema (or trail extra bytes, or a string is not UTF-8).',
  },
  JSON_PARSE_FAILED: {
    deadLetter: true,
    retriable: false,
    stage: 'decode',
    description: 'An NDJSON line is not valid JSON, or not a JSON object.',
  },
  ENVELOPE_INVALID: {
    deadLetter: true,
    retriable: false,
    stage: 'decode',
    description:
      'Missing fields, wrong types or unknown enum symbols against the envelope schema, or a value beyond what the ' +
      'envelope can carry (string too long or not clean Unicode, integer beyond its int/long, time outside 1970..2299).',
  },
  // --- record codes: validate ------------------------------------------------------------------------------------
  MISSING_PROVENANCE: {
    deadLetter: true,
    retriable: false,
    stage: 'validate',
    description:
      'A required provenance field is empty (device, patient_ref, site, firmware, integrity hash, consent, policy).',
  },
  INVALID_EVENT_ID: { deadLetter: true, retriable: false, stage: 'validate', description: 'event_id is not a ULID.' },
  PAYLOAD_TYPE_MISMATCH: {
    deadLetter: true,
    retriable: false,
    stage: 'validate',
    description: 'event_type does not match the payload record.',
  },
  VALUE_OUT_OF_RANGE: {
    deadLetter: true,
    retriable: false,
    stage: 'validate',
    description: 'A measurement is outside physiologically possible bounds, or not finite.',
  },
  CLOCK_SKEW: {
    deadLetter: true,
    retriable: false,
    stage: 'validate',
    description:
      'observed_at lies after received_at by more than the allowed skew (the gateway also uses it: observed_at ' +
      "outside the skew bound of the gateway's clock).",
  },
  STALE_EVENT: {
    deadLetter: true,
    retriable: false,
    stage: 'validate',
    description: 'observed_at is older than the maximum accepted age at receipt.',
  },
  NOT_FROM_GATEWAY: {
    deadLetter: true,
    retriable: false,
    stage: 'validate',
    description:
      'The pipeline requires gateway provenance (validate requireGateway) and the record has no signed_event or no ' +
      'gateway_id: it did not come through a gateway.',
  },
  INTEGRITY_MISMATCH: {
    deadLetter: true,
    retriable: false,
    stage: 'validate',
    description:
      "integrity_hash is not sha256 of signed_event, or the signed payload's device_id, event_id, sequence, nonce or " +
      "observed_at differ from the envelope's: the record was altered after the gateway.",
  },
  // --- record codes: dedupe --------------------------------------------------------------------------------------
  SEQUENCE_TOO_OLD: {
    deadLetter: true,
    retriable: false,
    stage: 'dedupe',
    description: 'Sequence number is left of the per-device replay window.',
  },
  // --- record codes: score ---------------------------------------------------------------------------------------
  SCORING_FAILED: {
    deadLetter: true,
    retriable: false,
    stage: 'score',
    description: 'The model returned no finite score for this record.',
  },
  // --- record codes: sink (a row set aside into the quarantine table, adapters/clickhouse/guard.ts) ---------------
  ROW_TYPE_MISMATCH: {
    deadLetter: true,
    retriable: false,
    stage: 'sink',
    description: "A row does not fit its ClickHouse table's column types (width, range, NaN/Inf, size, symbol, NULL).",
  },
  ROW_REFUSED_BY_STORE: {
    deadLetter: true,
    retriable: false,
    stage: 'sink',
    description: 'ClickHouse refused a row for its content (parse, type or range error); the rest of its batch landed.',
  },

  // --- system codes ----------------------------------------------------------------------------------------------
  CONFIG_INVALID: {
    deadLetter: false,
    retriable: false,
    description: 'A pipeline, operator or CLI configuration is invalid.',
  },
  UNAUTHENTICATED: {
    deadLetter: false,
    retriable: false,
    description:
      'A read came with no credential, or one that does not authenticate (unknown or revoked token, an identity ' +
      'token that does not verify or maps to no role or site, an unreadable or unprotected token file).',
  },
  AUDIT_UNAVAILABLE: {
    deadLetter: false,
    retriable: false,
    description:
      'A control-plane change is durable but its audit entry could not be appended after retries: the command names ' +
      'the change, and `vigil evidence export` lists it as unaudited until it is recorded.',
  },
  ACCESS_DENIED: {
    deadLetter: false,
    retriable: false,
    description:
      "The principal's role or sites do not allow the read (table, raw bytes, another site's rows, a missing " +
      'purpose, a result small-cell suppression cannot apply to); the refusal is an audit entry.',
  },
  MODEL_NOT_FOUND: {
    deadLetter: false,
    retriable: false,
    description: 'The model store has no such model name and version.',
  },
  MODEL_INTEGRITY_FAILED: {
    deadLetter: false,
    retriable: false,
    description: 'A model artifact does not match the sha256 in its manifest.',
  },
  MODEL_CHANGE_REFUSED: {
    deadLetter: false,
    retriable: false,
    description:
      "A model-registry change breaks the registry's rules (an unknown version, live or canary of an unapproved " +
      'version, other bytes under a registered version, nothing to roll back): nothing is appended.',
  },
  PROMOTION_REFUSED: {
    deadLetter: false,
    retriable: false,
    description:
      "A promotion whose version's acceptance criteria did not all hold on its shadow or canary period (each failed " +
      'criterion is named), or that has no approval: nothing is appended.',
  },
  STATE_UNAVAILABLE: {
    deadLetter: false,
    retriable: true,
    description: 'A shared state backend (Redis) did not answer.',
  },
  REGISTRY_UNAVAILABLE: { deadLetter: false, retriable: true, description: 'The schema registry did not answer.' },
  KAFKA_UNAVAILABLE: {
    deadLetter: false,
    retriable: true,
    description: 'The Kafka cluster did not answer or refused an operation.',
  },
  KAFKA_TRANSACTION_ABORTED: {
    deadLetter: false,
    retriable: true,
    description: 'A Kafka transaction was aborted; its batch is reprocessed.',
  },
  KAFKA_FENCED: {
    deadLetter: false,
    retriable: false,
    description: 'Another worker took over this transactional producer or partition.',
  },
  CLICKHOUSE_UNAVAILABLE: {
    deadLetter: false,
    retriable: true,
    description: 'ClickHouse did not accept an insert or query.',
  },
  CLICKHOUSE_QUERY_FAILED: {
    deadLetter: false,
    retriable: false,
    description: 'ClickHouse refused a statement (syntax, unknown table or column, bad value): retrying cannot help.',
  },
  MIGRATION_CONFLICT: {
    deadLetter: false,
    retriable: false,
    description: 'An already-applied ClickHouse migration file was changed, or two files share a version number.',
  },
  SCHEMA_INCOMPATIBLE: {
    deadLetter: false,
    retriable: false,
    description: 'A schema change breaks the compatibility level of its subject.',
  },
  STACK_SERVICE_FAILED: {
    deadLetter: false,
    retriable: false,
    description: 'A local stack service did not start or become healthy.',
  },
  INTERNAL: { deadLetter: false, retriable: false, description: 'A bug in Vigil: please report it with the trace id.' },
} as const satisfies Record<string, CodeSpec>;

export type Code = keyof typeof CODES;
export type ReasonCode = {
  [K in Code]: (typeof CODES)[K]['deadLetter'] extends true ? K : never;
}[Code];

/** The fixed reason-code table, in table order (the dead-letter schema's enum lists them in this order). */
export const REASON_CODES: readonly ReasonCode[] = (Object.keys(CODES) as Code[]).filter(
  (code): code is ReasonCode => CODES[code].deadLetter,
);

export function isReasonCode(value: string): value is ReasonCode {
  return (REASON_CODES as readonly string[]).includes(value);
}

/**
 * What each operator declares where it is defined (`operators/<verb>/config.ts`): the stage its dead letters are
 * filed under and every reason code it may reject a record with. The table above stays the one list (and the
 * dead-letter enum); `npm run check` (scripts/generate-operator-docs.ts) fails when a declaration and the table, the
 * README's table or the codes the operator's source emits disagree.
 */
export interface OperatorCodes {
  readonly stage: Stage;
  readonly reasonCodes: readonly ReasonCode[];
}

/** The table's reason codes filed under `stage`, in table order. */
export function reasonCodesOf(stage: Stage): ReasonCode[] {
  return REASON_CODES.filter((code) => (CODES[code] as CodeSpec).stage === stage);
}

export class VigilError extends Error {
  readonly code: Code;
  readonly retriable: boolean;

  constructor(code: Code, message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VigilError';
    this.code = code;
    this.retriable = options.retriable ?? CODES[code].retriable;
  }
}

export function isRetriable(error: unknown): boolean {
  return error instanceof VigilError && error.retriable;
}

/** A message fit for a log line: the error's own words, never a record's contents. */
export function describeError(error: unknown): string {
  if (error instanceof VigilError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
