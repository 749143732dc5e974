/**
 * What operators may know of models: a store that loads a model version by name, verified against its manifest.
 * The ONNX adapter (adapters/onnx/) implements it; operators never import onnxruntime themselves.
 */

/** One model input: a tensor column read from a field of the decoded envelope. */
export interface ModelInput {
  /** Feature name (column of the input tensor, in `inputs` order). */
  readonly name: string;
  /**
   * Where the value comes from: `<payload branch>.<field>` of the envelope's payload (e.g.
   * `vital_signs.respiratory_rate`), or `envelope.<field>` for a top-level envelope field.
   */
  readonly field: string;
  /** UCUM-style unit of the value fed to the model (`/min`, `%`, `mm[Hg]`, `Cel`, `1` for flags). */
  readonly unit: string;
  /** Allowed range of the value fed to the model (inclusive): outside it the record is not scored by this model. */
  readonly min: number;
  readonly max: number;
  /** How a non-numeric value becomes a number (booleans as "true"/"false", enum symbols): absent for numbers. */
  readonly encode?: Readonly<Record<string, number>>;
}

/** Probability thresholds for a risk band (a score >= the threshold is in the band or above). */
export interface RiskThresholds {
  readonly low_medium: number;
  readonly medium: number;
  readonly high: number;
}

/** What a model returns and how Vigil reads it. */
export type ModelOutput =
  | {
      /** The NEWS2 chart network: `score` [N,1], `subscores` [N,inputs], `band` [N,1] (0..3). */
      readonly kind: 'news2';
      readonly score_tensor: string;
      readonly subscores_tensor: string;
      readonly band_tensor: string;
    }
  | {
      /** A calibrated probability of `outcome` within its horizon: `score_tensor` [N,1] in [0,1]. */
      readonly kind: 'probability';
      readonly score_tensor: string;
      /** Optional per-input contributions [N,inputs] (e.g. coefficient x value), stored as the inference's subscores. */
      readonly contributions_tensor: string | null;
      readonly thresholds: RiskThresholds;
      /** The outcome the probability is of: which outcome kinds count, within how long after the observation. */
      readonly outcome: { readonly kinds: readonly string[]; readonly horizon_ms: number };
    };

/** Pre-specified criteria a version must meet on its shadow (or canary) period before `vigil models promote`. */
export interface AcceptanceCriteria {
  /** Least number of the candidate's inferences in the period. */
  readonly min_inferences: number;
  /** Least share of events where the candidate's risk band equals the live version's (0..1). */
  readonly min_agreement_with_live: number;
  /** Calibration bounds on events whose outcome window has closed; null for a model without a probability output. */
  readonly calibration: {
    readonly min_outcome_events: number;
    readonly citl_abs_max: number;
    readonly slope_min: number;
    readonly slope_max: number;
    readonly ece_max: number;
  } | null;
  /** No patient subgroup's Brier score may be worse than the live version's by more than this (probability models). */
  readonly subgroup_brier_margin: number | null;
}

export interface ModelManifest {
  /** Manifest format: 2 (strict schema in governance/manifest.ts). */
  readonly manifest_version: 2;
  readonly name: string;
  readonly version: string;
  /** What the model is and how it was built (script, inputs). */
  readonly description: string;
  readonly artifact: { readonly file: string; readonly sha256: string };
  /** The input tensor's name; its columns are `inputs` in order. */
  readonly input_tensor: string;
  readonly inputs: readonly ModelInput[];
  /** Input feature names in column order (= inputs.map(i => i.name)). */
  readonly features: readonly string[];
  readonly output: ModelOutput;
  readonly intended_use: string;
  readonly population: {
    readonly description: string;
    readonly age_bands: readonly string[];
    readonly settings: readonly string[];
  };
  readonly training_data: {
    readonly dataset_id: string;
    /** ISO 8601 instants. */
    readonly time_range: { readonly from: string; readonly to: string };
    readonly sites: readonly string[];
    /** sha256 of the training data set as the build script produced it. */
    readonly sha256: string;
    readonly rows: number;
  };
  /** Drift reference histograms stored with the version (null until built). */
  readonly reference: { readonly file: string; readonly sha256: string } | null;
  /** The PCCP (predetermined change control plan) modification this version was released under. */
  readonly pccp: { readonly modification_id: string; readonly description: string };
  readonly acceptance_criteria: AcceptanceCriteria;
  /** Drift thresholds past which an operational alert fires, and whether a rollback may then be automatic. */
  readonly drift: {
    /** Jensen-Shannon distance (base 2) per feature at or above which the feature has drifted. */
    readonly js_threshold: number;
    /** Share of features drifted at or above which the data set has drifted. */
    readonly dataset_share: number;
    readonly auto_rollback: boolean;
  };
  /** Free-form build provenance: the script and its version, the source it encodes. */
  readonly build: Readonly<Record<string, string>>;
}

/** A version as the routing table names it. */
export interface RoutedVersion {
  readonly version: string;
  /** change_id of the rollout record that put it here; null when it runs by the pipeline's default. */
  readonly rollout_id: string | null;
  /** Whether the registry holds an approval for it (unapproved versions only ever run in shadow). */
  readonly approved: boolean;
  /**
   * The artifact the registry holds for it (SHA-256 as added and approved): a worker whose model store holds other
   * bytes under this version must not run them. Absent only in tables built by hand (tests).
   */
  readonly artifact_sha256?: string;
}

/** Which patients a canary applies to: every listed dimension must match (a value in its list); empty = everyone. */
export interface Cohort {
  readonly sites?: readonly string[];
  readonly firmware?: readonly string[];
  readonly subgroups?: readonly string[];
  readonly device_batches?: readonly string[];
}

/** Where one model's events go now: one live version, at most one canary, any number of shadows. */
export interface ModelRoute {
  readonly model: string;
  readonly live: RoutedVersion | null;
  readonly canary:
    | (RoutedVersion & { readonly percent: number; readonly cohort: Cohort; readonly cohort_expr: string })
    | null;
  readonly shadows: readonly RoutedVersion[];
}

/**
 * The rollouts in force, as every worker applies them (governance/ folds them from the control log
 * `vigil.control.model-rollouts`). `revision` grows with every applied change, so an operator reloads only on change.
 */
export interface RoutingTable {
  readonly revision: number;
  route(model: string): ModelRoute | undefined;
}

/** The live view an operator receives: `current()` is cheap (called once per batch). */
export interface ModelRollouts {
  current(): RoutingTable;
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
