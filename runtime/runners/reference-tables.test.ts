/**
 * followReferenceTables: lands at start, again only when the routing revision moved, and retries a landing that
 * failed (the sink's timer calls it every second; a ClickHouse outage must not lose the new version's rows).
 */
import { describe, expect, it } from 'vitest';
import type { ClickHouseStore } from '../../adapters/clickhouse/store.ts';
import { ManualClock } from '../clock.ts';
import { silentLogger } from '../log.ts';
import type { ModelRollouts } from '../models.ts';
import type { Operator, OperatorContext } from '../operator.ts';
import { MemoryStateBackend } from '../state/memory.ts';
import { followReferenceTables } from './reference-tables.ts';

describe('followReferenceTables', () => {
  it('lands at start, again on a new routing revision only, and retries a failed landing', async () => {
    let revision = 3;
    const rollouts: ModelRollouts = { current: () => ({ revision, route: () => undefined }) };
    const clock = new ManualClock(Date.UTC(2026, 0, 5));
    const context = {
      pipeline: 'p',
      clock,
      state: new MemoryStateBackend({ clock }),
      log: silentLogger,
      models: {},
      rollouts,
    } as unknown as OperatorContext;
    // The operator's rows follow the routing table, as detect-drift's do: one row per routed revision seen.
    const operator = {
      name: 'detect-drift',
      referenceTables: async (ctx: OperatorContext) => [
        { table: 'drift_reference_bins', rows: [{ revision: ctx.rollouts!.current().revision }] },
      ],
    } as unknown as Operator<unknown, unknown>;
    const inserts: { table: string; rows: readonly Record<string, unknown>[]; token: string }[] = [];
    let failNext = false;
    const store = {
      async insert(table: string, rows: readonly Record<string, unknown>[], options: { dedupToken: string }) {
        if (failNext) {
          failNext = false;
          throw new Error('clickhouse away');
        }
        inserts.push({ table, rows, token: options.dedupToken });
        return {};
      },
    } as unknown as ClickHouseStore;

    const references = followReferenceTables({ operators: [operator] }, context, store);
    expect(await references.land()).toBe(1);
    expect(await references.landIfRoutingChanged()).toBeNull();
    expect(inserts.map((i) => i.rows)).toEqual([[{ revision: 3 }]]);

    revision = 4; // a canary rolled out
    failNext = true;
    await expect(references.landIfRoutingChanged()).rejects.toThrow(/clickhouse away/);
    expect(await references.landIfRoutingChanged()).toBe(1); // retried: the failed landing did not count
    expect(await references.landIfRoutingChanged()).toBeNull();
    expect(inserts.map((i) => i.rows)).toEqual([[{ revision: 3 }], [{ revision: 4 }]]);
    expect(inserts[1]!.token).toMatch(/^reference:detect-drift:[0-9a-f]{64}$/);
    expect(inserts[1]!.token).not.toBe(inserts[0]!.token);
  });
});
