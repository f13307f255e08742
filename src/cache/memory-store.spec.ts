import { caching } from 'cache-manager';
import { L1_DEFAULT_BYTES } from '../config/configuration';
import { approximateBytes, memoryStoreOptions } from './memory-store';

const MB = 1024 * 1024;
/** A stored answer's shape (places/cache/cached-answer.ts StoredAnswer) with a body of `chars` characters. */
const stored = (chars: number, fill = 'A') => ({ v: 1, s: 200, t: 'application/json; charset=utf-8', b: fill.repeat(chars), z: true, f: 1, at: 1, fu: 2, e: false });

describe('memory store (REDIS_URL unset)', () => {
  it('counts a stored answer at no less than two bytes a character of its strings', () => {
    const a = stored(100_000);
    expect(approximateBytes(a)).toBeGreaterThanOrEqual(2 * (a.b.length + a.t.length));
    expect(approximateBytes(a)).toBeLessThan(2 * (a.b.length + a.t.length) + 1024);
    expect(approximateBytes('é'.repeat(10))).toBe(36);
    expect(approximateBytes(Buffer.alloc(1000))).toBeGreaterThanOrEqual(1000);
  });

  it('keeps what it holds within the bytes it is given, dropping the least recently used', async () => {
    const cache = await caching('memory', memoryStoreOptions(8 * MB));
    // 1 MB answers counted at 2 MB each: four fit in 8 MB, the fifth pushes the oldest out.
    for (let i = 0; i < 20; i++) await cache.set(`k${i}`, stored(MB), 0);
    const kept = (await cache.store.keys()).sort();
    expect(kept.length).toBeGreaterThanOrEqual(3);
    expect(kept.length).toBeLessThanOrEqual(4);
    for (const k of kept) expect(Number(k.slice(1))).toBeGreaterThanOrEqual(16);
    expect(await cache.get('k19')).toEqual(stored(MB));
    expect(await cache.get('k0')).toBeUndefined();
  });

  it('still holds many small answers (an entry cap, not only bytes)', async () => {
    const cache = await caching('memory', memoryStoreOptions(64 * MB));
    for (let i = 0; i < 5000; i++) await cache.set(`k${i}`, stored(1200), 0);
    expect((await cache.store.keys()).length).toBe(5000);
  });

  it('with the L1 off (L1_MAX_BYTES=0) it is the only cache, and takes the L1 default budget', async () => {
    const cache = await caching('memory', memoryStoreOptions(0));
    await cache.set('k', stored(10), 0);
    expect(await cache.get('k')).toEqual(stored(10));
    expect(memoryStoreOptions(0).maxSize).toBe(L1_DEFAULT_BYTES);
  });
});
