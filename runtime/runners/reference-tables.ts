/**
 * Lands the reference data operators declare (`Operator.referenceTables`) in ClickHouse: before the first batch, and
 * again whenever the model routing table changes while the process runs, so a version first routed at runtime (a
 * canary rolled out after start) has its reference rows (e.g. its drift reference bins, which the `drift_reports`
 * view and the drift guard join its histograms to) without a restart. detect-drift's `referenceTables` follows the
 * routing table first, so the rows cover every version routed now.
 *
 * Landing the same reference again changes nothing a reader sees: the insert token is derived from the rows, and
 * `drift_reference_bins` is a ReplacingMergeTree on (model, version, feature) versioned by `loaded_at`, read FINAL
 * (a re-landed row replaces its twin with the same bins and policy).
 */
import { createHash } from 'node:crypto';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import type { OperatorContext } from '../operator.ts';
import type { PipelineDefinition } from '../pipeline.ts';

export async function loadReferenceTables(
  definition: Pick<PipelineDefinition, 'operators'>,
  context: OperatorContext,
  store: ClickHouseStore,
): Promise<number> {
  let rows = 0;
  for (const operator of definition.operators) {
    for (const table of (await operator.referenceTables?.(context)) ?? []) {
      if (table.rows.length === 0) continue;
      const token = createHash('sha256').update(JSON.stringify(table.rows)).digest('hex');
      await store.insert(table.table, table.rows, { dedupToken: `reference:${operator.name}:${token}` });
      rows += table.rows.length;
    }
  }
  return rows;
}

/** Reference tables kept landed as the routing table changes (`followReferenceTables`). */
export interface ReferenceTablesFollower {
  /** Lands every operator's reference rows now and remembers the routing revision they follow; returns the rows. */
  land(): Promise<number>;
  /** Lands them again when the routing revision differs from the one last landed (null: unchanged, nothing done). */
  landIfRoutingChanged(): Promise<number | null>;
}

/**
 * Keeps the operators' reference data landed for the routing table in force (`context.rollouts`; without rollouts
 * the revision never changes and one `land()` is all there is). Calls must not overlap: runners call it between
 * batches (embedded) or from one serial loop (the sink).
 *
 * @example
 * const references = followReferenceTables(definition, context, store);
 * await references.land();
 * // ... before each batch, or on a timer:
 * await references.landIfRoutingChanged();
 */
export function followReferenceTables(
  definition: Pick<PipelineDefinition, 'operators'>,
  context: OperatorContext,
  store: ClickHouseStore,
): ReferenceTablesFollower {
  let landed: number | null = null;
  const revisionNow = () => context.rollouts?.current().revision ?? 0;
  const land = async () => {
    // Read before landing: a change that arrives meanwhile is landed on the next call.
    const revision = revisionNow();
    const rows = await loadReferenceTables(definition, context, store);
    landed = revision;
    return rows;
  };
  return {
    land,
    async landIfRoutingChanged() {
      return landed === revisionNow() ? null : land();
    },
  };
}
