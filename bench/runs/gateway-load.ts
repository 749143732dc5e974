/**
 * The gateway run's load generator, a process of its own (the gateway under test keeps its core to itself): enrolled
 * devices (certificates and keys in `--fleet-dir`, as `vigil devices enroll --out` writes them) post signed events over
 * HTTP/2 with mutual TLS, `--batch` events per request.
 *
 * Every event is signed before the clock starts (ES256 with node:crypto, the device's own key), so the figures are the
 * gateway's, not the signer's. Two modes:
 * - `max`: closed loop, `--concurrency` requests in flight across the fleet, for `--seconds`: accepted events/s;
 * - `paced`: requests started on a fixed schedule at `--rate` events/s (open loop: a slow answer does not delay the
 *   next request), for `--seconds`: request -> `202` latency per request as a DDSketch (p50/p99, ms).
 *
 * Prints one JSON line: {mode, requests, accepted, rejected, errors, elapsed_ms, events_per_s, latency_ms}.
 *
 *   node --import tsx bench/runs/gateway-load.ts --url https://127.0.0.1:8443 --fleet-dir DIR --ca FILE \
 *     --mode max|paced [--rate N] [--seconds 10] [--batch 50] [--concurrency 64]
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ulid } from 'ulid';
import { fingerprintOf } from '../../identity/pki.ts';
import { LatencySketch } from '../../runtime/runners/run-stats.ts';
import { type JwsSigner, jwsSigner } from '../../simulator/gateway-sign.ts';

export interface Device {
  readonly id: string;
  readonly cert: string;
  readonly key: string;
  /** ES256 over the device's own key (simulator/gateway-sign.ts, as the fleet signs). */
  readonly sign: JwsSigner;
  readonly kid: string;
  sequence: number;
  session?: http2.ClientHttp2Session;
}

/** One signed event: a JWS compact serialisation of the envelope's JSON (the gateway stamps the assignment). */
export function signEvent(device: Device, at: number): string {
  device.sequence += 1;
  const payload = {
    event_id: ulid(at),
    device_id: device.id,
    event_type: 'vital_signs',
    observed_at: at,
    firmware_version: '5.12.1',
    model_version: null,
    schema_version: 'telemetry-envelope-v3',
    processing_policy: 'care-only-v1',
    payload: {
      respiratory_rate: 16,
      spo2: 97,
      on_oxygen: false,
      systolic_bp: 122,
      pulse: 72,
      consciousness: 'A',
      temperature_c: 36.8,
    },
    sequence: device.sequence,
    nonce: randomBytes(12).toString('base64url'),
  };
  return device.sign(JSON.stringify(payload));
}

export function loadFleet(dir: string): Device[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.crt'))
    .sort()
    .map((f) => {
      const id = f.slice(0, -'.crt'.length);
      const cert = readFileSync(join(dir, f), 'utf8');
      const key = readFileSync(join(dir, `${id}.key`), 'utf8');
      const kid = fingerprintOf(cert);
      // Sequences from the wall clock (x1000): above any earlier run's for the same devices, which the gateway remembers.
      return { id, cert, key, sign: jwsSigner(key, 'ES256', kid), kid, sequence: Date.now() * 1000 };
    });
}

function sessionOf(device: Device, url: string, ca: string): http2.ClientHttp2Session {
  if (device.session && !device.session.closed && !device.session.destroyed) return device.session;
  const session = http2.connect(url, { cert: device.cert, key: device.key, ca });
  session.on('error', () => {});
  device.session = session;
  return session;
}

interface Answer {
  readonly status: number;
  readonly accepted: number;
  readonly rejected: number;
}

function post(session: http2.ClientHttp2Session, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/v1/events', 'content-type': 'application/jose' });
    let status = 0;
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    req.on('data', (chunk: string) => {
      text += chunk;
    });
    req.on('end', () => {
      try {
        const json = JSON.parse(text) as { accepted?: number; rejected?: unknown[] };
        resolve({ status, accepted: json.accepted ?? 0, rejected: json.rejected?.length ?? 0 });
      } catch {
        resolve({ status, accepted: 0, rejected: 0 });
      }
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface LoadResult {
  readonly mode: 'max' | 'paced';
  readonly requests: number;
  readonly accepted: number;
  readonly rejected: number;
  /** Requests answered with anything but 202, or failed on the wire. */
  readonly errors: number;
  readonly elapsed_ms: number;
  readonly events_per_s: number;
  readonly latency_ms: ReturnType<LatencySketch['summary']>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      'fleet-dir': { type: 'string' },
      ca: { type: 'string' },
      mode: { type: 'string', default: 'max' },
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '10' },
      batch: { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '64' },
    },
  });
  if (!values.url || !values['fleet-dir'] || !values.ca) throw new Error('--url, --fleet-dir and --ca are required');
  const url = values.url;
  const ca = readFileSync(values.ca, 'utf8');
  const mode = values.mode === 'paced' ? 'paced' : 'max';
  const seconds = Number(values.seconds);
  const batch = Number(values.batch);
  const rate = Number(values.rate);
  const concurrency = Number(values.concurrency);
  const fleet = loadFleet(values['fleet-dir']);
  if (fleet.length === 0) throw new Error(`no device certificates in ${values['fleet-dir']}`);

  // Requests to send, signed ahead: enough for `seconds` at the rate asked (paced) or at a generous ceiling (max).
  const ceiling = mode === 'paced' ? rate : 40_000;
  const requestCount = Math.ceil((ceiling * seconds) / batch);
  const now = Date.now();
  const bodies: { device: Device; body: string }[] = [];
  for (let r = 0; r < requestCount; r++) {
    const device = fleet[r % fleet.length] as Device;
    const lines: string[] = [];
    for (let i = 0; i < batch; i++) lines.push(signEvent(device, now));
    bodies.push({ device, body: lines.join('\n') });
  }
  for (const device of fleet) sessionOf(device, url, ca);
  // Warm the sessions (TLS handshakes) before the clock starts.
  await Promise.all(
    fleet.map((d) => post(sessionOf(d, url, ca), '').catch(() => ({ status: 0, accepted: 0, rejected: 0 }))),
  );

  const latency = new LatencySketch();
  let accepted = 0;
  let rejected = 0;
  let errors = 0;
  let sent = 0;
  const send = async (i: number): Promise<void> => {
    const { device, body } = bodies[i] as { device: Device; body: string };
    const started = performance.now();
    try {
      const answer = await post(sessionOf(device, url, ca), body);
      if (answer.status === 202) {
        latency.observe(performance.now() - started);
        accepted += answer.accepted;
        rejected += answer.rejected;
      } else errors += 1;
    } catch {
      errors += 1;
    }
  };

  const started = performance.now();
  const deadline = started + seconds * 1000;
  if (mode === 'max') {
    const loop = async (): Promise<void> => {
      while (performance.now() < deadline && sent < bodies.length) await send(sent++);
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  } else {
    const intervalMs = (batch / rate) * 1000;
    const inFlight: Promise<void>[] = [];
    while (sent < bodies.length) {
      const due = started + sent * intervalMs;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      inFlight.push(send(sent++));
    }
    await Promise.all(inFlight);
  }
  const elapsed = performance.now() - started;
  for (const device of fleet) device.session?.close();
  const result: LoadResult = {
    mode,
    requests: sent,
    accepted,
    rejected,
    errors,
    elapsed_ms: Math.round(elapsed),
    events_per_s: Math.round(accepted / (elapsed / 1000)),
    latency_ms: latency.summary(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`gateway-load: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
