/**
 * The gateway's own faults, sent after the simulated stream through the same fleet (its sessions, model and
 * tallies), each with the answer it must get:
 *
 * - fault devices: an expired certificate (CERT_EXPIRED), a revoked device (DEVICE_REVOKED), a suspended one
 *   (DEVICE_SUSPENDED), a certificate from a foreign CA (UNTRUSTED_CERTIFICATE), a certificate from the right CA for a
 *   device never enrolled (UNKNOWN_DEVICE): each request refused whole;
 * - two fleet devices A and B: a forged signature (BAD_SIGNATURE), A's connection carrying a line signed with B's key
 *   and kid (KEY_MISMATCH), A's key signing an event that names B (CERT_DEVICE_MISMATCH), a request re-sent byte for
 *   byte (NONCE_REPLAYED per event), an old sequence with a fresh nonce (SEQUENCE_REPLAYED), stale and future
 *   observed_at (CLOCK_SKEW), an event over the per-event cap and a body over the request cap (PAYLOAD_TOO_LARGE);
 * - a flooding device: requests of 40% of the device bucket each, back to back: two pass, the rest are 429
 *   RATE_LIMITED whole (the bucket refills far slower than they follow each other).
 */
import { randomBytes } from 'node:crypto';
import type { GatewayReason } from '../gateway/codes.ts';
import type { Envelope } from '../schemas/types.ts';
import type { GatewayFleet, PlannedLine } from './gateway-fleet.ts';
import { type DeviceCredentials, devicePayload, deviceSigner } from './gateway-sign.ts';
import type { GatewayOutcome } from './gateway-truth.ts';
import { ulidTime } from './ulid.ts';

/** Devices whose very certificate must be refused, with the reason. */
export interface FaultDevices {
  readonly expired?: DeviceCredentials;
  readonly revoked?: DeviceCredentials;
  readonly suspended?: DeviceCredentials;
  readonly foreign?: DeviceCredentials;
  readonly unknown?: DeviceCredentials;
  /** Enrolled and assigned; floods. */
  readonly flood?: DeviceCredentials;
}

const REFUSED: readonly [keyof FaultDevices, GatewayReason][] = [
  ['expired', 'CERT_EXPIRED'],
  ['revoked', 'DEVICE_REVOKED'],
  ['suspended', 'DEVICE_SUSPENDED'],
  ['foreign', 'UNTRUSTED_CERTIFICATE'],
  ['unknown', 'UNKNOWN_DEVICE'],
];

export interface DrillLimits {
  readonly skewMs: number;
  readonly deviceBurst: number;
  readonly maxEventBytes: number;
  readonly maxBodyBytes: number;
  readonly maxEventsPerRequest: number;
}

type Line = PlannedLine;

/** A fresh event of `deviceId` from a template, observed `ageMs` before `now`. */
function freshEvent(template: Envelope, deviceId: string, sequence: number, now: number, ageMs = 1_000): Envelope {
  const observedAt = now - ageMs;
  return {
    ...template,
    device_id: deviceId,
    event_id: ulidTime(observedAt) + randomBytes(8).toString('hex').toUpperCase(),
    observed_at: observedAt,
    sequence,
    nonce: randomBytes(16).toString('hex'),
  };
}

/** Runs every drill the fleet and the fault devices allow. */
export async function runGatewayDrills(fleet: GatewayFleet, devices: FaultDevices, limits: DrillLimits): Promise<void> {
  const [a, b] = [...fleet.lastVitals.keys()];
  if (!a || !b) throw new Error('the drills need two fleet devices that sent vital signs');
  const template = fleet.lastVitals.get(a) as Envelope;
  const [idA, idB] = [fleet.enrolledId(a), fleet.enrolledId(b)];
  const next = new Map<string, number>();
  const seq = (id: string) => {
    const s = (next.get(id) ?? fleet.highestSequence.get(id) ?? 0) + 1;
    next.set(id, s);
    return s;
  };
  const signed = (id: string, e: Envelope, fault: GatewayOutcome | null = null, sign = fleet.signer(id)): Line => ({
    line: sign(JSON.stringify(devicePayload(e))),
    envelope: e,
    fault,
    worker: 'valid',
  });

  // Certificates refused whole: one request of two events each.
  for (const [name, reason] of REFUSED) {
    const creds = devices[name];
    if (!creds) continue;
    const now = fleet.now();
    const sign = deviceSigner(creds);
    const lines = [1, 2].map((s) => freshEvent(template, creds.deviceId, s, now));
    fleet.truth.request(lines.length, reason);
    const body = lines.map((e) => sign(JSON.stringify(devicePayload(e)))).join('\n');
    fleet.answers.add(await fleet.connection(creds.deviceId, creds).post(body));
  }

  // One fleet device's request of faults, each line on its own.
  {
    const now = fleet.now();
    const forged = signed(a, freshEvent(template, idA, seq(a), now), 'BAD_SIGNATURE');
    const parts = forged.line.split('.');
    const lines: Line[] = [
      { ...forged, line: `${parts[0]}.${parts[1]}.${randomBytes(64).toString('base64url')}` },
      signed(a, freshEvent(template, idA, seq(a), now), 'KEY_MISMATCH', fleet.signer(b)),
      signed(a, freshEvent(template, idB, seq(a), now), 'CERT_DEVICE_MISMATCH'),
      signed(a, freshEvent(template, idA, seq(a), now, limits.skewMs + 60_000)),
      signed(a, freshEvent(template, idA, seq(a), now, -(limits.skewMs + 60_000))),
    ];
    const big = freshEvent(template, idA, seq(a), now);
    const padded = { ...devicePayload(big), firmware_version: 'x'.repeat(limits.maxEventBytes) };
    lines.push({
      line: fleet.signer(a)(JSON.stringify(padded)),
      envelope: big,
      fault: 'PAYLOAD_TOO_LARGE',
      worker: 'valid',
    });
    await fleet.send([fleet.plan(a, lines, now)]);
  }

  // A request accepted, then re-sent byte for byte; then an old sequence with a fresh nonce.
  {
    const now = fleet.now();
    const first = [1, 2, 3].map(() => signed(b, freshEvent(template, idB, seq(b), now)));
    const request = fleet.plan(b, first, now);
    await fleet.send([request]);
    const again = fleet.plan(b, first, fleet.now());
    await fleet.send([again]);
    const reused = freshEvent(template, idB, first[0]?.envelope.sequence ?? 1, fleet.now());
    await fleet.send([fleet.plan(b, [signed(b, reused)], fleet.now())]);
  }

  // A body over the request cap, refused whole before its lines are read.
  {
    const now = fleet.now();
    const line = signed(a, freshEvent(template, idA, seq(a), now)).line;
    const copies = Math.ceil((limits.maxBodyBytes + 1) / (line.length + 1));
    fleet.truth.request(copies, 'PAYLOAD_TOO_LARGE');
    const body = Array.from({ length: copies }, () => line).join('\n');
    fleet.answers.add(await fleet.connection(a).post(body));
  }

  // The flood: requests of 40% of the bucket, back to back.
  const flood = devices.flood;
  if (flood) {
    const sign = deviceSigner(flood);
    const size = Math.min(limits.maxEventsPerRequest, Math.floor(limits.deviceBurst * 0.4));
    let s = 0;
    for (let r = 0; r < 5; r++) {
      const now = fleet.now();
      const lines = Array.from({ length: size }, () =>
        signed(flood.deviceId, freshEvent(template, flood.deviceId, ++s, now), null, sign),
      );
      const request = fleet.plan(flood.deviceId, lines, now);
      fleet.answers.add(await fleet.connection(flood.deviceId, flood).post(request.body));
    }
  }
}
