/** File sources and writers for embedded runs: NDJSON and Avro container files of telemetry envelopes. */
export { type AvroWriteOptions, readAvroContainer, writeAvroContainer } from './avro-container.ts';
export { type EnvelopeSchemaInfo, envelopeSchema } from './envelope-schema.ts';
export { readLines } from './lines.ts';
export { envelopeToNdjson, envelopeToPlain, type NdjsonWriteOptions, parseEnvelopeLine } from './ndjson.ts';
export {
  detectFileFormat,
  type FileBatch,
  type FileFormat,
  type FileSourceOptions,
  openFileSource,
  readAvroFile,
  readNdjsonFile,
} from './source.ts';
export { coerceTimestamp, parseIsoTimestamp } from './timestamps.ts';
