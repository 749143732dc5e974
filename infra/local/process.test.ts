/**
 * Real child processes (sleep, a shell that ignores SIGTERM): no services involved, so these run with the unit tests.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, isOurs, killProcess, ownedPid, readPidFile, spawnDetached, stopProcess } from './process.ts';

describe('stack processes', () => {
  let dir: string;
  const started: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-process-test-'));
  });

  afterAll(() => {
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  function start(name: string, command: string, args: string[]) {
    const cwd = path.join(dir, name);
    const pidFile = path.join(dir, 'run', `${name}.pid`);
    const child = spawnDetached({ command, args, cwd, logFile: path.join(dir, 'logs', `${name}.log`), pidFile });
    started.push(child.pid!);
    return { pid: child.pid!, cwd, pidFile };
  }

  it('spawns detached with a pidfile, recognises its own process, and stops it with SIGTERM', async () => {
    const { pid, cwd, pidFile } = start('sleeper', 'sleep', ['300']);
    expect(readPidFile(pidFile)).toBe(pid);
    expect(isAlive(pid)).toBe(true);
    expect(isOurs(pid, cwd)).toBe(true);
    expect(ownedPid(pidFile, cwd)).toBe(pid);

    const result = await stopProcess(pid, 5_000);
    expect(result).toEqual({ pid, killed: false });
    expect(isAlive(pid)).toBe(false);
    // A pidfile naming a dead process is stale: dropped, not trusted.
    expect(ownedPid(pidFile, cwd)).toBeUndefined();
    expect(readPidFile(pidFile)).toBeUndefined();
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const { pid, cwd } = start('stubborn', 'bash', ['-c', 'trap "" TERM; touch ready; while true; do sleep 0.1; done']);
    // Signal only once bash has installed its trap (it says so with a file).
    const deadline = Date.now() + 10_000;
    while (!existsSync(path.join(cwd, 'ready')) && Date.now() < deadline) await sleep(10);
    const result = await stopProcess(pid, 300);
    expect(result.killed).toBe(true);
    expect(isAlive(pid)).toBe(false);
  });

  it('kills with one signal and no grace (a fault drill crash), even a process that ignores SIGTERM', async () => {
    const { pid, cwd, pidFile } = start('crash', 'bash', [
      '-c',
      'trap "" TERM; touch ready; while true; do sleep 0.1; done',
    ]);
    const deadline = Date.now() + 10_000;
    while (!existsSync(path.join(cwd, 'ready')) && Date.now() < deadline) await sleep(10);
    expect(await killProcess(pid, 'SIGKILL', 5_000)).toBe(true);
    expect(isAlive(pid)).toBe(false);
    // The stack sees it as down (a stale pidfile), so `up` starts it again.
    expect(ownedPid(pidFile, cwd)).toBeUndefined();
  });

  it('never claims a live process that runs elsewhere (a reused pid)', () => {
    const pidFile = path.join(dir, 'run', 'reused.pid');
    writeFileSync(pidFile, `${process.pid}\n`);
    expect(isAlive(process.pid)).toBe(true);
    expect(ownedPid(pidFile, path.join(dir, 'reused'))).toBeUndefined();
    expect(readPidFile(pidFile)).toBeUndefined();
  });
});
