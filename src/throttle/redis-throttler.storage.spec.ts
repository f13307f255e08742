import { Logger } from '@nestjs/common';
import { createClient, type RedisClientType } from 'redis';
import { startRedis, type RedisProcess } from '../../test/support/redis-server';
import type { RedisConnectionService } from '../cache/redis-connection.service';
import { RedisKeys } from '../cache/redis-keys';
import { RedisUnavailableError } from '../cache/redis-guard';
import { RedisThrottlerStorage, THROTTLE_KEY_PREFIX } from './redis-throttler.storage';

const WINDOW_MS = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The members the storage uses (one Redis's key names); `usable` switches Redis off as RedisConnectionService.run would. */
function connection(client: RedisClientType | null, state = { usable: true }): RedisConnectionService {
  return {
    client,
    keys: new RedisKeys(false),
    run: async <T>(_op: string, fn: () => Promise<T>): Promise<T> => {
      if (!state.usable) throw new RedisUnavailableError('down');
      return fn();
    },
  } as unknown as RedisConnectionService;
}

describe(RedisThrottlerStorage.name, () => {
  let redis: RedisProcess;
  let client: RedisClientType;
  const storages: RedisThrottlerStorage[] = [];
  let warn: jest.SpyInstance;

  beforeAll(async () => {
    redis = await startRedis();
    client = createClient({ url: redis.url }) as RedisClientType;
    client.on('error', () => undefined);
    await client.connect();
  });

  afterAll(async () => {
    await client?.quit();
    await redis?.stop();
  });

  beforeEach(async () => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    await client.flushDb();
  });

  afterEach(() => {
    jest.restoreAllMocks();
    for (const s of storages.splice(0)) s.onApplicationShutdown();
  });

  function storage(conn: RedisConnectionService): RedisThrottlerStorage {
    const s = new RedisThrottlerStorage(conn);
    storages.push(s);
    return s;
  }

  it('counts up to the limit, then blocks for the block duration without counting', async () => {
    const s = storage(connection(client));
    const records = [];
    for (let i = 0; i < 4; i++) records.push(await s.increment('misses:1.2.3.4', WINDOW_MS, 3, 30_000, 'misses'));
    expect(records.slice(0, 3)).toEqual([1, 2, 3].map((totalHits) => ({ totalHits, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 })));
    expect(records[3]).toEqual({ totalHits: 4, timeToExpire: 30, isBlocked: true, timeToBlockExpire: 30 });
    expect(await s.increment('misses:1.2.3.4', WINDOW_MS, 3, 30_000, 'misses')).toEqual({
      totalHits: 4,
      timeToExpire: 30,
      isBlocked: true,
      timeToBlockExpire: 30,
    });
    // Keys are hashed under the service's namespace, with expiries: nothing outlives its window or block.
    const keys = await client.keys(`${THROTTLE_KEY_PREFIX}*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^places:v1:throttle:[\w-]{32}:block$/);
    expect(await client.pTTL(keys[0])).toBeGreaterThan(29_000);
  });

  it('shares one count between instances (two storages, one Redis)', async () => {
    const a = storage(connection(client));
    const b = storage(connection(client));
    expect((await a.increment('misses:c', WINDOW_MS, 2, WINDOW_MS, 'misses')).totalHits).toBe(1);
    expect((await b.increment('misses:c', WINDOW_MS, 2, WINDOW_MS, 'misses')).totalHits).toBe(2);
    expect((await a.increment('misses:c', WINDOW_MS, 2, WINDOW_MS, 'misses')).isBlocked).toBe(true);
    expect((await b.increment('misses:other', WINDOW_MS, 2, WINDOW_MS, 'misses')).isBlocked).toBe(false);
  });

  it('starts a fresh window after the block ends', async () => {
    const s = storage(connection(client));
    await s.increment('k', 200, 1, 150, 'misses');
    expect((await s.increment('k', 200, 1, 150, 'misses')).isBlocked).toBe(true);
    await sleep(200);
    expect(await s.increment('k', 200, 1, 150, 'misses')).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('without a block duration, refuses until the window ends', async () => {
    const s = storage(connection(client));
    await s.increment('k', 150, 1, 0, 'misses');
    expect(await s.increment('k', 150, 1, 0, 'misses')).toMatchObject({ totalHits: 2, isBlocked: true, timeToBlockExpire: 1 });
    await sleep(200);
    expect(await s.increment('k', 150, 1, 0, 'misses')).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('loads the script again after SCRIPT FLUSH', async () => {
    const s = storage(connection(client));
    await s.increment('k', WINDOW_MS, 5, WINDOW_MS, 'misses');
    await client.scriptFlush();
    expect((await s.increment('k', WINDOW_MS, 5, WINDOW_MS, 'misses')).totalHits).toBe(2);
  });

  it('counts in memory when Redis is unusable, logs that once, and goes back to Redis', async () => {
    const state = { usable: false };
    const s = storage(connection(client, state));
    const statuses: boolean[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await s.increment('k', WINDOW_MS, 3, WINDOW_MS, 'misses')).isBlocked);
    expect(statuses).toEqual([false, false, false, true]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(await client.keys('*')).toEqual([]);

    state.usable = true;
    expect((await s.increment('k', WINDOW_MS, 3, WINDOW_MS, 'misses')).totalHits).toBe(1);
    expect(await client.keys(`${THROTTLE_KEY_PREFIX}*`)).toHaveLength(1);
  });

  it('counts in memory without a line of its own while Redis refuses the script (the connection logs refusals)', async () => {
    // As RedisConnectionService.run does: Redis's error reply becomes the cause of a RedisUnavailableError.
    const refusing = {
      ...connection(client),
      run: <T>(_op: string, fn: () => Promise<T>): Promise<T> => fn().catch((e: Error) => Promise.reject(new RedisUnavailableError(e.message, { cause: e }))),
    } as unknown as RedisConnectionService;
    await client.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '1' });
    try {
      const s = storage(refusing);
      for (let i = 0; i < 2; i++) await s.increment('k', WINDOW_MS, 1, WINDOW_MS, 'misses');
      expect(await s.increment('k', WINDOW_MS, 1, WINDOW_MS, 'misses')).toMatchObject({ isBlocked: true });
      expect(warn).not.toHaveBeenCalled();
    } finally {
      await client.configSet({ maxmemory: '0' });
    }
  });

  it('counts in memory without REDIS_URL', async () => {
    const s = storage(connection(null));
    await s.increment('k', WINDOW_MS, 1, WINDOW_MS, 'misses');
    expect(await s.increment('k', WINDOW_MS, 1, WINDOW_MS, 'misses')).toMatchObject({ isBlocked: true });
    expect(warn).not.toHaveBeenCalled();
  });
});
