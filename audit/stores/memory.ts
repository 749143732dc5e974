/** An audit store in memory: unit tests and benchmarks. `records` is exposed so a test can tamper with it. */
import type { AuditRecord, AuditStore } from '../store.ts';

export class MemoryAuditStore implements AuditStore {
  readonly records: unknown[] = [];
  readonly keys: string[] = [];

  async append(key: string, record: AuditRecord): Promise<void> {
    this.keys.push(key);
    // A deep copy: what is stored no longer changes with the caller's object.
    this.records.push(JSON.parse(JSON.stringify(record)));
  }

  async follow(onRecord: (record: AuditRecord) => void) {
    for (const record of [...this.records]) onRecord(record as AuditRecord);
    return { caughtUp: Promise.resolve(), close: async () => {} };
  }

  async close(): Promise<void> {}
}
