/**
 * The container image, checked without a Docker engine (the project's machines have none, so the image is never
 * built in CI): the Dockerfile's properties as parsed text, and what the runtime stage needs — the CLI's static
 * import graph (esbuild's metafile, no bundle written) reaches only production dependencies and no folder that
 * .dockerignore leaves out of the image.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { VIGIL_NODE_FLAGS } from '../runtime/node-flags.ts';

const ROOT = join(import.meta.dirname, '..');

interface Instruction {
  readonly op: string;
  readonly args: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | null;
  readonly instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  return logical.map((line) => {
    const space = line.indexOf(' ');
    return { op: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() };
  });
}

/** Stages, with `${ARG}` in FROM lines resolved from the global ARGs' defaults. */
function stagesOf(instructions: readonly Instruction[]): Stage[] {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.op === 'FROM') {
      const [image = '', as, name] = instruction.args.split(/\s+/);
      const from = image.replace(/\$\{(\w+)\}/g, (_, arg: string) => globalArgs.get(arg) ?? `\${${arg}}`);
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? (name ?? null) : null, instructions: [] });
    } else if (stages.length === 0 && instruction.op === 'ARG') {
      const [arg = '', value] = instruction.args.split('=');
      if (value !== undefined) globalArgs.set(arg, value);
    } else stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const stages = stagesOf(parseDockerfile(dockerfile));
const runtime = stages.at(-1) as Stage;
const runtimeOps = (op: string) => runtime.instructions.filter((i) => i.op === op);
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

describe('Dockerfile', () => {
  it('is multi-stage: a build stage compiles, a slim runtime stage runs', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]?.name).toBe('build');
    expect(runtime.name).toBe('runtime');
    expect(runtime.from).toMatch(/-slim(@sha256:[0-9a-f]{64})?$/);
  });

  it('pins every base image by an exact version or a digest', () => {
    for (const stage of stages) {
      const pinned = /@sha256:[0-9a-f]{64}$/.test(stage.from) || /^[\w./-]+:\d+\.\d+\.\d+(-[\w.-]+)?$/.test(stage.from);
      expect(pinned, `${stage.from} is not pinned`).toBe(true);
    }
  });

  it('installs production dependencies only, in the build stage; the runtime stage copies them', () => {
    const build = stages[0] as Stage;
    const installs = build.instructions.filter((i) => i.op === 'RUN' && /\bnpm (ci|install)\b(?! -g)/.test(i.args));
    expect(installs.length).toBe(1);
    expect(installs[0]?.args).toMatch(/npm ci --omit=dev/);
    // Nothing is installed by npm in the runtime stage, and nothing compiles there.
    for (const run of runtimeOps('RUN')) {
      expect(run.args).not.toMatch(/\bnpm (ci|install|i)\b|\byarn\b|\bpnpm\b/);
      expect(run.args).not.toMatch(/build-essential|\bg\+\+|\bgcc\b|\bmake\b|python3|-dev\b/);
    }
    expect(runtimeOps('COPY').some((c) => /--from=build\b/.test(c.args) && /\/app \/app$/.test(c.args))).toBe(true);
  });

  it('runs as a non-root user, by number (runAsNonRoot can verify it)', () => {
    const user = runtimeOps('USER').at(-1)?.args ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    // The USER comes before the entry point: nothing after it runs as root.
    const ops = runtime.instructions.map((i) => i.op);
    expect(ops.lastIndexOf('USER')).toBeLessThan(ops.indexOf('ENTRYPOINT'));
    expect(ops.slice(ops.lastIndexOf('USER')).includes('RUN')).toBe(false);
  });

  it('suits a read-only root file system: its writable folders are volumes', () => {
    const volumes = runtimeOps('VOLUME').map((v) => v.args);
    expect(volumes.join(' ')).toContain('"/tmp"');
    expect(volumes.join(' ')).toContain('"/app/.vigil"');
  });

  it('is one image for every process: node bin/vigil.js, with a healthcheck on /healthz', () => {
    expect(JSON.parse(runtimeOps('ENTRYPOINT').at(-1)?.args ?? 'null')).toEqual([
      'node',
      ...VIGIL_NODE_FLAGS,
      'bin/vigil.js',
    ]);
    expect(runtimeOps('HEALTHCHECK').at(-1)?.args).toMatch(/CMD .*\/healthz/);
  });

  it('runs with the same V8 flags as `npm start` (runtime/node-flags.ts; the benchmark spawns with the constant)', () => {
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } })
      .scripts.start;
    expect(start).toBe(`node ${VIGIL_NODE_FLAGS.join(' ')} bin/vigil.js demo`);
  });

  it('.dockerignore leaves out local state, node_modules, tests and git', () => {
    for (const entry of ['.git', '.vigil', 'node_modules', '**/*.test.ts', 'test', 'bench']) {
      expect(dockerignore).toContain(entry);
    }
  });
});

describe('infra/local/compose.yaml', () => {
  const compose = readFileSync(join(ROOT, 'infra/local/compose.yaml'), 'utf8');

  it('runs the Vigil services from the image built by this Dockerfile, read-only and without capabilities', () => {
    const shared = compose.slice(compose.indexOf('x-vigil: &vigil'), compose.indexOf('x-after-setup'));
    expect(shared).toMatch(/image: vigil:local/);
    expect(shared).toMatch(/context: \.\.\/\.\.\n\s+dockerfile: Dockerfile/);
    expect(shared).toMatch(/read_only: true/);
    expect(shared).toMatch(/cap_drop: \["ALL"\]/);
    for (const service of ['gateway', 'worker-vitals', 'worker-alerts', 'sink-vitals', 'audit-signer']) {
      expect(compose, service).toMatch(new RegExp(`\\n  ${service}:\\n    <<: \\*vigil\\n`));
    }
  });
});

describe('what the runtime stage needs', () => {
  it('the CLI statically imports production dependencies only, and nothing .dockerignore leaves out', async () => {
    const result = await build({
      entryPoints: [join(ROOT, 'cli/main.ts')],
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      metafile: true,
      packages: 'external',
      logLevel: 'silent',
      outdir: join(ROOT, '.vigil/image-check'),
    });
    // Walk static edges only: development tools (kafkajs, avro-ts) are imported dynamically by the commands that
    // need them (bench, schema types), which the image does not offer.
    const inputs = result.metafile.inputs;
    const seen = new Set<string>();
    const packages = new Set<string>();
    const stack = ['cli/main.ts'];
    while (stack.length > 0) {
      const file = stack.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const edge of inputs[file]?.imports ?? []) {
        if (edge.kind !== 'import-statement' && edge.kind !== 'require-call') continue;
        if (edge.external) {
          if (!edge.path.startsWith('node:')) packages.add(packageName(edge.path));
        } else stack.push(edge.path);
      }
    }
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    // The walk is real: the worker's Kafka client and the CLI parser are among what it reached.
    expect(seen.size).toBeGreaterThan(100);
    expect(packages).toContain('node-rdkafka');
    expect(packages).toContain('commander');
    expect([...packages].filter((p) => !(p in manifest.dependencies))).toEqual([]);
    expect(packages.has('tsx') || 'tsx' in manifest.dependencies).toBe(true); // bin/vigil.js runs TypeScript with it
    const left = dockerignore.filter((e) => !e.includes('*') && !e.startsWith('.'));
    const reached = [...seen].filter((file) => left.some((dir) => file === dir || file.startsWith(`${dir}/`)));
    expect(reached).toEqual([]);
  });
});

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}
