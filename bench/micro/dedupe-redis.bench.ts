/**
 * Dedupe over the Redis state backend (the distributed mode's), against the local stack's Redis (run: `vigil bench
 * micro --only dedupe-redis`). The operator as the worker runs it: one claim script and one sequence script per
 * batch. Keys live under a bench prefix with a short TTL and are deleted at the end.
 */
import { RedisStateBackend } from '../../adapters/redis/index.ts';
import { dedupe } from '../../operators/dedupe/index.ts';
import type { CheckedEvent } from '../../operators/types.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import type { InFlight } from '../../runtime/record.ts';
import { measure, report, stageInputs } from './lib.ts';

const inputs = await stageInputs(60_000);
const prefix = `vigil:bench-micro-${process.pid}:`;
const state = new RedisStateBackend({ url: resolveEndpoints().redisUrl, keyPrefix: prefix });
await state.open();
const op = dedupe({ ttlMs: 300_000 });
await op.open!({ ...inputs.context, state });
/** Each batch re-offsets its records so every call does real work (new owners), as a live stream would. */
let shift = 0;
const batchOf = (size: number, i: number): InFlight<CheckedEvent>[] => {
  const count = Math.floor(inputs.checked.length / size);
  const from = (i % count) * size;
  if (i % count === 0) shift += inputs.checked.length;
  return inputs.checked.slice(from, from + size).map((r) => ({
    value: { ...r.value, envelope: { ...r.value.envelope, event_id: `${r.value.envelope.event_id}-${shift}` } },
    origin: { ...r.origin, offset: r.origin.offset + shift },
  }));
};
try {
  for (const size of [500, 2000]) {
    report(
      await measure('dedupe', `redis state backend, batch ${size}`, size, (i) => op.process(batchOf(size, i)), {
        batches: 20,
        trials: 5,
      }),
    );
  }
} finally {
  const redis = state.client;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
  await state.close();
}
