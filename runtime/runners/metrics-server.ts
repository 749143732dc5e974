/**
 * `/metrics` (Prometheus text format), `/healthz` (liveness: the process serves) and `/readyz` (readiness: the
 * process can do its work) for one process (a worker, the sink, a gateway), on loopback unless told otherwise:
 * `VIGIL_METRICS_HOST` (e.g. `0.0.0.0` in a container, where loopback is unreachable to Prometheus and the kubelet)
 * binds elsewhere. Takes anything holding a prom-client registry (PipelineMetrics does).
 *
 * `/readyz` answers 200 while `ready()` of the given readiness says so, else 503; without one, 200 whenever the server
 * answers (a gateway starts it only once it listens). A worker passes a PartitionReadiness: not ready until the
 * state of every partition it was assigned is restored, so a rolling update waits for a new worker's state before
 * stopping the next one.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** What `/readyz` asks. */
export interface Readiness {
  ready(): boolean;
}

/**
 * A worker's readiness: ready once its latest partition assignment's state is restored; not ready from the start
 * (or a restart of its Kafka clients) until then, and again while a new assignment restores. A revocation alone does
 * not change it: the next assignment (maybe empty: a member with no partition is ready) follows at once.
 *
 * @example
 * const readiness = new PartitionReadiness();
 * // in the consumer's onAssign hook:
 * readiness.restoring(); await restoreEveryPartition(); readiness.restored();
 */
export class PartitionReadiness implements Readiness {
  #assigned = false;
  #restoring = false;

  /** The Kafka clients (re)start: nothing is assigned yet. */
  reset(): void {
    this.#assigned = false;
    this.#restoring = false;
  }

  /** An assignment arrived: its partitions' state is being restored. */
  restoring(): void {
    this.#restoring = true;
  }

  /** Every partition of the assignment has its state restored. */
  restored(): void {
    this.#assigned = true;
    this.#restoring = false;
  }

  ready(): boolean {
    return this.#assigned && !this.#restoring;
  }
}

const ALWAYS_READY: Readiness = { ready: () => true };

export async function serveMetrics(
  metrics: { readonly registry: Registry },
  port: number,
  host = process.env.VIGIL_METRICS_HOST?.trim() || '127.0.0.1',
  readiness: Readiness = ALWAYS_READY,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    } else if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else if (req.url === '/readyz') {
      const ready = readiness.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
