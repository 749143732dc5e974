/**
 * A device's connection to the gateway: one HTTP/2 session over mutual TLS (its certificate and key, trusting the
 * gateway's CA), kept alive across requests. `post` sends one body to `POST /v1/events` and returns the answer; a
 * handshake the gateway refuses comes back as `{ status: 0 }` rather than an exception, since refusing is an answer.
 */
import http2 from 'node:http2';

export interface GatewayAnswer {
  /** HTTP status, or 0 when the connection itself was refused or dropped before an answer. */
  readonly status: number;
  readonly accepted: number;
  /** Per-event refusals of a 202. */
  readonly rejected: readonly { readonly index: number; readonly reason: string }[];
  /** The reason of a whole-request refusal. */
  readonly reason: string | null;
}

export interface DeviceTls {
  readonly certPem: string;
  readonly keyPem: string;
}

/** One device's keep-alive session; re-opened if the gateway closed it while idle. */
export class DeviceConnection {
  readonly #url: string;
  readonly #caPem: string;
  readonly #tls: DeviceTls;
  #session: http2.ClientHttp2Session | null = null;

  constructor(url: string, caPem: string, tls: DeviceTls) {
    this.#url = url;
    this.#caPem = caPem;
    this.#tls = tls;
  }

  #open(): http2.ClientHttp2Session {
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return this.#session;
    const session = http2.connect(this.#url, { ca: this.#caPem, cert: this.#tls.certPem, key: this.#tls.keyPem });
    // A refused handshake or a reset surfaces on the request; the session's own error must not crash the process.
    session.on('error', () => {});
    this.#session = session;
    return session;
  }

  post(body: string | Buffer): Promise<GatewayAnswer> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (answer: GatewayAnswer) => {
        if (!settled) {
          settled = true;
          resolve(answer);
        }
      };
      const refused: GatewayAnswer = { status: 0, accepted: 0, rejected: [], reason: null };
      let request: http2.ClientHttp2Stream;
      try {
        request = this.#open().request({
          ':method': 'POST',
          ':path': '/v1/events',
          'content-type': 'application/jose',
        });
      } catch {
        done(refused);
        return;
      }
      let status = 0;
      const chunks: Buffer[] = [];
      request.on('response', (headers) => {
        status = Number(headers[':status'] ?? 0);
      });
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('error', () => done(status ? parseAnswer(status, Buffer.concat(chunks)) : refused));
      request.on('close', () => done(status ? parseAnswer(status, Buffer.concat(chunks)) : refused));
      request.end(body);
    });
  }

  close(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    if (!session || session.closed) return Promise.resolve();
    return new Promise((resolve) => session.close(() => resolve()));
  }
}

function parseAnswer(status: number, body: Buffer): GatewayAnswer {
  let json: { accepted?: unknown; rejected?: unknown; reason?: unknown } = {};
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    // An answer without a JSON body (e.g. a proxy's error page) still has its status.
  }
  return {
    status,
    accepted: typeof json.accepted === 'number' ? json.accepted : 0,
    rejected: Array.isArray(json.rejected) ? (json.rejected as GatewayAnswer['rejected']) : [],
    reason: typeof json.reason === 'string' ? json.reason : null,
  };
}
