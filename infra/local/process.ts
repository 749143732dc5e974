/**
 * Processes the stack starts: detached children with their output in a log file, a pidfile each, and a stop that
 * signals only a pid this stack recorded and can still recognise as its own (never a process found by name).
 *
 * "Ours" means: the pidfile names the pid, the pid is alive, and the process runs in the service's own directory
 * (each service is started with that directory as its working directory) or names it on its command line. A pid reused
 * by an unrelated process after a crash fails that test and is left alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SpawnSpec {
  readonly command: string;
  readonly args: readonly string[];
  /** Working directory; also the mark by which the process is recognised as ours. */
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly logFile: string;
  readonly pidFile: string;
}

/**
 * Starts a process in its own session (so it outlives the CLI and its process group can be signalled as one),
 * appends its stdout and stderr to `logFile`, and writes its pid to `pidFile`.
 *
 * @example
 * const child = spawnDetached({ command: 'redis-server', args: ['--port', '16379'], cwd, logFile, pidFile });
 */
export function spawnDetached(spec: SpawnSpec): ChildProcess {
  mkdirSync(path.dirname(spec.logFile), { recursive: true });
  mkdirSync(path.dirname(spec.pidFile), { recursive: true });
  mkdirSync(spec.cwd, { recursive: true });
  const fd = openSync(spec.logFile, 'a');
  try {
    writeSync(fd, `\n===== ${new Date().toISOString()} vigil stack: ${spec.command} ${spec.args.join(' ')}\n`);
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    // spawn reports ENOENT and friends as an 'error' event; without a listener it would crash the CLI.
    child.on('error', () => {});
    if (child.pid === undefined) throw new Error(`could not start ${spec.command}`);
    writeFileSync(spec.pidFile, `${child.pid}\n`);
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function removePidFile(file: string): void {
  rmSync(file, { force: true });
}

/** Alive and not a zombie (a zombie has exited; it only waits for its parent to reap it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: exists but belongs to someone else; still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const state = procState(pid);
  return state !== 'Z' && state !== 'X';
}

function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself contain spaces or parentheses).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

const procAvailable = (() => {
  try {
    readlinkSync('/proc/self/cwd');
    return true;
  } catch {
    return false;
  }
})();

/** The process runs in `dir` or names it on its command line (Linux /proc; elsewhere the pidfile is trusted). */
export function isOurs(pid: number, dir: string): boolean {
  if (!isAlive(pid)) return false;
  if (!procAvailable) return true;
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    if (cwd === dir || cwd.startsWith(`${dir}${path.sep}`)) return true;
  } catch {
    // fall through to the command line
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(dir);
  } catch {
    return false;
  }
}

/** The pid from `pidFile` when it is alive and ours; otherwise undefined (a stale pidfile is removed). */
export function ownedPid(pidFilePath: string, dir: string): number | undefined {
  const pid = readPidFile(pidFilePath);
  if (pid === undefined) return undefined;
  if (isOurs(pid, dir)) return pid;
  removePidFile(pidFilePath);
  return undefined;
}

export async function waitForExit(pid: number, timeoutMs: number, pollMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    // The child leads its own process group (detached): signal the group so helpers it forked go too.
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

export interface StopResult {
  readonly pid: number;
  /** SIGTERM was not enough within the grace period. */
  readonly killed: boolean;
}

/**
 * SIGTERM, wait up to `graceMs`, then SIGKILL and wait again. Resolves once the process is gone.
 *
 * @example
 * await stopProcess(pid, 30_000);
 */
export async function stopProcess(pid: number, graceMs: number): Promise<StopResult> {
  signal(pid, 'SIGTERM');
  if (await waitForExit(pid, graceMs)) return { pid, killed: false };
  signal(pid, 'SIGKILL');
  if (await waitForExit(pid, 10_000)) return { pid, killed: true };
  throw new Error(`process ${pid} did not exit after SIGKILL`);
}

/**
 * One signal, no escalation (a fault drill's SIGKILL, or SIGSTOP to freeze a service), to the process group. Waits up
 * to `waitMs` for the process to exit when the signal is one that ends it; resolves whether it did.
 *
 * @example
 * await killProcess(pid, 'SIGKILL'); // true: gone, its pidfile is stale
 */
export async function killProcess(pid: number, sig: NodeJS.Signals, waitMs = 10_000): Promise<boolean> {
  signal(pid, sig);
  if (sig === 'SIGSTOP' || sig === 'SIGCONT' || sig === 'SIGHUP' || sig === 'SIGUSR1' || sig === 'SIGUSR2') {
    return !isAlive(pid);
  }
  return waitForExit(pid, waitMs);
}
