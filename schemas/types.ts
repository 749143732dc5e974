/**
 * Friendly names for the generated schema types (schemas/generated/, never edited by hand) and the one helper every
 * reader of an envelope needs: which payload it carries. Avro wraps a union of records by the record's full name
 * (avsc `wrapUnions: 'auto'`), so the payload arrives as `{ "vigil.telemetry.payload.VitalSigns": {...} }`.
 */
import type { VigilTelemetry, VigilTelemetryPayload } from './generated/envelope.ts';

export type { DeadLetter } from './generated/dead-letter.ts';
export type { GatewayRejection } from './generated/gateway-rejection.ts';
export type { Inference } from './generated/inference.ts';
export type { NormalisedEvent } from './generated/normalised.ts';

export type Envelope = VigilTelemetry.Envelope;
export type EventType = VigilTelemetry.EventType;
export type VitalSigns = VigilTelemetryPayload.VitalSigns;
export type DeviceStatus = VigilTelemetryPayload.DeviceStatus;
export type Alarm = VigilTelemetryPayload.Alarm;
export type ConfigChange = VigilTelemetryPayload.ConfigChange;
export type Acvpu = VigilTelemetryPayload.Acvpu;
export type Payload = Envelope['payload'];

/** The Avro full name of each payload record, by the event_type that must carry it. */
export const PAYLOAD_RECORD = {
  vital_signs: 'vigil.telemetry.payload.VitalSigns',
  device_status: 'vigil.telemetry.payload.DeviceStatus',
  alarm: 'vigil.telemetry.payload.Alarm',
  config_change: 'vigil.telemetry.payload.ConfigChange',
} as const satisfies Record<EventType, string>;

export type PayloadOf =
  | { readonly type: 'vital_signs'; readonly data: VitalSigns }
  | { readonly type: 'device_status'; readonly data: DeviceStatus }
  | { readonly type: 'alarm'; readonly data: Alarm }
  | { readonly type: 'config_change'; readonly data: ConfigChange };

/** Unwraps the payload union into a tagged value; null when the wrapper holds no known record. */
export function payloadOf(payload: Payload): PayloadOf | null {
  const p = payload as Record<string, unknown>;
  if (p[PAYLOAD_RECORD.vital_signs]) return { type: 'vital_signs', data: p[PAYLOAD_RECORD.vital_signs] as VitalSigns };
  if (p[PAYLOAD_RECORD.device_status])
    return { type: 'device_status', data: p[PAYLOAD_RECORD.device_status] as DeviceStatus };
  if (p[PAYLOAD_RECORD.alarm]) return { type: 'alarm', data: p[PAYLOAD_RECORD.alarm] as Alarm };
  if (p[PAYLOAD_RECORD.config_change])
    return { type: 'config_change', data: p[PAYLOAD_RECORD.config_change] as ConfigChange };
  return null;
}

/** Wraps a plain payload object as the union branch its event_type names. */
export function wrapPayload(type: EventType, data: VitalSigns | DeviceStatus | Alarm | ConfigChange): Payload {
  return { [PAYLOAD_RECORD[type]]: data } as unknown as Payload;
}
export type { DriftHistogram } from './generated/drift-histogram.ts';
export type { Duplicate } from './generated/duplicate.ts';
