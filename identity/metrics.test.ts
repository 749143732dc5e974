import { Registry } from 'prom-client';
import { ulid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/clock.ts';
import { registerIdentityMetrics } from './metrics.ts';
import { DeviceRegistry } from './registry.ts';
import type { IdentityChange } from './types.ts';

const DAY = 86_400_000;

function enrolled(deviceId: string, n: number, notBefore: number): IdentityChange {
  return {
    change_id: ulid(notBefore),
    device_id: deviceId,
    at: notBefore,
    actor: 'ops',
    kind: 'enrolled',
    certificate: {
      fingerprint: n.toString(16).padStart(64, '0'),
      pem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
      not_before: notBefore,
      not_after: notBefore + 30 * DAY,
      algorithm: 'ES256',
    },
  };
}

async function value(
  metrics: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const metric = (await metrics.getMetricsAsJSON()).find((m) => m.name === name);
  return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

describe('identity metrics', () => {
  it('counts devices expiring within 14 days at each scrape, and changes by kind', async () => {
    const clock = new ManualClock();
    const registry = new DeviceRegistry();
    const metrics = new Registry();
    const stop = registerIdentityMetrics(metrics, registry, clock);
    registry.apply(enrolled('a', 1, clock.now()));
    clock.advance(10 * DAY);
    registry.apply(enrolled('b', 2, clock.now()));
    expect(await value(metrics, 'vigil_device_certificates_expiring')).toBe(0);
    clock.advance(7 * DAY); // a: 13 days left; b: 23
    expect(await value(metrics, 'vigil_device_certificates_expiring')).toBe(1);
    clock.advance(10 * DAY);
    expect(await value(metrics, 'vigil_device_certificates_expiring')).toBe(2);
    registry.apply({
      change_id: ulid(clock.now()),
      device_id: 'a',
      at: clock.now(),
      actor: 'ops',
      kind: 'status',
      status: 'revoked',
    });
    expect(await value(metrics, 'vigil_device_certificates_expiring')).toBe(1);
    expect(await value(metrics, 'vigil_device_identity_changes_total', { kind: 'enrolled' })).toBe(2);
    expect(await value(metrics, 'vigil_device_identity_changes_total', { kind: 'status' })).toBe(1);
    expect(await value(metrics, 'vigil_device_identity_changes_total', { kind: 'assigned' })).toBe(0);
    stop();
    registry.apply(enrolled('c', 3, clock.now()));
    expect(await value(metrics, 'vigil_device_identity_changes_total', { kind: 'enrolled' })).toBe(2);
    const text = await metrics.metrics();
    expect(text).not.toMatch(/\{(?!kind=")/); // no label but kind: never a device id
  });
});
