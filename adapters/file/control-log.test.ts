import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { FileControlLog } from './control-log.ts';

const parse = (value: unknown) => z.strictObject({ n: z.number() }).parse(value);

describe('FileControlLog', () => {
  let path: string;
  beforeEach(() => {
    vi.useFakeTimers();
    path = join(mkdtempSync(join(tmpdir(), 'vigil-control-')), 'nested', 'log.jsonl');
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('appends JSON lines {key, value}, creating the folder', async () => {
    const log = new FileControlLog(path, { parse });
    await log.append('a/1', { n: 1 });
    await Promise.all([log.append('a/2', { n: 2 }), log.append('b/3', { n: 3 })]);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { key: 'a/1', value: { n: 1 } },
      { key: 'a/2', value: { n: 2 } },
      { key: 'b/3', value: { n: 3 } },
    ]);
    await log.close();
  });

  it('follow delivers what exists, is caught up, then delivers new lines at the next poll', async () => {
    const log = new FileControlLog(path, { parse, pollMs: 100 });
    await log.append('k/1', { n: 1 });
    await log.append('k/2', { n: 2 });
    const seen: number[] = [];
    const follower = await log.follow((r) => seen.push(r.n));
    await follower.caughtUp;
    expect(seen).toEqual([1, 2]);
    await log.append('k/3', { n: 3 });
    expect(seen).toEqual([1, 2]);
    vi.advanceTimersByTime(100);
    expect(seen).toEqual([1, 2, 3]);
    await follower.close();
    await log.append('k/4', { n: 4 });
    vi.advanceTimersByTime(500);
    expect(seen).toEqual([1, 2, 3]); // closed: nothing more
  });

  it('follows a file that does not exist yet', async () => {
    const log = new FileControlLog(path, { parse, pollMs: 50 });
    const seen: number[] = [];
    const follower = await log.follow((r) => seen.push(r.n));
    await follower.caughtUp;
    expect(seen).toEqual([]);
    await log.append('k/1', { n: 1 });
    vi.advanceTimersByTime(50);
    expect(seen).toEqual([1]);
    await log.close();
  });

  it('leaves a torn last line until it is complete, and skips invalid lines, reporting their key', async () => {
    const log = new FileControlLog(path, { parse, pollMs: 100 });
    await log.append('k/1', { n: 1 });
    appendFileSync(path, '{"key":"k/bad","value":{"n":"x"}}\nnot json\n{"key":"k/2","val');
    const seen: number[] = [];
    const invalid: string[] = [];
    const follower = await log.follow((r) => seen.push(r.n), { onInvalid: (key) => invalid.push(key) });
    await follower.caughtUp;
    expect(seen).toEqual([1]);
    expect(invalid).toEqual(['k/bad', '']);
    appendFileSync(path, 'ue":{"n":2}}\n');
    vi.advanceTimersByTime(100);
    expect(seen).toEqual([1, 2]);
    await follower.close();
  });

  it('two logs on one file (two processes) see each other', async () => {
    const writer = new FileControlLog(path, { parse });
    const reader = new FileControlLog(path, { parse, pollMs: 200 });
    const seen: number[] = [];
    await (await reader.follow((r) => seen.push(r.n))).caughtUp;
    await writer.append('k/1', { n: 1 });
    vi.advanceTimersByTime(200);
    expect(seen).toEqual([1]);
    await reader.close();
  });
});
