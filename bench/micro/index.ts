/**
 * `vigil bench micro`: the per-operator micro-benchmarks, one process each (so one's heap, JIT state or embedded
 * ClickHouse never colours another's), results gathered into bench/results/micro-latest.json and .md.
 *
 * Each file here also runs on its own: `node --import tsx bench/micro/<name>.bench.ts` (see its header).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, spawnTs } from '../lib/proc.ts';
import { machine, revision, versions } from '../lib/results.ts';

export interface MicroBench {
  readonly name: string;
  readonly file: string;
  readonly args?: readonly string[];
  readonly nodeArgs?: readonly string[];
  /** Needs the local stack (Redis). */
  readonly stack?: boolean;
}

export const MICRO_BENCHES: readonly MicroBench[] = [
  { name: 'decode', file: 'bench/micro/decode.bench.ts' },
  { name: 'validate', file: 'bench/micro/validate.bench.ts' },
  { name: 'dedupe-memory', file: 'bench/micro/dedupe-memory.bench.ts', nodeArgs: ['--expose-gc'] },
  { name: 'dedupe-redis', file: 'bench/micro/dedupe-redis.bench.ts', stack: true },
  { name: 'redis-state', file: 'bench/micro/redis-state.bench.ts', stack: true },
  { name: 'state-restore', file: 'bench/micro/state-restore.bench.ts', stack: true, nodeArgs: ['--expose-gc'] },
  { name: 'score', file: 'bench/micro/score.bench.ts' },
  { name: 'routing', file: 'bench/micro/routing.bench.ts' },
  { name: 'drift', file: 'bench/micro/drift.bench.ts' },
  { name: 'outputs', file: 'bench/micro/outputs.bench.ts' },
  { name: 'clickhouse', file: 'bench/micro/clickhouse.bench.ts', args: ['--json'] },
  { name: 'clickhouse-parse', file: 'bench/micro/clickhouse-parse.bench.ts' },
  { name: 'sink', file: 'bench/micro/sink.bench.ts' },
  { name: 'simulate', file: 'bench/micro/simulate.bench.ts', args: ['500000'], nodeArgs: ['--expose-gc'] },
  { name: 'audit', file: 'bench/micro/audit.bench.ts', nodeArgs: ['--expose-gc'] },
  { name: 'audit-stores', file: 'bench/micro/audit-stores.bench.ts', stack: true, nodeArgs: ['--expose-gc'] },
  // 10,000,000 events by default (issue 11's figure): minutes to build and GBs on disk; `--events` when run alone.
  { name: 'trace', file: 'bench/micro/trace.bench.ts' },
];

export async function runMicro(options: {
  only: readonly string[] | null;
  json: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>[]> {
  const unknown = (options.only ?? []).filter((n) => !MICRO_BENCHES.some((b) => b.name === n));
  if (unknown.length > 0) throw new Error(`unknown micro-benchmark(s): ${unknown.join(', ')}`);
  const selected = MICRO_BENCHES.filter((b) => !options.only || options.only.includes(b.name));
  const lines: Record<string, unknown>[] = [];
  for (const b of selected) {
    options.log(`micro: ${b.name}`);
    const done = await spawnTs(b.file, b.args ?? [], {}, b.nodeArgs ?? []).done;
    if (done.code !== 0) throw new Error(`micro-benchmark ${b.name} failed:\n${done.stderr.slice(-3000)}`);
    for (const line of done.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      lines.push({ micro: b.name, ...parsed });
      if (options.json) process.stdout.write(`${JSON.stringify({ micro: b.name, ...parsed })}\n`);
    }
  }
  const table = microMarkdown(lines);
  if (!options.json) process.stdout.write(`\n${table}\n`);
  if (!options.only) {
    const doc = {
      date: new Date().toISOString(),
      machine: machine(),
      versions: versions(),
      revision: revision(),
      results: lines,
    };
    writeFileSync(join(REPO, 'bench', 'results', 'micro-latest.json'), `${JSON.stringify(doc, null, 2)}\n`);
    writeFileSync(
      join(REPO, 'bench', 'results', 'micro-latest.md'),
      `# Micro-benchmarks — ${doc.date} (code ${doc.revision})\n\n${table}\n`,
    );
  }
  return lines;
}

function microMarkdown(lines: readonly Record<string, unknown>[]): string {
  const out = [
    '| bench | case | batch | records/s | ns/record | CPU ns/record |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  const n = (x: unknown) => (typeof x === 'number' ? x.toLocaleString('en-GB') : x === undefined ? '—' : String(x));
  for (const l of lines) {
    if (l.records_per_s === undefined) continue;
    out.push(
      `| ${l.bench} | ${l.case ?? l.label ?? ''}${l.ns_per_field === undefined ? '' : ` (${n(l.ns_per_field)} ns/field)`} | ${n(l.batch)} | ${n(l.records_per_s)} | ${n(l.ns_per_record)} | ${n(l.cpu_ns_per_record)} |`,
    );
  }
  return out.join('\n');
}
