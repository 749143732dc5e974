/**
 * `vigil simulate --gateway URL`: enrols the simulated fleet and its fault devices on the control log a running
 * gateway follows (or reuses a fleet enrolled before, from `fleetDir`), drives the fleet over mutual TLS on the
 * system clock, runs the drills, and returns the truth beside the answers.
 *
 * The gateway applies identity changes as it reads them from the log, so the driver waits `settleMs` after enrolling
 * before the first device connects. Certificates are valid from a day ago for 30 days; the foreign CA is a second,
 * throw-away PKI.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseGatewayLimits } from '../gateway/limits.ts';
import { initPki, type PkiFiles, writeSecret } from '../identity/pki.ts';
import { changeKey } from '../identity/records.ts';
import type { ControlLog, IdentityChange, SigningAlgorithm } from '../identity/types.ts';
import { type FaultDevices, runGatewayDrills } from './gateway-drills.ts';
import { enrolSimulatedFleet } from './gateway-enrol.ts';
import { GatewayFleet, type ObservedAnswers } from './gateway-fleet.ts';
import type { DeviceCredentials } from './gateway-sign.ts';
import { GatewayModel, type GatewayTruth } from './gateway-truth.ts';
import { resolveSimulateOptions, type SimulateOptions, type TruthSummary } from './simulate.ts';

const DAY_MS = 86_400_000;

export interface DriveGatewayOptions {
  readonly url: string;
  readonly pki: PkiFiles;
  /** The device-identity log the gateway follows (Kafka topic, or the file log of --control-dir). */
  readonly identityLog: ControlLog<IdentityChange>;
  readonly simulation: SimulateOptions;
  readonly algorithm: SigningAlgorithm;
  /** The gateway's limits that the truth depends on (defaults: gateway/limits.ts, what `vigil gateway` runs with). */
  readonly limits?: { readonly skewMs?: number; readonly deviceRatePerSec?: number; readonly deviceBurst?: number };
  /** Before every device id, so a rerun against the same gateway state starts fresh (default none). */
  readonly devicePrefix?: string;
  readonly drills: boolean;
  /** Keep the fleet's certificates and keys here, and reuse them when it holds a fleet already. */
  readonly fleetDir?: string;
  readonly settleMs: number;
  readonly actor: string;
}

export interface GatewayDriveReport {
  readonly truth: GatewayTruth;
  readonly observed: ObservedAnswers;
  /** Events left out because they lay within 5 s of the skew bound (the two clocks differ by milliseconds). */
  readonly skipped: number;
  /** Requests the gateway left unanswered that were sent again. */
  readonly retries: number;
  readonly simulator: TruthSummary | null;
  /** The answers equal the truth: accepted, and refusals by reason. */
  readonly matchesTruth: boolean;
  readonly enrolled: number;
  readonly reused: boolean;
}

interface FleetFile {
  readonly devicePrefix: string;
  readonly algorithm: SigningAlgorithm;
  readonly devices: readonly (Omit<DeviceCredentials, 'certPem' | 'keyPem'> & { readonly simId: string })[];
  readonly faults: Readonly<Record<string, string>>;
}

function saveFleet(dir: string, file: FleetFile, credentials: Iterable<DeviceCredentials>): void {
  mkdirSync(dir, { recursive: true });
  for (const c of credentials) {
    writeFileSync(join(dir, `${c.deviceId}.crt`), c.certPem);
    writeSecret(join(dir, `${c.deviceId}.key`), c.keyPem);
  }
  writeFileSync(join(dir, 'fleet.json'), `${JSON.stringify(file, null, 2)}\n`);
}

function loadFleet(dir: string): { credentials: Map<string, DeviceCredentials>; faults: FaultDevices } | null {
  const path = join(dir, 'fleet.json');
  if (!existsSync(path)) return null;
  const file = JSON.parse(readFileSync(path, 'utf8')) as FleetFile;
  const load = (d: Omit<DeviceCredentials, 'certPem' | 'keyPem'>): DeviceCredentials => ({
    ...d,
    certPem: readFileSync(join(dir, `${d.deviceId}.crt`), 'utf8'),
    keyPem: readFileSync(join(dir, `${d.deviceId}.key`), 'utf8'),
  });
  const credentials = new Map<string, DeviceCredentials>();
  const faults: Record<string, DeviceCredentials> = {};
  for (const d of file.devices) {
    const { simId, ...rest } = d;
    const c = load(rest);
    if (simId.startsWith('fault:')) faults[simId.slice('fault:'.length)] = c;
    else credentials.set(simId, c);
  }
  return { credentials, faults: faults as FaultDevices };
}

/**
 * @example
 * const report = await driveGateway({ url: 'https://127.0.0.1:8443', pki: loadPki('.vigil/pki'),
 *   identityLog: deviceIdentityLog(), simulation: { devices: 100, events: 10_000 }, algorithm: 'ES256',
 *   drills: true, settleMs: 2000, actor: 'simulator' });
 * report.truth.rejected; // what the gateway's rejection topic must hold, by reason
 */
export async function driveGateway(options: DriveGatewayOptions): Promise<GatewayDriveReport> {
  const simulation = resolveSimulateOptions(options.simulation);
  const limits = parseGatewayLimits(options.limits ?? {});
  let fleet = options.fleetDir ? loadFleet(options.fleetDir) : null;
  const reused = fleet !== null;
  let enrolledChanges = 0;
  if (!fleet) {
    const foreignDir = await mkdtemp(join(tmpdir(), 'vigil-foreign-ca-'));
    try {
      const now = Date.now();
      const enrolled = await enrolSimulatedFleet({
        pki: options.pki,
        foreignPki: options.drills ? await initPki(foreignDir, { now: now - DAY_MS }) : undefined,
        simulation,
        algorithm: options.algorithm,
        validFrom: now - DAY_MS,
        validUntil: now + 30 * DAY_MS,
        actor: options.actor,
        faults: options.drills,
        ...(options.devicePrefix ? { devicePrefix: options.devicePrefix } : {}),
      });
      await appendByDevice(options.identityLog, enrolled.changes);
      enrolledChanges = enrolled.changes.length;
      fleet = { credentials: enrolled.credentials, faults: enrolled.faults };
      if (options.fleetDir) {
        const faults = Object.entries(enrolled.faults) as [string, DeviceCredentials][];
        saveFleet(
          options.fleetDir,
          {
            devicePrefix: options.devicePrefix ?? '',
            algorithm: options.algorithm,
            devices: [
              ...[...enrolled.credentials].map(([simId, c]) => ({ simId, ...strip(c) })),
              ...faults.map(([name, c]) => ({ simId: `fault:${name}`, ...strip(c) })),
            ],
            faults: Object.fromEntries(faults.map(([name, c]) => [name, c.deviceId])),
          },
          [...enrolled.credentials.values(), ...faults.map(([, c]) => c)],
        );
      }
    } finally {
      await rm(foreignDir, { recursive: true, force: true });
    }
    await sleep(options.settleMs);
  }

  const driver = new GatewayFleet({
    url: options.url,
    caPem: options.pki.caCertPem,
    credentials: fleet.credentials,
    simulation,
    model: new GatewayModel(limits),
    clock: { kind: 'system' },
    skewMs: limits.skewMs,
  });
  try {
    await driver.run();
    if (options.drills) await runGatewayDrills(driver, fleet.faults, limits);
  } finally {
    await driver.close();
  }
  const { truth, observed, skipped, retries, simulator } = driver.summary();
  return {
    truth,
    observed,
    skipped,
    retries,
    simulator,
    matchesTruth:
      observed.unanswered === 0 &&
      observed.accepted === truth.accepted &&
      JSON.stringify(observed.rejected) === JSON.stringify(truth.rejected),
    enrolled: enrolledChanges,
    reused,
  };
}

function strip(c: DeviceCredentials): Omit<DeviceCredentials, 'certPem' | 'keyPem'> {
  return { deviceId: c.deviceId, fingerprint: c.fingerprint, algorithm: c.algorithm };
}

/** Appends changes: each device's in order, devices side by side (one durable append at a time is slow on Kafka). */
async function appendByDevice(log: ControlLog<IdentityChange>, changes: readonly IdentityChange[]): Promise<void> {
  const byDevice = new Map<string, IdentityChange[]>();
  for (const c of changes) byDevice.set(c.device_id, [...(byDevice.get(c.device_id) ?? []), c]);
  const queues = [...byDevice.values()];
  const worker = async () => {
    for (let q = queues.shift(); q; q = queues.shift()) for (const c of q) await log.append(changeKey(c), c);
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}
