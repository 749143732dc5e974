/**
 * One model version as `score` runs it: the verified model from the store, its inputs compiled into an extractor, its
 * output reader, and the fields every inference of that version shares (artifact, runtime, configuration hash,
 * transformation). Opening one checks the model end to end on one row before any record sees it: a model whose
 * outputs are not what its manifest says fails here, with a message naming the version.
 */
import * as nodeCrypto from 'node:crypto';
import { VigilError } from '../../runtime/errors.ts';
import type { LoadedModel, ModelStore } from '../../runtime/models.ts';
import type { Inference } from '../../schemas/types.ts';
import { FeatureExtractor } from './extract.ts';
import { NEWS2_FEATURES } from './features.ts';
import { type CheckedOutputs, OutputReader } from './read-outputs.ts';

/** A row that scores 0 on every NEWS2 parameter: the load-time check of a `news2` model. */
const NORMAL_NEWS2_ROW = [16, 97, 0, 120, 70, 0, 37] as const;

/** The fields every inference of one version shares. */
export type VersionConstants = Pick<
  Inference,
  | 'model_name'
  | 'model_version'
  | 'model_artifact_sha256'
  | 'runtime'
  | 'runtime_version'
  | 'config_hash'
  | 'feature_names'
  | 'transformation_version'
>;

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

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? nodeCrypto.hash('sha256', data, 'hex') : nodeCrypto.createHash('sha256').update(data).digest('hex');
}

/** The sha256 of `data` (UTF-8) as a latin1 ('binary') string: char i is byte i of the digest. */
export function sha256Latin1(data: string): string {
  return oneShot
    ? nodeCrypto.hash('sha256', data, 'binary')
    : nodeCrypto.createHash('sha256').update(data).digest('binary');
}

function sameFeatures(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

export class ScoringVersion {
  readonly name: string;
  readonly version: string;
  readonly model: LoadedModel;
  readonly extractor: FeatureExtractor;
  readonly reader: OutputReader;
  readonly constants: VersionConstants;
  /** `|<model>|<version>`: appended to the event id for the inference id. */
  readonly idSuffix: string;
  readonly #inputTensor: string;

  private constructor(model: LoadedModel, pipeline: string) {
    const { manifest } = model;
    const where = `score: model ${manifest.name}@${manifest.version}`;
    this.name = manifest.name;
    this.version = manifest.version;
    this.model = model;
    this.extractor = new FeatureExtractor(manifest.inputs, where);
    if (!sameFeatures(manifest.features ?? [], this.extractor.names)) {
      throw new VigilError('CONFIG_INVALID', `${where}: the manifest's features are not its inputs' names in order`);
    }
    this.reader = new OutputReader(manifest.output, this.extractor.width, where);
    this.#inputTensor = typeof manifest.input_tensor === 'string' ? manifest.input_tensor : 'features';
    this.idSuffix = `|${this.name}|${this.version}`;
    this.constants = {
      model_name: this.name,
      model_version: this.version,
      model_artifact_sha256: model.artifactSha256,
      runtime: model.runtime.name,
      runtime_version: model.runtime.version,
      config_hash: sha256Hex(
        canonicalJson({
          manifest,
          operator: { name: 'score', pipeline, model: this.name, version: this.version },
        }),
      ),
      // One shared, frozen array: every inference of the version names the same columns.
      feature_names: Object.freeze([...this.extractor.names]) as unknown as string[],
      transformation_version: `${pipeline}/score/${this.name}@${this.version}`,
    };
  }

  /**
   * Loads `<name>@<version>` from the store (verified against its manifest), compiles it and runs the load-time
   * check. Throws VigilError (MODEL_NOT_FOUND, MODEL_INTEGRITY_FAILED, CONFIG_INVALID) with a message that says what
   * to fix; the model is closed again on failure.
   */
  static async open(store: ModelStore, name: string, version: string, pipeline: string): Promise<ScoringVersion> {
    let model: LoadedModel;
    try {
      model = await store.load(name, version);
    } catch (error) {
      if (error instanceof VigilError && error.code === 'MODEL_NOT_FOUND') {
        throw new VigilError(
          'MODEL_NOT_FOUND',
          `score: ${error.message}. Fix the model's default \`version\` in the score config, or build the model ` +
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
      const opened = new ScoringVersion(model, pipeline);
      await opened.#check();
      return opened;
    } catch (error) {
      await model.close();
      throw error;
    }
  }

  /** One batched call: `input` holds `rows` rows of `extractor.width` float32 values. */
  async run(input: Float32Array, rows: number): Promise<CheckedOutputs> {
    const out = await this.model.run({ [this.#inputTensor]: { data: input, dims: [rows, this.extractor.width] } });
    return this.reader.check(out, rows);
  }

  close(): Promise<void> {
    return this.model.close();
  }

  async #check(): Promise<void> {
    const where = `score: model ${this.name}@${this.version}`;
    if (this.reader.kind === 'news2') {
      if (!sameFeatures(this.extractor.names, NEWS2_FEATURES)) {
        throw new VigilError(
          'CONFIG_INVALID',
          `${where} has output kind "news2" but takes features [${this.extractor.names.join(', ')}], not the NEWS2 ` +
            `features [${NEWS2_FEATURES.join(', ')}]: fix its manifest`,
        );
      }
      const out = await this.run(Float32Array.from(NORMAL_NEWS2_ROW), 1);
      if (out.score[0] !== 0 || out.band?.[0] !== 0) {
        throw new VigilError(
          'CONFIG_INVALID',
          `${where} does not score a normal set of vital signs as 0 (low): it is not a NEWS2 model`,
        );
      }
      return;
    }
    const out = await this.run(this.extractor.midpoints(), 1);
    if (Number.isNaN(this.reader.score(out, 0))) {
      throw new VigilError(
        'CONFIG_INVALID',
        `${where} does not return a probability in [0, 1] for a row inside its inputs' ranges`,
      );
    }
  }
}
