import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/clock.ts';
import { generateNoteKeys, parseSignerKey, parseVerifierKey, verifyCheckpoint } from './checkpoint.ts';
import { type AuditEntry, canonicalJson, entryJson, hashKeyOf, keyedDigest, targetRef } from './entry.ts';
import { openAuditLog } from './log.ts';
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.ts';
import { proveConsistency, proveInclusion } from './prove.ts';
import { readAll } from './store.ts';
import { openFileAuditStore } from './stores/file.ts';
import { MemoryAuditStore } from './stores/memory.ts';
import { verifyRecords } from './verify.ts';

const keys = generateNoteKeys('vigil.test/audit');
const signer = parseSignerKey(keys.signer);
const verifier = parseVerifierKey(keys.verifier);
const hashKey = hashKeyOf(randomBytes(32));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const read = (i: number) => ({
  actor: `user-${i % 3}`,
  role: 'clinician',
  action: 'data.read',
  target: targetRef(hashKey, 'patient', `P-${i}`),
  purpose: 'treatment',
  read: { rows: [i, i + 1] },
});

async function filledLog(store: MemoryAuditStore | ReturnType<typeof openFileAuditStore>, n: number, every = 10) {
  const clock = new ManualClock();
  const log = await openAuditLog({ store, clock, hashKey, signer: { key: signer, everyEntries: every } });
  for (let i = 0; i < n; i++) {
    clock.advance(1000);
    await log.append(read(i));
  }
  return { log, clock };
}

describe('openAuditLog', () => {
  it('appends gap-free entries that commit to digests, never to the values, each linked to the one before', async () => {
    const store = new MemoryAuditStore();
    const clock = new ManualClock();
    const log = await openAuditLog({ store, clock, hashKey });
    const a = await log.append({ ...read(0), details: { note: 'P-0 changed' } });
    const b = await log.append(read(1));
    expect([a.index, b.index]).toEqual([0, 1]);
    const [first, second] = store.records as { entry: Record<string, unknown> }[];
    expect(first!.entry).toMatchObject({ index: 0, at: clock.now(), hash_key: hashKey.id });
    expect(first!.entry.details_sha256).toBe(keyedDigest(hashKey, { note: 'P-0 changed' }));
    expect(first!.entry.prev).toBeUndefined();
    expect(second!.entry.prev).toBe(a.leaf_hash);
    expect(leafHash(Buffer.from(canonicalJson(first!.entry))).toString('hex')).toBe(a.leaf_hash);
    expect(entryJson(first!.entry as AuditEntry)).toBe(canonicalJson(first!.entry));
    expect(JSON.stringify(store.records)).not.toMatch(/P-0|P-1/);
    await expect(openAuditLog({ store, clock }).then((l) => l.append(read(2)))).rejects.toThrow(/hashing key/);
  });

  it('signs a checkpoint every N entries and when T passed with new entries (tick), and resumes after reopening', async () => {
    const store = new MemoryAuditStore();
    const clock = new ManualClock();
    const log = await openAuditLog({
      store,
      clock,
      hashKey,
      signer: { key: signer, everyEntries: 5, everyMs: 60_000 },
    });
    for (let i = 0; i < 12; i++) await log.append(read(i));
    const sizes = () =>
      store.records
        .filter((r) => (r as { kind: string }).kind === 'checkpoint')
        .map((r) => {
          const check = verifyCheckpoint((r as { note: string }).note, verifier);
          return check.ok ? check.checkpoint.size : -1;
        });
    expect(sizes()).toEqual([5, 10]);
    expect(await log.tick()).toBeNull();
    clock.advance(60_000);
    expect(await log.tick()).toMatch(/\n12\n/);
    expect(await log.tick()).toBeNull();
    expect(sizes()).toEqual([5, 10, 12]);
    const reopened = await openAuditLog({ store, clock, hashKey, signer: { key: signer, everyEntries: 5 } });
    expect(reopened.size).toBe(12);
    for (let i = 12; i < 17; i++) await reopened.append(read(i));
    expect(sizes()).toEqual([5, 10, 12, 17]);
    expect(verifyRecords(store.records, verifier).report).toMatchObject({ ok: true, entries: 17, checkpoints: 4 });
  });

  it('gives consecutive indexes to concurrent appends, in call order', async () => {
    const store = openFileAuditStore(mkdtempSync(join(tmpdir(), 'vigil-audit-')));
    dirs.push(join(store.path, '..'));
    const log = await openAuditLog({ store, clock: new ManualClock(), hashKey });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(read(i))));
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await log.close();
    const records = await readAll(openFileAuditStore(join(store.path, '..')));
    expect(records).toHaveLength(50);
  });
});

describe('verify: tampering with a stored log', () => {
  async function fileLog(n: number) {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
    dirs.push(dir);
    const store = openFileAuditStore(dir);
    const { log } = await filledLog(store as never, n);
    await log.close();
    const lines = readFileSync(store.path, 'utf8').trim().split('\n');
    const verify = async (edited: string[]) => {
      writeFileSync(store.path, `${edited.join('\n')}\n`);
      return verifyRecords(await readAll(openFileAuditStore(dir)), verifier).report;
    };
    return { lines, verify };
  }
  /** Line number of entry i in the file (a checkpoint line follows every 10th entry). */
  const lineOf = (i: number) => i + Math.floor(i / 10);

  it('an untouched log verifies', async () => {
    const { lines, verify } = await fileLog(45);
    expect(await verify(lines)).toMatchObject({
      ok: true,
      entries: 45,
      checkpoints: 4,
      verified_size: 40,
      unsigned_tail: 5,
    });
  });

  it('names an edited entry and an edited checkpoint', async () => {
    const { lines, verify } = await fileLog(45);
    const edited = [...lines];
    edited[lineOf(13)] = edited[lineOf(13)]!.replace('"user-1"', '"user-2"');
    edited[lineOf(29) + 1] = edited[lineOf(29) + 1]!.replace('\\n30\\n', '\\n31\\n');
    const report = await verify(edited);
    expect(report).toMatchObject({ ok: false, first_bad_index: 13, first_bad_checkpoint: 1 });
    expect(report.problem).toBe('entry 13 was edited: entry 14 records a different hash for it');
    expect(report.problems.map((p) => p.problem)).toContain('checkpoint 2 (after entry 29): signature does not verify');
  });

  it('names the last entry edited (no successor: the covering checkpoint names its range)', async () => {
    const { lines, verify } = await fileLog(40);
    const edited = [...lines];
    edited[lineOf(39)] = edited[lineOf(39)]!.replace('"treatment"', '"audit"');
    const report = await verify(edited);
    expect(report).toMatchObject({ ok: false, first_bad_index: 30, first_bad_checkpoint: 3 });
    expect(report.problem).toMatch(/checkpoint 3 \(size 40\) does not match the stored entries: an entry in 30\.\.39/);
  });

  it('names a log cut short with its last checkpoints, given a checkpoint kept outside it', async () => {
    const { lines, verify } = await fileLog(45);
    const held = (JSON.parse(lines[lineOf(39) + 1]!) as { note: string }).note;
    const cut = lines.slice(0, lineOf(29) + 1);
    expect(await verify(cut)).toMatchObject({ ok: true, entries: 30 });
    const records = cut.map((l) => JSON.parse(l) as unknown);
    expect(verifyRecords(records, verifier, { held: [held] }).report).toMatchObject({
      ok: false,
      first_bad_index: 30,
      problem:
        'held checkpoint 0 covers 40 entries but the store holds 30: the log was cut short (entries 30..39 gone)',
    });
  });

  it('names a deleted, a reordered and an inserted entry', async () => {
    const { lines, verify } = await fileLog(25);
    const deleted = lines.filter((_, i) => i !== lineOf(7));
    const afterDeletion = await verify(deleted);
    expect(afterDeletion).toMatchObject({
      ok: false,
      first_bad_index: 7,
      problem: 'entry 7 is missing: position 7 holds entry 8 (deleted or reordered)',
    });
    // Reported where it happened, once: the later entries still follow their stored predecessors.
    expect(afterDeletion.problems.filter((p) => p.checkpoint === undefined)).toHaveLength(1);
    const garbled = [...lines];
    garbled[lineOf(3)] = '{"kind":"entry","entry":{"index":3,';
    expect(await verify(garbled)).toMatchObject({ ok: false, first_bad_index: 3 });
    expect((await verify(garbled)).problems.filter((p) => p.checkpoint === undefined)).toHaveLength(1);
    const reordered = [...lines];
    [reordered[lineOf(4)], reordered[lineOf(5)]] = [reordered[lineOf(5)]!, reordered[lineOf(4)]!];
    expect(await verify(reordered)).toMatchObject({ ok: false, first_bad_index: 4 });
    const forged = JSON.parse(lines[lineOf(16)]!) as { entry: { actor: string } };
    forged.entry.actor = 'mallory';
    const inserted = [...lines.slice(0, lineOf(16)), JSON.stringify(forged), ...lines.slice(lineOf(16))];
    expect(await verify(inserted)).toMatchObject({ ok: false, first_bad_index: 16 });
  });
});

describe('proofs from a verified log', () => {
  it('prove inclusion and consistency against the latest signed checkpoint', async () => {
    const store = new MemoryAuditStore();
    await filledLog(store, 37);
    const verified = verifyRecords(store.records, verifier);
    const inclusion = proveInclusion(verified, 21);
    expect(inclusion.tree_size).toBe(30);
    const check = verifyCheckpoint(inclusion.checkpoint, verifier);
    expect(check.ok).toBe(true);
    const root = check.ok ? check.checkpoint.root : Buffer.alloc(0);
    const leaf = leafHash(Buffer.from(inclusion.entry));
    const proof = inclusion.proof.map((p) => Buffer.from(p, 'base64'));
    expect(verifyInclusion(leaf, 21, 30, proof, root)).toBe(true);
    expect(() => proveInclusion(verified, 31)).toThrow(/not covered/);
    const consistency = proveConsistency(verified, 10);
    expect(consistency.old_checkpoint).toMatch(/\n10\n/);
    const ok = verifyConsistency(
      10,
      30,
      Buffer.from(consistency.old_root, 'base64'),
      root,
      consistency.proof.map((p) => Buffer.from(p, 'base64')),
    );
    expect(ok).toBe(true);
  });
});

describe('the file store', () => {
  it('reopens a long log from its end alone (no signer: only the last entry matters) and continues its chain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
    dirs.push(dir);
    const store = openFileAuditStore(dir);
    const { log } = await filledLog(store as never, 3000, 100);
    await log.close();
    const reopened = await openAuditLog({ store: openFileAuditStore(dir), clock: new ManualClock(), hashKey });
    expect(reopened.size).toBe(3000);
    expect((await reopened.append(read(3000))).index).toBe(3000);
    await reopened.close();
    expect(verifyRecords(await readAll(openFileAuditStore(dir)), verifier).report).toMatchObject({
      ok: true,
      entries: 3001,
      verified_size: 3000,
      unsigned_tail: 1,
    });
    expect(await openFileAuditStore(dir).tail!(3)).toHaveLength(3);
  });

  it('lets one writer at a time append: a second waits for the first to close, and both stay gap-free', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
    dirs.push(dir);
    const first = await openAuditLog({ store: openFileAuditStore(dir), clock: new ManualClock(), hashKey });
    await first.append(read(0));
    let secondOpen = false;
    const second = openAuditLog({ store: openFileAuditStore(dir), clock: new ManualClock(), hashKey }).then((log) => {
      secondOpen = true;
      return log;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(secondOpen).toBe(false);
    await first.append(read(1));
    await first.close();
    const log = await second;
    expect((await log.append(read(2))).index).toBe(2);
    await log.close();
    expect(verifyRecords(await readAll(openFileAuditStore(dir)), verifier).report).toMatchObject({
      ok: true,
      entries: 3,
    });
  });
});
