/**
 * An audit store in a JSON-lines file (`<dir>/audit.jsonl`): one record per line, appended, fsynced before the append
 * resolves. Appends made while a write is in flight are written and synced together (group commit), so concurrent
 * callers pay one fsync per group, not one each. A line that is not JSON is delivered as `{kind:'unreadable'}` so
 * the verifier can name it instead of the reader failing.
 *
 * One writer at a time: `claimWriter` takes `<dir>/audit.lock` (created exclusively, holding the writer's pid) and
 * waits while another live process holds it; a lock whose process is gone is taken over. `close` releases it.
 *
 * @example
 * const store = openFileAuditStore('.vigil/audit');
 * const log = await openAuditLog({ store, clock: systemClock });
 */
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { VigilError } from '../../runtime/errors.ts';
import type { AuditRecord, AuditStore } from '../store.ts';

export const AUDIT_FILE = 'audit.jsonl';

export const LOCK_FILE = 'audit.lock';
/** How much of the file's end `tail` reads (records are well under 1 kB). */
const TAIL_BYTES = 256 * 1024;
const FOLLOW_POLL_MS = 200;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the writer lock, waiting up to `timeoutMs` for a live holder to release it. */
async function lock(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(path, 'utf8'));
    } catch {
      continue; // released between our attempt and the read: try again at once
    }
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new VigilError('CONFIG_INVALID', `another process (pid ${holder}) is writing the audit log at ${path}`, {
        retriable: true,
      });
    }
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
  }
}

export function openFileAuditStore(
  dir: string,
  options: { lockTimeoutMs?: number } = {},
): AuditStore & { readonly path: string } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, AUDIT_FILE);
  const lockPath = join(dir, LOCK_FILE);
  let locked = false;
  let fd: number | null = null;
  let pending: { line: string; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    const group = pending;
    pending = [];
    try {
      fd ??= openSync(path, 'a');
      writeSync(fd, group.map((p) => p.line).join(''));
      fdatasyncSync(fd);
      for (const p of group) p.resolve();
    } catch (error) {
      for (const p of group) p.reject(error);
    }
  };

  return {
    path,
    async claimWriter(): Promise<void> {
      if (locked) return;
      await lock(lockPath, options.lockTimeoutMs ?? 30_000);
      locked = true;
    },
    append(_key: string, record: AuditRecord): Promise<void> {
      return new Promise((resolve, reject) => {
        pending.push({ line: `${JSON.stringify(record)}\n`, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    async follow(onRecord: (record: AuditRecord) => void) {
      // Whole lines from `offset` on, delivered in order; a line still being written waits for its newline.
      let offset = 0;
      const readNew = (): void => {
        let fdr: number;
        try {
          fdr = openSync(path, 'r');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw error;
        }
        try {
          const size = fstatSync(fdr).size;
          if (size <= offset) return;
          const chunk = Buffer.alloc(size - offset);
          readSync(fdr, chunk, 0, chunk.length, offset);
          const end = chunk.lastIndexOf(0x0a);
          if (end < 0) return;
          offset += end + 1;
          for (const line of chunk.subarray(0, end).toString('utf8').split('\n')) {
            if (line.trim() === '') continue;
            try {
              onRecord(JSON.parse(line) as AuditRecord);
            } catch {
              onRecord({ kind: 'unreadable', text: line.slice(0, 200) } as unknown as AuditRecord);
            }
          }
        } finally {
          closeSync(fdr);
        }
      };
      readNew();
      // Then new lines as they are appended (the signer follows the log live).
      const timer = setInterval(readNew, FOLLOW_POLL_MS).unref();
      return {
        caughtUp: Promise.resolve(),
        close: async () => clearInterval(timer),
      };
    },
    async tail(n: number): Promise<unknown[]> {
      let fdr: number;
      try {
        fdr = openSync(path, 'r');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
      try {
        const size = fstatSync(fdr).size;
        const length = Math.min(size, TAIL_BYTES);
        const buffer = Buffer.alloc(length);
        readSync(fdr, buffer, 0, length, size - length);
        const lines = buffer
          .toString('utf8')
          .split('\n')
          .filter((l) => l.trim() !== '');
        // The first line of a chunk that does not start the file may be cut: drop it.
        if (length < size) lines.shift();
        return lines.slice(-n).map((line) => {
          try {
            return JSON.parse(line) as unknown;
          } catch {
            return { kind: 'unreadable', text: line.slice(0, 200) };
          }
        });
      } finally {
        closeSync(fdr);
      }
    },
    async close(): Promise<void> {
      if (pending.length > 0) flush();
      if (fd !== null) closeSync(fd);
      fd = null;
      if (locked) rmSync(lockPath, { force: true });
      locked = false;
    },
  };
}
