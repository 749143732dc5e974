/** Loads a pipeline definition file (pipelines/*.ts) for the CLI: its default export must be a built pipeline. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { VigilError } from '../errors.ts';
import type { PipelineDefinition } from '../pipeline.ts';

export async function loadPipeline(file: string): Promise<PipelineDefinition> {
  const url = pathToFileURL(resolve(file)).href;
  let module: { default?: unknown };
  try {
    module = (await import(url)) as { default?: unknown };
  } catch (error) {
    throw new VigilError('CONFIG_INVALID', `cannot load pipeline ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const definition = module.default as Partial<PipelineDefinition> | undefined;
  if (
    !definition ||
    typeof definition.name !== 'string' ||
    !Array.isArray(definition.operators) ||
    !definition.outputs
  ) {
    throw new VigilError(
      'CONFIG_INVALID',
      `${file} must export default a pipeline built with definePipeline(...).pipe(...).outputs(...)`,
    );
  }
  return definition as PipelineDefinition;
}
