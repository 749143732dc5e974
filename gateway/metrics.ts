/**
 * The gateway's Prometheus metrics. Labels only from fixed sets (status class codes, reason codes, lanes, close
 * causes): never a device id, fingerprint or patient ref.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { GATEWAY_REASONS, type GatewayReason } from './codes.ts';

export type CloseCause =
  | 'headers_timeout'
  | 'request_timeout'
  | 'idle_timeout'
  | 'trust_withdrawn'
  | 'connection_cap'
  | 'shutdown';

export class GatewayMetrics {
  readonly requests: Counter<'status'>;
  readonly accepted: Counter<'lane'>;
  readonly rejections: Counter<'reason'>;
  readonly rejectedUnrecorded: Counter<'reason'>;
  readonly verifySeconds: Histogram;
  readonly requestSeconds: Histogram;
  readonly openConnections: Gauge;
  readonly closed: Counter<'cause'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'vigil_gateway_requests_total',
      help: 'Requests answered, by HTTP status.',
      labelNames: ['status'],
      registers,
    });
    this.accepted = new Counter({
      name: 'vigil_gateway_events_accepted_total',
      help: 'Signed events durably written to the raw plane, by lane (raw, priority).',
      labelNames: ['lane'],
      registers,
    });
    this.rejections = new Counter({
      name: 'vigil_gateway_rejections_total',
      help: 'Rejection records written, by reason code.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of GATEWAY_REASONS) this.rejections.inc({ reason }, 0);
    this.rejectedUnrecorded = new Counter({
      name: 'vigil_gateway_refused_repeats_total',
      help: 'Further requests on a connection already refused and recorded (401/403), answered without a new record.',
      labelNames: ['reason'],
      registers,
    });
    this.verifySeconds = new Histogram({
      name: 'vigil_gateway_verify_seconds',
      help: 'Time to verify one signed event (signature and checks, before the shared state).',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'vigil_gateway_request_seconds',
      help: 'Time from a request whole to its answer (for a 202: after the raw write is acknowledged).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.openConnections = new Gauge({
      name: 'vigil_gateway_open_connections',
      help: 'TLS connections open now.',
      registers,
    });
    this.closed = new Counter({
      name: 'vigil_gateway_connections_closed_total',
      help: 'Connections the gateway cut off, by cause.',
      labelNames: ['cause'],
      registers,
    });
  }

  rejected(reason: GatewayReason, n = 1): void {
    this.rejections.inc({ reason }, n);
  }
}
