/**
 * tools/audit-verifier/verify.mjs, run as a separate process (as an auditor would) on proofs Vigil produced, and on
 * tampered ones: it must accept the first and refuse every second.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/clock.ts';
import { generateNoteKeys, parseSignerKey, parseVerifierKey } from './checkpoint.ts';
import { hashKeyOf } from './entry.ts';
import { openAuditLog } from './log.ts';
import { proveConsistency, proveInclusion } from './prove.ts';
import { MemoryAuditStore } from './stores/memory.ts';
import { verifyRecords } from './verify.ts';

const VERIFIER = new URL('../tools/audit-verifier/verify.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-verifier-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const keys = generateNoteKeys('vigil.test/audit');
const keyFile = join(dir, 'checkpoint.pub');
writeFileSync(keyFile, `${keys.verifier}\n`);

async function verifiedLog(n: number) {
  const store = new MemoryAuditStore();
  const log = await openAuditLog({
    store,
    clock: new ManualClock(),
    hashKey: hashKeyOf(Buffer.alloc(32, 7)),
    signer: { key: parseSignerKey(keys.signer), everyEntries: 64 },
  });
  for (let i = 0; i < n; i++) {
    await log.append({
      actor: 'auditor-1',
      role: 'auditor',
      action: 'trace.read',
      target: `event:${i}`,
      purpose: 'audit',
      read: { i },
    });
  }
  return verifyRecords(store.records, parseVerifierKey(keys.verifier));
}

function run(
  proof: unknown,
  extra: string[] = [],
  key = keyFile,
): { code: number | null; out: { ok: boolean; problem?: string } } {
  const file = join(dir, `proof-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(proof));
  const done = spawnSync(process.execPath, [VERIFIER, '--key', key, file, ...extra], { encoding: 'utf8' });
  return { code: done.status, out: JSON.parse(done.stdout.trim()) };
}

const flipB64 = (b64: string): string => {
  const b = Buffer.from(b64, 'base64');
  b[5] = b[5]! ^ 0x10;
  return b.toString('base64');
};

describe('the standalone verifier', () => {
  it('accepts inclusion proofs Vigil produced, and refuses tampered ones', async () => {
    const log = await verifiedLog(200);
    for (const index of [0, 1, 63, 100, 191]) {
      expect(run(proveInclusion(log, index))).toMatchObject({ code: 0, out: { ok: true } });
    }
    const proof = proveInclusion(log, 100);
    const tampered = [
      { ...proof, entry: proof.entry.replace('"auditor-1"', '"auditor-2"') },
      { ...proof, index: 101 },
      { ...proof, proof: proof.proof.map((h, i) => (i === 2 ? flipB64(h) : h)) },
      { ...proof, proof: proof.proof.slice(1) },
      { ...proof, checkpoint: proof.checkpoint.replace(/\n192\n/, '\n193\n') },
    ];
    for (const bad of tampered) expect(run(bad)).toMatchObject({ code: 1, out: { ok: false } });
    const otherKey = join(dir, 'other.pub');
    writeFileSync(otherKey, generateNoteKeys('vigil.test/audit').verifier);
    expect(run(proof, [], otherKey)).toMatchObject({ code: 1, out: { ok: false, problem: /not signed by/ } });
  });

  it('accepts consistency proofs Vigil produced, and refuses tampered ones', async () => {
    const log = await verifiedLog(200);
    for (const old of [1, 64, 100, 128, 192]) {
      expect(run(proveConsistency(log, old))).toMatchObject({ code: 0, out: { ok: true } });
    }
    const proof = proveConsistency(log, 128);
    expect(proof.old_checkpoint).not.toBeNull();
    const oldFile = join(dir, 'old.txt');
    writeFileSync(oldFile, proof.old_checkpoint!);
    expect(run({ ...proof, old_checkpoint: null }, ['--old-checkpoint', oldFile])).toMatchObject({
      code: 0,
      out: { ok: true, old_root_signed: true },
    });
    const tampered = [
      { ...proof, old_root: flipB64(proof.old_root), old_checkpoint: null },
      { ...proof, old_size: 127, old_checkpoint: null },
      { ...proof, proof: proof.proof.map((h, i) => (i === 0 ? flipB64(h) : h)) },
      { ...proof, old_checkpoint: proof.old_checkpoint!.replace('\n128\n', '\n127\n') },
    ];
    for (const bad of tampered) expect(run(bad)).toMatchObject({ code: 1, out: { ok: false } });
  });
});
