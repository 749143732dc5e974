/**
 * Confluent wire format for simulated records: `[0x00][schema id: int32 BE][Avro body]`. Good envelopes are framed
 * with adapters/avro's `encodeFramed` (the production writer); `frameBody` frames bytes that are not an encoding of
 * any value (the simulator's deliberately broken bodies).
 */
import type avro from 'avsc';
import { encodeFramed, FRAME_HEADER_SIZE, MAGIC_BYTE } from '../adapters/avro/framing.ts';
import { envelopeSchema } from '../adapters/file/envelope-schema.ts';
import type { Envelope } from '../schemas/types.ts';

export { encodeFramed, FRAME_HEADER_SIZE, MAGIC_BYTE };

/** Frames raw body bytes as they are. */
export function frameBody(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.length);
  out[0] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, 1);
  body.copy(out, FRAME_HEADER_SIZE);
  return out;
}

/** Encodes an envelope with `type` (the newest envelope by default) and frames it. */
export function frameEnvelope(envelope: Envelope, schemaId: number, type: avro.Type = envelopeSchema().type): Buffer {
  return encodeFramed(schemaId, type, envelope);
}
