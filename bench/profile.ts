/**
 * Summarises a V8 CPU profile (`node --cpu-prof`) by self time: per function and per source file, so the question
 * "where does the time go" has a table for an answer.
 *
 *   node --cpu-prof --cpu-prof-dir=bench/results/tmp bin/vigil.js run pipelines/vitals.ts ...
 *   node --import tsx bench/profile.ts bench/results/tmp/CPU.*.cpuprofile [--top 30] [--json]
 *
 * Self time of a function = the samples whose top frame is that function. `(garbage collector)`, `(program)` (native
 * code outside JS: librdkafka, onnxruntime, chdb, libuv) and `(idle)` appear as V8 names them.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from './lib/proc.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: number[];
}

interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: number[];
  readonly timeDeltas: number[];
}

export interface SelfTime {
  readonly name: string;
  readonly ms: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly functions: SelfTime[];
  readonly files: SelfTime[];
  /** Inclusive time: samples with the function anywhere on the stack (each sample counted once per function). */
  readonly inclusive: SelfTime[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const path = url.replace(/^file:\/\//, '');
  const inRepo = relative(REPO, path);
  if (!inRepo.startsWith('..')) return inRepo.replace(/^node_modules\//, 'npm:');
  return path.replace(/^node:/, 'node:');
}

export function summariseProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const nameOf = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = shortUrl(url);
    return where ? `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}` : functionName || '(anonymous)';
  };
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at);
      if (frame) seen.add(nameOf(frame));
    }
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    const { functionName, url } = node.callFrame;
    const where = shortUrl(url);
    const name = nameOf(node);
    fn.set(name, (fn.get(name) ?? 0) + us);
    const fileKey = where ? where.replace(/^(npm:(@[^/]+\/)?[^/]+).*$/, '$1') : functionName;
    file.set(fileKey, (file.get(fileKey) ?? 0) + us);
  }
  const rank = (m: Map<string, number>): SelfTime[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, share: Math.round((us / total) * 1000) / 10 }));
  return {
    totalMs: Math.round(total / 1000),
    functions: rank(fn),
    files: rank(file),
    inclusive: rank(inclusive).filter((f) => f.name !== '(root)'),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').at(-1) as string)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' }, json: { type: 'boolean', default: false } },
  });
  const top = Number(values.top);
  for (const path of positionals) {
    const summary = summariseProfile(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile);
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ profile: path, total_ms: summary.totalMs, functions: summary.functions.slice(0, top), files: summary.files.slice(0, top), inclusive: summary.inclusive.slice(0, top) })}\n`,
      );
      continue;
    }
    process.stdout.write(`${path}: ${summary.totalMs} ms sampled\n\nself time by function\n`);
    for (const f of summary.functions.slice(0, top))
      process.stdout.write(`${f.share.toFixed(1).padStart(6)}% ${f.ms.toFixed(1).padStart(9)} ms  ${f.name}\n`);
    process.stdout.write('\nself time by file\n');
    for (const f of summary.files.slice(0, top))
      process.stdout.write(`${f.share.toFixed(1).padStart(6)}% ${f.ms.toFixed(1).padStart(9)} ms  ${f.name}\n`);
    process.stdout.write('\ninclusive time (function anywhere on the stack)\n');
    for (const f of summary.inclusive.slice(0, top))
      process.stdout.write(`${f.share.toFixed(1).padStart(6)}% ${f.ms.toFixed(1).padStart(9)} ms  ${f.name}\n`);
  }
}
