/**
 * What `vigil models report` shows, as plain data: data.ts loads it from a read store and the model-rollouts control
 * log, charts.ts and html.ts turn it into SVG and HTML without any I/O. Keeping the figures here (and not the SQL rows)
 * lets the chart and page tests use fixed numbers.
 */
import type { AcceptanceCriteria } from '../../runtime/models.ts';
import type { ModelChange, RolloutMode } from '../types.ts';

/** One reliability bin: the calibration module's bin (governance/calibration.ts). */
export interface ReliabilityBin {
  readonly lo: number;
  readonly hi: number;
  readonly n: number;
  /** null for an empty bin. */
  readonly mean_predicted: number | null;
  readonly observed_rate: number | null;
}

/** The calibration figures of one version x rollout: what the report uses of governance/calibration.ts CalibrationMetrics. */
export interface CalibrationFigures {
  readonly n: number;
  readonly events: number;
  readonly citl: number | null;
  readonly slope: number | null;
  readonly ece15: number | null;
  readonly brier: number | null;
  readonly auroc: number | null;
  readonly bins: readonly ReliabilityBin[];
}

export interface CalibrationRow {
  readonly version: string;
  /** The inferences' rollout mode (live | canary | shadow). */
  readonly rollout: string;
  readonly metrics: CalibrationFigures;
}

/** A version as the header shows it: registry facts when the registry knows it, else only what inferences show. */
export interface VersionSummary {
  readonly version: string;
  /** Null when the version is not in the registry (it ran by the pipeline's default). */
  readonly artifact_sha256: string | null;
  readonly manifest_sha256: string | null;
  readonly intended_use: string | null;
  readonly acceptance_criteria: AcceptanceCriteria | null;
  /** `probability` models have calibration; `news2` scores are points, not probabilities. */
  readonly output_kind: 'news2' | 'probability' | null;
  readonly added: { readonly at: number; readonly actor: string } | null;
  readonly approvals: readonly {
    readonly at: number;
    readonly actor: string;
    readonly role: string;
    readonly reason: string;
  }[];
  /** Where the registry routes it now: e.g. `live`, `canary 10% (site=A)`, `shadow`; null when not routed. */
  readonly routing: string | null;
  /** Inferences stored for the version. */
  readonly inferences: number;
}

/** A histogram of scores over equal-width bins [lo + i*width, lo + (i+1)*width). */
export interface ScoreHistogram {
  readonly version: string;
  /** `rollout` or `site`: which cohort dimension the series splits on. */
  readonly by: 'rollout' | 'site';
  readonly cohort: string;
  readonly lo: number;
  readonly width: number;
  readonly counts: readonly number[];
}

/** The drift of one feature of one version in one window: the largest JS distance over its firmware x site groups. */
export interface DriftPoint {
  readonly version: string;
  readonly feature: string;
  readonly window_start: number;
  readonly js_distance: number;
  /** Whether any group of the window drifted on this feature (detect-drift's verdict). */
  readonly drifted: boolean;
}

export interface DriftSeries {
  readonly version: string;
  /** The manifest's JS threshold (the one the drift guard acts on): the line drawn across the chart. */
  readonly js_threshold: number | null;
  readonly points: readonly DriftPoint[];
  /** Windows in which some firmware x site group's data set drifted. */
  readonly dataset_drifted_windows: readonly number[];
}

/** A stretch of time during which a version ran in a mode (folded from the rollout history). */
export interface RolloutSpan {
  readonly version: string;
  readonly mode: RolloutMode;
  readonly from: number;
  /** null: still running. */
  readonly to: number | null;
  /** Canary only, e.g. `10% of site=A`. */
  readonly detail: string;
}

export interface ReportData {
  readonly model: string;
  readonly generated_at: number;
  /** Where the figures came from (for the page footer): store location and control log. */
  readonly sources: { readonly store: string; readonly control_log: string };
  readonly versions: readonly VersionSummary[];
  readonly calibration: readonly CalibrationRow[];
  readonly scores: readonly ScoreHistogram[];
  readonly drift: readonly DriftSeries[];
  /** The model's control-log records in log order. */
  readonly history: readonly ModelChange[];
  /** Things the page should say it could not show (e.g. no outcomes table yet). */
  readonly notes: readonly string[];
}
