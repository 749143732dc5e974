/**
 * `score`: runs a verified NEWS2 model over complete vital-signs records and attaches one `Inference` to each.
 *
 * Per batch: the complete vital-signs records become the rows of ONE float32 tensor [N,7] and ONE model call; every
 * other record passes through with `inference: null` (vital signs missing a parameter also get the
 * `news2_incomplete` flag). A row whose outputs are not finite leaves as a SCORING_FAILED dead letter. Output order is
 * input order.
 *
 * Everything an inference needs to be reproduced rides on it: model name, version and artifact sha256, runtime and
 * version, a hash of the configuration (manifest + operator config), the rollout, the features and a hash of the exact
 * float32 vector fed to the model. Ids are deterministic, so a retried batch yields the same inferences.
 */
import * as nodeCrypto from 'node:crypto';
import { endianness } from 'node:os';
import type { Clock } from '../../runtime/clock.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { LoadedModel } from '../../runtime/models.ts';
import { type Operator, type OperatorContext, ResultsBuilder } from '../../runtime/operator.ts';
import type { InFlight } from '../../runtime/record.ts';
import { type Inference, payloadOf } from '../../schemas/types.ts';
import type { CheckedEvent, ProvenanceFlag, ScoredEvent } from '../types.ts';
import type { ScoreConfig } from './config.ts';
import { NEWS2_FEATURES, NEWS2_WIDTH, news2Features } from './features.ts';
import { RISK_BANDS } from './news2-reference.ts';

/** A row that scores 0 on every parameter: the start-up smoke test feeds it to check the model's outputs. */
const NORMAL_ROW = [16, 97, 0, 120, 70, 0, 37] as const;

/** The model's outputs, as the operator reads them. */
interface News2Outputs {
  readonly score: Float32Array;
  readonly subscores: Float32Array;
  readonly band: Float32Array;
}

/** The fields every inference of one opened operator shares. */
type InferenceConstants = Pick<
  Inference,
  | 'model_name'
  | 'model_version'
  | 'model_artifact_sha256'
  | 'runtime'
  | 'runtime_version'
  | 'config_hash'
  | 'rollout'
  | 'feature_names'
  | 'transformation_version'
>;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const MAX_ULID_TIME = 2 ** 48 - 1;

/**
 * A ULID-shaped id (26 Crockford base32 chars): the 48-bit time part from `timeMs`, the 80-bit rest from the first
 * 10 bytes of `digest`. Deterministic, and it sorts by time like the event ids it sits beside.
 */
export function deterministicUlid(timeMs: number, digest: Uint8Array): string {
  let t = Math.min(Math.max(Math.floor(timeMs), 0), MAX_ULID_TIME);
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  let rest = '';
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < 10; i++) {
    acc = (acc << 8) | digest[i]!;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rest += CROCKFORD[(acc >>> bits) & 31]!;
    }
    acc &= (1 << bits) - 1;
  }
  return time + rest;
}

/** JSON with object keys sorted at every level (undefined members dropped): a stable input for a hash. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

// One-shot hashing (Node >= 20.12) is several times faster than createHash for the short inputs of the hot path.
const oneShot = typeof nodeCrypto.hash === 'function';

function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? nodeCrypto.hash('sha256', data, 'hex') : nodeCrypto.createHash('sha256').update(data).digest('hex');
}

function sha256Bytes(data: string): Uint8Array {
  return oneShot ? nodeCrypto.hash('sha256', data, 'buffer') : nodeCrypto.createHash('sha256').update(data).digest();
}

function withFlag(flags: readonly ProvenanceFlag[], flag: ProvenanceFlag): readonly ProvenanceFlag[] {
  return flags.includes(flag) ? flags : [...flags, flag];
}

function sameFeatures(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

/** Row markers for records the model does not see: pass through as they are, or flagged `news2_incomplete`. */
const PASS = -1;
const INCOMPLETE = -2;

export class ScoreOperator implements Operator<CheckedEvent, ScoredEvent> {
  readonly name = 'score';
  readonly stage = 'score' as const;
  readonly config: ScoreConfig;
  #model: LoadedModel | null = null;
  #clock: Clock | null = null;
  #constants: InferenceConstants | null = null;
  #idSuffix = '';

  constructor(config: ScoreConfig) {
    this.config = config;
  }

  /** The loaded model (for lineage and tests); null before `open` and after `close`. */
  get model(): LoadedModel | null {
    return this.#model;
  }

  async open(context: OperatorContext): Promise<void> {
    if (endianness() !== 'LE') {
      throw new VigilError('CONFIG_INVALID', 'score: feature vector hashes are defined on little-endian hosts only');
    }
    await this.close();
    const { model: name, version, rollout } = this.config;
    let model: LoadedModel;
    try {
      model = await context.models.load(name, version);
    } catch (error) {
      if (error instanceof VigilError && error.code === 'MODEL_NOT_FOUND') {
        throw new VigilError(
          'MODEL_NOT_FOUND',
          `score: ${error.message}. Fix \`model\`/\`version\` in the score config, or build the model ` +
            '(`npm run models:build` writes news2@1.0.0)',
          { cause: error },
        );
      }
      if (error instanceof VigilError) {
        throw new VigilError(error.code, `score: ${error.message}`, { cause: error });
      }
      throw error;
    }
    try {
      if (!sameFeatures(model.manifest.features, NEWS2_FEATURES)) {
        throw new VigilError(
          'CONFIG_INVALID',
          `score: model ${name}@${version} takes features [${model.manifest.features.join(', ')}], but score feeds ` +
            `NEWS2 features [${NEWS2_FEATURES.join(', ')}]: configure a NEWS2 model`,
        );
      }
      const smoke = await this.#run(model, Float32Array.from(NORMAL_ROW), 1);
      if (smoke.score[0] !== 0 || smoke.band[0] !== 0) {
        throw new VigilError(
          'CONFIG_INVALID',
          `score: model ${name}@${version} does not score a normal set of vital signs as 0 (low): it is not a NEWS2 model`,
        );
      }
    } catch (error) {
      await model.close();
      throw error;
    }
    const pipeline = this.config.pipeline ?? context.pipeline;
    this.#model = model;
    this.#clock = context.clock;
    this.#idSuffix = `|${name}|${version}`;
    this.#constants = {
      model_name: name,
      model_version: version,
      model_artifact_sha256: model.artifactSha256,
      runtime: model.runtime.name,
      runtime_version: model.runtime.version,
      config_hash: sha256Hex(
        canonicalJson({ manifest: model.manifest, operator: { ...this.config, pipeline, name: this.name } }),
      ),
      rollout,
      // One shared, frozen array: every inference names the same columns.
      feature_names: Object.freeze([...NEWS2_FEATURES]) as unknown as string[],
      transformation_version: `${pipeline}/score/${name}@${version}`,
    };
  }

  async process(batch: readonly InFlight<CheckedEvent>[]): Promise<ResultsBuilder<ScoredEvent>> {
    const model = this.#model;
    const constants = this.#constants;
    const clock = this.#clock;
    if (!model || !constants || !clock) throw new VigilError('INTERNAL', 'score: process() called before open()');

    const n = batch.length;
    const rowOf = new Int32Array(n);
    const rows: number[][] = [];
    for (let i = 0; i < n; i++) {
      const payload = payloadOf(batch[i]!.value.envelope.payload);
      if (payload === null || payload.type !== 'vital_signs') {
        rowOf[i] = PASS;
        continue;
      }
      const features = news2Features(payload.data);
      if (features === null) {
        rowOf[i] = INCOMPLETE;
        continue;
      }
      rowOf[i] = rows.length;
      rows.push(features);
    }

    let input: Float32Array | null = null;
    let outputs: News2Outputs | null = null;
    if (rows.length > 0) {
      input = new Float32Array(rows.length * NEWS2_WIDTH);
      for (let r = 0; r < rows.length; r++) input.set(rows[r]!, r * NEWS2_WIDTH);
      outputs = await this.#run(model, input, rows.length);
    }

    const scoredAt = clock.now();
    const results = new ResultsBuilder<ScoredEvent>();
    for (let i = 0; i < n; i++) {
      const record = batch[i]!;
      const event = record.value;
      const r = rowOf[i]!;
      if (r === PASS) {
        results.pass(record.origin, { ...event, inference: null });
      } else if (r === INCOMPLETE) {
        results.pass(record.origin, { ...event, flags: withFlag(event.flags, 'news2_incomplete'), inference: null });
      } else {
        const inference = this.#inference(event, rows[r]!, r, input!, outputs!, scoredAt, constants);
        if (inference) results.pass(record.origin, { ...event, inference });
        else
          results.reject(
            record,
            'SCORING_FAILED',
            `model ${constants.model_name}@${constants.model_version} returned a non-finite score, band or subscore`,
          );
      }
    }
    return results;
  }

  async close(): Promise<void> {
    const model = this.#model;
    this.#model = null;
    this.#constants = null;
    if (model) await model.close();
  }

  #inference(
    event: CheckedEvent,
    features: number[],
    r: number,
    input: Float32Array,
    outputs: News2Outputs,
    scoredAt: number,
    constants: InferenceConstants,
  ): Inference | null {
    const score = outputs.score[r]!;
    const band = outputs.band[r]!;
    if (!Number.isFinite(score) || !(band === 0 || band === 1 || band === 2 || band === 3)) return null;
    const at = r * NEWS2_WIDTH;
    const subscores: number[] = new Array(NEWS2_WIDTH);
    for (let k = 0; k < NEWS2_WIDTH; k++) {
      const s = outputs.subscores[at + k]!;
      if (!Number.isFinite(s)) return null;
      subscores[k] = s;
    }
    const e = event.envelope;
    return {
      inference_id: deterministicUlid(e.observed_at, sha256Bytes(e.event_id + this.#idSuffix)),
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
      ...constants,
      // The values as read; Float32Array.from(features) is exactly the vector fed to the model and hashed below.
      features,
      feature_vector_hash: sha256Hex(new Uint8Array(input.buffer, input.byteOffset + at * 4, NEWS2_WIDTH * 4)),
      score,
      subscores,
      risk_band: RISK_BANDS[band]!,
    };
  }

  async #run(model: LoadedModel, input: Float32Array, rows: number): Promise<News2Outputs> {
    const out = await model.run({ features: { data: input, dims: [rows, NEWS2_WIDTH] } });
    const score = out['score']?.data;
    const subscores = out['subscores']?.data;
    const band = out['band']?.data;
    if (
      !(score instanceof Float32Array && score.length === rows) ||
      !(subscores instanceof Float32Array && subscores.length === rows * NEWS2_WIDTH) ||
      !(band instanceof Float32Array && band.length === rows)
    ) {
      throw new VigilError(
        'CONFIG_INVALID',
        `score: model ${model.manifest.name}@${model.manifest.version} must return float32 outputs score [N,1], ` +
          `subscores [N,${NEWS2_WIDTH}] and band [N,1]; it returned ${Object.keys(out).join(', ') || 'nothing'}`,
      );
    }
    return { score, subscores, band };
  }
}
