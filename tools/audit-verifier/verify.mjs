#!/usr/bin/env node
// Vigil audit proof verifier: one file, no dependencies (node:crypto only), no code from Vigil. An auditor copies it
// to any machine with Node 18+ and checks, against the log's public (verifier) key:
//   - an inclusion proof (`vigil audit prove <index> --json`): the entry is in the tree the signed checkpoint commits to;
//   - a consistency proof (`vigil audit prove --consistency <old-size> --json`): the old tree is a prefix of the new.
//
//   node verify.mjs --key KEY proof.json [--old-checkpoint FILE]
//   KEY: the verifier key text (`<name>+<id>+<base64>`) or a file holding it. proof.json may be `-` (stdin).
//   --old-checkpoint: your own copy of the old checkpoint (signed note), for a consistency proof.
//
// Prints one JSON line {"ok":bool,"kind",...,"problem"?} and exits 0 when the proof holds, 1 when it does not.
// Algorithms: RFC 9162 2.1.3.2 (inclusion) and 2.1.4.2 (consistency); checkpoints are C2SP tlog-checkpoint bodies in
// C2SP signed notes (Ed25519).
import { createHash, createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const leafHash = (bytes) => sha256(Buffer.from([0]), bytes);
const nodeHash = (l, r) => sha256(Buffer.from([1]), l, r);
const odd = (x) => x % 2 === 1;
const half = (x) => Math.floor(x / 2);
const isPow2 = (n) => n >= 1 && Number.isInteger(Math.log2(n));
const b64 = (s) => {
  const buf = Buffer.from(String(s), 'base64');
  if (buf.length !== 32) throw new Error('a hash is 32 bytes of base64');
  return buf;
};

function parseVerifierKey(text) {
  const all = text.trim().split('+');
  if (all.length < 3) throw new Error('not a verifier key (<name>+<id>+<base64>)');
  const [name, idHex] = all;
  const raw = Buffer.from(all.slice(2).join('+'), 'base64');
  if (raw.length !== 33 || raw[0] !== 1) throw new Error('not an Ed25519 verifier key');
  const id = sha256(Buffer.from(name, 'utf8'), Buffer.from([0x0a, 0x01]), raw.subarray(1)).subarray(0, 4);
  if (id.toString('hex') !== idHex) throw new Error('verifier key id does not match its key');
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw.subarray(1)]);
  return { name, id, key: createPublicKey({ key: spki, format: 'der', type: 'spki' }) };
}

/** Checks a signed note and returns its checkpoint {origin, size, root}; throws with the reason otherwise. */
function openCheckpoint(note, vkey) {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Error('not a signed note');
  const body = note.slice(0, split + 1);
  let verified = false;
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith('\u2014 ')) throw new Error('malformed signature line');
    const [name, sig] = line.slice(2).split(' ');
    const raw = Buffer.from(sig ?? '', 'base64');
    if (name !== vkey.name || raw.length < 4 || !raw.subarray(0, 4).equals(vkey.id)) continue;
    if (!verify(null, Buffer.from(body, 'utf8'), vkey.key, raw.subarray(4)))
      throw new Error('checkpoint signature does not verify');
    verified = true;
  }
  if (!verified) throw new Error(`checkpoint is not signed by ${vkey.name}`);
  const [origin, sizeText, rootText] = body.slice(0, -1).split('\n');
  if (origin !== vkey.name) throw new Error(`checkpoint origin ${origin} is not ${vkey.name}`);
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText ?? '')) throw new Error('checkpoint size is not a decimal number');
  return { size: Number(sizeText), root: b64(rootText) };
}

function verifyInclusion(leaf, index, size, proof, root) {
  if (!Number.isInteger(index) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else r = nodeHash(r, p);
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && r.equals(root);
}

function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  if (!Number.isInteger(first) || first < 0 || first > second) return false;
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  if (first === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = isPow2(first) ? [firstRoot, ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else sr = nodeHash(sr, c);
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && fr.equals(firstRoot) && sr.equals(secondRoot);
}

function check(proof, vkey, oldCheckpoint) {
  const head = openCheckpoint(proof.checkpoint, vkey);
  if (head.size !== proof.tree_size)
    throw new Error(`proof is for size ${proof.tree_size}, checkpoint has ${head.size}`);
  const path = proof.proof.map(b64);
  if (proof.kind === 'inclusion') {
    const leaf = leafHash(Buffer.from(proof.entry, 'utf8'));
    if (proof.leaf_hash !== undefined && !leaf.equals(b64(proof.leaf_hash)))
      throw new Error('leaf_hash is not the hash of entry');
    if (JSON.parse(proof.entry).index !== proof.index)
      throw new Error('the entry does not carry the index it is proven at');
    if (!verifyInclusion(leaf, proof.index, head.size, path, head.root))
      throw new Error('inclusion proof does not lead to the checkpoint root');
    return { kind: 'inclusion', index: proof.index, tree_size: head.size, root: head.root.toString('base64') };
  }
  if (proof.kind === 'consistency') {
    const note = oldCheckpoint ?? proof.old_checkpoint;
    let oldRoot = b64(proof.old_root);
    let oldSigned = false;
    if (note) {
      const old = openCheckpoint(note, vkey);
      if (old.size !== proof.old_size)
        throw new Error(`old checkpoint has size ${old.size}, proof says ${proof.old_size}`);
      if (!old.root.equals(oldRoot)) throw new Error('old_root is not the old checkpoint root');
      oldRoot = old.root;
      oldSigned = true;
    }
    if (!verifyConsistency(proof.old_size, head.size, oldRoot, head.root, path))
      throw new Error('consistency proof does not hold between the two roots');
    return {
      kind: 'consistency',
      old_size: proof.old_size,
      tree_size: head.size,
      old_root_signed: oldSigned,
      root: head.root.toString('base64'),
    };
  }
  throw new Error(`unknown proof kind ${proof.kind}`);
}

function main(argv) {
  const args = { key: undefined, old: undefined, file: undefined };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--key') args.key = argv[++i];
    else if (argv[i] === '--old-checkpoint') args.old = argv[++i];
    else args.file = argv[i];
  }
  if (!args.key || !args.file) {
    process.stderr.write('usage: node verify.mjs --key KEY proof.json [--old-checkpoint FILE]\n');
    return 2;
  }
  try {
    const keyText = existsSync(args.key) ? readFileSync(args.key, 'utf8') : args.key;
    const proof = JSON.parse(readFileSync(args.file === '-' ? 0 : args.file, 'utf8'));
    const result = check(proof, parseVerifierKey(keyText), args.old ? readFileSync(args.old, 'utf8') : undefined);
    process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
    return 0;
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ ok: false, problem: error.message })}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
