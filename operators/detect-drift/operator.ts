/**
 * `detect-drift`: partial drift histograms per micro-batch, summed downstream.
 *
 * Every record passes through unchanged: drift never rejects an event. For each call (one micro-batch of one source
 * partition) the operator groups the batch's vital-signs records by (firmware_version, site_id, tumbling event-time
 * window of observed_at) and, for every model version it measures, bins each monitored feature against that
 * version's reference bins, and emits one `driftHistograms` row per group, version and feature: the bin counts, n,
 * missing and out-of-range counts, and the batch identity (source topic, partition, first and last offset); plus one
 * `_devices` row per group and version whose bins are a linear-counting sketch of its device ids (summed sketches
 * still count distinct devices, which the verdicts need: see metrics.ts). The per-window histogram is the SUM of
 * these partials across batches and workers (the `drift_reports` view in infra/clickhouse/migrations/0003_drift.sql,
 * or `driftReports` in report.ts).
 *
 * Which versions: for each configured model, the versions score runs — its default while the registry routes
 * nothing, else the registry's live version (the default where it has none), canary and shadows. The routing table
 * is read once per batch (`context.rollouts.current()`); when its revision changes, newly routed versions are loaded
 * (manifest and verified reference) and unrouted ones released, like score does. A default version that cannot be
 * loaded fails the start-up; a routed one is logged and skipped until the next revision.
 *
 * Which features, per version: its reference's histograms (or the configured `features`), each read where the
 * version's manifest says its input comes from (the input named like the feature, or whose field is
 * `<payload>.<feature>`; the manifest's paths are checked by score's FeatureExtractor), as the raw envelope value the
 * reference binned (not the model's encoded number), and `score` from the version's own inference. An input the
 * reference has no histogram for is not measured (logged at load: rebuild the reference to add it).
 *
 * Which records, per version: the population the version scores. A record carrying an inference of the model counts
 * for the versions that made one; a record the model made none for (an input missing or out of range) counts for the
 * versions it was routed to — every one routed to everybody (live or default, shadows) or, while a canary runs,
 * governance/routing.ts compileRoute's decision for that record (the one score made). Without a registry route
 * that is every vital-signs record, as before.
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
 * - `score` comes from the record's inference made by the measured version (a record may carry several: each model,
 *   each routed version); a record routed to it without one counts as a missing score (so a score missing-rate of
 *   100% shows a misconfigured chain instead of hiding it).
 * - rows are filed under the measured version's model name and version.
 *
 * Per record the work is one pass over its inferences, a few property reads, one binary search (continuous) or map
 * lookup (categorical) per feature of each version it counts for, one hash of the device id, and integer increments
 * into typed arrays: no allocation per record (routing an unscored record while a canary runs uses score's compiled
 * route, memoised per patient bucket).
 */
import { createHash } from 'node:crypto';
import { type CompiledRoute, compileRoute } from '../../governance/routing.ts';
import { describeError, VigilError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ModelInput, ModelRollouts, ModelStore, RoutingTable } from '../../runtime/models.ts';
import type { Operator, OperatorContext, ReferenceTable, Results } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { type DriftHistogram, type Envelope, PAYLOAD_RECORD } from '../../schemas/types.ts';
import { FeatureExtractor } from '../score/extract.ts';
import type { ScoredEvent } from '../types.ts';
import type { DriftModel, ResolvedDetectDriftConfig } from './config.ts';
import type { FeatureName } from './features.ts';
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
const ENVELOPE_BRANCH = 'envelope';
/** Versions are bits of a 32-bit mask per record. */
const MAX_VERSIONS = 31;

/** Where a feature's value comes from: the version's score, an envelope field, or a field of a payload record. */
interface FeatureSource {
  /** null: the score. */
  readonly field: string | null;
  /** The payload record's Avro full name, or null for a top-level envelope field. */
  readonly branch: string | null;
}

/** One measured model version: its reference compiled for the hot path and where each feature is read. */
export interface MeasuredVersion {
  readonly model: string;
  readonly version: string;
  readonly reference: DriftReference;
  readonly sha256: string;
  readonly features: readonly CompiledFeature[];
  readonly sources: readonly FeatureSource[];
  /** Manifest inputs the reference has no histogram for (not measured). */
  readonly unmeasured: readonly string[];
}

/** The measured versions flattened for the hot path: every version's features side by side. Rebuilt on change. */
interface Layout {
  readonly versions: readonly MeasuredVersion[];
  /** Per version: where its features start among the flat features, and how many it has. */
  readonly firstFeature: Int32Array;
  readonly featureCount: Int32Array;
  readonly features: readonly CompiledFeature[];
  /** Per flat feature: its version's index (the bit in a record's mask). */
  readonly versionOf: Int32Array;
  /** Per flat feature: null for the score, else the field read. */
  readonly fields: readonly (string | null)[];
  /** Per flat feature: index into `branches` (-1: a top-level envelope field or the score). */
  readonly branchOf: Int32Array;
  /** The distinct payload records the features read (usually just VitalSigns). */
  readonly branches: readonly string[];
  /** Where each flat feature's bins start in a group's flat counts. */
  readonly offsets: Int32Array;
  readonly totalBins: number;
  /** Per configured model: the mask of all its measured versions. */
  readonly modelMasks: Int32Array;
}

/** Per configured model, for one batch: its route and the versions every record is routed to. */
interface BatchRoute {
  /** The mask of versions an unscored record counts for; -1 = decide per record (a canary runs). */
  readonly everyone: number;
  /** While a canary runs: the model's route compiled (governance/routing.ts: the decisions score made). */
  readonly decide: CompiledRoute | null;
}

/** One (firmware, site, window) group of one batch: flat typed counters for every version's features. */
class Group {
  readonly counts: Uint32Array;
  readonly missing: Uint32Array;
  readonly outOfRange: Uint32Array;
  /** Per version: a linear-counting sketch of the group's device ids (see DEVICE_SKETCH_FEATURE). */
  readonly devices: Uint32Array;
  /** Per version: the records counted. */
  readonly records: Uint32Array;

  constructor(
    readonly firmware: string,
    readonly site: string,
    readonly windowStart: number,
    layout: Layout,
  ) {
    this.counts = new Uint32Array(layout.totalBins);
    this.missing = new Uint32Array(layout.features.length);
    this.outOfRange = new Uint32Array(layout.features.length);
    this.devices = new Uint32Array(layout.versions.length * DEVICE_SKETCH_BUCKETS);
    this.records = new Uint32Array(layout.versions.length);
  }
}

export class DetectDriftOperator implements Operator<ScoredEvent, ScoredEvent, DetectDriftSide> {
  readonly name = 'detect-drift';
  readonly stage = 'detect_drift' as const;
  readonly config: ResolvedDetectDriftConfig;
  #layout: Layout | null = null;
  /** Loaded versions by `<model>@<version>`. */
  #loaded = new Map<string, MeasuredVersion>();
  #pipeline = '';
  #store: ModelStore | null = null;
  #rollouts: ModelRollouts | undefined;
  #log: Logger | null = null;
  /** The routing table revision the loaded versions follow; -1 = none read (no registry: stays -1). */
  #revision = -1;
  /** Each configured model's route compiled for the revision it was compiled at (kept: it memoises buckets). */
  #compiled: { revision: number; routes: (CompiledRoute | null)[] } | null = null;
  /** Scratch per record: each version's score (valid where the record's scored mask has its bit). */
  #scores = new Float64Array(MAX_VERSIONS);
  /** Scratch per record: each payload branch's record. */
  #branchRecords: (Readonly<Record<string, unknown>> | undefined)[] = [];

  constructor(config: ResolvedDetectDriftConfig) {
    this.config = config;
  }

  async open(context: OperatorContext): Promise<void> {
    this.#pipeline = context.pipeline;
    this.#store = context.models;
    this.#rollouts = context.rollouts;
    this.#log = context.log;
    this.#loaded = new Map();
    this.#revision = -1;
    // The defaults are the pipeline's own configuration: one without a usable reference fails the start-up.
    for (const { model, version } of this.config.models) {
      const measured = await this.#loadVersion(model, version);
      this.#loaded.set(`${model}@${version}`, measured);
      this.#logLoaded(measured, null);
    }
    this.#rebuild();
    const table = this.#rollouts?.current();
    if (table !== undefined) await this.#follow(table);
  }

  /** Loads and checks one version: its verified reference, its manifest's inputs, the features measured. */
  async #loadVersion(model: string, version: string): Promise<MeasuredVersion> {
    const store = this.#store!;
    const where = `models/${model}/${version}/reference.json`;
    let bytes: Buffer;
    try {
      bytes = await store.readVerified(model, version, 'reference');
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
    const reference = parseReference(bytes, where);
    if (reference.model.name !== model || reference.model.version !== version) {
      throw new VigilError(
        'CONFIG_INVALID',
        `${where} is the reference of ${reference.model.name}@${reference.model.version}, not ${model}@${version}`,
      );
    }
    const manifest = await store.manifest(model, version);
    // The same reading of field paths as score's: a path score cannot read fails here too.
    new FeatureExtractor(manifest.inputs, `detect-drift: model ${model}@${version}`);
    const wanted = this.config.features;
    const names: FeatureName[] = [];
    const sources: FeatureSource[] = [];
    for (const name of wanted ?? reference.features.map((f) => f.name)) {
      if (name === 'score') {
        names.push(name);
        sources.push({ field: null, branch: null });
        continue;
      }
      const input = inputFor(manifest.inputs, name);
      if (input === undefined) {
        if (wanted === undefined) continue; // the reference holds more than this version reads
        throw new VigilError(
          'CONFIG_INVALID',
          `detect-drift: ${model}@${version}'s manifest reads no input for feature ${name}: drop it from features`,
        );
      }
      names.push(name);
      sources.push(sourceOf(input));
    }
    const features = compileReference(reference, names);
    const measured = new Set(features.map((f) => f.name as string));
    const unmeasured = manifest.inputs
      .filter((input) => !measured.has(input.name) && !measured.has(fieldName(input.field)))
      .map((input) => input.name);
    return {
      model,
      version,
      reference,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      features,
      sources,
      unmeasured,
    };
  }

  #logLoaded(measured: MeasuredVersion, revision: number | null): void {
    this.#log?.info(
      {
        operator: this.name,
        model: measured.model,
        version: measured.version,
        features: measured.features.length,
        unmeasured_inputs: measured.unmeasured,
        reference_sha256: measured.sha256,
        ...(revision === null ? {} : { revision }),
      },
      'drift reference loaded',
    );
  }

  /**
   * Brings the measured versions in line with `table`: every version it routes for the configured models (the
   * default where it routes none) loaded, every other one released. One that cannot be loaded is logged and skipped
   * (retried at the next revision): the run goes on, that version has no figures.
   */
  async #follow(table: RoutingTable): Promise<void> {
    const wanted = new Set<string>();
    for (const configured of this.config.models) {
      for (const version of routedVersions(configured, table)) {
        const key = `${configured.model}@${version}`;
        if (wanted.size >= MAX_VERSIONS) break;
        wanted.add(key);
        if (this.#loaded.has(key)) continue;
        try {
          const measured = await this.#loadVersion(configured.model, version);
          this.#loaded.set(key, measured);
          this.#logLoaded(measured, table.revision);
        } catch (error) {
          const code = error instanceof VigilError ? error.code : 'INTERNAL';
          // Names files and versions only (no record is involved), so it is safe to log.
          this.#log?.error(
            {
              operator: this.name,
              model: configured.model,
              version,
              revision: table.revision,
              code,
              error: describeError(error),
            },
            'routed model version has no usable drift reference: its drift is not measured',
          );
        }
      }
    }
    for (const [key, measured] of this.#loaded) {
      if (wanted.has(key)) continue;
      this.#loaded.delete(key);
      this.#log?.info(
        { operator: this.name, model: measured.model, version: measured.version, revision: table.revision },
        'drift reference released',
      );
    }
    this.#revision = table.revision;
    this.#rebuild();
  }

  #rebuild(): void {
    const versions = [...this.#loaded.values()];
    const firstFeature = new Int32Array(versions.length);
    const featureCount = new Int32Array(versions.length);
    const features: CompiledFeature[] = [];
    const versionOf: number[] = [];
    const fields: (string | null)[] = [];
    const branchOf: number[] = [];
    const branches: string[] = [];
    versions.forEach((measured, v) => {
      firstFeature[v] = features.length;
      featureCount[v] = measured.features.length;
      measured.features.forEach((feature, f) => {
        const source = measured.sources[f]!;
        features.push(feature);
        versionOf.push(v);
        fields.push(source.field);
        let branch = -1;
        if (source.branch !== null) {
          branch = branches.indexOf(source.branch);
          if (branch < 0) branch = branches.push(source.branch) - 1;
        }
        branchOf.push(branch);
      });
    });
    const offsets = new Int32Array(features.length);
    let totalBins = 0;
    features.forEach((feature, i) => {
      offsets[i] = totalBins;
      totalBins += feature.bins;
    });
    const modelMasks = new Int32Array(this.config.models.length);
    this.config.models.forEach(({ model }, m) => {
      versions.forEach((measured, v) => {
        if (measured.model === model) modelMasks[m]! |= 1 << v;
      });
    });
    this.#branchRecords = new Array(branches.length).fill(undefined);
    this.#layout = {
      versions,
      firstFeature,
      featureCount,
      features,
      versionOf: Int32Array.from(versionOf),
      fields,
      branchOf: Int32Array.from(branchOf),
      branches,
      offsets,
      totalBins,
      modelMasks,
    };
  }

  /** The measured versions now, in the order their rows are emitted. */
  get versions(): readonly MeasuredVersion[] {
    return this.#ready().versions;
  }

  /** The reference of the first configured model's default version (after `open`). */
  get reference(): DriftReference {
    const { model, version } = this.config.models[0]!;
    const measured = this.#loaded.get(`${model}@${version}`) ?? this.#ready().versions[0];
    if (measured === undefined) throw new VigilError('INTERNAL', 'detect-drift measures no version');
    return measured.reference;
  }

  /**
   * The reference bins of every version measured now, with this operator's policy, for `drift_reference_bins`: the
   * runtime lands them before the first batch so the `drift_reports` view and the drift guard measure against the
   * same baseline and thresholds. Called again after a routing change, it follows the change first, so a runner that
   * re-lands references on a new revision covers a newly routed version (landing is idempotent).
   */
  async referenceTables(context: OperatorContext): Promise<readonly ReferenceTable[]> {
    if (this.#layout === null) await this.open(context);
    else {
      // Called again after a routing change (a runner re-landing references), the rows follow the table in force.
      const table = (context.rollouts ?? this.#rollouts)?.current();
      if (table !== undefined && table.revision !== this.#revision) await this.#follow(table);
    }
    return [{ table: 'drift_reference_bins', rows: this.referenceRows(context.clock.now()) }];
  }

  /** Rows for `drift_reference_bins`, every measured version's, with this operator's thresholds and lateness. */
  referenceRows(loadedAt: number): DriftReferenceRow[] {
    return this.#ready().versions.flatMap((measured) =>
      referenceRows(measured.reference, {
        sha256: measured.sha256,
        thresholds: this.config.thresholds,
        allowedLatenessMs: this.config.allowedLatenessMs,
        loadedAt,
        features: measured.features.map((f) => f.name),
      }),
    );
  }

  /**
   * Follows a routing change first (loading references is asynchronous), then measures the batch; synchronous while
   * the routing table is unchanged.
   */
  process(
    batch: readonly InFlight<ScoredEvent>[],
  ): Results<ScoredEvent, DetectDriftSide> | Promise<Results<ScoredEvent, DetectDriftSide>> {
    this.#ready();
    const table = this.#rollouts?.current();
    if (table !== undefined && table.revision !== this.#revision) {
      return this.#follow(table).then(() => this.measure(batch, table));
    }
    return this.measure(batch, table);
  }

  /**
   * Measures one batch against the versions loaded now (what `process` does once the routing table is followed).
   * `table`: the routing table in force (default: the one the rollouts give now; none without a registry).
   */
  measure(
    batch: readonly InFlight<ScoredEvent>[],
    table: RoutingTable | undefined = this.#rollouts?.current(),
  ): Results<ScoredEvent, DetectDriftSide> {
    const layout = this.#ready();
    const rows: DriftHistogramRow[] = [];
    if (batch.length > 0 && layout.versions.length > 0) {
      const routes = this.#batchRoutes(layout, table);
      if (singleSource(batch)) this.#histograms(layout, routes, batch, rows);
      else for (const part of splitBySource(batch)) this.#histograms(layout, routes, part, rows);
    }
    return {
      out: batch.slice(),
      rejected: [],
      duplicates: [],
      side: rows.length > 0 ? { driftHistograms: rows } : {},
    };
  }

  #ready(): Layout {
    if (this.#layout === null) {
      throw new VigilError('INTERNAL', 'detect-drift used before open(): the runtime must open operators first');
    }
    return this.#layout;
  }

  /** Each configured model's route for this batch, and the versions an unscored record counts for. */
  #batchRoutes(layout: Layout, table: RoutingTable | undefined): BatchRoute[] {
    const models = this.config.models;
    const routes = models.map(({ model }) => table?.route(model));
    const revision = table?.revision ?? -1;
    if (this.#compiled === null || this.#compiled.revision !== revision) {
      this.#compiled = {
        revision,
        routes: models.map(({ model, version }, m) =>
          routes[m]?.canary != null ? compileRoute(model, routes[m], version) : null,
        ),
      };
    }
    const compiled = this.#compiled.routes;
    return models.map((model, m) => {
      const route = routes[m];
      const decide = compiled[m] ?? null;
      if (decide !== null) return { everyone: -1, decide };
      const versions = route === undefined ? [model.version] : [route.live?.version ?? model.version];
      for (const shadow of route?.shadows ?? []) versions.push(shadow.version);
      return { everyone: maskOf(layout, model.model, versions) & layout.modelMasks[m]!, decide: null };
    });
  }

  /** Accumulates one single-source batch and appends its rows. */
  #histograms(
    layout: Layout,
    routes: readonly BatchRoute[],
    batch: readonly InFlight<ScoredEvent>[],
    rows: DriftHistogramRow[],
  ): void {
    const { features, offsets, versionOf, fields, branchOf, branches, modelMasks, versions } = layout;
    const { windowMs } = this.config;
    const featureCount = features.length;
    const versionCount = versions.length;
    const modelCount = routes.length;
    const scores = this.#scores;
    const branchRecords = this.#branchRecords;
    const branchCount = branches.length;
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
      const payload = envelope.payload as unknown as Readonly<
        Record<string, Readonly<Record<string, unknown>> | null | undefined>
      >;
      const vitals = payload[VITALS];
      if (vitals === undefined || vitals === null) continue;

      // The versions this record counts for, and the scores they gave it.
      let mask = 0;
      const inferences = record.value.inferences;
      for (let i = 0; i < inferences.length; i++) {
        const inference = inferences[i]!;
        for (let v = 0; v < versionCount; v++) {
          const measured = versions[v]!;
          if (measured.version === inference.model_version && measured.model === inference.model_name) {
            mask |= 1 << v;
            scores[v] = inference.score;
            break;
          }
        }
      }
      const scored = mask;
      for (let m = 0; m < modelCount; m++) {
        if ((mask & modelMasks[m]!) !== 0) continue;
        const route = routes[m]!;
        mask |= route.decide === null ? route.everyone : routedMask(layout, route.decide, envelope);
      }
      if (mask === 0) continue;

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
          found = new Group(firmware, site, windowStart, layout);
          byWindow.set(windowStart, found);
          order.push(found);
        }
        group = found;
        last = found;
      }
      const bucket = deviceBucket(envelope.device_id);
      for (let v = 0; v < versionCount; v++) {
        if ((mask & (1 << v)) === 0) continue;
        group.records[v]!++;
        group.devices[v * DEVICE_SKETCH_BUCKETS + bucket]!++;
      }
      for (let b = 0; b < branchCount; b++) branchRecords[b] = payload[branches[b]!] ?? undefined;

      for (let f = 0; f < featureCount; f++) {
        const v = versionOf[f]!;
        if ((mask & (1 << v)) === 0) continue;
        const field = fields[f]!;
        let value: unknown;
        if (field === null) value = (scored & (1 << v)) !== 0 ? scores[v] : null;
        else {
          const branch = branchOf[f]!;
          value =
            branch < 0
              ? (envelope as unknown as Readonly<Record<string, unknown>>)[field]
              : branchRecords[branch]?.[field];
        }
        if (value === null || value === undefined) {
          group.missing[f]!++;
          continue;
        }
        const feature = features[f]!;
        const bin = binOf(feature, value as number | boolean | string);
        if (bin < 0) {
          group.missing[f]!++;
          continue;
        }
        group.counts[offsets[f]! + bin]!++;
        if (bin === feature.highOut || bin === feature.lowOut) group.outOfRange[f]!++;
      }
    }

    const origin = batch[0]!.origin;
    const pipeline = this.#pipeline;
    for (const group of order) {
      const windowEnd = group.windowStart + windowMs;
      for (let v = 0; v < versionCount; v++) {
        const records = group.records[v]!;
        if (records === 0) continue;
        const { model, version } = versions[v]!;
        const first = layout.firstFeature[v]!;
        const end = first + layout.featureCount[v]!;
        for (let f = first; f <= end; f++) {
          // Features first, then the version's device sketch (one row each); counts copied out of the typed arrays
          // by index (Array.from on a typed array goes through its iterator).
          const sketch = f === end;
          const source = sketch ? group.devices : group.counts;
          const start = sketch ? v * DEVICE_SKETCH_BUCKETS : offsets[f]!;
          const bins = sketch ? DEVICE_SKETCH_BUCKETS : features[f]!.bins;
          const bin_counts: number[] = new Array(bins);
          let n = 0;
          for (let b = 0; b < bins; b++) {
            const c = source[start + b]!;
            bin_counts[b] = c;
            n += c;
          }
          rows.push({
            pipeline,
            model_name: model,
            model_version: version,
            firmware_version: group.firmware,
            site_id: group.site,
            window_start: group.windowStart,
            window_end: windowEnd,
            feature: sketch ? DEVICE_SKETCH_FEATURE : features[f]!.name,
            bin_counts,
            n: sketch ? records : n,
            missing: sketch ? 0 : group.missing[f]!,
            out_of_range: sketch ? 0 : group.outOfRange[f]!,
            source_topic: origin.topic,
            source_partition: origin.partition,
            first_offset: firstOffset,
            last_offset: lastOffset,
          });
        }
      }
    }
  }
}

/** The last segment of a manifest input's field path (`vital_signs.spo2` -> `spo2`). */
function fieldName(path: string): string {
  return path.slice(path.indexOf('.') + 1);
}

/** The manifest input a reference feature stands for: the input of that name, or the one reading that field. */
function inputFor(inputs: readonly ModelInput[], feature: string): ModelInput | undefined {
  return inputs.find((input) => input.name === feature) ?? inputs.find((input) => fieldName(input.field) === feature);
}

/** Where an input's raw value is read (the path FeatureExtractor has already checked). */
function sourceOf(input: ModelInput): FeatureSource {
  const dot = input.field.indexOf('.');
  const branch = input.field.slice(0, dot);
  const field = input.field.slice(dot + 1);
  return {
    field,
    branch: branch === ENVELOPE_BRANCH ? null : (PAYLOAD_RECORD as Readonly<Record<string, string>>)[branch]!,
  };
}

/** The mask of `model`'s measured versions among `versions`. */
function maskOf(layout: Layout, model: string, versions: readonly string[]): number {
  let mask = 0;
  layout.versions.forEach((measured, v) => {
    if (measured.model === model && versions.includes(measured.version)) mask |= 1 << v;
  });
  return mask;
}

/** The versions one record is routed to while a canary runs (the same decisions score made for it). */
function routedMask(layout: Layout, decide: CompiledRoute, envelope: Envelope): number {
  const decisions = decide(envelope);
  const versions = layout.versions;
  let mask = 0;
  for (let d = 0; d < decisions.length; d++) {
    const decision = decisions[d]!;
    for (let v = 0; v < versions.length; v++) {
      if (versions[v]!.version === decision.version && versions[v]!.model === decision.model) mask |= 1 << v;
    }
  }
  return mask;
}

/**
 * The versions of one model `table` routes events to (as score follows them): the registry's live version (the
 * default where it has none, or no route at all), its canary and its shadows.
 */
function routedVersions(configured: DriftModel, table: RoutingTable): string[] {
  const route = table.route(configured.model);
  if (route === undefined) return [configured.version];
  const versions = [route.live !== null ? route.live.version : configured.version];
  if (route.canary !== null && !versions.includes(route.canary.version)) versions.push(route.canary.version);
  for (const shadow of route.shadows) if (!versions.includes(shadow.version)) versions.push(shadow.version);
  return versions;
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
