/**
 * Shared pieces of the micro-benchmarks: realistic inputs for every stage (the fleet simulator's records run through
 * the real operators up to that stage), and one timing routine so every benchmark reports the same figures.
 *
 * Every micro-benchmark prints one JSON line per case: {bench, case, batch, records, records_per_s, ns_per_record,
 * cpu_ns_per_record, ...}. `ns_per_record` is the median over trials of wall time per record; `records_per_s` is
 * its inverse. Not tests: the numbers depend on the machine and on what else runs on it.
 */
import { performance } from 'node:perf_hooks';
import { createEnvelopeDecoder } from '../../adapters/avro/decoder.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { InProcessSchemaRegistry } from '../../adapters/registry/in-process.ts';
import type { CheckedEvent, ScoredEvent } from '../../operators/types.ts';
import vitals from '../../pipelines/vitals.ts';
import { systemClock } from '../../runtime/clock.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { OperatorContext } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import { decodeBatch, type RawRecord } from '../../runtime/source.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import type { Envelope } from '../../schemas/types.ts';
import { recordBytes, simulateFleet } from '../../simulator/simulate.ts';

export interface Case {
  readonly bench: string;
  readonly case: string;
  readonly batch: number;
  readonly records: number;
  readonly records_per_s: number;
  readonly ns_per_record: number;
  readonly cpu_ns_per_record: number;
  readonly [extra: string]: unknown;
}

export function report(c: Case): void {
  process.stdout.write(`${JSON.stringify(c)}\n`);
}

/**
 * Times `run(batchIndex)` over `batches` batches of `batchSize` records per trial, after `warmup` batches; returns the
 * median trial (wall and CPU per record).
 */
export async function measure(
  bench: string,
  name: string,
  batchSize: number,
  run: (i: number) => unknown,
  options: { warmup?: number; batches?: number; trials?: number } = {},
): Promise<Case> {
  const warmup = options.warmup ?? 20;
  const batches = options.batches ?? 50;
  const trials = options.trials ?? 7;
  let i = 0;
  for (let w = 0; w < warmup; w++) await run(i++);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let t = 0; t < trials; t++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let b = 0; b < batches; b++) await run(i++);
    const ms = performance.now() - t0;
    const used = process.cpuUsage(c0);
    wall.push((ms * 1e6) / (batches * batchSize));
    cpu.push(((used.user + used.system) * 1e3) / (batches * batchSize));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const ns = median(wall);
  return {
    bench,
    case: name,
    batch: batchSize,
    records: trials * batches * batchSize,
    records_per_s: Math.round(1e9 / ns),
    ns_per_record: Math.round(ns),
    cpu_ns_per_record: Math.round(median(cpu)),
  };
}

export interface StageInputs {
  /** Framed records as on the raw topic (one partition, offset order). */
  readonly raw: RawRecord[];
  readonly decoder: ReturnType<typeof createEnvelopeDecoder>;
  readonly envelopes: InFlight<Envelope>[];
  readonly checked: InFlight<CheckedEvent>[];
  readonly scored: InFlight<ScoredEvent>[];
  readonly context: OperatorContext;
}

/** `events` simulator records and what each stage of the vitals chain makes of them (one partition). */
export async function stageInputs(events: number): Promise<StageInputs> {
  const registry = new InProcessSchemaRegistry();
  const envelope = loadSchemaRepo().get('envelope');
  const schemaId = registry.idOf(envelope.spec.subject, envelope.newest.schema) as number;
  const raw: RawRecord[] = [];
  for (const record of simulateFleet({ devices: 1000, events, seed: 'micro', schemaId })) {
    raw.push({
      topic: TOPICS.raw,
      partition: 0,
      offset: raw.length,
      key: record.key,
      value: recordBytes(record, schemaId, envelope.newest.type),
      headers: [],
    });
  }
  const decoder = createEnvelopeDecoder(registry);
  const batch = await decodeBatch(raw, decoder, Date.now());
  const context: OperatorContext = {
    pipeline: 'vitals',
    clock: systemClock,
    state: new MemoryStateBackend({ clock: systemClock }),
    log: silentLogger,
    models: new OnnxModelStore(),
  };
  // Simulator records are not gateway traffic: the chain without the gateway-provenance check (validate.bench.ts
  // measures that check on gateway-shaped records).
  const [validateOp, dedupeOp, scoreOp] = acceptUngated(vitals).operators;
  for (const op of [validateOp, dedupeOp, scoreOp]) await op?.open?.(context);
  const checked = (await validateOp!.process(batch.records)).out as InFlight<CheckedEvent>[];
  const unique = (await dedupeOp!.process(checked)).out as InFlight<CheckedEvent>[];
  const scored = (await scoreOp!.process(unique)).out as InFlight<ScoredEvent>[];
  await scoreOp?.close?.();
  return { raw, decoder, envelopes: batch.records as InFlight<Envelope>[], checked, scored, context };
}

/** The i-th batch of `size` records, cycling through `items`. */
export function slice<T>(items: readonly T[], size: number, i: number): T[] {
  const count = Math.floor(items.length / size);
  const from = (i % Math.max(1, count)) * size;
  return items.slice(from, from + size);
}
