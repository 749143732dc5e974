/**
 * Device identity: the contract between the identity service (records on the compacted control topic
 * `vigil.control.device-identity`, written by `vigil devices ...`), the gateway (authenticates, stamps assignments) and
 * the workers (check that what reached the raw topic came through a gateway). Core: imports no adapter.
 *
 * The topic is compacted, yet no change is ever lost: every record has its own key (`<device_id>/<change_id>`), so
 * compaction never drops one and the log stays an append-only history with its actors. A device's state is the fold
 * of its records in log order (identity/registry.ts).
 */

export type DeviceStatus = 'active' | 'suspended' | 'revoked';

/** JWS algorithms a device key may sign with (RFC 7518 / RFC 8037 names). */
export type SigningAlgorithm = 'ES256' | 'EdDSA';

export interface DeviceCertificateInfo {
  /** SHA-256 of the certificate's DER bytes, lowercase hex without separators: the JWS `kid`. */
  readonly fingerprint: string;
  /** The certificate itself (PEM), so evidence can be re-verified years later. */
  readonly pem: string;
  readonly not_before: number;
  readonly not_after: number;
  readonly algorithm: SigningAlgorithm;
}

/** Which patient pseudonym, site and consent context a device serves, from `from` until the next assignment. */
export interface AssignmentInfo {
  readonly patient_ref: string;
  readonly site_id: string;
  readonly consent_context: string;
  /** Epoch ms, inclusive. */
  readonly from: number;
}

interface ChangeBase {
  /** ULID: unique per change, orders changes of one actor in time. */
  readonly change_id: string;
  readonly device_id: string;
  /** Epoch ms at which the change was made. */
  readonly at: number;
  /** Who made it: a principal name (`vigil devices` takes it from --actor, else the OS user). */
  readonly actor: string;
  readonly reason?: string;
}

/** One record on the device-identity control topic. Value = this object as JSON; key = `<device_id>/<change_id>`. */
export type IdentityChange = ChangeBase &
  (
    | { readonly kind: 'enrolled'; readonly certificate: DeviceCertificateInfo }
    | { readonly kind: 'certificate_added'; readonly certificate: DeviceCertificateInfo }
    | { readonly kind: 'certificate_revoked'; readonly fingerprint: string }
    | { readonly kind: 'status'; readonly status: DeviceStatus }
    | ({ readonly kind: 'assigned' } & AssignmentInfo)
  );

export type IdentityChangeKind = IdentityChange['kind'];

/** A device's current identity: the fold of its changes. */
export interface DeviceIdentity {
  readonly device_id: string;
  readonly status: DeviceStatus;
  readonly certificates: readonly (DeviceCertificateInfo & { readonly revoked: boolean })[];
  /** Oldest first. */
  readonly assignments: readonly AssignmentInfo[];
}

/** What the gateway and the workers read: the registry as it stands, updated live as records arrive. */
export interface DeviceDirectory {
  device(deviceId: string): DeviceIdentity | undefined;
  /** The device a certificate belongs to (revoked certificates included, with `revoked: true`). */
  byFingerprint(
    fingerprint: string,
  ): { readonly device: DeviceIdentity; readonly certificate: DeviceIdentity['certificates'][number] } | undefined;
  /** The assignment in force at `at` (the latest whose `from` <= at), if any. */
  assignmentAt(deviceId: string, at: number): AssignmentInfo | undefined;
  /**
   * Called after each applied change that may withdraw trust (status other than active, a certificate revoked), so the
   * gateway closes the device's open connections. Returns an unsubscribe function.
   */
  onTrustWithdrawn(listener: (deviceId: string, fingerprints: readonly string[]) => void): () => void;
}

/**
 * An append-only log of control records: the Kafka control topic in distributed mode
 * (adapters/kafka/control-log.ts), a JSON-lines file for the embedded mode and tests (adapters/file/control-log.ts).
 */
export interface ControlLog<T> {
  /** Resolves once the record is durable (acks=all on Kafka, fsync on a file). */
  append(key: string, record: T): Promise<void>;
  /**
   * Delivers every record from the beginning, then new ones as they arrive, in log order. `caughtUp` resolves once
   * the records that existed at the call have been delivered. A record the log's parse function refuses is skipped
   * and reported to `options.onInvalid` (never thrown: one bad record must not stop every gateway).
   */
  follow(
    onRecord: (record: T) => void,
    options?: FollowOptions,
  ): Promise<{ readonly caughtUp: Promise<void>; close(): Promise<void> }>;
  close(): Promise<void>;
}

export interface FollowOptions {
  /** Called with the parse error of each record skipped as invalid (its key only: a value may hold PHI). */
  onInvalid?(key: string, error: unknown): void;
}
