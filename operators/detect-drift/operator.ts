/**
 * `detect-drift`: partial drift histograms per micro-batch, summed downstream.
 *
 * Every record passes through unchanged: drift never rejects an event. For each call (one micro-batch of one source
 * partition) the operator groups the batch's vital-signs records by (firmware_version, site_id, tumbling event-time
 * window of observed_at) under the configured model and version, bins each monitored feature against the
 * reference's bins, and emits one `driftHistograms` row per group and feature: the bin counts, n, missing and
 * out-of-range counts, and the batch identity (source topic, partition, first and last offset); plus one
 * `_devices` row per group whose bins are a linear-counting sketch of its device ids (summed sketches still count
 * distinct devices, which the verdicts need: see metrics.ts). The per-window histogram is the SUM of these partials
 * across batches and workers (the `drift_reports` view in infra/clickhouse/migrations/0003_drift.sql, or
 * `driftReports` in report.ts).
 *
 * Why partials:
 * - stateless across batches: nothing to lose on a crash, nothing to checkpoint, and N workers that each see a
 *   subset of the devices produce partials that simply add up;
 * - exact under retries: a retried batch yields byte-identical rows (same records, same order, same identity), which
 *   the ClickHouse sink's deterministic batch contract (insert_deduplication_token) and ReplacingMergeTree collapse;
 * - bounded memory: what a call holds and emits is O(groups × (features × bins + sketch buckets)), whatever the batch
 *   or run length;
 * - late data needs no special path: a late event adds to its own window's partial, whenever it comes. A window's
 *   report is final once the watermark passes window end + allowed lateness (`complete` in the view; the watermark
 *   there is the start of the latest window any partial names, a lower bound of the latest observed_at seen).
 *
 * What counts:
 * - only `vital_signs` events; device status, alarms and config changes pass through without contributing.
 * - every vital-signs record contributes its seven inputs, scored or not: drift of the inputs is what matters, and a
 *   record the model skipped (e.g. `news2_incomplete`) still tells us about the sensors. A null input counts as
 *   missing for that feature.
 * - `score` comes from the record's inference made by the configured model and version (a record may carry several:
 *   each model, each routed version); a record without one counts as a missing score (so a score missing-rate of
 *   100% shows a misconfigured chain, or a version the registry no longer routes, instead of hiding it).
 * - rows are filed under the configured model name and version, whatever the record's inference says.
 *
 * Per record the work is a few property reads, one binary search (continuous) or map lookup (categorical) per
 * feature, one hash of the device id, and integer increments into typed arrays: no allocation per record.
 */
import { createHash } from 'node:crypto';
import { describeError, VigilError } from '../../runtime/errors.ts';
import type { Operator, OperatorContext, ReferenceTable, Results } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { type DriftHistogram, type Inference, PAYLOAD_RECORD, type VitalSigns } from '../../schemas/types.ts';
import type { ScoredEvent } from '../types.ts';
import type { ResolvedDetectDriftConfig } from './config.ts';
import type { VitalFeature } from './features.ts';
import { DEVICE_SKETCH_BUCKETS, DEVICE_SKETCH_FEATURE, deviceBucket } from './metrics.ts';
import {
  binOf,
  type CompiledFeature,
  compileReference,
  type DriftReference,
  type DriftReferenceRow,
  parseReference,
  referenceRows,
} from './reference.ts';

/**
 * One partial histogram: the `drift-histogram` record (schemas/avro/drift-histogram) that travels on the drift topic
 * and lands as a row of `drift_histograms` (0003_drift.sql), whose columns carry the same names. Times are epoch ms.
 * `bin_counts` follows the reference's bins, except in a group's `_devices` row where it is the device sketch;
 * `first_offset`/`last_offset` span ALL the records of the batch (the batch identity), not only this group's.
 */
export type DriftHistogramRow = DriftHistogram;

export type DetectDriftSide = { driftHistograms: DriftHistogramRow };

const VITALS = PAYLOAD_RECORD.vital_signs;

/** One (firmware, site, window) group of one batch: flat typed counters for every feature's bins. */
class Group {
  readonly counts: Uint32Array;
  readonly missing: Uint32Array;
  readonly outOfRange: Uint32Array;
  /** Linear-counting sketch of the group's device ids (see DEVICE_SKETCH_FEATURE). */
  readonly devices = new Uint32Array(DEVICE_SKETCH_BUCKETS);
  records = 0;

  constructor(
    readonly firmware: string,
    readonly site: string,
    readonly windowStart: number,
    totalBins: number,
    features: number,
  ) {
    this.counts = new Uint32Array(totalBins);
    this.missing = new Uint32Array(features);
    this.outOfRange = new Uint32Array(features);
  }
}

interface Compiled {
  readonly reference: DriftReference;
  readonly sha256: string;
  readonly features: readonly CompiledFeature[];
  /** Where each feature's bins start in a group's flat counts. */
  readonly offsets: Int32Array;
  readonly totalBins: number;
  /** Per feature: true for the score, false for a vital-signs input. */
  readonly isScore: readonly boolean[];
}

export class DetectDriftOperator implements Operator<ScoredEvent, ScoredEvent, DetectDriftSide> {
  readonly name = 'detect-drift';
  readonly stage = 'detect_drift' as const;
  readonly config: ResolvedDetectDriftConfig;
  #compiled: Compiled | null = null;
  #pipeline = '';

  constructor(config: ResolvedDetectDriftConfig) {
    this.config = config;
  }

  async open(context: OperatorContext): Promise<void> {
    const { model, version } = this.config;
    this.#pipeline = context.pipeline;
    let bytes: Buffer;
    try {
      bytes = await context.models.readVerified(model, version, 'reference');
    } catch (error) {
      const code = error instanceof VigilError ? error.code : 'MODEL_NOT_FOUND';
      throw new VigilError(
        code,
        `detect-drift: no usable drift reference for ${model}@${version} (${describeError(error)}); ` +
          'build it with `npm run models:reference` (it writes models/<name>/<version>/reference.json and registers ' +
          'it in the manifest)',
        { cause: error },
      );
    }
    this.#load(bytes, `models/${model}/${version}/reference.json`);
    context.log.info(
      {
        operator: this.name,
        model,
        version,
        features: this.config.features.length,
        reference_sha256: this.#compiled!.sha256,
      },
      'drift reference loaded',
    );
  }

  #load(bytes: Buffer, source: string): void {
    const { model, version } = this.config;
    const reference = parseReference(bytes, source);
    if (reference.model.name !== model || reference.model.version !== version) {
      throw new VigilError(
        'CONFIG_INVALID',
        `${source} is the reference of ${reference.model.name}@${reference.model.version}, not ${model}@${version}`,
      );
    }
    const features = compileReference(reference, this.config.features);
    const offsets = new Int32Array(features.length);
    let totalBins = 0;
    features.forEach((feature, i) => {
      offsets[i] = totalBins;
      totalBins += feature.bins;
    });
    this.#compiled = {
      reference,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      features,
      offsets,
      totalBins,
      isScore: features.map((f) => f.name === 'score'),
    };
  }

  /** The loaded reference (after `open`). */
  get reference(): DriftReference {
    return this.#ready().reference;
  }

  /**
   * The reference bins with this operator's policy, for `drift_reference_bins`: the runtime lands them once before
   * the first batch so the `drift_reports` view measures against the same baseline and thresholds.
   */
  async referenceTables(context: OperatorContext): Promise<readonly ReferenceTable[]> {
    if (this.#compiled === null) await this.open(context);
    return [{ table: 'drift_reference_bins', rows: this.referenceRows(context.clock.now()) }];
  }

  /** Rows for `drift_reference_bins` with this operator's thresholds and lateness (loaded_at = `loadedAt`). */
  referenceRows(loadedAt: number): DriftReferenceRow[] {
    const compiled = this.#ready();
    return referenceRows(compiled.reference, {
      sha256: compiled.sha256,
      thresholds: this.config.thresholds,
      allowedLatenessMs: this.config.allowedLatenessMs,
      loadedAt,
      features: this.config.features,
    });
  }

  process(batch: readonly InFlight<ScoredEvent>[]): Results<ScoredEvent, DetectDriftSide> {
    const compiled = this.#ready();
    const rows: DriftHistogramRow[] = [];
    if (batch.length > 0) {
      if (singleSource(batch)) this.#histograms(compiled, batch, rows);
      else for (const part of splitBySource(batch)) this.#histograms(compiled, part, rows);
    }
    return {
      out: batch.slice(),
      rejected: [],
      duplicates: [],
      side: rows.length > 0 ? { driftHistograms: rows } : {},
    };
  }

  #ready(): Compiled {
    if (this.#compiled === null) {
      throw new VigilError('INTERNAL', 'detect-drift used before open(): the runtime must open operators first');
    }
    return this.#compiled;
  }

  /** Accumulates one single-source batch and appends its rows. */
  #histograms(compiled: Compiled, batch: readonly InFlight<ScoredEvent>[], rows: DriftHistogramRow[]): void {
    const { features, offsets, totalBins, isScore } = compiled;
    const { model, version, windowMs } = this.config;
    const featureCount = features.length;
    const groups = new Map<string, Map<string, Map<number, Group>>>();
    const order: Group[] = [];
    let last: Group | null = null;
    let firstOffset = Number.POSITIVE_INFINITY;
    let lastOffset = Number.NEGATIVE_INFINITY;

    for (let r = 0; r < batch.length; r++) {
      const record = batch[r]!;
      const offset = record.origin.offset;
      if (offset < firstOffset) firstOffset = offset;
      if (offset > lastOffset) lastOffset = offset;
      const envelope = record.value.envelope;
      if (envelope.event_type !== 'vital_signs') continue;
      const vitals = (envelope.payload as Record<string, VitalSigns | undefined>)[VITALS];
      if (vitals === undefined || vitals === null) continue;

      const observed = envelope.observed_at;
      const windowStart = Math.floor(observed / windowMs) * windowMs;
      const firmware = envelope.firmware_version;
      const site = envelope.site_id;
      let group: Group;
      if (last !== null && last.windowStart === windowStart && last.firmware === firmware && last.site === site) {
        group = last;
      } else {
        let bySite = groups.get(firmware);
        if (bySite === undefined) {
          bySite = new Map();
          groups.set(firmware, bySite);
        }
        let byWindow = bySite.get(site);
        if (byWindow === undefined) {
          byWindow = new Map();
          bySite.set(site, byWindow);
        }
        let found = byWindow.get(windowStart);
        if (found === undefined) {
          found = new Group(firmware, site, windowStart, totalBins, featureCount);
          byWindow.set(windowStart, found);
          order.push(found);
        }
        group = found;
        last = found;
      }
      group.records++;
      group.devices[deviceBucket(envelope.device_id)]!++;

      const score = scoreOf(record.value.inferences, model, version);
      for (let f = 0; f < featureCount; f++) {
        const feature = features[f]!;
        const value = isScore[f] ? score : vitals[feature.name as VitalFeature];
        if (value === null || value === undefined) {
          group.missing[f]!++;
          continue;
        }
        const bin = binOf(feature, value);
        if (bin < 0) {
          group.missing[f]!++;
          continue;
        }
        group.counts[offsets[f]! + bin]!++;
        if (bin === feature.highOut || bin === feature.lowOut) group.outOfRange[f]!++;
      }
    }

    const origin = batch[0]!.origin;
    for (const group of order) {
      for (let f = 0; f < featureCount; f++) {
        const feature = features[f]!;
        const start = offsets[f]!;
        const counts = Array.from(group.counts.subarray(start, start + feature.bins));
        let n = 0;
        for (const c of counts) n += c;
        rows.push({
          pipeline: this.#pipeline,
          model_name: model,
          model_version: version,
          firmware_version: group.firmware,
          site_id: group.site,
          window_start: group.windowStart,
          window_end: group.windowStart + windowMs,
          feature: feature.name,
          bin_counts: counts,
          n,
          missing: group.missing[f]!,
          out_of_range: group.outOfRange[f]!,
          source_topic: origin.topic,
          source_partition: origin.partition,
          first_offset: firstOffset,
          last_offset: lastOffset,
        });
      }
      rows.push({
        pipeline: this.#pipeline,
        model_name: model,
        model_version: version,
        firmware_version: group.firmware,
        site_id: group.site,
        window_start: group.windowStart,
        window_end: group.windowStart + windowMs,
        feature: DEVICE_SKETCH_FEATURE,
        bin_counts: Array.from(group.devices),
        n: group.records,
        missing: 0,
        out_of_range: 0,
        source_topic: origin.topic,
        source_partition: origin.partition,
        first_offset: firstOffset,
        last_offset: lastOffset,
      });
    }
  }
}

/** The score of the inference `model@version` made, among a record's inferences; null when it made none. */
function scoreOf(inferences: readonly Inference[], model: string, version: string): number | null {
  for (let i = 0; i < inferences.length; i++) {
    const inference = inferences[i]!;
    if (inference.model_name === model && inference.model_version === version) return inference.score;
  }
  return null;
}

function singleSource(batch: readonly InFlight<unknown>[]): boolean {
  const { topic, partition } = batch[0]!.origin;
  for (let i = 1; i < batch.length; i++) {
    const origin = batch[i]!.origin;
    if (origin.partition !== partition || origin.topic !== topic) return false;
  }
  return true;
}

/** The runtime hands one partition per call; should a caller mix them, each keeps its own batch identity. */
function splitBySource<T>(batch: readonly InFlight<T>[]): InFlight<T>[][] {
  const parts = new Map<string, InFlight<T>[]>();
  for (const record of batch) {
    const key = `${record.origin.topic}\u0000${record.origin.partition}`;
    const part = parts.get(key);
    if (part) part.push(record);
    else parts.set(key, [record]);
  }
  return [...parts.values()];
}
