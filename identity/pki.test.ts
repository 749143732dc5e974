import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/clock.ts';
import {
  algorithmOf,
  deviceIdOf,
  fingerprintOf,
  initPki,
  issueDeviceCertificate,
  loadPki,
  type PkiFiles,
} from './pki.ts';

const DAY = 86_400_000;
const clock = new ManualClock(Date.UTC(2026, 5, 1));
let dir: string;
let pki: PkiFiles;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vigil-pki-'));
  await initPki(dir, { now: clock.now() });
  pki = loadPki(dir);
});

describe('initPki', () => {
  it('writes a self-signed CA and a gateway certificate it signed, with private keys mode 0600', () => {
    const ca = new X509Certificate(pki.caCertPem);
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(Date.parse(ca.validTo) - clock.now()).toBeGreaterThan(9 * 365 * DAY);
    const gateway = new X509Certificate(pki.gatewayCertPem);
    expect(gateway.ca).toBe(false);
    expect(gateway.checkIssued(ca)).toBe(true);
    expect(gateway.verify(ca.publicKey)).toBe(true);
    expect(gateway.checkHost('localhost')).toBe('localhost');
    expect(gateway.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(gateway.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'gateway.key')).mode & 0o777).toBe(0o600);
  });

  it('refuses to replace an existing CA without force, and replaces it with force', async () => {
    const other = mkdtempSync(join(tmpdir(), 'vigil-pki-'));
    const first = await initPki(other, { now: clock.now() });
    await expect(initPki(other, { now: clock.now() })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const second = await initPki(other, { now: clock.now(), force: true });
    expect(second.caCertPem).not.toBe(first.caCertPem);
    expect(readFileSync(join(other, 'ca.crt'), 'utf8').trim()).toBe(second.caCertPem.trim());
  });

  it('loadPki tells the operator to run vigil pki init when the files are missing', () => {
    const empty = mkdtempSync(join(tmpdir(), 'vigil-pki-'));
    expect(() => loadPki(empty)).toThrow(/run vigil pki init/);
  });

  it('loadPki verifyOnly (a gateway) needs no ca.key and never reads it; issuing still requires it', async () => {
    // A gateway's Secret holds ca.crt, gateway.crt and gateway.key only: the device CA's key is not in its pod.
    const gatewayDir = mkdtempSync(join(tmpdir(), 'vigil-pki-'));
    for (const file of ['ca.crt', 'gateway.crt', 'gateway.key']) copyFileSync(join(dir, file), join(gatewayDir, file));
    const verifying = loadPki(gatewayDir, { verifyOnly: true });
    expect(verifying.caCertPem).toBe(pki.caCertPem);
    expect(verifying.gatewayKeyPem).toBe(pki.gatewayKeyPem);
    expect(verifying).not.toHaveProperty('caKeyPem');
    // Present or not, verifyOnly does not load it.
    expect(loadPki(dir, { verifyOnly: true })).not.toHaveProperty('caKeyPem');
    // Issuing from that folder fails at load, naming the CA's key; and a verifying PKI cannot issue.
    expect(() => loadPki(gatewayDir)).toThrow(
      /ca\.key is missing: issuing device certificates needs the device CA's private key/,
    );
    await expect(issueDeviceCertificate(verifying, 'wearable-0001')).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/needs the device CA's private key/),
    });
    // A gateway still cannot start without what it does need.
    rmSync(join(gatewayDir, 'ca.crt'));
    expect(() => loadPki(gatewayDir, { verifyOnly: true })).toThrow(/ca\.crt is missing: run vigil pki init/);
  });
});

describe('issueDeviceCertificate', () => {
  it.each(['ES256', 'EdDSA'] as const)(
    'issues a %s client certificate naming the device, chained to the CA',
    async (algorithm) => {
      const issued = await issueDeviceCertificate(pki, 'wearable-0001', { algorithm, days: 30, now: clock.now() });
      const cert = new X509Certificate(issued.certPem);
      const ca = new X509Certificate(pki.caCertPem);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.subjectAltName).toBe('URI:urn:vigil:device:wearable-0001');
      expect(cert.subject).toContain('CN=wearable-0001');
      expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth only
      expect(deviceIdOf(issued.certPem)).toBe('wearable-0001');
      expect(algorithmOf(cert)).toBe(algorithm);
      expect(issued.info.algorithm).toBe(algorithm);
      expect(issued.info.not_after).toBe(Date.parse(cert.validTo));
      expect(issued.info.not_before).toBe(Date.parse(cert.validFrom));
      expect(issued.info.not_after - clock.now()).toBe(30 * DAY);
      expect(issued.info.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(issued.info.fingerprint).toBe(cert.fingerprint256.replaceAll(':', '').toLowerCase());
      expect(fingerprintOf(cert.raw)).toBe(issued.info.fingerprint);
      expect(issued.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    },
  );

  it('refuses device ids outside the strict pattern and absurd lifetimes', async () => {
    for (const bad of ['', '-lead', 'a b', 'a/b', 'x'.repeat(65), 'urn:vigil', 'é']) {
      await expect(issueDeviceCertificate(pki, bad, { now: clock.now() })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
      });
    }
    await expect(issueDeviceCertificate(pki, 'ok', { days: 0, now: clock.now() })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('a certificate signed by another CA does not chain to ours', async () => {
    const foreignDir = mkdtempSync(join(tmpdir(), 'vigil-pki-'));
    const foreign = await initPki(foreignDir, { now: clock.now() });
    const issued = await issueDeviceCertificate(foreign, 'intruder', { now: clock.now() });
    const ca = new X509Certificate(pki.caCertPem);
    expect(new X509Certificate(issued.certPem).verify(ca.publicKey)).toBe(false);
  });

  it('signs with the CA of the PKI it is given, even when a cached one came before (same object, other PEMs)', async () => {
    const other = await initPki(mkdtempSync(join(tmpdir(), 'vigil-pki-')), { now: clock.now() });
    const holder = { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem };
    const first = await issueDeviceCertificate(holder, 'cached-1', { now: clock.now() });
    const again = await issueDeviceCertificate(holder, 'cached-2', { now: clock.now() });
    Object.assign(holder, { caCertPem: other.caCertPem, caKeyPem: other.caKeyPem });
    const switched = await issueDeviceCertificate(holder, 'cached-3', { now: clock.now() });
    const ours = new X509Certificate(pki.caCertPem);
    const theirs = new X509Certificate(other.caCertPem);
    for (const issued of [first, again]) {
      expect(new X509Certificate(issued.certPem).verify(ours.publicKey)).toBe(true);
      expect(new X509Certificate(issued.certPem).checkIssued(ours)).toBe(true);
    }
    expect(new X509Certificate(switched.certPem).verify(theirs.publicKey)).toBe(true);
    expect(new X509Certificate(switched.certPem).checkIssued(theirs)).toBe(true);
    expect(new X509Certificate(switched.certPem).verify(ours.publicKey)).toBe(false);
  });

  it.each(['ES256', 'EdDSA'] as const)(
    "Node's TLS 1.3 accepts a %s device certificate as a client certificate and sees the device id",
    async (algorithm) => {
      // Real time here: TLS checks validity against the system clock.
      const issued = await issueDeviceCertificate(pki, 'tls-device', { algorithm });
      const server = createServer({
        cert: pki.gatewayCertPem,
        key: pki.gatewayKeyPem,
        ca: pki.caCertPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      });
      const seen = new Promise<string | undefined>((resolve) =>
        server.on('secureConnection', (socket: TLSSocket) => {
          resolve(deviceIdOf(socket.getPeerX509Certificate() as X509Certificate));
          socket.end();
        }),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      const client = connect({ host: '127.0.0.1', port, ca: pki.caCertPem, cert: issued.certPem, key: issued.keyPem });
      await new Promise<void>((resolve, reject) => {
        client.on('secureConnect', resolve);
        client.on('error', reject);
      });
      expect(client.getProtocol()).toBe('TLSv1.3');
      expect(await seen).toBe('tls-device');
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  );
});
