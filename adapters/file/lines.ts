/**
 * Streams a file's lines as bytes, never holding more than one line (plus one read chunk) in memory.
 *
 * Lines end at LF; a CR before it is dropped (CRLF files), as is a UTF-8 byte-order mark at the very start. Line
 * numbers count every line, blank or not (as an editor shows them), from 1; blank lines (only spaces, tabs or CR) are
 * not yielded. A line longer than `maxLineBytes` is not buffered: it is yielded with its length and sha256 but no
 * bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface Line {
  /** 1-based line number. */
  readonly number: number;
  /** The line's bytes without terminator (and without a leading BOM), or null when it exceeded maxLineBytes. */
  readonly bytes: Buffer | null;
  /** Length in bytes (also for an overlong line). */
  readonly length: number;
  /** Hex sha256 of the line's bytes, only for an overlong line (otherwise the caller hashes `bytes`). */
  readonly sha256: string | null;
}

export interface LineOptions {
  /** Longest line kept in memory (default 16 MiB). */
  readonly maxLineBytes?: number;
  /** Read chunk size (default 1 MiB). */
  readonly chunkBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function isBlank(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  }
  return true;
}

export async function* readLines(path: string, options: LineOptions = {}): AsyncGenerator<Line> {
  const maxLineBytes = options.maxLineBytes ?? 16 * 1024 * 1024;
  const stream = createReadStream(path, { highWaterMark: Math.max(64, options.chunkBytes ?? 1024 * 1024) });
  let lineNumber = 0;
  let parts: Buffer[] = [];
  let partBytes = 0;
  // Overlong-line state: hashing instead of buffering.
  let overflow: Hash | null = null;
  let overflowBytes = 0;
  let overflowBlank = true;
  let atStart = true;

  const appendPiece = (piece: Buffer): void => {
    if (piece.length === 0) return;
    if (overflow) {
      overflow.update(piece);
      overflowBytes += piece.length;
      if (overflowBlank && !isBlank(piece)) overflowBlank = false;
      return;
    }
    parts.push(piece);
    partBytes += piece.length;
    if (partBytes > maxLineBytes) {
      overflow = createHash('sha256');
      for (const p of parts) {
        overflow.update(p);
        if (overflowBlank && !isBlank(p)) overflowBlank = false;
      }
      overflowBytes = partBytes;
      parts = [];
      partBytes = 0;
    }
  };

  const finishLine = (): Line | null => {
    lineNumber++;
    if (overflow) {
      const hash = overflow;
      const length = overflowBytes;
      const blank = overflowBlank;
      overflow = null;
      overflowBytes = 0;
      overflowBlank = true;
      // A trailing CR is part of the hash here; overlong lines are rejected whatever their ending.
      return blank ? null : { number: lineNumber, bytes: null, length, sha256: hash.digest('hex') };
    }
    let line = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (isBlank(line)) return null;
    // Copy: the line must not pin the whole read chunk it was cut from.
    return { number: lineNumber, bytes: Buffer.from(line), length: line.length, sha256: null };
  };

  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let data = chunk;
    if (atStart) {
      if (data.length >= 3 && data.subarray(0, 3).equals(BOM)) data = data.subarray(3);
      atStart = false;
    }
    let pos = 0;
    while (pos < data.length) {
      const nl = data.indexOf(LF, pos);
      if (nl === -1) {
        appendPiece(data.subarray(pos));
        break;
      }
      appendPiece(data.subarray(pos, nl));
      pos = nl + 1;
      const line = finishLine();
      if (line) yield line;
    }
  }
  if (parts.length > 0 || overflow) {
    const line = finishLine();
    if (line) yield line;
  }
}
