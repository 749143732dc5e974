import { describe, expect, it } from 'vitest';
import {
  checkpointBody,
  checkpointTime,
  generateNoteKeys,
  parseCheckpointBody,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  timeExtension,
  verifierKeyText,
  verifyCheckpoint,
  verifyNote,
} from './checkpoint.ts';
import { EMPTY_ROOT } from './merkle.ts';

const keys = generateNoteKeys('vigil.test/audit');
const signer = parseSignerKey(keys.signer);
const verifier = parseVerifierKey(keys.verifier);
const checkpoint = {
  origin: 'vigil.test/audit',
  size: 42,
  root: EMPTY_ROOT,
  extensions: [timeExtension(Date.UTC(2026, 0, 1))],
};

describe('interoperability', () => {
  // The example key pair and signed note of Go's golang.org/x/mod/sumdb/note documentation: Ed25519 is deterministic,
  // so the same key must give byte for byte the same signature line, and the verifier must accept Go's note.
  const goSigner = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
  const goVerifier = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
  const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const goNote = `${text}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

  it('signs as Go sumdb/note does and opens its note', () => {
    expect(signNote(text, parseSignerKey(goSigner))).toBe(goNote);
    expect(verifyNote(goNote, parseVerifierKey(goVerifier))).toEqual({ ok: true, text });
    expect(verifierKeyText(parseSignerKey(goSigner))).toBe(goVerifier);
    expect(verifyNote(goNote.replace('answer', 'Answer'), parseVerifierKey(goVerifier))).toMatchObject({ ok: false });
  });
});

describe('note keys', () => {
  it('encode as the note formats, and the verifier key follows from the signer key', () => {
    expect(keys.signer).toMatch(/^PRIVATE\+KEY\+vigil\.test\/audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
    expect(keys.verifier).toMatch(/^vigil\.test\/audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
    expect(verifierKeyText(signer)).toBe(keys.verifier);
    expect(() => parseVerifierKey(keys.verifier.replace(/\+[0-9a-f]{8}\+/, '+00000000+'))).toThrow(/key id/);
    expect(() => generateNoteKeys('has space')).toThrow(/no spaces/);
  });
});

describe('checkpoints', () => {
  it('have the tlog-checkpoint body: origin, decimal size, base64 root, extension lines', () => {
    const body = checkpointBody(checkpoint);
    expect(body).toBe(`vigil.test/audit\n42\n${EMPTY_ROOT.toString('base64')}\ntime 2026-01-01T00:00:00.000Z\n`);
    expect(parseCheckpointBody(body)).toEqual(checkpoint);
    expect(() => parseCheckpointBody(body.replace('\n42\n', '\n042\n'))).toThrow(/decimal/);
    expect(checkpointTime(checkpoint)).toBe(Date.UTC(2026, 0, 1));
  });

  it('sign as a C2SP signed note that verifies, and fails once any byte of the body or signature changes', () => {
    const note = signCheckpoint(checkpoint, signer);
    const [body, sig] = note.split('\n\n');
    expect(`${body}\n`).toBe(checkpointBody(checkpoint));
    expect(sig).toMatch(/^\u2014 vigil\.test\/audit [A-Za-z0-9+/]+=*\n$/);
    expect(Buffer.from(sig!.trim().split(' ')[2]!, 'base64')).toHaveLength(4 + 64);
    const check = verifyCheckpoint(note, verifier);
    expect(check).toEqual({ ok: true, checkpoint });
    expect(verifyCheckpoint(note.replace('\n42\n', '\n43\n'), verifier)).toEqual({
      ok: false,
      problem: 'signature does not verify',
    });
    const other = parseVerifierKey(generateNoteKeys('vigil.test/audit').verifier);
    expect(verifyCheckpoint(note, other)).toMatchObject({ ok: false, problem: /no signature by key/ });
    expect(verifyCheckpoint(note.replace('\n\n', '\n'), verifier)).toMatchObject({ ok: false });
  });
});
