/**
 * The gateway's open connections: who each one is (its client certificate, as the TLS layer judged it), its local
 * request bucket, and the timers that cut off clients holding a socket without using it (slow-loris, idle keep-alive).
 * Indexed by certificate fingerprint, to cap connections per certificate and to close a device's connections the
 * moment its trust is withdrawn.
 */
import { X509Certificate } from 'node:crypto';
import type { Http2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { deviceIdOf, fingerprintOf } from '../identity/pki.ts';
import type { Clock } from '../runtime/clock.ts';
import type { CloseCause } from './metrics.ts';
import { TokenBucket } from './state.ts';

export interface Connection {
  readonly socket: TLSSocket;
  /** Null when the client presented no certificate. */
  readonly fingerprint: string | null;
  /** The device the certificate names (its URI SAN), as claimed: the registry decides whether it is trusted. */
  readonly claimedDeviceId: string | null;
  /** The TLS layer's verdict on the certificate (chain to the device CA, validity). */
  readonly certificateRefusal: 'UNTRUSTED_CERTIFICATE' | 'CERT_EXPIRED' | null;
  readonly bucket: TokenBucket;
  session: Http2Session | null;
  active: number;
  timer: NodeJS.Timeout | null;
  closing: boolean;
  /** A connection-level refusal (401/403) has been recorded for this connection. */
  refusalRecorded: boolean;
}

const EXPIRY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** Reads a freshly handshaken socket's client certificate into a Connection. */
export function describeConnection(
  socket: TLSSocket,
  bucket: { ratePerSec: number; burst: number; clock: Clock },
): Connection {
  const peer = socket.getPeerCertificate();
  const raw = peer && 'raw' in peer ? (peer.raw as Buffer | undefined) : undefined;
  let fingerprint: string | null = null;
  let claimedDeviceId: string | null = null;
  if (raw && raw.length > 0) {
    fingerprint = fingerprintOf(raw);
    try {
      claimedDeviceId = deviceIdOf(new X509Certificate(raw)) ?? null;
    } catch {
      claimedDeviceId = null;
    }
  }
  let certificateRefusal: Connection['certificateRefusal'] = null;
  if (!fingerprint) certificateRefusal = 'UNTRUSTED_CERTIFICATE';
  else if (!socket.authorized) {
    const code = String(socket.authorizationError ?? '');
    certificateRefusal = EXPIRY_ERRORS.has(code) ? 'CERT_EXPIRED' : 'UNTRUSTED_CERTIFICATE';
  }
  return {
    socket,
    fingerprint,
    claimedDeviceId,
    certificateRefusal,
    bucket: new TokenBucket(bucket.ratePerSec, bucket.burst, bucket.clock),
    session: null,
    active: 0,
    timer: null,
    closing: false,
    refusalRecorded: false,
  };
}

export class ConnectionTable {
  readonly #byFingerprint = new Map<string, Set<Connection>>();
  readonly #all = new Set<Connection>();

  constructor(private readonly onCut: (cause: CloseCause) => void) {}

  get size(): number {
    return this.#all.size;
  }

  countFor(fingerprint: string): number {
    return this.#byFingerprint.get(fingerprint)?.size ?? 0;
  }

  add(connection: Connection): void {
    this.#all.add(connection);
    if (connection.fingerprint) {
      const set = this.#byFingerprint.get(connection.fingerprint) ?? new Set<Connection>();
      set.add(connection);
      this.#byFingerprint.set(connection.fingerprint, set);
    }
  }

  remove(connection: Connection): void {
    this.#all.delete(connection);
    if (connection.timer) clearTimeout(connection.timer);
    connection.timer = null;
    if (connection.fingerprint) {
      const set = this.#byFingerprint.get(connection.fingerprint);
      set?.delete(connection);
      if (set?.size === 0) this.#byFingerprint.delete(connection.fingerprint);
    }
  }

  /** Starts (or restarts) the timer that cuts the connection off unless a request begins first. */
  arm(connection: Connection, ms: number, cause: CloseCause): void {
    if (connection.timer) clearTimeout(connection.timer);
    connection.timer = setTimeout(() => this.cut(connection, cause), ms);
    connection.timer.unref();
  }

  disarm(connection: Connection): void {
    if (connection.timer) clearTimeout(connection.timer);
    connection.timer = null;
  }

  /** Closes the connection now: its socket (and every HTTP/2 stream on it) is destroyed. */
  cut(connection: Connection, cause: CloseCause): void {
    if (connection.socket.destroyed) return;
    this.onCut(cause);
    connection.closing = true;
    connection.session?.destroy();
    connection.socket.destroy();
  }

  /** Cuts every connection holding one of these certificates. Returns how many. */
  cutFingerprints(fingerprints: Iterable<string>, cause: CloseCause): number {
    let n = 0;
    for (const fingerprint of fingerprints) {
      for (const connection of [...(this.#byFingerprint.get(fingerprint) ?? [])]) {
        this.cut(connection, cause);
        n++;
      }
    }
    return n;
  }

  all(): Connection[] {
    return [...this.#all];
  }
}
