/**
 * The development PKI: a device CA, the gateway's server certificate, and short-lived device certificates.
 *
 * A device is named by its certificate's URI SAN `urn:vigil:device:<id>` (the CN repeats the id for humans); the SAN
 * is what the gateway trusts, because a CN is free text. The device's key is both its TLS client key and its JWS
 * signing key, so one fingerprint (SHA-256 of the certificate's DER) identifies the connection and the signature's
 * `kid`. Certificates are made with @peculiar/x509 over Node's webcrypto and parsed/verified with Node's own
 * `X509Certificate`, so what we check is what Node's TLS will check.
 */
import 'reflect-metadata';
import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { VigilError } from '../runtime/errors.ts';
import type { DeviceCertificateInfo, SigningAlgorithm } from './types.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const DAY_MS = 86_400_000;
const CA_DAYS = 3650;
const GATEWAY_DAYS = 365;
/** Certificates start a little in the past so a device whose clock lags a few minutes still accepts them. */
const BACKDATE_MS = 5 * 60_000;

export const DEVICE_URI_PREFIX = 'urn:vigil:device:';
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'EdDSA'];

export interface PkiFiles {
  /** The device CA's certificate: what verifies a device's client certificate. */
  readonly caCertPem: string;
  /**
   * The device CA's private key: needed to issue certificates only. Absent where the PKI is loaded to verify (a
   * gateway: its pod never holds the key that could mint a device identity).
   */
  readonly caKeyPem?: string;
  readonly gatewayCertPem: string;
  readonly gatewayKeyPem: string;
}

/** A PKI that can issue device certificates: the CA's private key is there. */
export type IssuingPki = PkiFiles & { readonly caKeyPem: string };

export interface LoadPkiOptions {
  /**
   * `true`: load what verifying needs (ca.crt, gateway.crt, gateway.key) and never read ca.key, even if present.
   * Default `false`: ca.key is required too (issuing: `vigil devices enroll`, `rotate`).
   */
  readonly verifyOnly?: boolean;
}

export interface IssuedDeviceCertificate {
  readonly certPem: string;
  /** PKCS#8 PEM: the device's TLS client key and its JWS signing key. */
  readonly keyPem: string;
  readonly info: DeviceCertificateInfo;
}

const FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  gatewayCert: 'gateway.crt',
  gatewayKey: 'gateway.key',
} as const;

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Throws CONFIG_INVALID unless `deviceId` is a safe device id (it lands in file names, SANs and record keys). */
export function assertDeviceId(deviceId: string): void {
  if (!DEVICE_ID_PATTERN.test(deviceId)) {
    throw new VigilError(
      'CONFIG_INVALID',
      `invalid device id (expected 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit)`,
    );
  }
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // a positive INTEGER
  return Buffer.from(bytes).toString('hex');
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importCaKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
}

/** A CA ready to sign: its certificate parsed, its key imported, its key identifier extension made. */
interface CaSigner {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certificate: x509.X509Certificate;
  readonly key: Promise<webcrypto.CryptoKey>;
  readonly authorityKeyId: Promise<x509.AuthorityKeyIdentifierExtension>;
}

/**
 * Per PKI object (a fleet's enrolment issues hundreds of certificates from one): importing the CA key and parsing its
 * certificate on every issuance was a third of the cost of a certificate. Keyed by the object, checked against its PEMs.
 */
const CA_SIGNERS = new WeakMap<object, CaSigner>();

function caSignerOf(pki: Pick<IssuingPki, 'caCertPem' | 'caKeyPem'>): CaSigner {
  const cached = CA_SIGNERS.get(pki);
  if (cached && cached.certPem === pki.caCertPem && cached.keyPem === pki.caKeyPem) return cached;
  const certificate = new x509.X509Certificate(pki.caCertPem);
  const signer: CaSigner = {
    certPem: pki.caCertPem,
    keyPem: pki.caKeyPem,
    certificate,
    key: importCaKey(pki.caKeyPem),
    authorityKeyId: x509.AuthorityKeyIdentifierExtension.create(certificate, false),
  };
  // A key that does not import fails this issuance and is not kept: the next one tries again.
  signer.key.catch(() => CA_SIGNERS.delete(pki));
  signer.authorityKeyId.catch(() => CA_SIGNERS.delete(pki));
  CA_SIGNERS.set(pki, signer);
  return signer;
}

async function newKeyPair(params: webcrypto.EcKeyGenParams | webcrypto.Algorithm): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

/** SHA-256 of a certificate's DER bytes, lowercase hex without separators (the JWS `kid`). */
export function fingerprintOf(certificate: string | Buffer | X509Certificate): string {
  const der =
    certificate instanceof X509Certificate
      ? certificate.raw
      : typeof certificate === 'string'
        ? new X509Certificate(certificate).raw
        : certificate;
  return createHash('sha256').update(der).digest('hex');
}

/** The device id a certificate names (its `urn:vigil:device:` URI SAN), or undefined when it names none. */
export function deviceIdOf(certificate: string | X509Certificate): string | undefined {
  const cert = typeof certificate === 'string' ? new X509Certificate(certificate) : certificate;
  const san = cert.subjectAltName;
  if (!san) return undefined;
  // Node renders SANs as `URI:urn:vigil:device:x, DNS:...`; device ids cannot contain ',' or ' ' (the pattern).
  for (const entry of san.split(', ')) {
    if (entry.startsWith(`URI:${DEVICE_URI_PREFIX}`)) {
      const id = entry.slice(`URI:${DEVICE_URI_PREFIX}`.length);
      return DEVICE_ID_PATTERN.test(id) ? id : undefined;
    }
  }
  return undefined;
}

/** The algorithm a device certificate's key signs with. */
export function algorithmOf(certificate: X509Certificate): SigningAlgorithm | undefined {
  const type = certificate.publicKey.asymmetricKeyType;
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'ec' && certificate.publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

/**
 * Creates the device CA and the gateway's server certificate in `dir` (keys mode 0600). Refuses to overwrite an
 * existing CA unless `force` (every enrolled device would lose its trust anchor).
 *
 * @example
 * await initPki('.vigil/pki');
 * const pki = loadPki('.vigil/pki');
 */
export async function initPki(dir: string, options: { now?: number; force?: boolean } = {}): Promise<IssuingPki> {
  const now = options.now ?? Date.now();
  if (!options.force && existsSync(join(dir, FILES.caCert))) {
    throw new VigilError(
      'CONFIG_INVALID',
      `${join(dir, FILES.caCert)} exists: a new CA would orphan every enrolled device (use --force to replace it)`,
    );
  }
  const caKeys = await newKeyPair(EC_P256);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: 'CN=Vigil development device CA, O=Vigil',
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    signingAlgorithm: ECDSA_SHA256,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const gatewayKeys = await newKeyPair(EC_P256);
  const gateway = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: 'CN=localhost, O=Vigil gateway',
    issuer: ca.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + GATEWAY_DAYS * DAY_MS),
    signingAlgorithm: ECDSA_SHA256,
    publicKey: gatewayKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
    ],
  });
  const files: IssuingPki = {
    caCertPem: ca.toString('pem'),
    caKeyPem: await privateKeyPem(caKeys.privateKey),
    gatewayCertPem: gateway.toString('pem'),
    gatewayKeyPem: await privateKeyPem(gatewayKeys.privateKey),
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, FILES.caCert), `${files.caCertPem}\n`);
  writeSecret(join(dir, FILES.caKey), files.caKeyPem);
  writeFileSync(join(dir, FILES.gatewayCert), `${files.gatewayCertPem}\n`);
  writeSecret(join(dir, FILES.gatewayKey), files.gatewayKeyPem);
  return files;
}

/** Writes a private key readable by its owner only (the mode is set again in case the file already existed). */
export function writeSecret(path: string, pem: string): void {
  writeFileSync(path, pem.endsWith('\n') ? pem : `${pem}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * Reads the PKI `initPki` wrote: all four files to issue certificates, or with `verifyOnly` the three a gateway needs
 * (it verifies devices against ca.crt and serves gateway.crt; it never issues, so the CA's key stays off its host).
 *
 * @example
 * const issuing = loadPki('.vigil/pki');                       // vigil devices enroll: ca.key required
 * const { caCertPem } = loadPki('/var/run/secrets/vigil/pki', { verifyOnly: true }); // a gateway: no ca.key read
 */
export function loadPki(dir: string): IssuingPki;
export function loadPki(dir: string, options: LoadPkiOptions & { readonly verifyOnly: true }): PkiFiles;
export function loadPki(dir: string, options?: LoadPkiOptions): PkiFiles;
export function loadPki(dir: string, options: LoadPkiOptions = {}): PkiFiles {
  const read = (name: string, hint: string): string => {
    const path = join(dir, name);
    if (!existsSync(path)) throw new VigilError('CONFIG_INVALID', `${path} is missing: ${hint}`);
    return readFileSync(path, 'utf8');
  };
  const init = `run vigil pki init (--pki-dir ${dir})`;
  const trust = {
    caCertPem: read(FILES.caCert, init),
    gatewayCertPem: read(FILES.gatewayCert, init),
    gatewayKeyPem: read(FILES.gatewayKey, init),
  };
  if (options.verifyOnly) return trust;
  const issuing = `issuing device certificates needs the device CA's private key (${init}, or run this where ca.key is kept)`;
  return { ...trust, caKeyPem: read(FILES.caKey, issuing) };
}

/**
 * Issues a device certificate and its new key, signed by the PKI's CA.
 *
 * @example
 * const { certPem, keyPem, info } = await issueDeviceCertificate(loadPki(dir), 'wearable-0001', { days: 30 });
 * // info.fingerprint is the JWS kid; certPem names urn:vigil:device:wearable-0001
 */
export async function issueDeviceCertificate(
  pki: Pick<PkiFiles, 'caCertPem' | 'caKeyPem'>,
  deviceId: string,
  options: { days?: number; algorithm?: SigningAlgorithm; now?: number } = {},
): Promise<IssuedDeviceCertificate> {
  assertDeviceId(deviceId);
  const days = options.days ?? 30;
  if (!Number.isFinite(days) || days <= 0 || days > 3650) {
    throw new VigilError('CONFIG_INVALID', `--days must be between 1 and 3650 (got ${days})`);
  }
  const algorithm = options.algorithm ?? 'ES256';
  if (!SIGNING_ALGORITHMS.includes(algorithm)) {
    throw new VigilError('CONFIG_INVALID', `--algorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  }
  const now = options.now ?? Date.now();
  if (!pki.caKeyPem) {
    // A PKI loaded to verify (a gateway's) cannot issue: say so rather than fail deep in key import.
    throw new VigilError('CONFIG_INVALID', `issuing a device certificate needs the device CA's private key (ca.key)`);
  }
  // The same object (caSignerOf caches per object), its key now known to be there.
  const signer = caSignerOf(pki as Pick<IssuingPki, 'caCertPem' | 'caKeyPem'>);
  const ca = signer.certificate;
  const caKey = await signer.key;
  const keys = await newKeyPair(algorithm === 'EdDSA' ? { name: 'Ed25519' } : EC_P256);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${deviceId}, O=Vigil device`,
    issuer: ca.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + days * DAY_MS),
    signingAlgorithm: ECDSA_SHA256,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `${DEVICE_URI_PREFIX}${deviceId}` }]),
      await signer.authorityKeyId,
    ],
  });
  const certPem = cert.toString('pem');
  const parsed = new X509Certificate(certPem);
  return {
    certPem,
    keyPem: await privateKeyPem(keys.privateKey),
    info: {
      fingerprint: fingerprintOf(parsed),
      pem: certPem,
      not_before: cert.notBefore.getTime(),
      not_after: cert.notAfter.getTime(),
      algorithm,
    },
  };
}
