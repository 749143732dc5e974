/**
 * Avro in Vigil: the repo's schemas (./schemas.ts), the Confluent wire format (./framing.ts), the framed decoder with
 * reason codes (./decoder.ts), compatibility (./compatibility.ts), golden fixtures (./fixtures.ts) and the checks that
 * `vigil schemas check` runs (./check.ts).
 */
export type { CheckReport } from './check.ts';
export { checkSchemas } from './check.ts';
export type { CompatibilityProblem } from './compatibility.ts';
export { compatibilityProblems, resolutionError } from './compatibility.ts';
export type { DecodeFailure, DecodeFailureCode, DecodeResult, DecodeSuccess, FramedDecoderOptions } from './decoder.ts';
export { createEnvelopeDecoder, DECODE_FAILURE_CODES, FramedDecoder, UNREADABLE_WRITER } from './decoder.ts';
export { encodeFramed, FRAME_HEADER_SIZE, frameSchemaId, MAGIC_BYTE } from './framing.ts';
export type { CompatibilityLevel, SchemaRepo, SchemaVersion, SubjectSchemas, SubjectSpec } from './schemas.ts';
export {
  AVSC_OPTIONS,
  DEFAULT_SCHEMA_DIR,
  envelopeReaderType,
  hardened,
  loadSchemaRepo,
  parseAvroSchema,
} from './schemas.ts';
