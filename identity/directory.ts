/**
 * A live device directory: a DeviceRegistry kept current by following the device-identity control log. A gateway or
 * worker opens one at start, waits for `caughtUp` before trusting anyone, and keeps it open: every later change
 * (a revocation, a reassignment) is applied as it arrives. A record that is not a valid change is skipped and counted,
 * never thrown: one bad record must not stop every gateway.
 */
import { DeviceRegistry } from './registry.ts';
import type { ControlLog, IdentityChange } from './types.ts';

export interface OpenDeviceDirectory {
  readonly registry: DeviceRegistry;
  /** Resolves once every change on the log when it was opened has been applied. */
  readonly caughtUp: Promise<void>;
  /** Records skipped because they are not valid changes (malformed, unknown kind or key). */
  invalidRecords(): number;
  close(): Promise<void>;
}

/**
 * Follows `log` into a new registry.
 *
 * @example
 * const directory = await openDeviceDirectory(new KafkaControlLog({ brokers, topic: TOPICS.deviceIdentity, parse: parseIdentityChange }));
 * await directory.caughtUp;
 * directory.registry.onTrustWithdrawn((deviceId, fingerprints) => closeConnections(fingerprints));
 */
export async function openDeviceDirectory(
  log: ControlLog<IdentityChange>,
  registry: DeviceRegistry = new DeviceRegistry(),
): Promise<OpenDeviceDirectory> {
  let invalid = 0;
  const follower = await log.follow(
    (change) => {
      try {
        registry.apply(change);
      } catch {
        invalid++; // a listener that threw: the change is applied, the follower goes on
      }
    },
    {
      onInvalid: () => {
        invalid++;
      },
    },
  );
  return {
    registry,
    caughtUp: follower.caughtUp,
    invalidRecords: () => invalid,
    close: () => follower.close(),
  };
}
