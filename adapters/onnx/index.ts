/**
 * ONNX adapter: a verified local model store over onnxruntime-node (CPU).
 *
 * @example
 * const models = new OnnxModelStore(); // <repo>/models
 * const news2 = await models.load('news2', '1.0.0'); // throws MODEL_INTEGRITY_FAILED if the artifact was altered
 * const out = await news2.run({ features: { data: new Float32Array(7 * n), dims: [n, 7] } });
 * await news2.close();
 */
export { DEFAULT_MODELS_ROOT, OnnxModelStore, type OnnxModelStoreOptions, RUNTIME } from './model-store.ts';
