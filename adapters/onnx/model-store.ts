/**
 * The local model store: `<root>/<name>/<version>/manifest.json` plus the files it names, served to operators through
 * the `ModelStore` contract (runtime/models.ts). The only module in Vigil that imports onnxruntime. Manifests are read
 * with governance/manifest.ts's strict schema (format 2), the one `vigil models add` validates with.
 *
 * Integrity first: `load` reads the artifact's bytes once, checks their sha256 against the manifest, and creates the
 * session from those very bytes, so what runs is exactly what was verified. One long-lived `InferenceSession` per
 * loaded model (creating and releasing sessions per batch leaks native memory); `close()` releases it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { MODEL_SEGMENT, parseManifest } from '../../governance/manifest.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { LoadedModel, ModelManifest, ModelStore, TensorData } from '../../runtime/models.ts';

/** `<repo>/models`. */
export const DEFAULT_MODELS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

export const RUNTIME = { name: 'onnxruntime-node', version: ort.env.versions.node ?? ort.env.versions.common } as const;

export interface OnnxModelStoreOptions {
  /** The models folder. Default: `<repo>/models`. */
  readonly root?: string;
  /**
   * Threads one session may use inside an operator. Default 1: workers scale by partitions, and the reference model
   * is tiny; raise it only for a heavy model on a worker with idle cores.
   */
  readonly intraOpNumThreads?: number;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

type OrtType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8';

function ortType(data: TensorData['data']): OrtType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'uint8';
}

function toTensorData(name: string, tensor: ort.Tensor): TensorData {
  const data = tensor.data;
  if (
    data instanceof Float32Array ||
    data instanceof Float64Array ||
    data instanceof Int32Array ||
    data instanceof BigInt64Array ||
    data instanceof Uint8Array
  ) {
    return { data, dims: tensor.dims };
  }
  throw new VigilError('INTERNAL', `model output ${name} has unsupported element type ${tensor.type}`);
}

class OnnxLoadedModel implements LoadedModel {
  readonly manifest: ModelManifest;
  readonly artifactSha256: string;
  readonly runtime = RUNTIME;
  #session: ort.InferenceSession | null;

  constructor(manifest: ModelManifest, artifactSha256: string, session: ort.InferenceSession) {
    this.manifest = manifest;
    this.artifactSha256 = artifactSha256;
    this.#session = session;
  }

  async run(inputs: Readonly<Record<string, TensorData>>): Promise<Record<string, TensorData>> {
    const session = this.#session;
    if (!session) {
      throw new VigilError('INTERNAL', `model ${this.manifest.name}@${this.manifest.version} was used after close()`);
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(ortType(t.data), t.data, t.dims);
    const results = await session.run(feeds);
    const out: Record<string, TensorData> = {};
    for (const [name, tensor] of Object.entries(results)) out[name] = toTensorData(name, tensor);
    return out;
  }

  async close(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    if (session) await session.release();
  }
}

export class OnnxModelStore implements ModelStore {
  readonly root: string;
  readonly #intraOpNumThreads: number;

  constructor(options: OnnxModelStoreOptions = {}) {
    this.root = resolve(options.root ?? DEFAULT_MODELS_ROOT);
    this.#intraOpNumThreads = options.intraOpNumThreads ?? 1;
  }

  async manifest(name: string, version: string): Promise<ModelManifest> {
    const dir = this.#versionDir(name, version);
    const path = join(dir, 'manifest.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (isMissing(error)) {
        throw new VigilError(
          'MODEL_NOT_FOUND',
          `model ${name}@${version} is not in the model store: ${this.#shown(path)} does not exist`,
          { cause: error },
        );
      }
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new VigilError(
        'MODEL_INTEGRITY_FAILED',
        `${this.#shown(path)} is not a valid model manifest: ${(error as Error).message}`,
        { cause: error },
      );
    }
    // The one strict schema (format 2) the registry validates with too.
    const parsed = parseManifest(json, this.#shown(path));
    if (parsed.name !== name || parsed.version !== version) {
      throw new VigilError(
        'MODEL_INTEGRITY_FAILED',
        `${this.#shown(path)} describes ${parsed.name}@${parsed.version}, not ${name}@${version}`,
      );
    }
    return parsed;
  }

  async load(name: string, version: string): Promise<LoadedModel> {
    const manifest = await this.manifest(name, version);
    const bytes = await this.#readChecked(name, version, 'artifact', manifest.artifact);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: this.#intraOpNumThreads,
        interOpNumThreads: 1,
      });
    } catch (error) {
      throw new VigilError(
        'MODEL_INTEGRITY_FAILED',
        `model ${name}@${version}: onnxruntime could not load ${manifest.artifact.file} (its sha256 matches the manifest, so the manifest names a file onnxruntime ${RUNTIME.version} cannot run)`,
        { cause: error },
      );
    }
    return new OnnxLoadedModel(manifest, manifest.artifact.sha256, session);
  }

  async readVerified(name: string, version: string, entry: 'reference'): Promise<Buffer> {
    const manifest = await this.manifest(name, version);
    const file = manifest[entry];
    if (!file) {
      throw new VigilError(
        'MODEL_NOT_FOUND',
        `model ${name}@${version} has no ${entry} in its manifest: build it (the drift baseline script writes it)`,
      );
    }
    return this.#readChecked(name, version, entry, file);
  }

  async #readChecked(
    name: string,
    version: string,
    entry: string,
    file: { readonly file: string; readonly sha256: string },
  ): Promise<Buffer> {
    const dir = this.#versionDir(name, version);
    const path = resolve(dir, file.file);
    const inside = relative(dir, path);
    if (inside.startsWith('..') || inside.startsWith(sep) || inside === '') {
      throw new VigilError(
        'MODEL_INTEGRITY_FAILED',
        `model ${name}@${version}: the manifest's ${entry} file points outside its version folder`,
      );
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if (isMissing(error)) {
        throw new VigilError(
          'MODEL_NOT_FOUND',
          `model ${name}@${version}: ${entry} file ${this.#shown(path)} named by the manifest does not exist`,
          { cause: error },
        );
      }
      throw error;
    }
    const actual = sha256Hex(bytes);
    if (actual !== file.sha256) {
      throw new VigilError(
        'MODEL_INTEGRITY_FAILED',
        `model ${name}@${version}: ${entry} ${this.#shown(path)} has sha256 ${actual}, the manifest says ${file.sha256}; ` +
          'restore the file (or rebuild the model and its manifest) before use',
      );
    }
    return bytes;
  }

  #versionDir(name: string, version: string): string {
    if (!MODEL_SEGMENT.test(name) || !MODEL_SEGMENT.test(version)) {
      throw new VigilError(
        'MODEL_NOT_FOUND',
        `model name and version must be plain folder names (letters, digits, '.', '_', '-'): got ${JSON.stringify(`${name}@${version}`)}`,
      );
    }
    return join(this.root, name, version);
  }

  #shown(path: string): string {
    return relative(process.cwd(), path) || path;
  }
}
