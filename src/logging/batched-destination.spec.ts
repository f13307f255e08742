import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type SonicBoom from 'sonic-boom';
import { batchedDestination, createAppLogger, settleLogger } from './app-logger';

describe('batchedDestination (pino.destination with minLength and periodicFlush)', () => {
  let dir: string;
  let file: string;
  let dest: SonicBoom;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'places-cache-log-'));
    file = join(dir, 'out.log');
    dest = batchedDestination(file) as SonicBoom;
    await new Promise((resolve) => dest.once('ready', resolve));
  });

  afterEach(() => {
    dest.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const written = () => readFileSync(file, 'utf8');

  async function eventually(check: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !check(); i++) await sleep(10);
  }

  it('holds short lines back, then writes them together (one write), in order, without being asked', async () => {
    const writes = jest.spyOn(fs, 'write');
    try {
      dest.write('a\n');
      dest.write('b\n');
      await eventually(() => written() !== '');
      expect(written()).toBe('a\nb\n');
      // Only this destination's writes: the worker's own output goes through fs.write too.
      expect(writes.mock.calls.filter((c) => c[0] === (dest as unknown as { fd: number }).fd)).toHaveLength(1);
    } finally {
      writes.mockRestore();
    }
  });

  it('writes as soon as 4 KiB have gathered', async () => {
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 5; i++) dest.write(line);
    // Well before the periodic flush would: what passed minLength is already on its way.
    await eventually(() => written().length >= 4096);
    expect(written().length).toBeGreaterThanOrEqual(4096);
  });

  it('takes the strings pino writes and keeps them byte for byte, UTF-8 included, counting what it holds in bytes', async () => {
    const logger = createAppLogger('info', dest);
    dest.write('Zürich → 北京\n');
    expect((dest as unknown as { _len: number })._len).toBe(Buffer.byteLength('Zürich → 北京\n'));
    logger.warn({ q: 'Straße' }, 'ünïcödé');
    dest.flushSync();
    const [first, second] = written().split('\n');
    expect(first).toBe('Zürich → 北京');
    expect(JSON.parse(second)).toMatchObject({ level: 'warn', q: 'Straße', msg: 'ünïcödé' });
  });

  it('writes what it holds synchronously on flushSync (exit)', () => {
    dest.write('last words\n');
    dest.flushSync();
    expect(written()).toBe('last words\n');
  });

  /** The sonic-boom internals settleLogger reads and sets (see SettlingStream in app-logger.ts). */
  const internals = () => dest as unknown as { _writing: boolean; _len: number; sync: boolean };

  /** fs.write of this destination held back `ms` before it is really done (a busy thread pool). */
  function slowWrites(ms: number): jest.SpyInstance {
    const realWrite = fs.write.bind(fs) as (...args: unknown[]) => void;
    const fd = (dest as unknown as { fd: number }).fd;
    return jest.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
      if (args[0] === fd) setTimeout(() => realWrite(...args), ms);
      else realWrite(...args);
    }) as unknown as typeof fs.write);
  }

  it('pins the internals the shutdown relies on: _writing while a write is under way, _len held, sync read at each write', async () => {
    const slow = slowWrites(100);
    try {
      dest.write('first\n');
      dest.flush();
      expect(internals()._writing).toBe(true);
      dest.write('second\n');
      expect(internals()._len).toBe('first\nsecond\n'.length);
      // The hazard settleLogger exists for: flushSync writes what is held past the write under way.
      dest.flushSync();
      expect(written()).toBe('second\n');
      await eventually(() => !internals()._writing);
      expect(written()).toBe('second\nfirst\n');
    } finally {
      slow.mockRestore();
    }
    internals().sync = true;
    dest.write('third\n');
    dest.flush();
    expect(written()).toBe('second\nfirst\nthird\n');
  });

  it('settleLogger waits for the write under way and what is held, then writes synchronously: the exit line lands last', async () => {
    const logger = createAppLogger('info', dest);
    const slow = slowWrites(100);
    try {
      dest.write('first\n');
      dest.flush();
      dest.write('second\n');
      await settleLogger(logger);
      expect(written()).toBe('first\nsecond\n');
      expect(internals()).toMatchObject({ _writing: false, _len: 0, sync: true });
      dest.write('exit\n');
      dest.flushSync();
    } finally {
      slow.mockRestore();
    }
    expect(written()).toBe('first\nsecond\nexit\n');
  });

  it('settleLogger gives up after its bound when a write never ends (stdout blocked), and leaves the writing mode alone', async () => {
    const logger = createAppLogger('info', dest);
    const fd = (dest as unknown as { fd: number }).fd;
    const realWrite = fs.write.bind(fs) as (...args: unknown[]) => void;
    const stuck = jest.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
      if (args[0] !== fd) realWrite(...args);
    }) as unknown as typeof fs.write);
    try {
      dest.write('never\n');
      dest.flush();
      const started = Date.now();
      await settleLogger(logger, 150);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(internals()).toMatchObject({ _writing: true, sync: false });
    } finally {
      stuck.mockRestore();
    }
  });

  it('settleLogger stops at once when the destination refuses every write (stdout closed: EPIPE)', async () => {
    const logger = createAppLogger('info', dest);
    const fd = (dest as unknown as { fd: number }).fd;
    const realWrite = fs.write.bind(fs) as (...args: unknown[]) => void;
    const refused = jest.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
      if (args[0] !== fd) return realWrite(...args);
      const callback = args[args.length - 1] as (err: NodeJS.ErrnoException) => void;
      setImmediate(() => callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
    }) as unknown as typeof fs.write);
    try {
      dest.write('nobody reads this\n');
      const started = Date.now();
      await settleLogger(logger, 5000);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(refused).toHaveBeenCalled();
    } finally {
      refused.mockRestore();
    }
  });
});
