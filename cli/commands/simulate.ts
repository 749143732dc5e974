/**
 * `vigil simulate`: writes a simulated fleet's gateway output to a file the `--input` sources read (NDJSON or an
 * Avro container file), plus `<out>.truth.json`: the exact counts the pipeline must reach on that file. With
 * `--gateway URL`, drives the fleet through a running `vigil gateway` instead (simulator/gateway-drive.ts): enrols it
 * on the device-identity log the gateway follows, signs and sends over mutual TLS, runs the gateway's fault drills,
 * and prints the truth (what the gateway must have accepted and recorded, by reason) beside its answers.
 *
 * @example
 * vigil simulate --devices 1000 --events 100000 --seed 7 --duplicates 0.05 --malformed 0.01 --out fleet.ndjson
 * vigil run pipelines/vitals.ts --embedded --input fleet.ndjson --json   # compare with fleet.ndjson.truth.json
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { extname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { writeAvroContainer } from '../../adapters/file/avro-container.ts';
import { envelopeToNdjson } from '../../adapters/file/ndjson.ts';
import { loadPki } from '../../identity/pki.ts';
import type { SigningAlgorithm } from '../../identity/types.ts';
import { writeOutcomesFile } from '../../pipelines/outcomes.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { Envelope } from '../../schemas/types.ts';
import { driveGateway } from '../../simulator/gateway-drive.ts';
import { produceSimulation, simulationOutcomes } from '../../simulator/kafka.ts';
import {
  type OutputFormat,
  REPLAY_WINDOW,
  resolveSimulateOptions,
  type SimulatedRecord,
  type SimulateOptions,
  simulateFleet,
  TruthTally,
} from '../../simulator/simulate.ts';
import { deviceIdentityLog } from './devices.ts';

interface SimulateFlags {
  devices: string;
  events: string;
  seed: string;
  out?: string;
  kafka?: boolean;
  format?: string;
  biasedFirmware: string;
  biasFraction?: string;
  duplicates?: string;
  malformed?: string;
  replays?: string;
  timestamps: string;
  start?: string;
  json?: boolean;
  outcomes?: boolean;
  gateway?: string;
  pkiDir: string;
  controlDir?: string;
  fleetDir?: string;
  algorithm: string;
  skewMs?: string;
  devicePrefix?: string;
  drills: boolean;
  settleMs: string;
}

function integerFlag(name: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
    throw new VigilError('CONFIG_INVALID', `--${name} must be a non-negative integer`);
  }
  return n;
}

function rateFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new VigilError('CONFIG_INVALID', `--${name} must be a number between 0 and 1`);
  }
  return n;
}

/** A broken JSON line for a raw-byte fault: a proper prefix of the envelope's line (never valid JSON). */
export function brokenJsonLine(source: Envelope, cut: number): string {
  const line = envelopeToNdjson(source);
  return line.slice(0, 1 + Math.floor(cut * (line.length - 2)));
}

/** Builds the simulator options a set of flags asks for. */
export function simulateOptionsFromFlags(flags: SimulateFlags): SimulateOptions {
  let startTime: number | undefined;
  if (flags.start !== undefined) {
    startTime = Date.parse(flags.start);
    if (!Number.isFinite(startTime)) throw new VigilError('CONFIG_INVALID', '--start must be an ISO-8601 date-time');
  }
  const options: SimulateOptions = {
    devices: integerFlag('devices', flags.devices),
    events: integerFlag('events', flags.events),
    seed: /^\d+$/.test(flags.seed) && Number.isSafeInteger(Number(flags.seed)) ? Number(flags.seed) : flags.seed,
    biasedFirmware: flags.biasedFirmware === 'none' ? null : flags.biasedFirmware,
    biasFraction: rateFlag('bias-fraction', flags.biasFraction),
    duplicateRate: rateFlag('duplicates', flags.duplicates),
    malformedRate: rateFlag('malformed', flags.malformed),
    replayRate: rateFlag('replays', flags.replays),
    startTime,
  };
  resolveSimulateOptions(options);
  return options;
}

export interface SimulateFileResult {
  readonly out: string;
  readonly truthFile: string;
  readonly format: Exclude<OutputFormat, 'kafka'>;
  readonly summary: ReturnType<TruthTally['summary']>;
}

/** Writes a simulated run to `out` in `format` and its truth sidecar. */
export async function simulateToFile(
  options: SimulateOptions,
  out: string,
  format: Exclude<OutputFormat, 'kafka'>,
  timestamps: 'epoch' | 'iso' = 'epoch',
): Promise<SimulateFileResult> {
  const resolved = resolveSimulateOptions(options);
  const tally = new TruthTally(format);
  const records = (): Generator<SimulatedRecord> => simulateFleet(resolved);
  if (format === 'ndjson') {
    await pipeline(Readable.from(ndjsonChunks(records(), tally, timestamps)), createWriteStream(out));
  } else {
    // Deterministic sync marker: same options, same file bytes.
    const syncMarker = createHash('sha256')
      .update(`vigil-sim/${String(resolved.seed)}/avro-sync`)
      .digest()
      .subarray(0, 16);
    await writeAvroContainer(out, avroEnvelopes(records(), tally), { syncMarker });
  }
  const summary = tally.summary();
  const truthFile = `${out}.truth.json`;
  const truth = {
    file: out,
    format,
    options: resolved,
    expected: {
      consumed: summary.records,
      emitted: summary.valid,
      duplicates: summary.duplicates + summary.replays,
      dlq: summary.deadLetters,
    },
    notes: [
      'duplicates counts exact re-sends plus replays: a replay re-sends an envelope 5-60 min old with a new',
      `received_at; a dedupe that still remembers its event id counts it as a duplicate. replaysBeyondWindow of them`,
      `lie left of a ${REPLAY_WINDOW}-wide per-device replay window when they arrive (SEQUENCE_TOO_OLD if the window`,
      'is checked before the event id).',
    ].join(' '),
    summary,
  };
  await writeFile(truthFile, `${JSON.stringify(truth, null, 2)}\n`);
  return { out, truthFile, format, summary };
}

function* ndjsonChunks(
  records: Generator<SimulatedRecord>,
  tally: TruthTally,
  timestamps: 'epoch' | 'iso',
): Generator<string> {
  let chunk = '';
  for (const record of records) {
    tally.add(record);
    chunk +=
      record.kind === 'raw'
        ? `${brokenJsonLine(record.source, record.jsonCut)}\n`
        : `${envelopeToNdjson(record.envelope, { timestamps })}\n`;
    if (chunk.length >= 256 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

function* avroEnvelopes(records: Generator<SimulatedRecord>, tally: TruthTally): Generator<Envelope> {
  for (const record of records) {
    // Raw-byte faults cannot live in a container file: the tally counts them as omitted.
    if (tally.add(record) !== null && record.kind === 'envelope') yield record.envelope;
  }
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description(
      'Write a simulated hospital-at-home fleet (with injected faults) to an NDJSON or Avro file, or to Kafka',
    )
    .option('--out <file>', 'file to write (the truth counts go to <file>.truth.json)')
    .option('--kafka', 'produce to the raw topic on KAFKA_BROKERS instead (schema registered at SCHEMA_REGISTRY_URL)')
    .option('--format <format>', 'ndjson | avro (default: avro for a .avro file, else ndjson)')
    .option('--devices <n>', 'devices in the fleet', '1000')
    .option('--events <n>', 'records to generate, faults included', '100000')
    .option('--seed <seed>', 'same seed, same file', '1')
    .option('--biased-firmware <version>', "firmware whose SpO2 reads low, or 'none'", '5.13.0-rc2')
    .option('--bias-fraction <share>', 'share of devices on that firmware (default 0.12)')
    .option('--duplicates <rate>', 'share of records that are exact re-sends (default 0.03)')
    .option('--malformed <rate>', 'share of records that are malformed (default 0.01)')
    .option('--replays <rate>', 'share of records that replay an older envelope (default 0.005)')
    .option('--timestamps <form>', 'NDJSON timestamps: epoch | iso', 'epoch')
    .option('--start <iso>', 'simulated start time (default 2026-01-05T06:00:00Z)')
    .option('--json', 'print one JSON line with the truth counts')
    .option(
      '--outcomes',
      "also the simulated patients' ground-truth outcomes (model calibration): to the outcomes topic with --kafka " +
        '(the --json line gains "outcomes": {topic, records, byKind}), to <file>.outcomes.ndjson with --out',
    )
    .option(
      '--gateway <url>',
      'drive the fleet through this running vigil gateway over mTLS (instead of --out/--kafka)',
    )
    .option('--pki-dir <dir>', 'gateway: the PKI vigil pki init wrote', '.vigil/pki')
    .option('--control-dir <dir>', "gateway: enrol on the file device-identity log here (the gateway's --control-dir)")
    .option('--fleet-dir <dir>', "gateway: keep the fleet's certificates and keys here; reuse a fleet enrolled before")
    .option('--algorithm <alg>', 'gateway: what the fleet signs with, ES256 or EdDSA', 'ES256')
    .option('--skew-ms <ms>', "gateway: the gateway's skew bound, for the truth (default: vigil gateway's)")
    .option('--device-prefix <prefix>', 'gateway: put before every device id (a fresh fleet against shared state)')
    .option('--no-drills', "gateway: send the simulated stream only, not the gateway's fault drills")
    .option('--settle-ms <ms>', 'gateway: wait after enrolling, for the gateway to read the changes', '3000')
    .action(async (flags: SimulateFlags) => {
      if (flags.gateway) {
        await simulateThroughGateway(flags);
        return;
      }
      const format = flags.format ?? (extname(flags.out ?? '').toLowerCase() === '.avro' ? 'avro' : 'ndjson');
      if (format !== 'ndjson' && format !== 'avro')
        throw new VigilError('CONFIG_INVALID', '--format must be ndjson or avro');
      if (flags.timestamps !== 'epoch' && flags.timestamps !== 'iso') {
        throw new VigilError('CONFIG_INVALID', '--timestamps must be epoch or iso');
      }
      const options = simulateOptionsFromFlags(flags);
      if (Boolean(flags.kafka) === Boolean(flags.out)) {
        throw new VigilError('CONFIG_INVALID', 'give exactly one of --out <file> and --kafka');
      }
      if (flags.kafka) {
        const endpoints = resolveEndpoints();
        const truth = await produceSimulation(options, {
          brokers: endpoints.kafkaBrokers,
          schemaRegistryUrl: endpoints.schemaRegistryUrl,
          topic: TOPICS.raw,
          ...(flags.outcomes ? { outcomesTopic: TOPICS.outcomes } : {}),
        });
        if (flags.json) process.stdout.write(`${JSON.stringify({ topic: TOPICS.raw, ...truth })}\n`);
        else {
          process.stdout.write(
            `produced ${truth.records} records to ${TOPICS.raw}\n` +
              `  valid ${truth.valid}, duplicates ${truth.duplicates}, replays ${truth.replays}, malformed ${truth.malformed}\n`,
          );
        }
        return;
      }
      const result = await simulateToFile(options, flags.out as string, format, flags.timestamps);
      if (flags.outcomes) await writeOutcomesFile(`${result.out}.outcomes.ndjson`, simulationOutcomes(options));
      const s = result.summary;
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ out: result.out, truth: result.truthFile, ...s })}\n`);
        return;
      }
      const dlq = Object.entries(s.deadLetters)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ');
      process.stdout.write(
        `wrote ${s.records} records to ${result.out} (${format})\n` +
          `  valid ${s.valid}, duplicates ${s.duplicates}, replays ${s.replays}, malformed ${s.malformed}` +
          `${s.omitted ? `, ${s.omitted} raw-byte faults left out (Avro files cannot hold them)` : ''}\n` +
          `  expected dead letters: ${dlq || 'none'}\n` +
          `  truth: ${result.truthFile}\n`,
      );
    });
}

/** `--gateway URL`: the fleet through a running gateway; prints the truth beside the answers. */
async function simulateThroughGateway(flags: SimulateFlags): Promise<void> {
  if (flags.out || flags.kafka) throw new VigilError('CONFIG_INVALID', '--gateway excludes --out and --kafka');
  if (flags.algorithm !== 'ES256' && flags.algorithm !== 'EdDSA') {
    throw new VigilError('CONFIG_INVALID', '--algorithm must be ES256 or EdDSA');
  }
  const identityLog = deviceIdentityLog(flags.controlDir ? { controlDir: flags.controlDir } : {});
  const report = await driveGateway({
    url: flags.gateway as string,
    pki: loadPki(flags.pkiDir),
    identityLog,
    simulation: simulateOptionsFromFlags(flags),
    algorithm: flags.algorithm as SigningAlgorithm,
    ...(flags.skewMs ? { limits: { skewMs: integerFlag('skew-ms', flags.skewMs) } } : {}),
    ...(flags.devicePrefix ? { devicePrefix: flags.devicePrefix } : {}),
    drills: flags.drills,
    ...(flags.fleetDir ? { fleetDir: flags.fleetDir } : {}),
    settleMs: integerFlag('settle-ms', flags.settleMs),
    actor: (() => {
      try {
        return userInfo().username || 'simulator';
      } catch {
        return 'simulator';
      }
    })(),
  }).finally(() => identityLog.close());
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ gateway: flags.gateway, ...report })}\n`);
  } else {
    const t = report.truth;
    const refusals = Object.entries(t.rejected)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    process.stdout.write(
      `sent ${t.events} events in ${t.requests} requests to ${flags.gateway}` +
        `${report.reused ? ' (fleet reused)' : ` (${report.enrolled} identity changes enrolled)`}\n` +
        `  truth: accepted ${t.accepted} (alarm lane ${t.lanes.priority}); refused ${refusals || 'none'}\n` +
        `  answers: accepted ${report.observed.accepted}, unanswered ${report.observed.unanswered} — ` +
        `${report.matchesTruth ? 'match the truth' : 'DIFFER from the truth'}\n`,
    );
  }
  if (!report.matchesTruth) process.exitCode = 1;
}
