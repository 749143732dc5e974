/**
 * `detect-drift` factory and the pieces the runtime, the demo and analysts use with it.
 */
import { type DetectDriftConfig, parseDetectDriftConfig } from './config.ts';
import { DetectDriftOperator } from './operator.ts';

export type { DetectDriftConfig, ResolvedDetectDriftConfig } from './config.ts';
export { detectDriftConfigSchema, parseDetectDriftConfig } from './config.ts';
export { FEATURES, type FeatureName } from './features.ts';
export * from './metrics.ts';
export { DetectDriftOperator, type DetectDriftSide, type DriftHistogramRow } from './operator.ts';
export { type DriftFindingsOptions, type DriftQuery, driftFindingsQuery, driftReportsQuery } from './queries.ts';
export {
  buildReference,
  type DriftReference,
  type DriftReferenceRow,
  parseReference,
  type ReferenceSample,
  referenceRows,
  serialiseReference,
} from './reference.ts';
export { type DriftFindingRow, type DriftReportRow, driftFindings, driftReports } from './report.ts';

/**
 * Builds the `detect-drift` operator. The configuration is checked here (CONFIG_INVALID names each bad field); the
 * reference is loaded and checked in `open`, so a missing or corrupt reference stops the pipeline before its first
 * record.
 *
 * @example
 * definePipeline({ name: 'vitals', version: '1', source })
 *   .pipe(validate()).pipe(dedupe()).pipe(score({ models: [{ model: 'news2', version: '1.0.0' }] }))
 *   .pipe(detectDrift({ model: 'news2', version: '1.0.0', windowMs: 3_600_000 }))
 *   .outputs({ records, side: { driftHistograms: { table: 'drift_histograms' } } });
 */
export function detectDrift(config: DetectDriftConfig): DetectDriftOperator {
  return new DetectDriftOperator(parseDetectDriftConfig(config));
}
