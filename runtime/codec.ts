/**
 * The ports through which runners turn bytes into records and back. The Avro adapter (adapters/avro/) implements
 * them over a schema registry; runners and operators see only these shapes.
 */
import type { ReasonCode } from './errors.ts';

export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: ReasonCode; readonly detail: string };

/** Decodes a batch at once, so unknown schema ids are fetched once per batch rather than awaited per record. */
export interface BatchDecoder<T> {
  decodeBatch(values: readonly Buffer[]): Promise<Decoded<T>[]>;
}

/** Encodes values of one schema (schemas/avro/<name>, newest version) in the Confluent wire format. */
export interface ValueEncoder {
  encode(schema: string, value: unknown): Buffer;
}
