import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileControlLog } from '../adapters/file/control-log.ts';
import { ManualClock } from '../runtime/clock.ts';
import { openDeviceDirectory } from './directory.ts';
import { changeKey, parseIdentityChange } from './records.ts';
import type { IdentityChange } from './types.ts';

const clock = new ManualClock();

function enrolled(deviceId: string, n: number): IdentityChange {
  return {
    change_id: ulid(clock.now()),
    device_id: deviceId,
    at: clock.now(),
    actor: 'ops',
    kind: 'enrolled',
    certificate: {
      fingerprint: n.toString(16).padStart(64, '0'),
      pem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
      not_before: clock.now(),
      not_after: clock.now() + 30 * 86_400_000,
      algorithm: 'ES256',
    },
  };
}

describe('openDeviceDirectory', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('applies the log up to caughtUp, then live changes; skips and counts invalid records', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'vigil-directory-')), 'device-identity.jsonl');
    const log = new FileControlLog(path, { parse: parseIdentityChange, pollMs: 100 });
    const first = enrolled('d1', 1);
    await log.append(changeKey(first), first);
    appendFileSync(path, `${JSON.stringify({ key: 'd9/x', value: { kind: 'enrolled', device_id: 'd9' } })}\n`);
    const directory = await openDeviceDirectory(log);
    await directory.caughtUp;
    expect(directory.registry.device('d1')?.status).toBe('active');
    expect(directory.invalidRecords()).toBe(1);

    const withdrawn: string[] = [];
    directory.registry.onTrustWithdrawn((id) => withdrawn.push(id));
    const suspend: IdentityChange = {
      change_id: ulid(clock.now()),
      device_id: 'd1',
      at: clock.now(),
      actor: 'ops',
      kind: 'status',
      status: 'suspended',
    };
    await log.append(changeKey(suspend), suspend);
    await log.append(changeKey(suspend), suspend); // a retried append: applied once
    vi.advanceTimersByTime(100);
    expect(directory.registry.device('d1')?.status).toBe('suspended');
    expect(withdrawn).toEqual(['d1']);
    expect(directory.registry.appliedCount).toBe(2);
    await directory.close();
  });
});
