/**
 * The fleet driver against the real gateway, in-process on loopback (gateway/index.ts with its memory state, a
 * simulated clock the driver advances, sinks that keep what they are given): the driver's truth — predicted from what
 * it sent, never from the answers — equals what the gateway answered, what it recorded as rejections (by reason)
 * and what it handed the raw sink (count, lanes, one copy of each event).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcceptedEvent, type GatewayRejection, startGateway } from '../gateway/index.ts';
import { GATEWAY_DEFAULTS, parseGatewayLimits } from '../gateway/limits.ts';
import { MemoryGatewayState } from '../gateway/state.ts';
import { initPki } from '../identity/pki.ts';
import { DeviceRegistry } from '../identity/registry.ts';
import { ManualClock } from '../runtime/clock.ts';
import { runGatewayDrills } from './gateway-drills.ts';
import { enrolSimulatedFleet } from './gateway-enrol.ts';
import { GatewayFleet } from './gateway-fleet.ts';
import { GatewayModel, sortedCounts } from './gateway-truth.ts';
import { SIMULATION_DEFAULTS } from './simulate.ts';

const HOUR = 3_600_000;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-gw-fleet-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the fleet over the gateway', () => {
  it.each([
    ['EdDSA', 2 * HOUR],
    ['ES256', GATEWAY_DEFAULTS.skewMs],
  ] as const)(
    '%s, skew %d ms: the truth equals the answers, the rejection records and the raw sink',
    async (algorithm, skewMs) => {
      const start = SIMULATION_DEFAULTS.startTime;
      const pki = await initPki(join(dir, `pki-${algorithm}`), { now: start - 86_400_000 });
      const foreignPki = await initPki(join(dir, `foreign-${algorithm}`), { now: start - 86_400_000 });
      const simulation = {
        devices: 30,
        events: 3000,
        seed: 11,
        malformedRate: 0.05,
        duplicateRate: 0.05,
        replayRate: 0.02,
      };
      const enrolled = await enrolSimulatedFleet({
        pki,
        foreignPki,
        simulation,
        algorithm,
        validFrom: start - 86_400_000,
        validUntil: Date.now() + 30 * 86_400_000,
        actor: 'test',
      });
      const registry = new DeviceRegistry();
      for (const change of enrolled.changes) registry.apply(change);

      const clock = new ManualClock(start);
      const limits = parseGatewayLimits({ skewMs });
      const raw: AcceptedEvent[] = [];
      const rejections: GatewayRejection[] = [];
      const gateway = await startGateway({
        id: 'gw-test',
        port: 0,
        tls: { certPem: pki.gatewayCertPem, keyPem: pki.gatewayKeyPem, caPem: pki.caCertPem },
        directory: registry,
        state: new MemoryGatewayState(
          {
            ratePerSec: limits.deviceRatePerSec,
            burst: limits.deviceBurst,
            nonceTtlMs: 2 * limits.skewMs,
            sequenceTtlMs: limits.sequenceTtlMs,
          },
          clock,
        ),
        raw: { write: async (events) => void raw.push(...events) },
        rejections: { write: async (r) => void rejections.push(...r) },
        clock,
        limits,
      });
      const fleet = new GatewayFleet({
        url: gateway.url,
        caPem: pki.caCertPem,
        credentials: enrolled.credentials,
        simulation,
        model: new GatewayModel(limits),
        clock: { kind: 'simulated', clock },
        skewMs: limits.skewMs,
      });
      try {
        await fleet.run();
        await runGatewayDrills(fleet, enrolled.faults, limits);
      } finally {
        await fleet.close();
        await gateway.close(1000);
      }
      const { truth, observed } = fleet.summary();

      // Every drill's reason is there at least once, and the stream's own faults too.
      for (const reason of [
        'CERT_EXPIRED',
        'DEVICE_REVOKED',
        'DEVICE_SUSPENDED',
        'UNTRUSTED_CERTIFICATE',
        'UNKNOWN_DEVICE',
        'BAD_SIGNATURE',
        'KEY_MISMATCH',
        'CERT_DEVICE_MISMATCH',
        'NONCE_REPLAYED',
        'SEQUENCE_REPLAYED',
        'CLOCK_SKEW',
        'PAYLOAD_TOO_LARGE',
        'RATE_LIMITED',
        'MALFORMED',
        'ASSIGNMENT_MISMATCH',
      ]) {
        expect(truth.rejected[reason], reason).toBeGreaterThan(0);
      }
      // What the gateway answered...
      expect(observed.unanswered).toBe(0);
      expect(observed.accepted).toBe(truth.accepted);
      expect(observed.rejected).toEqual(truth.rejected);
      expect(observed.rejectedRequests).toEqual(truth.rejectedRequests);
      // ...what it recorded...
      const recorded = new Map<string, number>();
      for (const r of rejections) recorded.set(r.reason, (recorded.get(r.reason) ?? 0) + 1);
      expect(sortedCounts(recorded)).toEqual(truth.rejected);
      // ...and what it handed the raw sink: each accepted event once, alarms on the priority lane.
      expect(raw).toHaveLength(truth.accepted);
      expect(new Set(raw.map((e) => e.envelope.event_id)).size).toBe(raw.length);
      expect(raw.filter((e) => e.lane === 'priority')).toHaveLength(truth.lanes.priority);
      expect(raw.every((e) => (e.lane === 'priority') === (e.envelope.event_type === 'alarm'))).toBe(true);
    },
    120_000,
  );
});
