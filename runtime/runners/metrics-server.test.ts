/**
 * The probe endpoints a container orchestrator reads: /healthz (liveness) always 200 while the process serves,
 * /readyz (readiness) 503 until a worker's assigned partitions have their state restored.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PartitionReadiness, serveMetrics } from './metrics-server.ts';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function start(readiness?: PartitionReadiness): Promise<(path: string) => Promise<number>> {
  const server = await serveMetrics({ registry: new Registry() }, 0, '127.0.0.1', readiness);
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return async (path) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
}

describe('PartitionReadiness', () => {
  it('is ready only once the latest assignment is restored', () => {
    const readiness = new PartitionReadiness();
    expect(readiness.ready()).toBe(false); // started, nothing assigned yet
    readiness.restoring();
    expect(readiness.ready()).toBe(false);
    readiness.restored();
    expect(readiness.ready()).toBe(true);
    readiness.restoring(); // a rebalance hands over new partitions
    expect(readiness.ready()).toBe(false);
    readiness.restored();
    expect(readiness.ready()).toBe(true);
    readiness.reset(); // the Kafka clients restart (an outage ridden through)
    expect(readiness.ready()).toBe(false);
  });
});

describe('serveMetrics probes', () => {
  it('/readyz follows the worker readiness; /healthz stays 200', async () => {
    const readiness = new PartitionReadiness();
    const status = await start(readiness);
    expect(await status('/readyz')).toBe(503);
    expect(await status('/healthz')).toBe(200);
    readiness.restoring();
    expect(await status('/readyz')).toBe(503);
    readiness.restored();
    expect(await status('/readyz')).toBe(200);
    readiness.reset();
    expect(await status('/readyz')).toBe(503);
    expect(await status('/healthz')).toBe(200);
  });

  it('without a readiness, /readyz is 200 while the server answers; /metrics serves the registry', async () => {
    const status = await start();
    expect(await status('/readyz')).toBe(200);
    expect(await status('/metrics')).toBe(200);
    expect(await status('/nothing')).toBe(404);
  });
});
