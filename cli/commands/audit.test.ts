/**
 * `vigil audit checkpoint --every S --metrics-port P`: the signer serves probes and its gauges, so the chart's signer
 * pod gets liveness and readiness like every other Vigil process.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { generateNoteKeys, parseSignerKey } from '../../audit/checkpoint.ts';
import { hashKeyOf, targetRef } from '../../audit/entry.ts';
import { openAuditLog } from '../../audit/log.ts';
import { MemoryAuditStore } from '../../audit/stores/memory.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { checkpointLoop, signerMetrics } from './audit.ts';

const key = parseSignerKey(generateNoteKeys('vigil.test/audit').signer);
const hashKey = hashKeyOf(randomBytes(32));
const T0 = Date.UTC(2026, 10, 29, 3, 0, 0);

async function logWith(entries: number): Promise<MemoryAuditStore> {
  const store = new MemoryAuditStore();
  const log = await openAuditLog({ store, clock: new ManualClock(T0), hashKey });
  for (let i = 0; i < entries; i++) {
    await log.append({
      actor: 'user-1',
      role: 'clinician',
      action: 'data.read',
      target: targetRef(hashKey, 'patient', `P-${i}`),
      purpose: 'treatment',
      read: { rows: [i] },
    });
  }
  return store;
}

const gauge = (text: string, name: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

describe('signerMetrics', () => {
  it('is not ready before its first round; a round that signs sets the tree size and times, one that does not only the round time', async () => {
    const metrics = signerMetrics();
    expect(metrics.ready()).toBe(false);
    metrics.observe(null, T0);
    expect(metrics.ready()).toBe(true);
    let text = await metrics.registry.metrics();
    expect(gauge(text, 'vigil_audit_signer_round_timestamp_seconds')).toBe(T0 / 1000);
    // Nothing signed by this signer yet: 0 (prom-client's unset gauge), the round time is what moves.
    expect(gauge(text, 'vigil_audit_checkpoint_tree_size')).toBe(0);

    const root = Buffer.alloc(32, 1).toString('base64');
    const note = `vigil.test/audit\n7\n${root}\ntime 2026-11-29T03:00:00.000Z\n\n— sig\n`;
    metrics.observe(note, T0 + 60_000);
    text = await metrics.registry.metrics();
    expect(gauge(text, 'vigil_audit_checkpoint_tree_size')).toBe(7);
    expect(gauge(text, 'vigil_audit_checkpoint_signed_timestamp_seconds')).toBe(T0 / 1000 + 60);
    metrics.observe(null, T0 + 120_000);
    text = await metrics.registry.metrics();
    expect(gauge(text, 'vigil_audit_checkpoint_tree_size')).toBe(7);
    expect(gauge(text, 'vigil_audit_signer_round_timestamp_seconds')).toBe(T0 / 1000 + 120);
  });
});

describe('checkpointLoop with a metrics port', () => {
  it('signs the grown log and serves /healthz, /readyz and the checkpoint gauges until stopped, then closes', async () => {
    const store = await logWith(5);
    const clock = new ManualClock(T0 + 3_600_000);
    let base = '';
    let stopLoop = (): void => {};
    const stop = new Promise<void>((resolve) => {
      stopLoop = resolve;
    });
    const seen: { ready?: number; health?: number; metrics?: string; note?: string | null } = {};
    let server: import('node:http').Server | undefined;
    const observed = new Promise<void>((resolve, reject) => {
      void checkpointLoop({
        store,
        key,
        clock,
        everyMs: 3_600_000, // one round only: the test stops the loop after it
        stop,
        metricsPort: 0,
        onMetricsServer: (s) => {
          server = s;
          base = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
        },
        onRound: (note) => {
          seen.note = note;
          // Asked after the round: ready now, and the gauges show the checkpoint just signed.
          Promise.all([fetch(`${base}/healthz`), fetch(`${base}/readyz`), fetch(`${base}/metrics`)])
            .then(async ([health, ready, metrics]) => {
              seen.health = health.status;
              seen.ready = ready.status;
              seen.metrics = await metrics.text();
              stopLoop();
              resolve();
            })
            .catch(reject);
        },
      }).catch(reject);
    });
    await observed;
    expect(seen.note).toMatch(/^vigil\.test\/audit\n5\n/);
    expect(seen.health).toBe(200);
    expect(seen.ready).toBe(200);
    expect(gauge(seen.metrics ?? '', 'vigil_audit_checkpoint_tree_size')).toBe(5);
    expect(gauge(seen.metrics ?? '', 'vigil_audit_checkpoint_signed_timestamp_seconds')).toBe((T0 + 3_600_000) / 1000);
    // The checkpoint is in the log: the signer appended it.
    expect(store.keys.at(-1)).toBe('checkpoint/5');
    // Stopped: the server closes with the loop.
    await expect.poll(() => server?.listening).toBe(false);
  });
});
