/**
 * `vigil demo` (what `npm start` runs): the vitals pipeline, embedded, over a simulated fleet of 1,000 devices (50,000
 * records by default) with injected duplicates, replays and malformed records, and one firmware whose SpO2 sensor reads low. No services.
 * The fleet goes through the device gateway (runtime/runners/gateway-source.ts): enrolled into a temporary PKI, each
 * device signs its events and sends them over mutual TLS to a gateway running in-process on loopback, followed by the
 * gateway's own fault drills; only what the gateway accepts reaches the pipeline, and the summary shows the gateway's
 * rejections by reason beside the pipeline's dead letters (`--no-gateway`: the fleet straight onto the source, with the
 * pipeline's gateway-provenance check off for the run, as `vigil run --accept-ungated` does).
 * Then the alerts pipeline, chained in-process on what the vitals run wrote to the normalised and clinical inference
 * topics (runtime/runners/embedded-chain.ts), plus the simulator's scripted ward (simulator/alerts.ts: deteriorating
 * patients, a single red parameter, shadow-only scoring, device alarms and status), whose alerts are known by
 * construction and checked against what the run raised. Ends with a short summary; `--json` prints one final JSON
 * line instead (the vitals keys as ever, and `gateway` and `alerts` keys beside them).
 *
 * The gateway's evidence stays beside the store, emptied at the start of each demo like it: the dev PKI in
 * `<data-dir>/../pki` and the device-identity log in `<data-dir>/../control/device-identity.jsonl`, so `vigil trace
 * <event_id> --verify --pki-dir .vigil/embedded/pki --control-dir .vigil/embedded/control` re-checks an event's
 * signature afterwards; the gateway's rejection records land in the store's `gateway_rejections`.
 */
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import { DEFAULT_EMBEDDED_DIR } from '../../adapters/clickhouse/index.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { createLogger } from '../../runtime/log.ts';
import { DEFAULT_EMBEDDED_BATCH_SIZE, runEmbeddedPipeline } from '../../runtime/runners/embedded-run.ts';
import type { SourceInput } from '../../runtime/runners/embedded-sources.ts';
import { DEVICE_IDENTITY_LOG, type GatewayEvidenceDirs } from '../../runtime/runners/gateway-source.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import { alertScenarioInputs } from '../../simulator/alert-inputs.ts';
import { ALERT_SCENARIO_SITE, alertScenarioTruth } from '../../simulator/alerts.ts';
import { linksJson, printEmbeddedSummary, runJson, type ScenarioTruth, summariseLink } from '../summary.ts';
import { demoModels, printDemoModels, seedDemoModels } from './demo-models.ts';
import { addSimulationOptions, simulationOf } from './run.ts';

const VITALS = fileURLToPath(new URL('../../pipelines/vitals.ts', import.meta.url));
const ALERTS = fileURLToPath(new URL('../../pipelines/alerts.ts', import.meta.url));

/** The scripted ward as records of the alerts pipeline's inference and normalised topics. */
export function* wardInputs(): Generator<SourceInput> {
  for (const r of alertScenarioInputs()) {
    const topic = r.kind === 'inference' ? TOPICS.inferences : TOPICS.normalised;
    yield { topic, key: r.key, value: r.value as unknown as Record<string, unknown> };
  }
}

/** The ward's truth as the summary compares it: alerts opened by rule and band. */
export function wardTruth(): ScenarioTruth {
  const truth = alertScenarioTruth();
  return {
    site: ALERT_SCENARIO_SITE,
    expected: Object.fromEntries(Object.entries(truth.rules).map(([rule, r]) => [rule, r.opened])),
  };
}

/** Where a demo storing in `dataDir` keeps the gateway's evidence: beside the store, in its parent folder. */
export function demoEvidenceDirs(dataDir: string): GatewayEvidenceDirs {
  const parent = dirname(resolve(dataDir));
  return { pkiDir: join(parent, 'pki'), controlDir: join(parent, 'control') };
}

/** Empties what an earlier demo kept (its PKI, its identity log), as the store is emptied: nothing else there. */
export async function clearDemoEvidence(evidence: GatewayEvidenceDirs): Promise<void> {
  await rm(evidence.pkiDir, { recursive: true, force: true });
  await rm(join(evidence.controlDir, DEVICE_IDENTITY_LOG), { force: true });
}

export function registerDemo(program: Command): void {
  const command = program
    .command('demo')
    .description('Run the vitals pipeline embedded over a simulated fleet (no services needed) and summarise it')
    .option('--json', 'print one final JSON line instead of the summary')
    .option('--data-dir <dir>', 'embedded ClickHouse data directory (emptied first)', DEFAULT_EMBEDDED_DIR)
    .option('--no-gateway', 'put the simulated fleet straight onto the source, without the gateway')
    .addOption(
      new Option('--algorithm <alg>', 'what the fleet signs with (through the gateway)')
        .choices(['EdDSA', 'ES256'])
        .default('EdDSA'),
    );
  // 50,000 events by default: through the gateway each costs about 0.4 ms of CPU on the gateway's thread (signing,
  // TLS, verification, stamping) beside the pipeline, plus about 12 ms per device (certificate, handshake): at 100,000
  // that thread alone would need most of a minute (simulator/README.md, "Over the gateway").
  addSimulationOptions(command, { events: 50_000 });
  command.action(async (flags) => {
    const log = createLogger('vigil-vitals');
    const loaded = await loadPipeline(VITALS);
    // Without the gateway nothing carries its evidence: the run says so (one warning, "ungated": true in --json).
    const definition = flags.gateway ? loaded : acceptUngated(loaded, log);
    const alerts = await loadPipeline(ALERTS);
    const scenario = wardTruth();
    const evidence = demoEvidenceDirs(flags.dataDir);
    await clearDemoEvidence(evidence);
    const registry = await seedDemoModels(evidence.controlDir);
    const simulation = simulationOf(flags);
    await runEmbeddedPipeline(
      definition,
      {
        dataDir: resolve(flags.dataDir),
        append: false,
        batchSize: DEFAULT_EMBEDDED_BATCH_SIZE,
        simulation,
        modelRollouts: { kind: 'file', controlDir: evidence.controlDir },
        ...(flags.gateway ? { gateway: { algorithm: flags.algorithm, evidence } } : {}),
        log,
        downstream: [{ definition: alerts, more: wardInputs }],
      },
      async ({ result, store, truth, gateway, downstream }) => {
        const links = [];
        for (const link of downstream) links.push(await summariseLink(link, store, scenario));
        const models = await demoModels(store, registry, simulation);
        if (flags.json) {
          const line = {
            ...linksJson(runJson(definition, result, store.location, gateway), links),
            ...(flags.gateway ? {} : { ungated: true }),
            models,
          };
          process.stdout.write(`${JSON.stringify(line)}\n`);
        } else {
          await printEmbeddedSummary({ definition, result, store, truth, input: null, links, gateway });
          printDemoModels(models, evidence.controlDir, (line) => process.stdout.write(`${line}\n`));
          if (gateway) {
            process.stdout.write(
              `\nThe gateway's evidence is kept for vigil trace <event_id> --verify: --pki-dir ${evidence.pkiDir} ` +
                `--control-dir ${evidence.controlDir} (and its rejections are in the table gateway_rejections).\n`,
            );
          }
        }
      },
    );
  });
}
