/**
 * `vigil simulate --gateway` against a real `vigil gateway` process on the real stack (distributed: the device
 * directory followed from the Kafka device-identity topic, state in Redis, raw and rejection topics in Kafka; topics
 * isolated by VIGIL_TOPIC_PREFIX, device ids by a per-run prefix since Redis keeps replay windows for days). The
 * simulator enrols its fleet and fault devices on the control topic, drives the fleet over mTLS with the gateway's
 * own faults, and prints its truth: the gateway's rejections by reason on /metrics equal it, and the raw topics hold
 * exactly the accepted events (alarms on the priority lane), each once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki } from '../../identity/pki.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import type { GatewayDriveReport } from '../../simulator/gateway-drive.ts';
import { freePort, waitFor } from '../support/process.ts';
import { isolatedTopics, lastJsonLine, readTopic, type Spawned, spawnVigil } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'vigil-it-simgw-'));
let topics: Awaited<ReturnType<typeof isolatedTopics>>;
let env: Record<string, string>;
let gateway: Spawned;
let url: string;
let metricsPort: number;

beforeAll(async () => {
  topics = await isolatedTopics('simgw');
  env = { VIGIL_TOPIC_PREFIX: topics.prefix };
  await initPki(join(dir, 'pki'), { now: Date.now() - 86_400_000 });
  metricsPort = await freePort();
  gateway = spawnVigil(
    ['gateway', '--port', '0', '--pki-dir', join(dir, 'pki'), '--metrics-port', String(metricsPort), '--id', 'gw-it'],
    env,
  );
  await waitFor('the gateway to listen', () => gateway.stdout().includes('"url"'), 60_000);
  url = lastJsonLine<{ url: string }>(gateway.stdout()).url;
}, 120_000);

afterAll(async () => {
  gateway?.child.kill('SIGTERM');
  await gateway?.done;
  rmSync(dir, { recursive: true, force: true });
});

/** The gateway's rejection counter by reason, from its /metrics (zero-valued reasons left out). */
async function rejectionsOnMetrics(): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^vigil_gateway_rejections_total\{reason="([A-Z_]+)"\} (\d+)$/gm)) {
    if (Number(m[2]) > 0) out[m[1] as string] = Number(m[2]);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe('vigil simulate --gateway against vigil gateway', () => {
  it('prints a truth that the gateway records and the raw topics equal exactly', async () => {
    const prefix = `it${ulid().slice(-8).toLowerCase()}-`;
    const sim = spawnVigil(
      [
        'simulate',
        '--gateway',
        url,
        '--pki-dir',
        join(dir, 'pki'),
        '--devices',
        '40',
        '--events',
        '3000',
        '--seed',
        'it-simulate-gateway',
        '--malformed',
        '0.04',
        '--duplicates',
        '0.04',
        '--replays',
        '0.01',
        '--device-prefix',
        prefix,
        '--fleet-dir',
        join(dir, 'fleet'),
        '--json',
      ],
      env,
    );
    const exited = await sim.done;
    expect(exited.code, sim.stderr()).toBe(0);
    const report = lastJsonLine<GatewayDriveReport>(sim.stdout());
    const { truth } = report;

    // The stream's faults and every drill show up in the truth.
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
    expect(report.matchesTruth).toBe(true);
    expect(report.observed.rejected).toEqual(truth.rejected);

    // The gateway's own count of its rejection records, by reason.
    expect(await rejectionsOnMetrics()).toEqual(truth.rejected);

    // The raw topics: exactly the accepted events, each once, alarms on the priority lane.
    const raw = await readTopic(topics.name(TOPICS.raw));
    const priority = await readTopic(topics.name(TOPICS.rawPriority));
    expect(raw.length + priority.length).toBe(truth.accepted);
    expect(priority.length).toBe(truth.lanes.priority);
    // Keyed by device: this run's fleet (and its flooding device) only.
    expect([...raw, ...priority].every((m) => String(m.key).startsWith(prefix))).toBe(true);
    const rejections = await readTopic(topics.name(TOPICS.gatewayRejections));
    expect(rejections.length).toBe(Object.values(truth.rejected).reduce((a, b) => a + b, 0));
  }, 300_000);
});
