/**
 * Device-identity metrics for `/metrics` of whichever process holds the directory (the gateway):
 * - `vigil_device_certificates_expiring`: devices (not revoked) whose newest unrevoked certificate expires within
 *   14 days, computed at each scrape (no labels: a count, never a device id);
 * - `vigil_device_identity_changes_total{kind}`: changes applied from the control log, by kind (a fixed set).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { type Clock, systemClock } from '../runtime/clock.ts';
import type { DeviceRegistry } from './registry.ts';
import type { IdentityChangeKind } from './types.ts';

export const EXPIRY_WARNING_MS = 14 * 86_400_000;

const KINDS: readonly IdentityChangeKind[] = [
  'enrolled',
  'certificate_added',
  'certificate_revoked',
  'status',
  'assigned',
];

/**
 * Registers the identity metrics on `metrics` for `directory`. Returns a function that stops counting changes.
 *
 * @example
 * const metrics = new Registry();
 * const stop = registerIdentityMetrics(metrics, directory.registry);
 */
export function registerIdentityMetrics(
  metrics: Registry,
  directory: DeviceRegistry,
  clock: Clock = systemClock,
): () => void {
  new Gauge({
    name: 'vigil_device_certificates_expiring',
    help: 'Devices (not revoked) whose newest unrevoked certificate expires within 14 days (or has expired)',
    registers: [metrics],
    collect() {
      this.set(directory.expiringWithin(EXPIRY_WARNING_MS, clock.now()).length);
    },
  });
  const changes = new Counter({
    name: 'vigil_device_identity_changes_total',
    help: 'Device-identity changes applied from the control log, by kind',
    labelNames: ['kind'] as const,
    registers: [metrics],
  });
  for (const kind of KINDS) changes.inc({ kind }, 0);
  return directory.onApplied((change) => changes.inc({ kind: change.kind }));
}
