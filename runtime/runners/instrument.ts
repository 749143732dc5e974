/**
 * Observes the model store on the runtime's side, so operators stay free of metrics code: every batched model run is
 * timed into `vigil_model_inference_seconds{model, version}`.
 */
import type { PipelineMetrics } from '../metrics.ts';
import type { LoadedModel, ModelStore } from '../models.ts';

export function instrumentModels(store: ModelStore, metrics: PipelineMetrics): ModelStore {
  return {
    manifest: (name, version) => store.manifest(name, version),
    readVerified: (name, version, entry) => store.readVerified(name, version, entry),
    async load(name, version): Promise<LoadedModel> {
      const model = await store.load(name, version);
      const labels = { model: name, version };
      return {
        manifest: model.manifest,
        artifactSha256: model.artifactSha256,
        runtime: model.runtime,
        close: () => model.close(),
        async run(inputs) {
          const end = metrics.inferenceSeconds.startTimer(labels);
          try {
            return await model.run(inputs);
          } finally {
            end();
          }
        },
      };
    },
  };
}
