import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type SonicBoom from 'sonic-boom';
import { batchedDestination } from './app-logger';

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

  it('writes what it holds synchronously on flushSync (exit)', () => {
    dest.write('last words\n');
    dest.flushSync();
    expect(written()).toBe('last words\n');
  });
});
