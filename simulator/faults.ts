/**
 * The faults the simulator injects, each with the reason code the pipeline must file it under.
 *
 * Each fault breaks exactly one thing, so its expected reason code does not depend on the order in which the
 * pipeline checks things. Semantic faults decode fine and must fail `validate`; raw-byte faults must fail decoding.
 */

import { envelopeSchema } from '../adapters/file/envelope-schema.ts';
import type { ReasonCode } from '../runtime/errors.ts';
import { type Envelope, type EventType, payloadOf, wrapPayload } from '../schemas/types.ts';
import { FRAME_HEADER_SIZE, frameBody } from './framing.ts';
import type { Prng } from './prng.ts';
import { ulidTime } from './ulid.ts';

export const SEMANTIC_FAULTS = {
  spo2_impossible: 'VALUE_OUT_OF_RANGE',
  pulse_impossible: 'VALUE_OUT_OF_RANGE',
  temperature_impossible: 'VALUE_OUT_OF_RANGE',
  empty_patient_ref: 'MISSING_PROVENANCE',
  empty_firmware_version: 'MISSING_PROVENANCE',
  empty_site_id: 'MISSING_PROVENANCE',
  future_observed_at: 'CLOCK_SKEW',
  payload_type_mismatch: 'PAYLOAD_TYPE_MISMATCH',
  non_ulid_event_id: 'INVALID_EVENT_ID',
} as const satisfies Record<string, ReasonCode>;

export const RAW_FAULTS = {
  bad_magic_byte: 'BAD_MAGIC_BYTE',
  truncated_frame: 'TRUNCATED_FRAME',
  unknown_schema_id: 'UNKNOWN_SCHEMA_ID',
  garbage_body: 'AVRO_DECODE_FAILED',
} as const satisfies Record<string, ReasonCode>;

export type SemanticFault = keyof typeof SEMANTIC_FAULTS;
export type RawFault = keyof typeof RAW_FAULTS;
export type Fault = SemanticFault | RawFault;

/** Every fault kind and the reason code it must produce on the Kafka path. */
export const FAULT_REASONS: Readonly<Record<Fault, ReasonCode>> = { ...SEMANTIC_FAULTS, ...RAW_FAULTS };

const VITALS_ONLY: readonly SemanticFault[] = ['spo2_impossible', 'pulse_impossible', 'temperature_impossible'];
const ANY_EVENT: readonly SemanticFault[] = [
  'empty_patient_ref',
  'empty_firmware_version',
  'empty_site_id',
  'future_observed_at',
  'payload_type_mismatch',
  'non_ulid_event_id',
];
const EVENT_TYPES: readonly EventType[] = ['vital_signs', 'device_status', 'alarm', 'config_change'];
const DAY_MS = 86_400_000;

/** Picks a semantic fault that applies to this envelope's event type. */
export function pickSemanticFault(envelope: Envelope, prng: Prng): SemanticFault {
  if (envelope.event_type === 'vital_signs' && prng.chance(0.4)) return prng.pick(VITALS_ONLY);
  return prng.pick(ANY_EVENT);
}

/** A copy of the envelope with exactly one semantic defect. */
export function applySemanticFault(envelope: Envelope, fault: SemanticFault, prng: Prng): Envelope {
  switch (fault) {
    case 'spo2_impossible':
    case 'pulse_impossible':
    case 'temperature_impossible': {
      const payload = payloadOf(envelope.payload);
      if (payload?.type !== 'vital_signs') throw new Error(`fault ${fault} needs a vital_signs payload`);
      const vitals = { ...payload.data };
      if (fault === 'spo2_impossible') vitals.spo2 = prng.int(110, 160);
      else if (fault === 'pulse_impossible') vitals.pulse = prng.int(400, 999);
      else vitals.temperature_c = prng.int(500, 600) / 10;
      return { ...envelope, payload: wrapPayload('vital_signs', vitals) };
    }
    case 'empty_patient_ref':
      return { ...envelope, patient_ref: '' };
    case 'empty_firmware_version':
      return { ...envelope, firmware_version: '' };
    case 'empty_site_id':
      return { ...envelope, site_id: '' };
    case 'future_observed_at': {
      // The device clock jumped ahead by days (a reset RTC): the event id's time part follows the device clock.
      const observedAt = envelope.received_at + prng.int(1, 30) * DAY_MS + prng.int(0, DAY_MS - 1);
      return { ...envelope, observed_at: observedAt, event_id: ulidTime(observedAt) + envelope.event_id.slice(10) };
    }
    case 'payload_type_mismatch': {
      const others = EVENT_TYPES.filter((t) => t !== envelope.event_type);
      return { ...envelope, event_type: prng.pick(others) };
    }
    case 'non_ulid_event_id': {
      // A UUID v4 where a ULID belongs: a common integration mistake.
      const h = prng.hex(16);
      const variant = '89ab'[prng.int(0, 3)];
      return {
        ...envelope,
        event_id: `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`,
      };
    }
  }
}

/**
 * Raw bytes for a raw-byte fault, built from an envelope the device really produced:
 * - bad_magic_byte: half the time the envelope as JSON text (a producer without the Avro serializer, first byte `{`),
 *   else a valid frame whose first byte is 1..255;
 * - truncated_frame: 1-4 bytes of a frame, or a frame whose Avro body is cut short (avsc `decode` reports the end);
 * - unknown_schema_id: a valid body framed with an id the registry does not have;
 * - garbage_body: the right schema id but a body that does not decode: either strings followed by an out-of-range
 *   event_type enum index (decoding throws), or a valid body followed by extra bytes (trailing data).
 */
export function rawFaultBytes(
  envelope: Envelope,
  fault: RawFault,
  prng: Prng,
  schemaId: number,
  unknownSchemaId: number,
): Buffer {
  const body = envelopeSchema().type.toBuffer(envelope);
  switch (fault) {
    case 'bad_magic_byte': {
      if (prng.chance(0.5))
        return Buffer.from(JSON.stringify({ event_id: envelope.event_id, device_id: envelope.device_id }));
      const frame = frameBody(schemaId, body);
      frame[0] = prng.int(1, 255);
      return frame;
    }
    case 'truncated_frame': {
      const frame = frameBody(schemaId, body);
      if (prng.chance(0.2)) return Buffer.from(frame.subarray(0, prng.int(1, FRAME_HEADER_SIZE - 1)));
      return Buffer.from(frame.subarray(0, FRAME_HEADER_SIZE + prng.int(0, body.length - 1)));
    }
    case 'unknown_schema_id':
      return frameBody(unknownSchemaId, body);
    case 'garbage_body': {
      if (prng.chance(0.5)) return frameBody(schemaId, Buffer.concat([body, prng.bytes(prng.int(1, 8))]));
      const parts: Buffer[] = [];
      // event_id, device_id, patient_ref, site_id as short random strings (zig-zag length, then bytes)...
      for (let i = 0; i < 4; i++) {
        const n = prng.int(0, 40);
        parts.push(Buffer.from([n << 1]), prng.bytes(n));
      }
      // ...then an event_type enum index past the last symbol (zig-zag of 16..63, clear of symbols later versions may add), then noise.
      parts.push(Buffer.from([prng.int(16, 63) << 1]), prng.bytes(prng.int(0, 64)));
      return frameBody(schemaId, Buffer.concat(parts));
    }
  }
}
