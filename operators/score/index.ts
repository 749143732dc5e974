import { parseScoreConfig, type ScoreConfigInput } from './config.ts';
import { ScoreOperator } from './operator.ts';

export { type ScoreConfig, type ScoreConfigInput, scoreConfigSchema } from './config.ts';
export { NEWS2_FEATURES } from './features.ts';
export { ScoreOperator } from './operator.ts';

/**
 * The `score` operator: scores complete vital-signs records with a model from the local store (verified against its
 * manifest's sha256 when the pipeline opens), one batched model call per batch, and attaches an `Inference` that
 * carries the model name, version, artifact sha256, runtime version, config hash, rollout and feature-vector hash.
 * Other records pass with `inference: null`; incomplete vital signs also get the `news2_incomplete` flag; a record the
 * model cannot score leaves as a SCORING_FAILED dead letter.
 *
 * The configuration is validated here (unknown keys are errors, VigilError CONFIG_INVALID); the model is loaded and
 * checked in `open`, so a missing or altered model fails before the first record.
 *
 * @example
 * definePipeline({ name: 'vitals', version: '1', source })
 *   .pipe(validate())
 *   .pipe(dedupe())
 *   .pipe(score({ model: 'news2', version: '1.0.0' })) // rollout 'live' by default
 *   .pipe(detectDrift({ model: 'news2', version: '1.0.0' }));
 */
export function score(config: ScoreConfigInput): ScoreOperator {
  return new ScoreOperator(parseScoreConfig(config));
}
