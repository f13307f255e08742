import { createClient } from 'redis';
import { eventually, RunningApp, startApp, useE2e } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { RedisProcess, startRedis } from './support/redis-server';

/** The core gateway (issue 2): /api cache-aside over a real Redis and a fake Nominatim on loopback. */
describe('places-cache gateway (e2e)', () => {
  let upstream: FakeNominatim;
  let redis: RedisProcess;

  const e2e = useE2e({}, (e2e) => ({ fake: upstream, redis } = e2e));

  beforeEach(() => upstream.reset());

  describe('with Redis', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await e2e.startApp({
        CACHE_TTL_SECONDS: '1',
        STALE_WHILE_REVALIDATE_SECONDS: '0',
        UPSTREAM_TIMEOUT_MS: '400',
      });
      // /health/ready is 200 also while Redis is still connecting (degraded but serving): wait for Redis itself.
      await eventually(() => isRedisReady(svc));
    });

    afterAll(() => svc.close());

    it('misses, then hits without touching Nominatim, then misses again after the TTL', async () => {
      const first = await fetch(`${svc.url}/api?q=Berlin`);
      expect(first.status).toBe(200);
      const firstBody = (await first.json()) as { cache: boolean; data: Array<{ display_name: string }> };
      expect(firstBody.cache).toBe(false);
      expect(firstBody.data[0].display_name).toContain('Berlin');
      expect(first.headers.get('x-cache')).toBe('MISS');
      expect(first.headers.get('cache-status')).toMatch(/^places-cache; fwd=uri-miss; fwd-status=200; stored; ttl=\d+$/);
      expect(first.headers.get('cache-control')).toMatch(/^public, max-age=[01]$/);
      expect(first.headers.get('age')).toBe('0');
      expect(upstream.count('/search')).toBe(1);
      expect(upstream.requests[0].query.get('q')).toBe('berlin');
      expect(upstream.requests[0].query.get('format')).toBe('json');
      expect(upstream.requests[0].userAgent).toBe('places-cache-tests/1.0 (tests@places-cache.test)');

      const second = await fetch(`${svc.url}/api?q=Berlin`);
      const secondBody = (await second.json()) as { cache: boolean; data: unknown[] };
      expect(secondBody).toEqual({ ...firstBody, cache: true });
      expect(second.headers.get('x-cache')).toBe('HIT');
      expect(second.headers.get('cache-status')).toMatch(/^places-cache; hit; ttl=\d+$/);
      expect(second.headers.get('age')).toMatch(/^\d+$/);
      expect(upstream.count()).toBe(1);

      await new Promise((r) => setTimeout(r, 1100));
      const third = await fetch(`${svc.url}/api?q=Berlin`);
      expect(((await third.json()) as { cache: boolean }).cache).toBe(false);
      expect(third.headers.get('x-cache')).toBe('MISS');
      expect(upstream.count()).toBe(2);
    });

    it('treats case, surrounding and repeated spaces as one question, and keeps Unicode intact', async () => {
      const a = await fetch(`${svc.url}/api?q=${encodeURIComponent('Zürich')}`);
      const b = await fetch(`${svc.url}/api?q=${encodeURIComponent('  zÜRICH  ')}`);
      // The NFD form is another question to Nominatim (its ICU rules drop the combining mark): asked as sent.
      const decomposed = 'Zu\u0308rich';
      const c = await fetch(`${svc.url}/api?q=${encodeURIComponent(decomposed)}`);
      expect([a, b, c].map((r) => r.headers.get('x-cache'))).toEqual(['MISS', 'HIT', 'MISS']);
      const body = (await b.json()) as { data: Array<{ display_name: string }> };
      expect(body.data[0].display_name).toContain('Zürich');
      expect(upstream.requests.map((r) => r.query.get('q'))).toEqual(['z\u00fcrich', 'zu\u0308rich']);
    });

    it('stores one namespaced, versioned entry in Redis with the TTL', async () => {
      await fetch(`${svc.url}/api?q=Kraków`);
      const client = createClient({ url: redis.url });
      await client.connect();
      try {
        const keys = await client.keys('places:v1:search:*krak*');
        expect(keys).toHaveLength(1);
        expect(keys[0]).toContain('format=json');
        expect(await client.pTTL(keys[0])).toBeGreaterThan(0);
      } finally {
        await client.quit();
      }
    });

    it.each([
      ['', 'q'],
      ['?q=', 'q'],
      ['?q=%20%20%20', 'q'],
      [`?q=${'a'.repeat(513)}`, '512'],
    ])('answers 400 with a JSON error for /api%s and never asks Nominatim', async (query, mentioned) => {
      const res = await fetch(`${svc.url}/api${query}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { statusCode: number; error: string; message: string };
      expect(body.statusCode).toBe(400);
      expect(body.error).toBe('Bad Request');
      expect(body.message).toContain(mentioned);
      expect(upstream.count()).toBe(0);
    });

    it('answers 502 naming the cause when Nominatim fails, and caches nothing', async () => {
      upstream.failNext(1, { status: 500, body: 'boom' });
      const res = await fetch(`${svc.url}/api?q=Reykjavík`);
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({ statusCode: 502, error: 'Bad Gateway', message: expect.stringContaining('500') as string, code: 'upstream_error' });
      // README: X-Cache, Cache-Status and Age are on every answer, not on errors, which are never cached.
      expect([res.headers.get('x-cache'), res.headers.get('cache-status'), res.headers.get('age')]).toEqual([null, null, null]);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const again = await fetch(`${svc.url}/api?q=Reykjavík`);
      expect(again.status).toBe(200);
      expect(again.headers.get('x-cache')).toBe('MISS');
      expect(upstream.count()).toBe(2);
    });

    it('answers 504 when Nominatim is too slow, and caches nothing', async () => {
      upstream.latencyMs = 1000;
      try {
        const res = await fetch(`${svc.url}/api?q=Москва`);
        expect(res.status).toBe(504);
        const body = (await res.json()) as { code: string; message: string };
        expect(body.code).toBe('upstream_timeout');
        expect(body.message).toContain('400 ms');
      } finally {
        upstream.latencyMs = 0;
      }
      const again = await fetch(`${svc.url}/api?q=Москва`);
      expect(again.status).toBe(200);
      expect(again.headers.get('x-cache')).toBe('MISS');
    });

    it('answers 502 when Nominatim cannot be reached', async () => {
      const down = await e2e.startApp({ NOMINATIM_URL: 'http://127.0.0.1:9' });
      try {
        const res = await fetch(`${down.url}/api?q=nowhere`);
        expect(res.status).toBe(502);
        expect(((await res.json()) as { code: string }).code).toBe('upstream_error');
      } finally {
        await down.close();
      }
    });
  });

  describe('without REDIS_URL (in-memory mode)', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: upstream.url });
    });

    afterAll(() => svc.close());

    it('still misses then hits', async () => {
      const first = await fetch(`${svc.url}/api?q=san%20francisco`);
      const second = await fetch(`${svc.url}/api?q=San%20Francisco`);
      expect(((await first.json()) as { cache: boolean }).cache).toBe(false);
      expect(((await second.json()) as { cache: boolean }).cache).toBe(true);
      expect(upstream.count()).toBe(1);
    });
  });

  describe('with a rediss:// URL (TLS, self-signed certificate)', () => {
    let tlsRedis: RedisProcess;
    let svc: RunningApp;

    beforeAll(async () => {
      tlsRedis = await startRedis({ tls: true, password: 'tls-secret-pass' });
      svc = await startApp({ REDIS_URL: tlsRedis.url, NOMINATIM_URL: upstream.url });
      await eventually(() => isRedisReady(svc));
    });

    afterAll(async () => {
      await svc.close();
      await tlsRedis.stop();
    });

    it('connects with TLS and caches in that Redis', async () => {
      expect(tlsRedis.url).toMatch(/^rediss:\/\//);
      await fetch(`${svc.url}/api?q=Tokyo`);
      const hit = await fetch(`${svc.url}/api?q=tokyo`);
      expect(hit.headers.get('x-cache')).toBe('HIT');
      const client = createClient({ url: tlsRedis.url, socket: { tls: true, rejectUnauthorized: false } });
      await client.connect();
      try {
        expect(await client.keys('places:v1:search:*tokyo*')).toHaveLength(1);
      } finally {
        await client.quit();
      }
    });
  });
});

function isRedisReady(svc: RunningApp): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RedisConnectionService } = require('../src/cache/redis-connection.service');
  return svc.app.get(RedisConnectionService).state === 'ready';
}
