/**
 * Lands the reference data operators declare (`Operator.referenceTables`) in ClickHouse before the first batch. The
 * insert token is derived from the rows themselves, so loading the same reference again is a no-op.
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
