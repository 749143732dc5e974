/**
 * The gateway and the simulated fleet on a worker thread (./gateway-source.ts `thread: 'worker'`), so signing, TLS
 * and verification run beside the pipeline instead of taking turns with it. Accepted events go to the main thread in
 * messages, each awaited until the main thread has queued it (the gateway's 202 still waits for its sink); the report,
 * or the error, ends the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AcceptedEvent } from '../../gateway/index.ts';
import { type GatewayRunOptions, type GatewayThreadMessage, runGatewayFleet } from './gateway-source.ts';

const port = parentPort;
if (!port) throw new Error('gateway-thread.ts runs as a worker thread of gateway-source.ts');
const waiting = new Map<number, () => void>();
let next = 0;
port.on('message', (message: { ack: number }) => {
  waiting.get(message.ack)?.();
  waiting.delete(message.ack);
});
const post = (message: GatewayThreadMessage) => port.postMessage(message);
const sink = (events: readonly AcceptedEvent[]) =>
  new Promise<void>((resolve) => {
    const id = next++;
    waiting.set(id, resolve);
    post({ kind: 'events', id, events });
  });

try {
  post({ kind: 'report', report: await runGatewayFleet(workerData as GatewayRunOptions, sink) });
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  post({ kind: 'error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
}
