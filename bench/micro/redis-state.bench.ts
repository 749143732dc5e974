/**
 * Cost of the Redis state backend against the local stack's Redis (run: `vigil bench micro --only redis-state`, or
 * `node --import tsx bench/micro/redis-state.bench.ts`; REDIS_URL to point elsewhere). Reports, per call: the client-side time of ONE script call touching 1k and 5k keys
 * (claims: 1 key per request; sequences: 2 keys per request), the server-side time Redis spent in the scripts
 * (INFO commandstats), and the two calls `dedupe` makes per batch of 1,000. Keys live under a bench namespace with a
 * short TTL and are deleted at the end. Not a test: numbers depend on the machine.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { redisState } from '../../adapters/redis/index.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';

const url = resolveEndpoints().redisUrl;
const ns = `bench-${process.pid}`;
const ROUNDS = 30;
let counter = 0;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 100) / 100;

async function evalshaMicros(admin: Redis): Promise<{ calls: number; usec: number }> {
  const info = await admin.info('commandstats');
  const line = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
  return line ? { calls: Number(line[1]), usec: Number(line[2]) } : { calls: 0, usec: 0 };
}

async function measure(label: string, requests: number, admin: Redis, call: () => Promise<unknown>) {
  const client: number[] = [];
  const before = await evalshaMicros(admin);
  for (let r = 0; r < ROUNDS; r++) {
    const started = performance.now();
    await call();
    client.push(performance.now() - started);
  }
  const after = await evalshaMicros(admin);
  const scripts = after.calls - before.calls;
  return {
    bench: 'redis state',
    case: label,
    batch: requests,
    records: requests * ROUNDS,
    records_per_s: Math.round(requests / (median(client) / 1000)),
    ns_per_record: Math.round((median(client) * 1e6) / requests),
    client_ms_median: round(median(client)),
    client_ms_min: round(Math.min(...client)),
    // Server time per script call (other clients' EVALSHA during the run would blur it; the local stack is quiet).
    server_ms_per_script: scripts > 0 ? round((after.usec - before.usec) / scripts / 1000) : null,
    scripts_per_call: Math.round(scripts / ROUNDS),
  };
}

const admin = new Redis(url);
const single = redisState({ url, maxKeysPerScript: 10_000 }); // one script whatever the size
const chunked = redisState({ url }); // the default: 2,000 keys per script, chunks pipelined
await single.open();
await chunked.open();
const state = () => ({ name: `${ns}.s${++counter}`, ttlMs: 120_000 });
const claims = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    key: `01JGZ5Q8V3${String(counter * 1e6 + i).padStart(16, '0')}`,
    owner: `0:${i}`,
  }));
const sequences = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    stream: `dev-${i % 1000}`,
    sequence: counter * 100 + Math.floor(i / 1000),
    owner: `0:${i}`,
  }));

const results = [];
results.push(await measure('claim, 1,000 keys, one script', 1000, admin, () => single.claim(state(), claims(1000))));
results.push(await measure('claim, 5,000 keys, one script', 5000, admin, () => single.claim(state(), claims(5000))));
results.push(
  await measure('claim, 5,000 keys, default chunking (3 scripts, 1 pipeline)', 5000, admin, () =>
    chunked.claim(state(), claims(5000)),
  ),
);
results.push(
  await measure('advanceSequences, 500 requests = 1,000 keys, one script', 500, admin, () =>
    single.advanceSequences(state(), 64, sequences(500)),
  ),
);
results.push(
  await measure('advanceSequences, 2,500 requests = 5,000 keys, one script', 2500, admin, () =>
    single.advanceSequences(state(), 64, sequences(2500)),
  ),
);
results.push(
  await measure(
    'dedupe batch of 1,000: claim 1,000 + advanceSequences 1,000 (2 round trips)',
    1000,
    admin,
    async () => {
      const s1 = state();
      const s2 = state();
      await chunked.claim(s1, claims(1000));
      await chunked.advanceSequences(s2, 64, sequences(1000));
    },
  ),
);
for (const r of results) console.log(JSON.stringify(r));

// Clean up the bench namespace.
let cursor = '0';
do {
  const [next, keys] = await admin.scan(cursor, 'MATCH', `vigil:${ns}*`, 'COUNT', 5000);
  cursor = next;
  if (keys.length > 0) await admin.unlink(...keys);
} while (cursor !== '0');
await single.close();
await chunked.close();
await admin.quit();
