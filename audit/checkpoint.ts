/**
 * Checkpoints: C2SP tlog-checkpoint bodies (origin line, tree size in decimal, base64 root hash, extension lines)
 * carried as C2SP signed notes with Ed25519, byte-compatible with Go's sumdb/note and the transparency-dev tools:
 *
 *   vigil.local/audit
 *   1024
 *   K0r5n...=
 *   time 2026-01-01T00:00:00.000Z
 *
 *   — vigil.local/audit AbCdEf...
 *
 * A signature line is an em dash (U+2014), a space, the key name, a space, and base64(key id (4 bytes) || signature);
 * the signature covers the body including its final newline. Key id = SHA-256(name || 0x0A || 0x01 || public key)[:4].
 * Keys use the note encodings: signer `PRIVATE+KEY+<name>+<id hex>+<base64(0x01 || seed)>`, verifier
 * `<name>+<id hex>+<base64(0x01 || public key)>`. The signer key lives in its own file, apart from the pipeline
 * (`vigil audit keygen`); only the verifier key is needed to check anything.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { VigilError } from '../runtime/errors.ts';
import { HASH_SIZE } from './merkle.ts';

const ED25519 = 0x01;
const SIG_PREFIX = '\u2014 ';
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
  /** Extension lines, in order (Vigil writes `time <ISO-8601>`). */
  readonly extensions: readonly string[];
}

export interface SignerKey {
  readonly name: string;
  readonly id: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
}

export interface VerifierKey {
  readonly name: string;
  readonly id: Buffer;
  readonly publicKey: KeyObject;
}

function keyId(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(name)
    .update(Buffer.from([0x0a, ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

function checkKeyName(name: string): void {
  if (name.length === 0 || /[\s+]/u.test(name)) {
    throw new VigilError('CONFIG_INVALID', `a note key name is non-empty, with no spaces and no '+': got '${name}'`);
  }
}

/** A new Ed25519 key pair, as note key strings. */
export function generateNoteKeys(name: string): { signer: string; verifier: string } {
  checkKeyName(name);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
  const id = keyId(name, pub).toString('hex');
  return {
    signer: `PRIVATE+KEY+${name}+${id}+${Buffer.concat([Buffer.from([ED25519]), seed]).toString('base64')}`,
    verifier: `${name}+${id}+${Buffer.concat([Buffer.from([ED25519]), pub]).toString('base64')}`,
  };
}

function splitKey(text: string, parts: number, what: string): string[] {
  // The base64 key itself may hold '+': the last field takes the rest (as Go's strings.SplitN does).
  const all = text.trim().split('+');
  if (all.length < parts) {
    throw new VigilError('CONFIG_INVALID', `not a note ${what} key (expected ${parts} '+'-separated fields)`);
  }
  return [...all.slice(0, parts - 1), all.slice(parts - 1).join('+')];
}

export function parseSignerKey(text: string): SignerKey {
  const [p, k, name, idHex, b64] = splitKey(text, 5, 'signer');
  const raw = Buffer.from(b64!, 'base64');
  if (p !== 'PRIVATE' || k !== 'KEY' || raw.length !== 33 || raw[0] !== ED25519) {
    throw new VigilError('CONFIG_INVALID', 'not an Ed25519 note signer key (PRIVATE+KEY+<name>+<id>+<base64>)');
  }
  checkKeyName(name!);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, raw.subarray(1)]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
  const id = keyId(name!, publicKey);
  if (id.toString('hex') !== idHex) throw new VigilError('CONFIG_INVALID', 'signer key id does not match its key');
  return { name: name!, id, privateKey, publicKey };
}

export function parseVerifierKey(text: string): VerifierKey {
  const [name, idHex, b64] = splitKey(text, 3, 'verifier');
  const raw = Buffer.from(b64!, 'base64');
  if (raw.length !== 33 || raw[0] !== ED25519)
    throw new VigilError('CONFIG_INVALID', 'not an Ed25519 note verifier key');
  checkKeyName(name!);
  const id = keyId(name!, raw.subarray(1));
  if (id.toString('hex') !== idHex) throw new VigilError('CONFIG_INVALID', 'verifier key id does not match its key');
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_ED25519, raw.subarray(1)]),
    format: 'der',
    type: 'spki',
  });
  return { name: name!, id, publicKey };
}

/** The verifier key text of a signer key (what `vigil audit keygen` writes beside it). */
export function verifierKeyText(key: SignerKey): string {
  return `${key.name}+${key.id.toString('hex')}+${Buffer.concat([Buffer.from([ED25519]), key.publicKey]).toString('base64')}`;
}

export function verifierOf(key: SignerKey): VerifierKey {
  return parseVerifierKey(verifierKeyText(key));
}

/** The checkpoint body (the note text), ending with a newline. */
export function checkpointBody(checkpoint: Checkpoint): string {
  if (checkpoint.origin.length === 0 || checkpoint.origin.includes('\n')) throw new RangeError('bad origin line');
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) throw new RangeError('bad tree size');
  if (checkpoint.root.length !== HASH_SIZE) throw new RangeError('a root hash has 32 bytes');
  for (const line of checkpoint.extensions) {
    if (line.length === 0 || line.includes('\n')) throw new RangeError('an extension line is non-empty, one line');
  }
  return [checkpoint.origin, String(checkpoint.size), checkpoint.root.toString('base64'), ...checkpoint.extensions]
    .map((line) => `${line}\n`)
    .join('');
}

/** Parses a checkpoint body; throws on anything the format does not allow. */
export function parseCheckpointBody(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new SyntaxError('a checkpoint body ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin || sizeText === undefined || rootText === undefined)
    throw new SyntaxError('a checkpoint has 3 lines at least');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new SyntaxError('tree size is not a decimal number');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw new SyntaxError('tree size out of range');
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== HASH_SIZE || root.toString('base64') !== rootText)
    throw new SyntaxError('root hash is not 32 bytes of base64');
  if (extensions.some((line) => line.length === 0)) throw new SyntaxError('an extension line is empty');
  return { origin, size, root, extensions };
}

/** A C2SP signed note: `text` (ending with a newline), a blank line, one signature line by `key`. */
export function signNote(text: string, key: SignerKey): string {
  if (!text.endsWith('\n') || text.includes('\n\n'))
    throw new RangeError('note text ends with one newline, no blank line');
  const signature = sign(null, Buffer.from(text, 'utf8'), key.privateKey);
  return `${text}\n${SIG_PREFIX}${key.name} ${Buffer.concat([key.id, signature]).toString('base64')}\n`;
}

/** The signed note of a checkpoint (body, blank line, one signature line). */
export function signCheckpoint(checkpoint: Checkpoint, key: SignerKey): string {
  return signNote(checkpointBody(checkpoint), key);
}

/**
 * Opens a signed note with a verifier key: the text, if a signature line of that key name and id verifies over it
 * (lines of other keys are ignored, as the signed-note spec says).
 */
export function verifyNote(
  note: string,
  key: VerifierKey,
): { ok: true; text: string } | { ok: false; problem: string } {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n'))
    return { ok: false, problem: 'not a signed note (no blank line before signatures)' };
  const text = note.slice(0, split + 1);
  let matched = false;
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(SIG_PREFIX)) return { ok: false, problem: 'malformed signature line' };
    const [name, b64, extra] = line.slice(SIG_PREFIX.length).split(' ');
    if (!name || !b64 || extra !== undefined) return { ok: false, problem: 'malformed signature line' };
    const raw = Buffer.from(b64, 'base64');
    if (name !== key.name || raw.length < 4 || !raw.subarray(0, 4).equals(key.id)) continue;
    matched = true;
    if (!verify(null, Buffer.from(text, 'utf8'), key.publicKey, raw.subarray(4))) {
      return { ok: false, problem: 'signature does not verify' };
    }
  }
  return matched ? { ok: true, text } : { ok: false, problem: `no signature by key ${key.name}` };
}

export type CheckpointCheck =
  | { readonly ok: true; readonly checkpoint: Checkpoint }
  | { readonly ok: false; readonly problem: string };

/**
 * Checks a signed note against a verifier key (a signature line of that key name and id, valid over the body) and
 * parses its checkpoint; the origin must equal the key name, as it does for every log Vigil writes.
 */
export function verifyCheckpoint(note: string, key: VerifierKey): CheckpointCheck {
  const opened = verifyNote(note, key);
  if (!opened.ok) return opened;
  try {
    const checkpoint = parseCheckpointBody(opened.text);
    if (checkpoint.origin !== key.name) return { ok: false, problem: `origin ${checkpoint.origin} is not ${key.name}` };
    return { ok: true, checkpoint };
  } catch (error) {
    return { ok: false, problem: `signed body is not a checkpoint: ${(error as Error).message}` };
  }
}

/** The `time` extension Vigil adds: when the signer signed. */
export function checkpointTime(checkpoint: Checkpoint): number | undefined {
  const line = checkpoint.extensions.find((l) => l.startsWith('time '));
  const at = line === undefined ? Number.NaN : Date.parse(line.slice(5));
  return Number.isFinite(at) ? at : undefined;
}

export const timeExtension = (at: number): string => `time ${new Date(at).toISOString()}`;
