/**
 * Speed of `validate` on a typical batch (run: `vigil bench micro --only validate`, or `node --import tsx bench/micro/validate.bench.ts`). Prints ns per record
 * at batch size 1,000 (best and median of 15 trials), twice: the fixture mix without gateway provenance, and the same
 * mix as a gateway writes it (signed_event, integrity_hash) through `validate({ requireGateway: true })`, whose extra
 * per-record work is one SHA-256 of the JWS and one base64url decode + JSON.parse of its payload. Not a test: numbers
 * depend on the machine.
 */
import { performance } from 'node:perf_hooks';
import type { CheckedEvent } from '../../operators/types.ts';
import { validate } from '../../operators/validate/index.ts';
import { ResultsBuilder } from '../../runtime/operator.ts';
import type { Envelope } from '../../schemas/types.ts';
import { envelope, inFlight, T0, ulidFor } from '../../test/fixtures/envelope.ts';
import { gatewayEnvelope } from '../../test/fixtures/gateway-event.ts';

const BATCH = 1000;
const ROUNDS = 200;
const TRIALS = 15;

/** A realistic mix: mostly vital signs, some device status, a few late or skewed, ~2% invalid. */
function typicalBatch(round: number, make: typeof envelope = envelope): ReturnType<typeof inFlight<Envelope>>[] {
  return Array.from({ length: BATCH }, (_, i) => {
    const n = round * BATCH + i;
    const base = { event_id: ulidFor(n), device_id: `dev-${n % 1000}`, sequence: Math.floor(n / 1000) };
    const observed_at = i % 97 === 0 ? T0 - 3_600_000 : T0; // ~1% late arrivals (flagged)
    const e: Envelope =
      i % 20 === 0
        ? make({ ...base, nonce: `n-${n}`, observed_at, status: { battery_pct: 40 + (i % 60) } })
        : make({
            nonce: `n-${n}`,
            ...base,
            observed_at,
            vitals: { pulse: i % 50 === 1 ? 500 : 50 + (i % 80), spo2: 90 + (i % 10) },
          });
    return inFlight(e, n);
  });
}

/** Baseline: the same output allocation with no checks, to separate the checks' cost from the records'. */
const passThrough = {
  process(batch: ReturnType<typeof typicalBatch>) {
    const results = new ResultsBuilder<CheckedEvent>();
    for (const record of batch) results.pass(record.origin, { envelope: record.value, flags: [] });
    return results;
  },
};

function run(name: string, op: ReturnType<typeof validate>, batches: ReturnType<typeof typicalBatch>[]): void {
  let passed = 0;
  for (let r = 0; r < 500; r++) passed += (op.process(batches[r % batches.length]!) as { out: unknown[] }).out.length;

  // Trials of 200 batches each: the minimum is the machine's best, the median what a busy one gives.
  const trials: number[] = [];
  const cpuTrials: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    for (let r = 0; r < ROUNDS; r++)
      passed += (op.process(batches[r % batches.length]!) as { out: unknown[] }).out.length;
    trials.push(((performance.now() - started) * 1e6) / (ROUNDS * BATCH));
    const used = process.cpuUsage(cpu);
    cpuTrials.push(((used.user + used.system) * 1e3) / (ROUNDS * BATCH));
  }
  trials.sort((a, b) => a - b);
  cpuTrials.sort((a, b) => a - b);
  const baseline: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const started = performance.now();
    for (let r = 0; r < ROUNDS; r++) passed += passThrough.process(batches[r % batches.length]!).out.length * 0;
    baseline.push(((performance.now() - started) * 1e6) / (ROUNDS * BATCH));
  }
  baseline.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      bench: 'validate',
      case: name,
      batch: BATCH,
      records: TRIALS * ROUNDS * BATCH,
      records_per_s: Math.round(1e9 / trials[Math.floor(TRIALS / 2)]!),
      ns_per_record: Math.round(trials[Math.floor(TRIALS / 2)]!),
      ns_per_record_min: Math.round(trials[0]!),
      ns_per_record_median: Math.round(trials[Math.floor(TRIALS / 2)]!),
      cpu_ns_per_record_median: Math.round(cpuTrials[Math.floor(TRIALS / 2)]!),
      pass_through_baseline_ns_min: Math.round(baseline[0]!),
      passed_fraction: Number((passed / ((TRIALS * ROUNDS + 500) * BATCH)).toFixed(3)),
    }),
  );
}

run(
  'fixture mix (2% invalid, 1% late)',
  validate(),
  Array.from({ length: 20 }, (_, r) => typicalBatch(r)),
);
run(
  'gateway mix (requireGateway: the same mix, signed and stamped)',
  validate({ requireGateway: true }),
  Array.from({ length: 20 }, (_, r) => typicalBatch(r, (o) => gatewayEnvelope(o))),
);
