import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { CachedAnswer } from './cached-answer';
import { entryBytes, L1_BUMP_MS, L1Cache } from './l1-cache';

describe(L1Cache.name, () => {
  const T0 = 1_000_000;
  const answer = (staleUntil = T0 + 3_600_000) =>
    new CachedAnswer(200, 'application/json; charset=utf-8', Buffer.alloc(1000, 'a'), T0, T0 + 1000, staleUntil, false);
  /** room for two answers, not three (a sixteenth of the budget is kept for plain copies) */
  const twoEntries = () => new L1Cache(Math.ceil(((entryBytes('k', answer()) * 2 + 10) * 16) / 15));

  it('gives a held slot the answer that get gives, without bytes once the entry is dropped', () => {
    const l1 = twoEntries();
    const a = answer();
    l1.set('k', a, T0);
    const slot = l1.slot('k', T0)!;
    expect(slot.answer).toBe(a);
    expect(l1.use(slot, T0 + 1)).toBe(a);
    expect(l1.get('k', T0 + 1)).toBe(a);

    expect(l1.delete('k')).toBe(true);
    expect(slot.answer).toBeNull();
    expect(l1.use(slot, T0 + 2)).toBeUndefined();
    expect(l1.get('k', T0 + 2)).toBeUndefined();
  });

  it('lets go of a slot whose entry is replaced, evicted or cleared', () => {
    const l1 = twoEntries();
    l1.set('k', answer(), T0);
    const replaced = l1.slot('k', T0)!;
    const newer = answer();
    l1.set('k', newer, T0 + 1);
    expect(l1.use(replaced, T0 + 2)).toBeUndefined();
    expect(l1.slot('k', T0 + 2)!.answer).toBe(newer);

    const evicted = l1.slot('k', T0 + 2)!;
    l1.set('b', answer(), T0 + 3);
    l1.set('c', answer(), T0 + 4);
    expect(l1.entries).toBe(2);
    expect(evicted.answer).toBeNull();

    const cleared = l1.slot('c', T0 + 5)!;
    l1.clear();
    expect(cleared.answer).toBeNull();
  });

  it('serves a held slot no longer than the Redis copy lives, and drops the entry then', () => {
    const l1 = twoEntries();
    l1.set('k', answer(T0 + 5000), T0);
    const slot = l1.slot('k', T0)!;
    expect(l1.use(slot, T0 + 4999)).toBeDefined();
    expect(l1.use(slot, T0 + 5000)).toBeUndefined();
    expect(l1.entries).toBe(0);
    expect(slot.answer).toBeNull();
  });

  it('finds an entry by key no longer than the Redis copy lives, and drops the entry then', () => {
    const l1 = twoEntries();
    l1.set('k', answer(T0 + 5000), T0);
    expect(l1.slot('k', T0 + 4999)?.answer).toBeDefined();
    expect(l1.slot('k', T0 + 5000)).toBeUndefined();
    expect(l1.entries).toBe(0);
    expect(l1.get('k', T0)).toBeUndefined();
  });

  it('does not refresh the LRU order of a slot used again within L1_BUMP_MS (memcached-style)', () => {
    const l1 = twoEntries();
    l1.set('a', answer(), T0);
    const a = l1.slot('a', T0)!;
    l1.set('b', answer(), T0);
    expect(l1.use(a, T0 + L1_BUMP_MS - 1)).toBeDefined();
    l1.set('c', answer(), T0 + L1_BUMP_MS - 1);
    // still the older of the two: the first to go
    expect(a.answer).toBeNull();
    expect(l1.get('b', T0 + L1_BUMP_MS)).toBeDefined();
  });

  it('moves a held slot to the head of the LRU order when used after L1_BUMP_MS', () => {
    const l1 = twoEntries();
    l1.set('a', answer(), T0);
    const a = l1.slot('a', T0)!;
    l1.set('b', answer(), T0);
    expect(l1.use(a, T0 + L1_BUMP_MS)).toBeDefined();
    l1.set('c', answer(), T0 + L1_BUMP_MS);
    expect(a.answer).not.toBeNull();
    expect(l1.get('b', T0 + L1_BUMP_MS)).toBeUndefined();
    // and the bump counts from then
    expect(l1.use(a, T0 + 2 * L1_BUMP_MS - 1)).toBeDefined();
    expect(a.bumped).toBe(T0 + L1_BUMP_MS);
  });

  it('gives the slot of what it keeps from set, and nothing for what it does not keep', () => {
    const l1 = twoEntries();
    const kept = l1.set('k', answer(), T0);
    expect(kept).toBe(l1.slot('k', T0));
    expect(l1.set('expired', answer(T0), T0)).toBeUndefined();
    expect(l1.set('too large', new CachedAnswer(200, 'text/plain', randomBytes(10_000), T0, T0, T0 + 1000, false), T0)).toBeUndefined();
    expect(l1.entries).toBe(1);
  });

  it('holds nothing with a size of 0', () => {
    const l1 = new L1Cache(0);
    expect(l1.set('k', answer(), T0)).toBeUndefined();
    expect(l1.slot('k', T0)).toBeUndefined();
    expect(l1.entries).toBe(0);
  });

  it('keeps its entries and their plain copies together within its budget', () => {
    const max = 64 * 1024;
    const l1 = new L1Cache(max, 256);
    for (let i = 0; i < 300; i++) {
      const body = Buffer.from(JSON.stringify([{ place_id: i, display_name: `${i} Main Street`, pad: randomBytes(200 + (i % 300)).toString('hex') }]));
      l1.set(`k${i}`, new CachedAnswer(200, 'application/json', body, T0, T0 + 1000, T0 + 3_600_000, false), T0);
      // a client without gzip asks for an older one: its plain copy is made again
      void l1.get(`k${Math.floor(i / 2)}`, T0)?.body;
      expect(l1.bytes).toBeLessThanOrEqual(max);
    }
    expect(l1.entries).toBeGreaterThan(20);
    expect(l1.entries).toBeLessThan(300);
    expect(l1.plainCopies).toBeGreaterThan(0);
  });

  it('serves the same bytes from its compact form as it was given, gzip or not', () => {
    const l1 = new L1Cache(1024 * 1024, 256);
    const body = Buffer.from(JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ place_id: i, name: `Straße ${i}` }))));
    l1.set('k', new CachedAnswer(200, 'application/json', body, T0, T0 + 1000, T0 + 3_600_000, false), T0);
    l1.clear();
    l1.set('k', CachedAnswer.fromStored(new CachedAnswer(200, 'application/json', body, T0, T0 + 1000, T0 + 3_600_000, false).toStored(256), T0 + 3_600_000)!, T0);
    const a = l1.get('k', T0)!;
    expect(l1.plainCopies).toBe(0);
    expect(gunzipSync(Buffer.from(a.gzip(256)!, 'latin1')).equals(body)).toBe(true);
    expect(a.body.equals(body)).toBe(true);
    expect(l1.plainCopies).toBe(1);
    expect(a.apiBody(true).toString()).toBe(`{"cache":true,"data":${body.toString()}}`);
  });
});
