/**
 * The one opt-out from gateway provenance: `vigil run --accept-ungated` (embedded and distributed). A pipeline that
 * requires a gateway (`validate({ requireGateway: true })`) refuses records without the gateway's evidence
 * (NOT_FROM_GATEWAY); some runs legitimately feed it such records: a replay of pre-gateway data (`--input FILE`), the
 * simulator writing straight to Kafka, the drills, the benchmarks' producers, the hostile-input suite. For those runs
 * the definition's operators are swapped for their `acceptingUngated()` copies — visibly: one warning at start, and
 * `ungated: true` in the run's JSON line.
 */
import type { Logger } from '../log.ts';
import type { AnyOperator } from '../operator.ts';
import type { PipelineDefinition } from '../pipeline.ts';

/** The operators that would refuse an ungated record (those with an `acceptingUngated` copy that differs). */
export function gatedOperators(definition: Pick<PipelineDefinition, 'operators'>): string[] {
  return definition.operators
    .filter((op) => op.acceptingUngated !== undefined && op.acceptingUngated() !== op)
    .map((op) => op.name);
}

/**
 * The definition with every operator that requires gateway provenance replaced by its copy that does not. Logs one
 * warning naming the operators (never a record), when a log is given.
 *
 * @example
 * const definition = flags.acceptUngated ? acceptUngated(await loadPipeline(file), log) : await loadPipeline(file);
 * runEmbeddedSession(acceptUngated(vitals), source, store, silentLogger); // a test that feeds simulator records
 */
export function acceptUngated<D extends Pick<PipelineDefinition, 'name' | 'operators'>>(
  definition: D,
  log?: Logger,
): D {
  const gated = gatedOperators(definition);
  if (gated.length > 0) {
    log?.warn(
      { pipeline: definition.name, operators: gated },
      'accepting records that did not come through a gateway (--accept-ungated): gateway provenance is not checked',
    );
  }
  const operators = definition.operators.map((op) => (op.acceptingUngated?.() ?? op) as AnyOperator);
  return { ...definition, operators };
}
