/**
 * `score`: runs every routed version of every configured model over each event and attaches their inferences.
 *
 * Routing, live: at every batch the operator reads the rollouts in force (`context.rollouts.current()`, cheap). When
 * the table's revision changed, it loads the versions newly routed (verified by the model store, checked on one row)
 * and releases those no longer routed, without reopening. Per record and model, governance/routing.ts decides which
 * versions run (compileRoute: each route compiled once, the same decisions as decideRoutes, allocation-free per
 * record): the pipeline's default version (live) while the registry has no route for the model, else the registry's
 * canary (clinical, for its cohort and share) or live version (clinical), plus every shadow
 * (never clinical). Every decision is recorded on the inference it produced (`rollout`, `rollout_id`, `routing`).
 *
 * Per batch: ONE float32 tensor and ONE model call per version, holding the rows of the records routed to it whose
 * inputs (the manifest's, read by a compiled extractor) are present and in range. Output order is input order; each
 * record's inferences follow the configured model order, clinical first, then shadows.
 *
 * A record leaves as a SCORING_FAILED dead letter when a CLINICAL route fails it: the routed version could not be
 * loaded (the detail names the version, never a value), or it returned an output that cannot be trusted. A shadow
 * that fails the same ways, or whose model call throws, is skipped and counted (`skippedShadows`): a shadow never costs
 * a record. A record a model
 * does not apply to (another event type, an input missing or out of range) simply gets no inference from it;
 * vital signs missing an input of a `news2` model also get the `news2_incomplete` flag.
 *
 * Ids are deterministic from (event_id, model, version), so a retried batch yields the same inferences.
 */
import { endianness } from 'node:os';
import { type CompiledRoute, compileRoute } from '../../governance/routing.ts';
import type { RouteDecision } from '../../governance/types.ts';
import type { Clock } from '../../runtime/clock.ts';
import { describeError, VigilError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ModelRollouts, ModelRoute, ModelStore, RoutedVersion, RoutingTable } from '../../runtime/models.ts';
import { type Operator, type OperatorContext, ResultsBuilder } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import type { Envelope, Inference } from '../../schemas/types.ts';
import type { CheckedEvent, ProvenanceFlag, ScoredEvent } from '../types.ts';
import type { ScoreConfig, ScoredModel } from './config.ts';
import { EXTRACTED, FeatureExtractor, MISSING } from './extract.ts';
import type { CheckedOutputs } from './read-outputs.ts';
import { ScoringVersion, sha256Hex, sha256Latin1 } from './version.ts';

export { canonicalJson } from './version.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const MAX_ULID_TIME = 2 ** 48 - 1;
/** CROCKFORD as char codes, for String.fromCharCode. */
const CODES = Uint8Array.from(CROCKFORD, (c) => c.charCodeAt(0));

/** The 10-char time part of the last id made: both models of an event share its observed_at. */
let lastTime = -1;
let lastTimePart = '';

function ulidTimePart(timeMs: number): string {
  const clamped = Math.min(Math.max(Math.floor(timeMs), 0), MAX_ULID_TIME);
  if (clamped === lastTime) return lastTimePart;
  let t = clamped;
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  lastTime = clamped;
  lastTimePart = time;
  return time;
}

/** Eight Crockford chars from the 40 bits of bytes a..f (most significant first). */
function base32Of40(a: number, b: number, c: number, e: number, f: number): string {
  return String.fromCharCode(
    CODES[a >>> 3]!,
    CODES[((a & 7) << 2) | (b >>> 6)]!,
    CODES[(b >>> 1) & 31]!,
    CODES[((b & 1) << 4) | (c >>> 4)]!,
    CODES[((c & 15) << 1) | (e >>> 7)]!,
    CODES[(e >>> 2) & 31]!,
    CODES[((e & 3) << 3) | (f >>> 5)]!,
    CODES[f & 31]!,
  );
}

/**
 * A ULID-shaped id (26 Crockford base32 chars): the 48-bit time part from `timeMs`, the 80-bit rest from the first
 * 10 bytes of `digest`. Deterministic, and it sorts by time like the event ids it sits beside.
 */
export function deterministicUlid(timeMs: number, digest: Uint8Array): string {
  const d = digest;
  return (
    ulidTimePart(timeMs) + base32Of40(d[0]!, d[1]!, d[2]!, d[3]!, d[4]!) + base32Of40(d[5]!, d[6]!, d[7]!, d[8]!, d[9]!)
  );
}

/**
 * deterministicUlid(timeMs, sha256(text)) with the digest as a latin1 string (one char per byte): Node's one-shot hash
 * returns that about 3x cheaper than a Buffer (no Buffer to allocate), and this is two hashes per scored event.
 */
function ulidOfHash(timeMs: number, text: string): string {
  const d = sha256Latin1(text);
  return (
    ulidTimePart(timeMs) +
    base32Of40(d.charCodeAt(0), d.charCodeAt(1), d.charCodeAt(2), d.charCodeAt(3), d.charCodeAt(4)) +
    base32Of40(d.charCodeAt(5), d.charCodeAt(6), d.charCodeAt(7), d.charCodeAt(8), d.charCodeAt(9))
  );
}

function withFlag(flags: readonly ProvenanceFlag[], flag: ProvenanceFlag): readonly ProvenanceFlag[] {
  return flags.includes(flag) ? flags : [...flags, flag];
}

/** Shared by every record no model scored (never mutated). */
const NO_INFERENCES: readonly Inference[] = Object.freeze([]);

/**
 * A routed version that could not be loaded: its VigilError code (or INTERNAL), for logs and dead-letter details, and
 * the inputs it would read (from its manifest if that is readable, else another version of the model), so only the
 * records it would have scored are failed or counted. With no inputs known, every record routed to it fails: a
 * clinical output is never dropped on a guess.
 */
class Unavailable {
  readonly row: Float32Array;
  readonly values: Float64Array;
  constructor(
    readonly code: string,
    readonly extractor: FeatureExtractor | null,
  ) {
    this.row = new Float32Array(extractor?.width ?? 0);
    this.values = new Float64Array(extractor?.width ?? 0);
  }

  /** Whether the version would have scored this record. */
  applies(envelope: Envelope): boolean {
    return this.extractor === null || this.extractor.extract(envelope, this.row, this.values, 0) === EXTRACTED;
  }
}

/** One batch's rows for one version: the model's input and, per row, the values as read (doubles). */
class PendingRows {
  readonly input: Float32Array;
  readonly values: Float64Array;
  rows = 0;
  /** Whether any row is a clinical route's (else every row is a shadow's, and a failed call costs no record). */
  clinical = false;
  outputs: CheckedOutputs | null = null;
  constructor(
    readonly version: ScoringVersion,
    capacity: number,
  ) {
    this.input = new Float32Array(capacity * version.extractor.width);
    this.values = new Float64Array(capacity * version.extractor.width);
    this.bits = new Int32Array(this.input.buffer, this.input.byteOffset, this.input.length);
  }
  /** `input`'s bits: two rows are the same bytes (so the same hash) when these are equal. */
  readonly bits: Int32Array;
}

/** One inference to make: record `record`'s row `row` of `pending`, routed by `decision`. */
interface Slot {
  readonly record: number;
  readonly pending: PendingRows;
  readonly row: number;
  readonly decision: RouteDecision;
}

export class ScoreOperator implements Operator<CheckedEvent, ScoredEvent> {
  readonly name = 'score';
  readonly stage = 'score' as const;
  readonly config: ScoreConfig;
  #store: ModelStore | null = null;
  #rollouts: ModelRollouts | undefined;
  #clock: Clock | null = null;
  #log: Logger | null = null;
  #pipeline = '';
  /** The revision of the routing table the loaded versions follow; -1 = none read yet (no registry: stays -1). */
  #revision = -1;
  /** Loaded versions by model, then version. */
  readonly #versions = new Map<string, Map<string, ScoringVersion>>();
  /** Routed versions that could not be loaded, by model, then version. */
  readonly #unavailable = new Map<string, Map<string, Unavailable>>();
  /** The inputs of the latest version of each model that loaded: what an unavailable version is assumed to read. */
  readonly #knownInputs = new Map<string, FeatureExtractor>();
  #skippedShadows = 0;
  /** Per configured model: the route last read and its compiled decisions (recompiled when the route changes). */
  #routers: { route: ModelRoute | undefined; decide: CompiledRoute }[] = [];
  /**
   * The last feature vector hashed (its float32 bits) and its hash: the models of an event mostly read the same
   * inputs, so the second hash of a record is usually a compare of a few words instead of a sha256.
   */
  #hashedBits = new Int32Array(0);
  #hashedWidth = -1;
  #hashed = '';

  constructor(config: ScoreConfig) {
    this.config = config;
  }

  /** The versions loaded now, as `<model>@<version>` (for lineage and tests). */
  get loadedVersions(): string[] {
    return [...this.#versions.values()].flatMap((byVersion) =>
      [...byVersion.values()].map((v) => `${v.name}@${v.version}`),
    );
  }

  /** Shadow inferences skipped since open (version unavailable, or an output that could not be trusted). */
  get skippedShadows(): number {
    return this.#skippedShadows;
  }

  async open(context: OperatorContext): Promise<void> {
    if (endianness() !== 'LE') {
      throw new VigilError('CONFIG_INVALID', 'score: feature vector hashes are defined on little-endian hosts only');
    }
    await this.close();
    this.#store = context.models;
    this.#rollouts = context.rollouts;
    this.#clock = context.clock;
    this.#log = context.log;
    this.#pipeline = this.config.pipeline ?? context.pipeline;
    this.#skippedShadows = 0;
    // The default versions are the pipeline's own configuration: one that cannot be loaded fails the start-up, with a
    // message saying what to fix, whatever the registry routes today.
    try {
      for (const { model, version } of this.config.models) {
        this.#put(model, version, await ScoringVersion.open(context.models, model, version, this.#pipeline));
      }
    } catch (error) {
      await this.close();
      throw error;
    }
    const table = this.#rollouts?.current();
    if (table !== undefined) await this.#follow(table);
  }

  async process(batch: readonly InFlight<CheckedEvent>[]): Promise<ResultsBuilder<ScoredEvent>> {
    const clock = this.#clock;
    if (clock === null) throw new VigilError('INTERNAL', 'score: process() called before open()');
    const table = this.#rollouts?.current();
    if (table !== undefined && table.revision !== this.#revision) await this.#follow(table);

    const n = batch.length;
    const models = this.config.models;
    // Each model's route, read once per batch (a routing change arrives as a new table, seen at the next batch).
    const routers = this.#routersFor(table);
    const slots: Slot[] = [];
    const pendings = new Map<ScoringVersion, PendingRows>();
    /** Per record: the dead-letter detail of a failed clinical route (null: none), and the news2_incomplete flag. */
    const failed: (string | null)[] = new Array(n).fill(null);
    const incomplete = new Uint8Array(n);
    let shadowsUnavailable = 0;

    for (let i = 0; i < n; i++) {
      const envelope = batch[i]!.value.envelope;
      for (let m = 0; m < models.length && failed[i] === null; m++) {
        const decisions = routers[m]!(envelope);
        for (let d = 0; d < decisions.length; d++) {
          const decision = decisions[d]!;
          const version = this.#versions.get(decision.model)?.get(decision.version);
          if (version === undefined) {
            const unavailable = this.#unavailable.get(decision.model)?.get(decision.version);
            if (unavailable !== undefined && !unavailable.applies(envelope)) continue;
            if (decision.clinical) {
              failed[i] =
                `model ${decision.model}@${decision.version} is routed ${decision.mode} but unavailable ` +
                `(${unavailable?.code ?? 'NOT_LOADED'})`;
              break;
            }
            shadowsUnavailable++;
            continue;
          }
          let pending = pendings.get(version);
          if (pending === undefined) {
            pending = new PendingRows(version, n);
            pendings.set(version, pending);
          }
          const width = version.extractor.width;
          const status = version.extractor.extract(envelope, pending.input, pending.values, pending.rows * width);
          if (status === EXTRACTED) {
            slots.push({ record: i, pending, row: pending.rows, decision });
            pending.rows++;
            if (decision.clinical) pending.clinical = true;
          } else if (status === MISSING && version.reader.kind === 'news2' && envelope.event_type === 'vital_signs') {
            incomplete[i] = 1;
          }
        }
      }
    }

    for (const pending of pendings.values()) {
      if (pending.rows === 0) continue;
      const width = pending.version.extractor.width;
      const input =
        pending.rows * width === pending.input.length ? pending.input : pending.input.subarray(0, pending.rows * width);
      try {
        pending.outputs = await pending.version.run(input, pending.rows);
      } catch (error) {
        // A clinical version's failure fails the batch (the runtime retries it); a shadow-only call is skipped.
        if (pending.clinical) throw error;
        const { name: model, version } = pending.version;
        this.#log?.warn(
          { operator: this.name, model, version, shadow_rows: pending.rows, error: describeError(error) },
          'shadow model call failed: its inferences of this batch are skipped',
        );
      }
    }

    const scoredAt = clock.now();
    const results = new ResultsBuilder<ScoredEvent>();
    let s = 0;
    let shadowsSkipped = 0;
    let shadowsFailed = 0;
    for (let i = 0; i < n; i++) {
      const record = batch[i]!;
      const event = record.value;
      let inferences: Inference[] | null = null;
      for (; s < slots.length && slots[s]!.record === i; s++) {
        if (failed[i] !== null) continue;
        const slot = slots[s]!;
        if (slot.pending.outputs === null) {
          // Only a shadow-only call leaves no outputs (a clinical one threw above); counted, logged per version.
          shadowsFailed++;
          continue;
        }
        const inference = this.#inference(event.envelope, slot, scoredAt);
        if (inference === null) {
          if (slot.decision.clinical) {
            failed[i] =
              `model ${slot.decision.model}@${slot.decision.version} returned a non-finite or out-of-range score, ` +
              'band or subscore';
          } else shadowsSkipped++;
          continue;
        }
        if (inferences === null) inferences = [inference];
        else inferences.push(inference);
      }
      const detail = failed[i];
      if (detail !== null && detail !== undefined) {
        results.reject(record, 'SCORING_FAILED', detail);
        continue;
      }
      results.pass(record.origin, {
        envelope: event.envelope,
        flags: incomplete[i] === 1 ? withFlag(event.flags, 'news2_incomplete') : event.flags,
        inferences: inferences ?? NO_INFERENCES,
      });
    }
    // Shadows of an unavailable version are counted only: the version was logged once, when it failed to load.
    this.#skippedShadows += shadowsSkipped + shadowsUnavailable + shadowsFailed;
    if (shadowsSkipped > 0) {
      this.#log?.warn(
        { operator: this.name, code: 'SCORING_FAILED', shadow_inferences_skipped: shadowsSkipped },
        'shadow inferences skipped: output not finite or out of range',
      );
    }
    return results;
  }

  /** Each configured model's compiled route for `table`; compiled again only for a model whose route changed. */
  #routersFor(table: RoutingTable | undefined): CompiledRoute[] {
    const models = this.config.models;
    const decide: CompiledRoute[] = new Array(models.length);
    for (let m = 0; m < models.length; m++) {
      const { model, version } = models[m]!;
      const route = table?.route(model);
      let router = this.#routers[m];
      if (router === undefined || router.route !== route) {
        router = { route, decide: compileRoute(model, route, version) };
        this.#routers[m] = router;
      }
      decide[m] = router.decide;
    }
    return decide;
  }

  async close(): Promise<void> {
    this.#routers = [];
    const versions = [...this.#versions.values()].flatMap((byVersion) => [...byVersion.values()]);
    this.#versions.clear();
    this.#unavailable.clear();
    this.#knownInputs.clear();
    this.#revision = -1;
    this.#clock = null;
    await Promise.all(versions.map((v) => v.close()));
  }

  /**
   * Brings the loaded versions in line with `table`: every version it routes (the default where it routes nothing)
   * loaded, every other one released. A routed version that cannot be loaded is marked unavailable (retried at the
   * next revision): its clinical records become dead letters, its shadows are skipped; the run goes on.
   */
  async #follow(table: RoutingTable): Promise<void> {
    const store = this.#store!;
    const wanted = new Map<string, Map<string, string | undefined>>();
    for (const configured of this.config.models) wanted.set(configured.model, routedVersions(configured, table));
    for (const [model, versions] of wanted) {
      const loaded = this.#versions.get(model);
      for (const [version, registered] of versions) {
        const current = loaded?.get(version);
        if (current !== undefined) {
          if (registered === undefined || current.model.artifactSha256 === registered) continue;
          loaded!.delete(version); // loaded as a default before the registry named other bytes: checked again below
          await current.close();
        }
        try {
          const scoring = await ScoringVersion.open(store, model, version, this.#pipeline);
          if (registered !== undefined && scoring.model.artifactSha256 !== registered) {
            await scoring.close();
            // Other bytes than the registry added and approved under this version: never run them.
            throw new VigilError(
              'MODEL_INTEGRITY_FAILED',
              `model ${model}@${version}: the model store holds artifact ${scoring.model.artifactSha256}, the ` +
                `registry routes ${registered}; restore the registered artifact (vigil models show ${model})`,
            );
          }
          this.#put(model, version, scoring);
          this.#unavailable.get(model)?.delete(version);
          this.#log?.info({ operator: this.name, model, version, revision: table.revision }, 'model version loaded');
        } catch (error) {
          const code = error instanceof VigilError ? error.code : 'INTERNAL';
          let unavailable = this.#unavailable.get(model);
          if (unavailable === undefined) {
            unavailable = new Map();
            this.#unavailable.set(model, unavailable);
          }
          unavailable.set(version, new Unavailable(code, await this.#inputsOf(store, model, version)));
          // The message names files and versions only (no record is involved), so it is safe to log.
          this.#log?.error(
            { operator: this.name, model, version, revision: table.revision, code, error: describeError(error) },
            'routed model version unavailable: its clinical records become SCORING_FAILED dead letters',
          );
        }
      }
      for (const [version, scoring] of loaded ?? []) {
        if (versions.has(version)) continue;
        loaded!.delete(version);
        await scoring.close();
        this.#log?.info({ operator: this.name, model, version, revision: table.revision }, 'model version released');
      }
      for (const version of this.#unavailable.get(model)?.keys() ?? []) {
        if (!versions.has(version)) this.#unavailable.get(model)!.delete(version);
      }
    }
    this.#revision = table.revision;
  }

  /** What an unavailable version reads: its own manifest's inputs if readable, else the model's last known inputs. */
  async #inputsOf(store: ModelStore, model: string, version: string): Promise<FeatureExtractor | null> {
    try {
      const manifest = await store.manifest(model, version);
      return new FeatureExtractor(manifest.inputs, `score: model ${model}@${version}`);
    } catch {
      return this.#knownInputs.get(model) ?? null;
    }
  }

  #put(model: string, version: string, scoring: ScoringVersion): void {
    this.#knownInputs.set(model, scoring.extractor);
    let byVersion = this.#versions.get(model);
    if (byVersion === undefined) {
      byVersion = new Map();
      this.#versions.set(model, byVersion);
    }
    byVersion.set(version, scoring);
  }

  #inference(e: Envelope, slot: Slot, scoredAt: number): Inference | null {
    const { pending, row, decision } = slot;
    const version = pending.version;
    const reader = version.reader;
    const outputs = pending.outputs!;
    const score = reader.score(outputs, row);
    if (Number.isNaN(score)) return null;
    const band = reader.band(outputs, row, score);
    if (band === null) return null;
    const subscores = reader.subscores(outputs, row);
    if (subscores === null) return null;
    const width = version.extractor.width;
    const at = row * width;
    const features: number[] = new Array(width);
    for (let k = 0; k < width; k++) features[k] = pending.values[at + k]!;
    const constants = version.constants;
    return {
      inference_id: ulidOfHash(e.observed_at, e.event_id + version.idSuffix),
      event_id: e.event_id,
      parent_event_ids: [e.event_id],
      device_id: e.device_id,
      patient_ref: e.patient_ref,
      site_id: e.site_id,
      firmware_version: e.firmware_version,
      device_batch: e.device_batch ?? null,
      patient_subgroup: e.patient_subgroup ?? null,
      observed_at: e.observed_at,
      scored_at: scoredAt,
      // version.constants, written out (same keys, same order) rather than spread: one object shape, no spread.
      model_name: constants.model_name,
      model_version: constants.model_version,
      model_artifact_sha256: constants.model_artifact_sha256,
      runtime: constants.runtime,
      runtime_version: constants.runtime_version,
      config_hash: constants.config_hash,
      feature_names: constants.feature_names,
      transformation_version: constants.transformation_version,
      rollout: decision.mode,
      // The values as read; Float32Array.from(features) is exactly the vector fed to the model and hashed below.
      features,
      feature_vector_hash: this.#featureHash(pending, at, width),
      score,
      subscores,
      risk_band: band,
      rollout_id: decision.rollout_id,
      routing: {
        source: decision.source,
        cohort_bucket: decision.cohort_bucket,
        in_canary: decision.in_canary,
        clinical: decision.clinical,
      },
    };
  }

  /** sha256 (hex) of the float32 row of `pending` at `at`: the last hash again when the row has the same bits. */
  #featureHash(pending: PendingRows, at: number, width: number): string {
    const bits = pending.bits;
    const last = this.#hashedBits;
    if (this.#hashedWidth === width) {
      let k = 0;
      while (k < width && bits[at + k] === last[k]) k++;
      if (k === width) return this.#hashed;
    }
    const hash = sha256Hex(new Uint8Array(pending.input.buffer, pending.input.byteOffset + at * 4, width * 4));
    if (last.length < width) this.#hashedBits = new Int32Array(width);
    this.#hashedBits.set(bits.subarray(at, at + width));
    this.#hashedWidth = width;
    this.#hashed = hash;
    return hash;
  }
}

/**
 * The versions of one model `table` can route an event to (as decideRoutes decides): the registry's live version (the
 * pipeline's default where it has none, or no route at all), its canary and its shadows.
 */
/** Every version `table` routes for a model (the default where it routes no live one), with the registered artifact. */
function routedVersions(configured: ScoredModel, table: RoutingTable): Map<string, string | undefined> {
  const route = table.route(configured.model);
  if (route === undefined) return new Map([[configured.version, undefined]]);
  const versions = new Map<string, string | undefined>();
  const add = (routed: RoutedVersion) => versions.set(routed.version, routed.artifact_sha256);
  if (route.live !== null) add(route.live);
  else versions.set(configured.version, undefined);
  if (route.canary !== null) add(route.canary);
  for (const shadow of route.shadows) add(shadow);
  return versions;
}
