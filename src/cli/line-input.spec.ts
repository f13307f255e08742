import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { checkReadable, CliError, countLines, printable, readLines } from './line-input';

describe('line input (warm, import)', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'line-input-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const lines = async (file: string, stdin?: Readable) => {
    const out: string[] = [];
    for await (const line of readLines(file, stdin)) out.push(line);
    return out;
  };

  it('splits at LF only, a CR before it dropped and a bare CR kept, and counts the same lines', async () => {
    const cases: Array<[string, string[]]> = [
      ['a\nb\r\nc\rd\ne', ['a', 'b', 'c\rd', 'e']],
      ['a\r\n\nb\n', ['a', '', 'b']],
      ['\r', ['\r']],
      ['', []],
      ['é\n€\r', ['é', '€\r']],
    ];
    for (const [text, expected] of cases) {
      const file = join(dir, 'lines.txt');
      writeFileSync(file, text);
      expect(await lines(file)).toEqual(expected);
      expect(await countLines(file)).toBe(expected.length);
      // Chunks split anywhere, even inside a character or between CR and LF.
      const bytes = Buffer.from(text);
      const chunks = [...bytes].map((_, i) => bytes.subarray(i, i + 1));
      expect(await lines('-', Readable.from(chunks))).toEqual(expected);
    }
  });

  it('does not count the lines of a pipe (warm <(...), /dev/stdin): they can be read only once, and warm reads them next', async () => {
    const fifo = join(dir, 'questions.fifo');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO waits for the other end: the writer opens once a reader does.
    createWriteStream(fifo).end('berlin\nparis\n');
    expect(await countLines(fifo)).toBeUndefined();
    expect(await lines(fifo)).toEqual(['berlin', 'paris']);
  });

  it('checks a named pipe (mkfifo) without opening it: closing it again would drop what its writer sent', async () => {
    const fifo = join(dir, 'checked.fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = createWriteStream(fifo);
    writer.end('berlin\n');
    await checkReadable(fifo);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the CLI starts the app between the two
    const read = lines(fifo);
    const late = new Promise<string>((resolve) => setTimeout(resolve, 2000, 'nothing: its writer was gone'));
    const got = await Promise.race([read, late]);
    // Releases a reader still waiting for a writer to open the pipe.
    if (typeof got === 'string') await Promise.all([read, new Promise((resolve) => createWriteStream(fifo).end(resolve))]);
    expect(got).toEqual(['berlin']);
  });

  it('drops a UTF-8 byte order mark at the start of the input (a file saved by a Windows editor), not elsewhere', async () => {
    const file = join(dir, 'bom.ndjson');
    writeFileSync(file, '\uFEFF{"a":1}\n\uFEFF{"b":2}\n');
    const expected = ['{"a":1}', '\uFEFF{"b":2}'];
    expect(await lines(file)).toEqual(expected);
    const bytes = readFileSync(file);
    expect(await lines('-', Readable.from([...bytes].map((_, i) => bytes.subarray(i, i + 1))))).toEqual(expected);
  });

  it('a file that cannot be read fails in one line', async () => {
    await expect(lines(join(dir, 'nope.txt'))).rejects.toThrow(CliError);
    await expect(lines(join(dir, 'nope.txt'))).rejects.toThrow(/no such file/);
  });
});

describe('printable', () => {
  it('escapes every control character, DEL and the C1 controls too (U+009B is a CSI to a terminal)', () => {
    expect(printable('a\u001b[2Jb\r')).toBe('a\\u001b[2Jb\\r');
    expect(printable('\u007f\u0085\u009b31m\u009f')).toBe('\\u007f\\u0085\\u009b31m\\u009f');
    expect(printable('Zürich\u00a0東京')).toBe('Zürich\u00a0東京');
  });
});
