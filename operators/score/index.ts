import { parseScoreConfig, type ScoreConfigInput } from './config.ts';
import { ScoreOperator } from './operator.ts';

export { type ScoreConfig, type ScoreConfigInput, scoreConfigSchema } from './config.ts';
export { NEWS2_FEATURES } from './features.ts';
export { ScoreOperator } from './operator.ts';

/**
 * The `score` operator: scores events with every version the model registry routes for each configured model (the
 * configured default version while the registry has no live version of it), each loaded from the local store and verified
 * against its manifest, one batched model call per version per batch. Each model's manifest says which envelope
 * fields feed it (`inputs`) and how its outputs read (`output.kind`: `news2` or `probability`). Every inference
 * carries the model name, version, artifact sha256, runtime version, config hash, the features and their hash, and
 * the routing decision (rollout mode, rollout id, cohort bucket, whether it is clinical). Records no model applies to
 * pass with no inferences; a record a clinical route cannot score leaves as a SCORING_FAILED dead letter.
 *
 * The configuration is validated here (unknown keys are errors, VigilError CONFIG_INVALID); the default versions
 * are loaded and checked in `open`, so a missing or altered model fails before the first record. Versions the
 * registry routes later are loaded, and released, as its revision changes, without reopening.
 *
 * @example
 * definePipeline({ name: 'vitals', version: '1', source })
 *   .pipe(validate())
 *   .pipe(dedupe())
 *   .pipe(score({ models: [{ model: 'news2', version: '1.0.0' }, { model: 'deterioration', version: '1.0.0' }] }))
 *   .pipe(detectDrift({ model: 'news2', version: '1.0.0' }));
 */
export function score(config: ScoreConfigInput): ScoreOperator {
  return new ScoreOperator(parseScoreConfig(config));
}
