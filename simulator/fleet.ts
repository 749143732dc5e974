/**
 * The simulated fleet: sites, devices, and the patient each device is bound to. Built once per run from the seed,
 * independently of the event stream (so the same seed gives the same fleet whatever the fault rates or length).
 */
import { createHash } from 'node:crypto';
import { type AgeBand, drawPatient, type Patient } from './physiology.ts';
import { Prng } from './prng.ts';

export type DeviceKind = 'monitor' | 'wearable';

/** The firmware version that reads SpO2 low unless told otherwise (a release candidate on a pilot rollout). */
export const DEFAULT_BIASED_FIRMWARE = '5.13.0-rc2';

/** Released firmware versions and their share of the devices not on the candidate. */
export const FIRMWARE_RELEASES: readonly (readonly [string, number])[] = [
  ['5.11.4', 0.25],
  ['5.12.0', 0.3],
  ['5.12.1', 0.45],
];

const BATCHES: Record<DeviceKind, readonly (readonly [string, number])[]> = {
  monitor: [
    ['MON-LOT-2023-09', 0.3],
    ['MON-LOT-2024-03', 0.4],
    ['MON-LOT-2024-11', 0.3],
  ],
  wearable: [
    ['WBL-LOT-2024-02', 0.35],
    ['WBL-LOT-2024-08', 0.4],
    ['WBL-LOT-2025-01', 0.25],
  ],
};

export const CONSENT_CONTEXTS = ['hah-care-v3', 'hah-care+research-v3'] as const;
export const PROCESSING_POLICIES = ['care-only-v1', 'care-and-surveillance-v1'] as const;

export interface Site {
  readonly id: string;
  /** Whether the candidate firmware was rolled out here. */
  readonly pilot: boolean;
}

export interface Device {
  readonly index: number;
  readonly id: string;
  readonly kind: DeviceKind;
  readonly siteId: string;
  readonly firmware: string;
  /** Whether this device's SpO2 sensor reads low (candidate firmware and the bias switched on). */
  readonly biased: boolean;
  readonly batch: string;
  readonly patientRef: string;
  readonly subgroup: string;
  readonly ageBand: AgeBand;
  readonly certFingerprint: string;
  readonly keyId: string;
  readonly consent: string;
  readonly policy: string;
  /** On-device model (some wearables run an arrhythmia detector). */
  readonly modelVersion: string | null;
  /** Mean interval between vital-signs readings. */
  readonly vitalsIntervalMs: number;
  /** How far the device clock runs ahead of true time (0 for almost all). */
  readonly clockOffsetMs: number;
  /** Whether calibration is overdue for the whole run. */
  readonly calibrationStale: boolean;
  readonly patient: Patient;
}

export interface FleetOptions {
  readonly devices: number;
  readonly sites: number;
  readonly seed: number | string;
  readonly startTime: number;
  /** Expected run length in ms (scales episode timing). */
  readonly horizonMs: number;
  /** The candidate firmware version name, and whether its SpO2 bias is on. */
  readonly candidateFirmware: string;
  readonly biasOn: boolean;
  /** Share of devices running the candidate firmware. */
  readonly candidateFraction: number;
}

export interface Fleet {
  readonly sites: readonly Site[];
  readonly devices: readonly Device[];
}

export const VITALS_INTERVAL_MS: Record<DeviceKind, number> = { wearable: 60_000, monitor: 300_000 };

/** Expected events per second of a fleet with this many devices (vitals plus ~8% other events). */
export function fleetEventRate(devices: number): number {
  const perDevice = 0.6 / (VITALS_INTERVAL_MS.wearable / 1000) + 0.4 / (VITALS_INTERVAL_MS.monitor / 1000);
  return devices * perDevice * 1.08;
}

export function buildFleet(options: FleetOptions): Fleet {
  const prng = Prng.derive(options.seed, 'fleet');
  const siteCount = Math.max(1, Math.min(options.sites, options.devices));
  // Site sizes fall off gently (a few large hubs, many small teams).
  const weights = Array.from({ length: siteCount }, (_, i) => 1 / Math.sqrt(i + 1));
  const order = Array.from({ length: siteCount }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = prng.int(0, i);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const siteIds = Array.from({ length: siteCount }, (_, i) => `site-${String(i + 1).padStart(2, '0')}`);
  // Every site gets at least one device; the rest by weight.
  const siteOf: number[] = [];
  for (let i = 0; i < options.devices; i++) {
    siteOf.push(i < siteCount ? i : prng.weighted(weights.map((w, k) => [k, w] as const)));
  }
  // The candidate goes to pilot sites (in a seeded order) until its share of the fleet is reached.
  const rollout = Prng.derive(options.seed, 'rollout');
  const candidateCount = Math.round(options.candidateFraction * options.devices);
  const onCandidate = new Set<number>();
  const pilotSites = new Set<number>();
  for (const site of order) {
    if (onCandidate.size >= candidateCount) break;
    pilotSites.add(site);
    for (let i = 0; i < options.devices && onCandidate.size < candidateCount; i++) {
      // 85% of a pilot site's devices take the candidate; the rest stay on a release.
      if (siteOf[i] === site && rollout.chance(0.85)) onCandidate.add(i);
    }
  }
  const sites = siteIds.map((id, i) => ({ id, pilot: pilotSites.has(i) }));
  const devices: Device[] = [];
  for (let i = 0; i < options.devices; i++) {
    const kind: DeviceKind = prng.chance(0.6) ? 'wearable' : 'monitor';
    const candidate = onCandidate.has(i);
    const firmware = candidate ? options.candidateFirmware : prng.weighted(FIRMWARE_RELEASES);
    const patient = drawPatient(Prng.derive(options.seed, `patient/${i}`), options.startTime, options.horizonMs);
    const id = `hah-${kind === 'wearable' ? 'wbl' : 'mon'}-${String(i + 1).padStart(6, '0')}`;
    const research = prng.chance(0.4);
    devices.push({
      index: i,
      id,
      kind,
      siteId: siteIds[siteOf[i] as number] as string,
      firmware,
      biased: candidate && options.biasOn,
      batch: prng.weighted(BATCHES[kind]),
      patientRef: `psn-v1-${prng.hex(8)}`,
      subgroup: `age:${patient.ageBand}`,
      ageBand: patient.ageBand,
      certFingerprint: `sha256:${createHash('sha256')
        .update(`sim-cert/${String(options.seed)}/${id}`)
        .digest('hex')}`,
      keyId: `dk-${prng.hex(4)}-2025q4`,
      consent: research ? CONSENT_CONTEXTS[1] : CONSENT_CONTEXTS[0],
      policy: research ? PROCESSING_POLICIES[1] : PROCESSING_POLICIES[0],
      modelVersion:
        kind === 'wearable' && prng.chance(0.5)
          ? prng.weighted([
              ['af-detect-2.4.1', 0.7],
              ['af-detect-2.5.0', 0.3],
            ])
          : null,
      vitalsIntervalMs: VITALS_INTERVAL_MS[kind],
      clockOffsetMs: prng.chance(0.01) ? prng.int(300, 2000) : 0,
      calibrationStale: prng.chance(0.03),
      patient,
    });
  }
  return { sites, devices };
}
