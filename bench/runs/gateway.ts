/**
 * The gateway run: how many signed events per second one `vigil gateway` process accepts, and its latency from
 * request to `202` at half that rate, beside the machine's bare signature-verification rate for the same algorithm,
 * measured in the same run (issue 10's target: the gateway sustains at least half of the bare rate; p99 to `202`
 * <= 50 ms at half its maximum).
 *
 * 1. A fleet of `devices` is enrolled into a fresh development PKI and a file identity log (identity/service.ts);
 * 2. bare rate: one core verifies pre-signed ES256 JWS events with node:crypto (the same primitive the gateway calls,
 *    nothing else: no TLS, no parsing, no state, no Kafka);
 * 3. one `vigil gateway` (distributed: Redis state, the Kafka raw topic with acks=all on an isolated namespace) is
 *    driven by the load generator (./gateway-load.ts, a process of its own) closed-loop for `seconds`: max accepted
 *    events/s; then paced at half that for `seconds`: request -> `202` p50/p99.
 *
 * Imported by bench/harness.ts (`npm run bench`), or alone (results in bench/results/gateway-latest.{json,md}):
 *
 *   node --import tsx bench/runs/gateway.ts [--devices 200] [--seconds 10] [--batch 50] [--concurrency 64] [--json]
 *     [--no-write]
 */
import { type KeyObject, verify, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FileControlLog } from '../../adapters/file/control-log.ts';
import { initPki } from '../../identity/pki.ts';
import { parseIdentityChange } from '../../identity/records.ts';
import { enrollDevice } from '../../identity/service.ts';
import type { IdentityChange } from '../../identity/types.ts';
import { systemClock } from '../../runtime/clock.ts';
import { freePort, lastJson, REPO, sleep, spawnNode, spawnVigil } from '../lib/proc.ts';
import { machine, revision, versions, writeRunResults } from '../lib/results.ts';
import { createNamespace, deleteNamespace, deleteRedisKeys } from '../lib/stack.ts';
import { type LoadResult, loadFleet, signEvent } from './gateway-load.ts';

export const GATEWAY_RUN_DEFAULTS = { devices: 200, seconds: 10, batch: 50, concurrency: 64 } as const;

export interface GatewayRunOptions {
  readonly devices: number;
  readonly seconds: number;
  /** Signed events per request. */
  readonly batch: number;
  /** Requests in flight in the closed-loop phase. */
  readonly concurrency: number;
  readonly log: (line: string) => void;
}

export interface GatewayRunResult {
  readonly algorithm: 'ES256';
  /** One core, node:crypto verify of pre-signed JWS events (events/s). */
  readonly bare_verify_per_s: number;
  readonly devices: number;
  readonly batch: number;
  readonly max: LoadResult;
  readonly paced: LoadResult;
  /** max.events_per_s / bare_verify_per_s (target >= 0.5). */
  readonly ratio_to_bare: number;
}

/** Events/s one core verifies: the gateway's own primitive (ES256 over the JWS signing input), nothing around it. */
export function bareVerifyRate(fleetDir: string, events = 20_000): number {
  const fleet = loadFleet(fleetDir);
  const keys = new Map<string, KeyObject>(fleet.map((d) => [d.kid, new X509Certificate(d.cert).publicKey]));
  const now = Date.now();
  const signed = Array.from({ length: events }, (_, i) => {
    const device = fleet[i % fleet.length] as (typeof fleet)[number];
    return { kid: device.kid, jws: signEvent(device, now) };
  });
  const started = performance.now();
  let ok = 0;
  for (const { kid, jws } of signed) {
    const dot = jws.lastIndexOf('.');
    const valid = verify(
      'sha256',
      Buffer.from(jws.slice(0, dot)),
      { key: keys.get(kid) as KeyObject, dsaEncoding: 'ieee-p1363' },
      Buffer.from(jws.slice(dot + 1), 'base64url'),
    );
    if (valid) ok += 1;
  }
  const seconds = (performance.now() - started) / 1000;
  if (ok !== events) throw new Error(`bare verification: ${events - ok} of ${events} signatures failed`);
  return Math.round(events / seconds);
}

async function waitForHealth(port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`the gateway did not report healthy on :${port} within ${timeoutMs} ms`);
}

export async function runGatewayBench(o: GatewayRunOptions): Promise<GatewayRunResult> {
  const work = mkdtempSync(join(tmpdir(), 'vigil-bench-gateway-'));
  const pkiDir = join(work, 'pki');
  const controlDir = join(work, 'control');
  const fleetDir = join(work, 'fleet');
  mkdirSync(controlDir, { recursive: true });
  const pki = await initPki(pkiDir);
  const log = new FileControlLog<IdentityChange>(join(controlDir, 'device-identity.jsonl'), {
    parse: parseIdentityChange,
  });
  o.log(`  gateway: enrolling ${o.devices} devices`);
  // Device ids new to this run: the gateway's replay windows in Redis outlive a run by days (sequenceTtlMs).
  const run = Date.now().toString(36);
  for (let i = 0; i < o.devices; i++) {
    const id = `bench-${run}-${String(i).padStart(4, '0')}`;
    await enrollDevice({ log, pki, actor: 'bench', clock: systemClock }, id, {
      outDir: fleetDir,
      assignment: { patient_ref: `pt-bench-${i}`, site_id: `site-${i % 4}`, consent_context: 'hah-care-v3' },
    });
  }
  await log.close();

  const bare = bareVerifyRate(fleetDir);
  o.log(`  gateway: bare ES256 verification ${bare.toLocaleString('en-GB')}/s on one core`);

  const ns = await createNamespace('gateway');
  const port = await freePort();
  const metricsPort = await freePort();
  const gateway = spawnVigil(
    [
      'gateway',
      '--port',
      String(port),
      '--id',
      'bench-gw',
      '--pki-dir',
      pkiDir,
      '--control-dir',
      controlDir,
      '--metrics-port',
      String(metricsPort),
    ],
    { VIGIL_TOPIC_PREFIX: ns.prefix },
    // VIGIL_BENCH_PROFILE=DIR: a V8 CPU profile of the gateway process, written when it drains (where the time goes).
    process.env.VIGIL_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.VIGIL_BENCH_PROFILE}`] : [],
  );
  try {
    await Promise.race([
      waitForHealth(metricsPort),
      gateway.done.then((e) => {
        throw new Error(`the gateway exited before listening (${e.code ?? e.signal}): ${e.stderr.slice(-2000)}`);
      }),
    ]);
    const load = async (mode: 'max' | 'paced', rate: number): Promise<LoadResult> => {
      const child = spawnNode(
        join(REPO, 'bench', 'runs', 'gateway-load.ts'),
        [
          '--url',
          `https://127.0.0.1:${port}`,
          '--fleet-dir',
          fleetDir,
          '--ca',
          join(pkiDir, 'ca.crt'),
          '--mode',
          mode,
          '--rate',
          String(rate),
          '--seconds',
          String(o.seconds),
          '--batch',
          String(o.batch),
          '--concurrency',
          String(o.concurrency),
        ],
        {},
        ['--import', 'tsx'],
      );
      return lastJson<LoadResult>(`gateway-load --mode ${mode}`, await child.done);
    };
    o.log(`  gateway: closed loop, ${o.concurrency} requests of ${o.batch} events in flight, ${o.seconds} s`);
    const max = await load('max', 0);
    o.log(`  gateway: ${max.events_per_s.toLocaleString('en-GB')} accepted events/s (${max.errors} failed requests)`);
    const half = Math.max(o.batch, Math.round(max.events_per_s / 2));
    o.log(`  gateway: paced at ${half.toLocaleString('en-GB')} events/s for ${o.seconds} s`);
    const paced = await load('paced', half);
    o.log(`  gateway: p50 ${paced.latency_ms.p50} ms, p99 ${paced.latency_ms.p99} ms to 202`);
    return {
      algorithm: 'ES256',
      bare_verify_per_s: bare,
      devices: o.devices,
      batch: o.batch,
      max,
      paced,
      ratio_to_bare: Math.round((max.events_per_s / bare) * 100) / 100,
    };
  } finally {
    gateway.child.kill('SIGTERM');
    await gateway.done.catch(() => undefined);
    await deleteRedisKeys(ns).catch(() => undefined);
    await deleteNamespace(ns).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/** The gateway run's lines of the results markdown. */
export function gatewayMarkdown(g: GatewayRunResult): string[] {
  const f = (x: number | null) => (x === null ? '—' : x.toLocaleString('en-GB', { maximumFractionDigits: 1 }));
  return [
    `gateway (${g.devices} devices, ${g.batch} ES256-signed events per request, HTTP/2 over mutual TLS, Redis state, ` +
      `acks=all to Kafka): ${f(g.max.events_per_s)} accepted events/s closed-loop = ${g.ratio_to_bare.toFixed(2)} x the bare ` +
      `verification rate of one core (${f(g.bare_verify_per_s)}/s; target >= 0.5); paced at ` +
      `${f(g.paced.events_per_s)}/s: request -> 202 p50 ${f(g.paced.latency_ms.p50)} ms, p99 ` +
      `${f(g.paced.latency_ms.p99)} ms (max ${f(g.paced.latency_ms.max)}; target p99 <= 50 ms); failed requests ` +
      `${g.max.errors} + ${g.paced.errors}.`,
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string', default: String(GATEWAY_RUN_DEFAULTS.devices) },
      seconds: { type: 'string', default: String(GATEWAY_RUN_DEFAULTS.seconds) },
      batch: { type: 'string', default: String(GATEWAY_RUN_DEFAULTS.batch) },
      concurrency: { type: 'string', default: String(GATEWAY_RUN_DEFAULTS.concurrency) },
      json: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const date = new Date().toISOString();
  const result = await runGatewayBench({
    devices: Number(values.devices),
    seconds: Number(values.seconds),
    batch: Number(values.batch),
    concurrency: Number(values.concurrency),
    log,
  });
  const doc = { date, machine: machine(), versions: versions(), revision: revision(), gateway: result };
  const md = [`# Vigil gateway run — ${date}`, '', `code ${doc.revision}`, '', ...gatewayMarkdown(result), ''].join(
    '\n',
  );
  if (!values['no-write']) writeRunResults('gateway', date, doc, md);
  process.stdout.write(values.json ? `${JSON.stringify(doc)}\n` : `${md}\n`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
