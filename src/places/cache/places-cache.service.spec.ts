import { Test } from '@nestjs/testing';
import type { Cache } from 'cache-manager';
import { CACHE_MANAGER } from '../../cache/cache.constants';
import { RedisConnectionService } from '../../cache/redis-connection.service';
import { cacheConfig, CacheConfig } from '../../config/configuration';
import { MetricsService } from '../../metrics/metrics.service';
import { CanonicalRequest } from '../nominatim/nominatim-request';
import { CachePurgeService } from './cache-purge.service';
import { CachedAnswer, StoredAnswer } from './cached-answer';
import { PlacesCacheService } from './places-cache.service';

const KEY = 'places:v1:search:format=json&q=lisbon';
const NO_CACHE = { noCache: true, noStore: false, onlyIfCached: false };
const REQ = { key: KEY } as CanonicalRequest;

const CONFIG = {
  ttlSeconds: 60,
  statusTtlSeconds: 10,
  emptyTtlSeconds: 60,
  staleIfErrorSeconds: 600,
  staleWhileRevalidateSeconds: 0,
  l1MaxBytes: 1024 * 1024,
  compressMinBytes: 256,
  fillWaitMs: 1000,
  reverseSnapMeters: 0,
  clientCacheControl: 'honour',
} satisfies CacheConfig;

/** An answer past its freshness (and stale-while-revalidate), within stale-if-error. */
function expired(): CachedAnswer {
  const now = Date.now();
  return new CachedAnswer(200, 'application/json', Buffer.from('[{"place_id":1}]'), now - 70_000, now - 10_000, now + 590_000, false);
}

/** A Redis GET that answers when the test says so. */
function heldGet(): { get: jest.Mock; answer(value: StoredAnswer | undefined): void } {
  let answer!: (value: StoredAnswer | undefined) => void;
  const get = jest.fn(() => new Promise<StoredAnswer | undefined>((resolve) => (answer = resolve)));
  return { get, answer: (value) => answer(value) };
}

describe(PlacesCacheService.name, () => {
  let places: PlacesCacheService;
  let purges: CachePurgeService;
  let redisGet: jest.Mock;

  beforeEach(async () => {
    redisGet = jest.fn(() => Promise.resolve(undefined));
    const moduleRef = await Test.createTestingModule({
      providers: [
        PlacesCacheService,
        CachePurgeService,
        MetricsService,
        { provide: CACHE_MANAGER, useValue: { get: (key: string) => redisGet(key) as Promise<unknown> } as unknown as Cache },
        { provide: cacheConfig.KEY, useValue: CONFIG },
        { provide: RedisConnectionService, useValue: { run: (_op: string, fn: () => Promise<unknown>) => fn(), subscriber: null, client: null } },
      ],
    }).compile();
    places = moduleRef.get(PlacesCacheService);
    purges = moduleRef.get(CachePurgeService);
  });

  describe('staleIfError', () => {
    it('serves a copy no purge came after', async () => {
      places.l1.set(KEY, expired(), Date.now());
      const found = await places.lookup(REQ);
      places.purged('places:v1:search:format=json&q=porto');
      places.purged('places:v1:reverse:', true);
      expect(await places.staleIfError(KEY, found, 500)).toMatchObject({ outcome: 'STALE', fwdStatus: 500 });
    });

    it.each([
      ['its key, here', () => places.purged(KEY)],
      ['a prefix covering it, here', () => places.purged('places:v1:search:', true)],
      ['its key, told by another instance', () => purges.applyBroadcast(KEY)],
      ['a prefix covering it, told by another instance', () => purges.applyBroadcast('prefix:places:v1:')],
    ])('refuses a copy read before a purge of %s', async (_what, purge) => {
      places.l1.set(KEY, expired(), Date.now());
      const found = await places.lookup(REQ);
      expect(await places.staleIfError(KEY, found, 500)).toMatchObject({ outcome: 'STALE' });
      purge();
      expect(await places.staleIfError(KEY, found, 500)).toBeUndefined();
    });

    it('after a purge, serves what Redis holds now instead (an import replaced the copy, or another instance filled it)', async () => {
      places.l1.set(KEY, expired(), Date.now());
      const found = await places.lookup(REQ);
      purges.applyBroadcast(KEY); // the import command publishes each key it writes
      const imported = new CachedAnswer(200, 'application/json', Buffer.from('[{"place_id":2}]'), Date.now(), Date.now() + 60_000, Date.now() + 660_000, false);
      redisGet = jest.fn(() => Promise.resolve(imported.toStored(CONFIG.compressMinBytes)));
      const r = await places.staleIfError(KEY, found, 502);
      expect(redisGet).toHaveBeenCalledWith(KEY);
      // fresh: a hit found late, not stale-if-error's
      expect({ outcome: r?.outcome, tier: r?.tier, body: r?.answer.body.toString() }).toEqual({ outcome: 'HIT', tier: 'l2', body: '[{"place_id":2}]' });
    });

    it('reads Redis for nothing when the copy it holds is usable, and only on request (no-cache) besides', async () => {
      places.l1.set(KEY, expired(), Date.now());
      const found = await places.lookup(REQ);
      redisGet.mockClear();
      expect(await places.staleIfError(KEY, found, 500)).toMatchObject({ outcome: 'STALE', tier: 'l1' });
      expect(redisGet).not.toHaveBeenCalled();
      const newer = new CachedAnswer(200, 'application/json', Buffer.from('[{"place_id":3}]'), Date.now(), Date.now() - 1, Date.now() + 600_000, false);
      redisGet = jest.fn(() => Promise.resolve(newer.toStored(CONFIG.compressMinBytes)));
      const r = await places.staleIfError(KEY, found, 500, NO_CACHE);
      // no-cache could not revalidate: the copy it gets is stale-if-error's, fresh or not
      expect({ outcome: r?.outcome, body: r?.answer.body.toString() }).toEqual({ outcome: 'STALE', body: '[{"place_id":3}]' });
    });

    it('serves a copy read after the purge (new data, e.g. filled elsewhere since)', async () => {
      places.purged(KEY);
      places.l1.set(KEY, expired(), Date.now());
      const found = await places.lookup(REQ);
      expect(await places.staleIfError(KEY, found, 500)).toMatchObject({ outcome: 'STALE' });
    });
  });

  describe('a purge while Redis is read', () => {
    it('keeps the copy Redis answered with from L1 and from the lookup (the purge broadcast came in meanwhile)', async () => {
      const held = heldGet();
      redisGet = held.get;
      const looking = places.lookup(REQ);
      await Promise.resolve();
      expect(held.get).toHaveBeenCalledWith(KEY);
      purges.applyBroadcast(KEY);
      held.answer(expired().toStored(CONFIG.compressMinBytes));
      const found = await looking;
      expect(found.newest).toBeUndefined();
      expect(places.l1.get(KEY, Date.now())).toBeUndefined();
    });

    it('stale-if-error does not serve the copy it holds once a purge came in while it read Redis again (no-cache)', async () => {
      places.l1.set(KEY, expired(), Date.now());
      const found = await places.lookup(REQ);
      const held = heldGet();
      redisGet = held.get;
      const answering = places.staleIfError(KEY, found, 500, NO_CACHE);
      await Promise.resolve();
      expect(held.get).toHaveBeenCalledWith(KEY);
      purges.applyBroadcast(KEY); // the purge's UNLINK came first: Redis has nothing
      held.answer(undefined);
      expect(await answering).toBeUndefined();
    });

    it('does not use the L1 copy read before the purge either', async () => {
      places.l1.set(KEY, expired(), Date.now());
      const held = heldGet();
      redisGet = held.get;
      const looking = places.lookup(REQ);
      await Promise.resolve();
      purges.applyBroadcast('prefix:places:v1:search:');
      held.answer(undefined);
      expect(await looking).toEqual({});
    });

    it('keeps what Redis answered when no purge of that key came meanwhile', async () => {
      const held = heldGet();
      redisGet = held.get;
      const looking = places.lookup(REQ);
      await Promise.resolve();
      purges.applyBroadcast('places:v1:search:format=json&q=porto');
      held.answer(expired().toStored(CONFIG.compressMinBytes));
      expect((await looking).newest).toBeDefined();
      expect(places.l1.get(KEY, Date.now())).toBeDefined();
    });
  });
});
