/**
 * Child processes for the integration tests and the benchmarks: the real CLI (or any script) run in the repo with an
 * environment of its own (a topic namespace via VIGIL_TOPIC_PREFIX is read once, when runtime/endpoints.ts loads).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const VIGIL = join(REPO, 'bin', 'vigil.js');

export interface Exited {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Child {
  readonly child: ChildProcess;
  readonly done: Promise<Exited>;
  stdout(): string;
  stderr(): string;
}

/** `node [nodeArgs] script [args]` in the repo, with extra environment; stderr is kept (last 64 kB) for errors. */
export function spawnNode(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): Child {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    cwd: REPO,
    env: { ...process.env, VIGIL_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    // The tail only, but enough for a worker's debug log over a drill (VIGIL_DRILL_WORKER_LOG_LEVEL).
    err = (err + d.toString()).slice(-8_000_000);
  });
  const done = new Promise<Exited>((resolve) => {
    child.on('exit', (code, signal) => setTimeout(() => resolve({ code, signal, stdout: out, stderr: err }), 50));
  });
  return { child, done, stdout: () => out, stderr: () => err };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `pollMs` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, pollMs = 200) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(pollMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A free TCP port on loopback (for a child's /metrics endpoint). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
