import { constants, createReadStream } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** A failure the command reports in one line and exits 1 for (no stack trace). */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text from an input line made safe to quote in a message on the operator's terminal: control
 * characters as JSON escapes (`\u001b`, `\r`). A binary file (a .gz imported without gunzip) would
 * otherwise send ESC sequences that drive the terminal, and a CR would hide the line number before it.
 */
export function printable(text: string): string {
  // JSON.stringify escapes only C0 controls: DEL and C1 (U+009B is a CSI) get a \u escape here.
  return text.replace(CONTROL, (c) => (c < ' ' ? JSON.stringify(c).slice(1, -1) : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'no such file';
  if (err.code === 'EACCES') return 'permission denied';
  if (err.code === 'EISDIR') return 'is a directory';
  return err.message ?? String(e);
}

/** Checks FILE can be read before anything else is started, so a typo fails at once. */
export async function checkReadable(file: string): Promise<void> {
  if (file === '-') return;
  try {
    const st = await stat(file);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    // A named pipe is not opened to check it: the open waits for its writer, and closing it again
    // (the last reader gone) drops what the writer sent before the command reads it.
    if (st.isFIFO()) await access(file, constants.R_OK);
    else await (await open(file, 'r')).close();
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${reason(e)}`);
  }
}

/**
 * Lines of FILE (or standard input for -), read as they come: constant memory whatever the size. A line
 * ends at LF, a CR just before it dropped; a bare CR is part of the line, as in NDJSON (export writes
 * none: JSON escapes it inside a string). readline splits there too, out of step with countLines and
 * with an editor's line numbers.
 */
export async function* readLines(file: string, stdin: Readable = process.stdin): AsyncGenerator<string> {
  const input = file === '-' ? stdin : createReadStream(file);
  const parts: Buffer[] = [];
  // Where the first line's text starts: after a UTF-8 byte order mark, which Windows editors and
  // PowerShell write at the start of a file. It is no part of the line (JSON.parse refuses it, as an
  // invisible "Unexpected token").
  let skip = -1;
  const text = (line: Buffer, end: number): string => {
    if (skip === -1) skip = line.length >= 3 && line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf ? 3 : 0;
    const from = Math.min(skip, end);
    skip = 0;
    return line.toString('utf8', from, end);
  };
  try {
    for await (const chunk of input.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      let start = 0;
      for (let lf = buf.indexOf(0x0a); lf !== -1; lf = buf.indexOf(0x0a, start)) {
        parts.push(buf.subarray(start, lf));
        const line = parts.length === 1 ? parts[0] : Buffer.concat(parts);
        parts.length = 0;
        start = lf + 1;
        yield text(line, line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length);
      }
      if (start < buf.length) parts.push(buf.subarray(start));
    }
  } catch (e) {
    throw new CliError(`cannot read ${file === '-' ? 'standard input' : file}: ${reason(e)}`);
  } finally {
    if (file !== '-') (input as ReturnType<typeof createReadStream>).destroy();
  }
  if (parts.length > 0) {
    const last = Buffer.concat(parts);
    yield text(last, last.length);
  }
}

/**
 * Lines in FILE (for the ETA), counted in one streaming pass; undefined for standard input and anything
 * but a regular file: a pipe (`warm <(grep …)`, `/dev/stdin`) can be read only once, and counting it
 * would leave nothing for the command to read.
 */
export async function countLines(file: string): Promise<number | undefined> {
  if (file === '-' || !(await stat(file)).isFile()) return undefined;
  let n = 0;
  let last = 0x0a;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) n++;
    if (chunk.length > 0) last = chunk[chunk.length - 1];
  }
  return last === 0x0a ? n : n + 1;
}
