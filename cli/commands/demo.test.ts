/**
 * `npm start`'s chain, embedded and small: a small fleet through the in-process gateway (mTLS, signed events, its
 * fault drills), the vitals pipeline on what the gateway accepted, the alerts pipeline chained on what it wrote plus
 * the simulator's scripted ward. The gateway's records equal the fleet's truth; what it accepted is exactly what the
 * pipeline consumed, and the pipeline's emitted and dead letters are the truth of those events; the ward's alerts,
 * counted from ClickHouse as the summary prints them, equal its truth by rule and band; the --json line keeps every
 * vitals key and adds `gateway` and `alerts`. The gateway's rejection records land in `gateway_rejections`, by reason
 * as its report counts them. And `vigil demo` keeps its evidence: after one, an auditor's `vigil trace <event_id>
 * --verify` with the demo's PKI and identity log answers the four questions and verifies.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openClickHouseStore } from '../../adapters/clickhouse/index.ts';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { silentLogger } from '../../runtime/log.ts';
import { runEmbeddedPipeline } from '../../runtime/runners/embedded-run.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { alertScenarioTruth } from '../../simulator/alerts.ts';
import { gatewayJson, linksJson, runJson, summariseLink } from '../summary.ts';
import { wardInputs, wardTruth } from './demo.ts';
import type { DemoModels } from './demo-models.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Rejection rows in the store, by reason, in the report's shape. */
async function landedRejections(store: Pick<ClickHouseStore, 'query'>): Promise<Record<string, number>> {
  const rows = await store.query<{ reason: string; n: string | number }>(
    'SELECT reason, count() AS n FROM gateway_rejections GROUP BY reason ORDER BY reason',
  );
  return Object.fromEntries(rows.map((r) => [r.reason, Number(r.n)]));
}

const pipeline = (name: string) => fileURLToPath(new URL(`../../pipelines/${name}.ts`, import.meta.url));

describe('vigil demo: the fleet through the gateway, vitals, then alerts chained on its topics and the scripted ward', () => {
  it('accounts for every event from device to alert, and adds gateway and alerts keys to --json without touching the others', async () => {
    const vitals = await loadPipeline(pipeline('vitals'));
    const alerts = await loadPipeline(pipeline('alerts'));
    const dir = await mkdtemp(join(tmpdir(), 'vigil-demo-'));
    try {
      await runEmbeddedPipeline(
        vitals,
        {
          dataDir: dir,
          append: false,
          batchSize: 500,
          simulation: { devices: 40, events: 3000 },
          gateway: {},
          log: silentLogger,
          downstream: [{ definition: alerts, more: wardInputs }],
        },
        async ({ result, store, downstream, gateway }) => {
          // The gateway: its rejection records and what it accepted are the fleet's truth, drills included.
          expect(gateway?.matchesTruth).toBe(true);
          expect(gateway?.rejected).toEqual(gateway?.truth.rejected);
          for (const reason of ['NONCE_REPLAYED', 'MALFORMED', 'CERT_EXPIRED', 'DEVICE_REVOKED', 'RATE_LIMITED']) {
            expect(gateway?.rejected[reason], reason).toBeGreaterThan(0);
          }
          // Everything the gateway accepted, and nothing else, reached the pipeline: each once (no duplicates left for
          // dedupe), the valid ones emitted, the rest dead letters with the reason the truth gives.
          const v = result.accounting;
          expect(v.consumed).toBe(gateway?.accepted);
          expect(v.consumed).toBe(v.emitted + v.deadLettered + v.duplicates);
          expect(v.duplicates).toBe(0);
          expect(v.emitted).toBe(gateway?.truth.worker.valid);
          expect(result.deadLetters).toEqual(gateway?.truth.worker.deadLetters);
          // Each rejection record landed once, in gateway_rejections, as the report counts them by reason.
          expect(gateway?.rejections).toHaveLength(Object.values(gateway?.rejected ?? {}).reduce((a, b) => a + b, 0));
          expect(await landedRejections(store)).toEqual(gateway?.rejected);

          expect(downstream).toHaveLength(1);
          const link = await summariseLink(downstream[0]!, store, wardTruth());
          // What the vitals run wrote to the two topics is what the alerts run read from them.
          expect(link.report.chained).toEqual({
            [TOPICS.inferences]: result.stored.inferences,
            [TOPICS.normalised]: result.stored.normalised_events,
          });
          const truth = alertScenarioTruth();
          const ward = truth.records + truth.inferences.live + truth.inferences.shadow;
          const a = link.report.result.accounting;
          expect(a.consumed).toBe(ward + (result.stored.inferences ?? 0) + (result.stored.normalised_events ?? 0));
          expect(a.consumed).toBe(a.emitted + a.deadLettered + a.duplicates);
          expect(a.deadLettered).toBe(0);

          const scenario = link.alerts?.scenario;
          expect(scenario?.raised).toEqual(wardTruth().expected);
          expect(scenario?.matches_truth).toBe(true);
          expect(scenario?.suppressed).toBeGreaterThan(0);

          const main = runJson(vitals, result, store.location, gateway);
          const line = linksJson(main, [link]) as Record<string, unknown> & { alerts: Record<string, unknown> };
          for (const [k, v] of Object.entries(main)) expect(line[k]).toEqual(v);
          for (const key of ['consumed', 'emitted', 'dead_lettered', 'duplicates', 'dlq', 'stored', 'balanced']) {
            expect(line).toHaveProperty(key);
          }
          expect(line.gateway).toEqual(gatewayJson(gateway!));
          expect(line.gateway).toMatchObject({ accepted: v.consumed, matches_truth: true });
          expect(line.alerts).toMatchObject({ pipeline: 'alerts@2', balanced: true, suppressed: expect.any(Number) });
          for (const [rule, bands] of Object.entries(wardTruth().expected)) {
            for (const [band, n] of Object.entries(bands)) {
              expect(
                (line.alerts.raised as Record<string, Record<string, number>>)[rule]?.[band],
              ).toBeGreaterThanOrEqual(n);
            }
          }
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('keeps the gateway evidence beside the store, so an auditor re-verifies a stored event with vigil trace --verify', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigil-demo-trace-'));
    const vigil = async (args: string[], env: Record<string, string> = {}) =>
      run(process.execPath, ['bin/vigil.js', ...args], {
        cwd: ROOT,
        env: { ...process.env, VIGIL_PRINCIPALS: join(dir, 'principals.json'), ...env },
        maxBuffer: 16 << 20,
      });
    try {
      // What an earlier demo left is emptied first, like the store.
      await mkdir(join(dir, 'pki'), { recursive: true });
      await writeFile(join(dir, 'pki', 'stale.crt'), 'stale');
      await mkdir(join(dir, 'control'), { recursive: true });
      await writeFile(join(dir, 'control', 'device-identity.jsonl'), '{"key":"stale","value":{}}\n');
      await writeFile(join(dir, 'control', 'model-rollouts.jsonl'), '{"key":"stale","value":{}}\n');

      const demo = await vigil([
        'demo',
        '--devices',
        '50',
        '--events',
        '3000',
        '--data-dir',
        join(dir, 'clickhouse'),
        '--json',
      ]);
      const line = JSON.parse(demo.stdout.trim().split('\n').at(-1) ?? '') as {
        consumed: number;
        emitted: number;
        dead_lettered: number;
        duplicates: number;
        gateway: { matches_truth: boolean; rejected: Record<string, number> };
        models: DemoModels;
      };
      expect(line.gateway.matches_truth).toBe(true);
      // The two models and their rollouts, from a fresh registry: shadow beside live on the same events.
      expect(line.models.routing).toEqual({
        news2: { live: '1.0.0', canary: null, shadows: [] },
        deterioration: { live: '1.0.0', canary: null, shadows: ['1.1.0'] },
      });
      const scored = line.models.inferences;
      expect(scored['news2@1.0.0']).toEqual({ live: expect.any(Number) });
      expect(scored['deterioration@1.1.0']).toEqual({ shadow: scored['deterioration@1.0.0']?.['live'] });
      expect(line.models.calibration.map((c) => `${c.version}/${c.rollout}`)).toEqual(['1.0.0/live', '1.1.0/shadow']);
      for (const c of line.models.calibration) {
        // Every inference of the run has a closed outcome window (the outcomes run one horizon past the simulation).
        expect(c.n).toBe(scored[`${c.model}@${c.version}`]?.[c.rollout]);
        expect(c.brier).toBeGreaterThan(0);
        expect(c.brier).toBeLessThan(0.25);
      }
      const rollouts = await readFile(join(dir, 'control', 'model-rollouts.jsonl'), 'utf8');
      expect(rollouts).not.toContain('stale');
      const kinds = rollouts
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { value: { kind: string; actor: string } }).value);
      expect(kinds.map((k) => k.kind)).toEqual([
        'added',
        'approved',
        'rollout',
        'added',
        'approved',
        'rollout',
        'added',
        'rollout',
      ]);
      expect(kinds.every((k) => k.actor.length > 0)).toBe(true);
      expect(line.consumed).toBe(line.emitted + line.dead_lettered + line.duplicates);
      const log = await readFile(join(dir, 'control', 'device-identity.jsonl'), 'utf8');
      expect(log).not.toContain('stale');
      // 50 devices enrolled and assigned, plus the drills' fault devices and their revocation and suspension.
      expect(log.trim().split('\n').length).toBeGreaterThan(100);
      await expect(readFile(join(dir, 'pki', 'stale.crt'))).rejects.toMatchObject({ code: 'ENOENT' });

      const store = openClickHouseStore({ mode: 'embedded', path: join(dir, 'clickhouse') });
      let eventId: string;
      try {
        expect(await landedRejections(store)).toEqual(line.gateway.rejected);
        const [row] = await store.query<{ event_id: string }>(
          'SELECT event_id FROM normalised_events ORDER BY event_id LIMIT 1',
        );
        eventId = row?.event_id ?? '';
      } finally {
        await store.close();
      }
      expect(eventId).toMatch(/^[0-9A-Z]{26}$/);

      // An auditor (README, "Principals"), and a signed checkpoint for the trace's inclusion check.
      const keys = join(dir, 'audit-keys');
      const audit = ['--audit-dir', join(dir, 'audit'), '--audit-hash-key', join(keys, 'hash.key')];
      await vigil(['audit', 'keygen', '--key-dir', keys]);
      const added = await vigil(['principals', 'add', 'auditor-1', '--role', 'auditor', '--site', '*', ...audit]);
      const token = /vgl_\S+/.exec(added.stdout)?.[0] ?? '';
      expect(token).not.toBe('');

      const trace = (controlDir: string) =>
        vigil(
          [
            'trace',
            eventId,
            '--verify',
            '--json',
            '--data-dir',
            join(dir, 'clickhouse'),
            '--pki-dir',
            join(dir, 'pki'),
            '--control-dir',
            controlDir,
            '--audit-pub',
            join(keys, 'checkpoint.pub'),
            ...audit,
          ],
          { VIGIL_TOKEN: token },
        );
      // A first look (an audited read, so "who saw it" has an answer), then the checkpoint that signs it in.
      const look = await vigil(['trace', eventId, '--json', '--data-dir', join(dir, 'clickhouse'), ...audit], {
        VIGIL_TOKEN: token,
      });
      expect(JSON.parse(look.stdout)).toMatchObject({ event_id: eventId });
      await vigil(['audit', 'checkpoint', '--dir', join(dir, 'audit'), '--key', join(keys, 'checkpoint.key')]);
      const report = JSON.parse((await trace(join(dir, 'control'))).stdout) as Record<string, never> & {
        sender: Record<string, unknown>;
        raw: Record<string, unknown>;
        transformations: unknown[];
        inferences: unknown[];
        viewed_by: unknown[];
        verified: boolean;
      };
      // Who sent it, what transformed it, which model scored it, who saw it: all answered, and verified.
      expect(report.event_id).toBe(eventId);
      expect(report.sender).toMatchObject({ gateway: 'gw-embedded', signature_verified: true });
      expect(report.sender.certificate_fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(report.raw).toMatchObject({ hash_verified: true });
      expect(report.transformations.length).toBeGreaterThan(0);
      expect(report.inferences.length).toBeGreaterThan(0);
      expect(report.viewed_by).toEqual([expect.objectContaining({ principal: 'auditor-1', role: 'auditor' })]);
      expect(report.verified).toBe(true);

      // Without the demo's identity log the same signature cannot be re-checked: the evidence is what verifies it.
      const elsewhere = join(dir, 'empty-control');
      await mkdir(elsewhere);
      const refused = await trace(elsewhere).then(
        () => null,
        (error: { code: number; stdout: string }) => error,
      );
      expect(refused?.code).toBe(1);
      expect(JSON.parse(refused?.stdout ?? '{}')).toMatchObject({
        sender: { signature_verified: false },
        verified: false,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
