/**
 * The simulator's faults on the gateway path: what each becomes when a device signs its events and the gateway, not
 * the device, decides the assignment, the receipt time and the hash.
 *
 * | simulator fault                        | on the gateway path                                                  |
 * | -------------------------------------- | -------------------------------------------------------------------- |
 * | duplicate (same bytes re-sent)         | the same signed line re-sent: NONCE_REPLAYED, or CLOCK_SKEW once its |
 * | replay (an envelope 5-60 min old)      | observed_at is beyond the gateway's skew bound (checked first)       |
 * | spo2/pulse/temperature_impossible      | unchanged: signed, accepted, VALUE_OUT_OF_RANGE in `validate`        |
 * | empty_firmware_version                 | unchanged: the firmware is the device's word, MISSING_PROVENANCE     |
 * | non_ulid_event_id                      | accepted with a ULID the gateway assigns (the signed bytes keep the  |
 * |                                        | device's id): valid downstream                                       |
 * | empty_patient_ref, empty_site_id       | gone (the gateway stamps them): the device claims another patient or |
 * |                                        | site than its assignment instead, ASSIGNMENT_MISMATCH                |
 * | future_observed_at (days ahead)        | CLOCK_SKEW at the gateway (its clock, not received_at, is the bound) |
 * | payload_type_mismatch                  | MALFORMED: the payload does not fit its event_type                   |
 * | raw bytes: bad_magic_byte              | a line that is not a JWS (the envelope as plain JSON): MALFORMED     |
 * | raw bytes: truncated_frame             | a JWS line cut inside its header or payload: MALFORMED               |
 * | raw bytes: unknown_schema_id           | a well-signed payload that is not JSON: MALFORMED                    |
 * | raw bytes: garbage_body                | a JWS whose signature is not the payload's (forged): BAD_SIGNATURE   |
 *
 * Avro-level faults cannot cross the gateway at all: it writes every accepted event to the raw topic itself.
 */
import type { GatewayReason } from '../gateway/codes.ts';
import type { Envelope } from '../schemas/types.ts';
import { devicePayload, type JwsSigner } from './gateway-sign.ts';
import type { Prng } from './prng.ts';
import type { SimulatedRecord, Truth } from './simulate.ts';

/** One signed line the driver sends for a simulated record, with what the gateway and the workers must make of it. */
export interface SignedLine {
  readonly line: string;
  /** The envelope the device meant (the source of a raw fault): its nonce, sequence, observed_at and type. */
  readonly envelope: Envelope;
  /** A fault that refuses this line on its own at the gateway, or null when only the model decides. */
  readonly fault: GatewayReason | null;
  /** What the workers must make of it once accepted. */
  readonly worker: Truth;
}

/** Shifts an envelope's device times (observed_at and the ULID's time part) by `ms`. */
export type TimeShift = (envelope: Envelope) => Envelope;

/** A contradicting value for a claimed field: another patient pseudonym or site than the assignment's. */
function contradiction(envelope: Envelope, field: 'patient_ref' | 'site_id'): string {
  return field === 'patient_ref' ? `${envelope.patient_ref.slice(0, -4)}ffff` : `${envelope.site_id}-elsewhere`;
}

/**
 * The line a device sends for a simulated record that is not a resend (resends re-send the line already sent).
 * `sign` is the device's own signer.
 */
export function signedLineFor(record: SimulatedRecord, sign: JwsSigner, prng: Prng): SignedLine {
  if (record.kind === 'raw') {
    const envelope = record.source;
    const payload = JSON.stringify(devicePayload(envelope));
    switch (record.fault) {
      case 'bad_magic_byte':
        return { line: payload, envelope, fault: 'MALFORMED', worker: 'valid' };
      case 'truncated_frame': {
        const whole = sign(payload);
        const cut = 1 + Math.floor(prng.float() * (whole.indexOf('.', whole.indexOf('.') + 1) - 1));
        return { line: whole.slice(0, cut), envelope, fault: 'MALFORMED', worker: 'valid' };
      }
      case 'unknown_schema_id':
        return {
          line: sign(payload.slice(0, Math.max(1, payload.length >> 1))),
          envelope,
          fault: 'MALFORMED',
          worker: 'valid',
        };
      case 'garbage_body': {
        const [header, body] = sign(payload).split('.');
        const forged = prng.bytes(64).toString('base64url');
        return { line: `${header}.${body}.${forged}`, envelope, fault: 'BAD_SIGNATURE', worker: 'valid' };
      }
    }
  }
  const envelope = record.envelope;
  switch (record.fault) {
    case 'empty_patient_ref':
    case 'empty_site_id': {
      const field = record.fault === 'empty_patient_ref' ? 'patient_ref' : 'site_id';
      const claims = { [field]: contradiction(envelope, field) };
      return {
        line: sign(JSON.stringify(devicePayload(envelope, claims))),
        envelope,
        fault: 'ASSIGNMENT_MISMATCH',
        worker: 'valid',
      };
    }
    case 'future_observed_at':
      return { line: sign(JSON.stringify(devicePayload(envelope))), envelope, fault: 'CLOCK_SKEW', worker: 'valid' };
    case 'payload_type_mismatch':
      return { line: sign(JSON.stringify(devicePayload(envelope))), envelope, fault: 'MALFORMED', worker: 'valid' };
    case 'non_ulid_event_id':
      return { line: sign(JSON.stringify(devicePayload(envelope))), envelope, fault: null, worker: 'valid' };
    default:
      // Valid events and the faults the workers catch (out-of-range values, an empty firmware version).
      return { line: sign(JSON.stringify(devicePayload(envelope))), envelope, fault: null, worker: record.truth };
  }
}
