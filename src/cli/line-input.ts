import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** A failure the command reports in one line and exits 1 for (no stack trace). */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
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
    if ((await stat(file)).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    await (await open(file, 'r')).close();
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${reason(e)}`);
  }
}

/** Lines of FILE (or standard input for -), read as they come: constant memory whatever the size. */
export async function* readLines(file: string, stdin: Readable = process.stdin): AsyncGenerator<string> {
  const input = file === '-' ? stdin : createReadStream(file);
  let failed: unknown;
  input.on('error', (e: Error) => (failed = e));
  const rl = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
    if (file !== '-') (input as ReturnType<typeof createReadStream>).destroy();
  }
  if (failed !== undefined) throw new CliError(`cannot read ${file === '-' ? 'standard input' : file}: ${reason(failed)}`);
}

/** Lines in FILE (for the ETA), counted in one streaming pass; undefined for standard input. */
export async function countLines(file: string): Promise<number | undefined> {
  if (file === '-') return undefined;
  let n = 0;
  let last = 0x0a;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) n++;
    if (chunk.length > 0) last = chunk[chunk.length - 1];
  }
  return last === 0x0a ? n : n + 1;
}
