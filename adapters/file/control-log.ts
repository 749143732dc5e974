/**
 * A control log in a JSON-lines file (`{"key":...,"value":...}` per line): the embedded, no-services mode of the
 * device-identity log, and a log tests can read without a broker.
 *
 * An append is durable when it resolves (written then fsync'd). Appends from this process are serialised so lines
 * never interleave; two processes appending at once rely on O_APPEND writes of one line each, which POSIX keeps whole
 * for a local file. A follower reads the file from its start, then polls for growth: a last line without its newline
 * is a write in progress, left until it is complete.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ControlLog, FollowOptions } from '../../identity/types.ts';

export interface FileControlLogOptions<T> {
  /** Turns a line's `value` into a record; throws when it is not one (the line is skipped and reported). */
  readonly parse: (value: unknown) => T;
  /** How often a follower looks for new lines. Default 100 ms. */
  readonly pollMs?: number;
}

const READ_CHUNK = 1 << 16;

function syncFolder(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class FileControlLog<T> implements ControlLog<T> {
  readonly #path: string;
  readonly #parse: (value: unknown) => T;
  readonly #pollMs: number;
  #appending: Promise<void> = Promise.resolve();
  readonly #followers = new Set<{ close(): Promise<void> }>();

  /**
   * @example
   * const log = new FileControlLog('.vigil/control/device-identity.jsonl', { parse: parseIdentityChange });
   * await log.append(changeKey(change), change);
   */
  constructor(path: string, options: FileControlLogOptions<T>) {
    this.#path = path;
    this.#parse = options.parse;
    this.#pollMs = Math.min(options.pollMs ?? 100, 200);
  }

  get path(): string {
    return this.#path;
  }

  append(key: string, record: T): Promise<void> {
    const line = `${JSON.stringify({ key, value: record })}\n`;
    const write = this.#appending.then(() => {
      mkdirSync(dirname(this.#path), { recursive: true });
      const created = !existsSync(this.#path);
      const fd = openSync(this.#path, 'a', 0o640);
      try {
        writeSync(fd, line);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // A new file's name is durable only once its folder is synced too.
      if (created) syncFolder(dirname(this.#path));
    });
    this.#appending = write.catch(() => undefined);
    return write;
  }

  async follow(
    onRecord: (record: T) => void,
    options: FollowOptions = {},
  ): Promise<{ readonly caughtUp: Promise<void>; close(): Promise<void> }> {
    let offset = 0;
    let pending = Buffer.alloc(0);
    const deliver = (line: string): void => {
      if (line.trim() === '') return;
      let key = '';
      let record: T;
      try {
        const parsed = JSON.parse(line) as { key?: unknown; value?: unknown };
        key = typeof parsed.key === 'string' ? parsed.key : '';
        record = this.#parse(parsed.value);
      } catch (error) {
        options.onInvalid?.(key, error);
        return;
      }
      onRecord(record);
    };
    /** Reads what the file holds beyond `offset` and delivers its complete lines. */
    const readNew = (): void => {
      let fd: number;
      try {
        fd = openSync(this.#path, 'r');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // nothing appended yet
        throw error;
      }
      try {
        const chunk = Buffer.alloc(READ_CHUNK);
        for (;;) {
          const n = readSync(fd, chunk, 0, chunk.length, offset);
          if (n === 0) break;
          offset += n;
          pending = Buffer.concat([pending, chunk.subarray(0, n)]);
          let newline = pending.indexOf(0x0a);
          while (newline !== -1) {
            deliver(pending.subarray(0, newline).toString('utf8'));
            pending = pending.subarray(newline + 1);
            newline = pending.indexOf(0x0a);
          }
        }
      } finally {
        closeSync(fd);
      }
    };
    readNew();
    const timer = setInterval(() => {
      try {
        readNew();
      } catch {
        // An unreadable file for a moment (rotated permissions, NFS hiccup): the next poll tries again.
      }
    }, this.#pollMs);
    timer.unref(); // a follower alone does not keep a process alive
    const follower = {
      caughtUp: Promise.resolve(),
      close: async (): Promise<void> => {
        clearInterval(timer);
        this.#followers.delete(follower);
      },
    };
    this.#followers.add(follower);
    return follower;
  }

  async close(): Promise<void> {
    await this.#appending;
    await Promise.all([...this.#followers].map((f) => f.close()));
  }
}
