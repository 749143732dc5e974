/**
 * An audit store in a JSON-lines file (`<dir>/audit.jsonl`): one record per line, appended, fsynced before the append
 * resolves. Appends made while a write is in flight are written and synced together (group commit), so concurrent
 * callers pay one fsync per group, not one each. A line that is not JSON is delivered as `{kind:'unreadable'}` so
 * the verifier can name it instead of the reader failing.
 *
 * @example
 * const store = openFileAuditStore('.vigil/audit');
 * const log = await openAuditLog({ store, clock: systemClock });
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord, AuditStore } from '../store.ts';

export const AUDIT_FILE = 'audit.jsonl';

export function openFileAuditStore(dir: string): AuditStore & { readonly path: string } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, AUDIT_FILE);
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
      let text = '';
      try {
        text = readFileSync(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        try {
          onRecord(JSON.parse(line) as AuditRecord);
        } catch {
          onRecord({ kind: 'unreadable', text: line.slice(0, 200) } as unknown as AuditRecord);
        }
      }
      // Reads what is there at the call; the audit tools need no live tail of a file.
      return { caughtUp: Promise.resolve(), close: async () => {} };
    },
    async close(): Promise<void> {
      if (pending.length > 0) flush();
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}
