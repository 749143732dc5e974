/**
 * The vitals pipeline: raw device envelopes -> validate -> dedupe -> score (NEWS2 and deterioration, ONNX, every version
 * the model registry routes) -> detect drift (both models, every routed version against its own reference, so the
 * drift guard can judge a canary or live version: governance/drift-guard.ts) -> the
 * normalised and clinical planes, with dead letters, duplicates and the raw plane recorded on the way.
 *
 * It reads both lanes the gateway writes: the raw topic and the alarm lane (TOPICS.rawPriority: `alarm` events, so a
 * vitals backlog never delays them; co-partitioned with raw, keyed by device, so one device's state stays in one
 * partition across both). It requires gateway provenance: a record without the gateway's evidence, or altered after
 * it, is a dead letter (NOT_FROM_GATEWAY, INTEGRITY_MISMATCH). Runs fed on purpose with ungated records (a replay of
 * pre-gateway data, the simulator straight to Kafka, the drills, the benchmarks) say so: `--accept-ungated`.
 *
 * Run it embedded (no services): `vigil run pipelines/vitals.ts --embedded [--input FILE]` or `npm start`.
 * Run it distributed: `vigil run pipelines/vitals.ts` (workers in one consumer group) and
 * `vigil sink pipelines/vitals.ts` (the ClickHouse sink).
 */
import { dedupe } from '../operators/dedupe/index.ts';
import { detectDrift } from '../operators/detect-drift/index.ts';
import { score } from '../operators/score/index.ts';
import type { ScoredEvent } from '../operators/types.ts';
import { validate } from '../operators/validate/index.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { definePipeline, type SourceSpec } from '../runtime/pipeline.ts';
import type { Envelope } from '../schemas/types.ts';
import { driftHistogramSink, inferenceOutput, normalisedOutput } from './outputs.ts';

const NAME = 'vitals';
/** Bump when the chain's behaviour changes: it is part of every derived record's transformation_version. */
const VERSION = '1';
/**
 * The models every event is scored with, each with the version that runs live while the model registry has no route
 * for it (`vigil models rollout` takes over from there, applied live): the NEWS2 chart, and the deterioration risk
 * model (models/deterioration: a logistic model trained on simulated patients with outcomes).
 */
const NEWS2 = { model: 'news2', version: '1.0.0' } as const;
const DETERIORATION = { model: 'deterioration', version: '1.0.0' } as const;

const raw: SourceSpec<Envelope> = { topic: TOPICS.raw, schema: 'envelope' };
const alarmLane: SourceSpec<Envelope> = { topic: TOPICS.rawPriority, schema: 'envelope' };

export default definePipeline({ name: NAME, version: VERSION, sources: [raw, alarmLane] })
  .pipe(validate({ requireGateway: true }))
  .pipe(dedupe())
  .pipe(score({ models: [NEWS2, DETERIORATION] }))
  .pipe(detectDrift({ models: [NEWS2, DETERIORATION], windowMs: 3_600_000 }))
  .outputs({
    records: [normalisedOutput(`${NAME}@${VERSION}/validate/dedupe`), inferenceOutput()],
    side: { driftHistograms: driftHistogramSink },
  });

export type VitalsRecord = ScoredEvent;
