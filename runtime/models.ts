/**
 * What operators may know of models: a store that loads a model version by name, verified against its manifest.
 * The ONNX adapter (adapters/onnx/) implements it; operators never import onnxruntime themselves.
 */

export interface ModelManifest {
  readonly name: string;
  readonly version: string;
  /** What the model is and how it was built (script, inputs). */
  readonly description: string;
  readonly artifact: { readonly file: string; readonly sha256: string };
  /** Input feature names in column order. */
  readonly features: readonly string[];
  /** Drift reference histograms stored with the version (null until built). */
  readonly reference: { readonly file: string; readonly sha256: string } | null;
  /** Free-form build provenance: the script and its version, the source it encodes. */
  readonly build: Readonly<Record<string, string>>;
}

export interface TensorData {
  readonly data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
  readonly dims: readonly number[];
}

export interface LoadedModel {
  readonly manifest: ModelManifest;
  /** Verified sha256 of the artifact as loaded (equals the manifest's). */
  readonly artifactSha256: string;
  readonly runtime: { readonly name: string; readonly version: string };
  /** Runs one batch. Input and output names are the model's own. */
  run(inputs: Readonly<Record<string, TensorData>>): Promise<Record<string, TensorData>>;
  close(): Promise<void>;
}

export interface ModelStore {
  /** Loads and verifies a model version; throws VigilError MODEL_NOT_FOUND / MODEL_INTEGRITY_FAILED. */
  load(name: string, version: string): Promise<LoadedModel>;
  /** Reads a file that belongs to a model version after checking it against the sha256 the manifest gives. */
  readVerified(name: string, version: string, entry: 'reference'): Promise<Buffer>;
  manifest(name: string, version: string): Promise<ModelManifest>;
}
