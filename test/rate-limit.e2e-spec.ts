import { RedisClientType } from 'redis';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { FillLock } from '../src/places/cache/fill-lock';
import { FILL_LOCK } from '../src/places/cache/fills';
import { MetricsService } from '../src/metrics/metrics.service';
import { RateLimits } from '../src/throttle/rate-limits';
import { THROTTLE_KEY_PREFIX } from '../src/throttle/redis-throttler.storage';
import { eventually, RunningApp, startApp, useE2e } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { RedisProcess, startRedis } from './support/redis-server';
import { measure } from './support/traffic';

jest.setTimeout(60_000);

const MISSES = 5;
const HITS = 12;
const LIMITS = {
  RATE_LIMIT_ENABLED: 'true',
  RATE_LIMIT_MISSES: String(MISSES),
  RATE_LIMIT_HITS: String(HITS),
  RATE_LIMIT_WINDOW_SECONDS: '60',
  // Each test is its own client: the last X-Forwarded-For entry (what Heroku's router appends).
  TRUST_PROXY: 'true',
  // The shared (Redis) pacer cannot keep the harness's 1000 requests/s: its start guard is 5% of the interval.
  NOMINATIM_MAX_RPS: '10',
};
const TOO_MANY = { statusCode: 429, error: 'Too Many Requests', message: 'Rate limit exceeded; try again later' };

interface Answer {
  status: number;
  cache: string | null;
  retryAfter: string | null;
  body: string;
}

async function ask(svc: RunningApp, target: string, client: string, xff = client): Promise<Answer> {
  const res = await fetch(`${svc.url}${target}`, { headers: { 'X-Forwarded-For': xff } });
  return { status: res.status, cache: res.headers.get('x-cache'), retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

/** places_cache_outcomes_total for `outcome`, all tiers. */
async function outcomes(svc: RunningApp, outcome: string): Promise<number> {
  const m = await svc.app.get(MetricsService).cacheOutcomes.get();
  return m.values.filter((v) => v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
}

function rateLimited(svc: RunningApp, kind: 'hit' | 'miss'): Promise<number> {
  return svc.app
    .get(MetricsService)
    .rateLimited.get()
    .then((m) => m.values.find((v) => v.labels.kind === kind)?.value ?? 0);
}

describe(RateLimits.name, () => {
  let upstream: FakeNominatim;
  let probe: RedisClientType;

  const e2e = useE2e({ probe: true }, (e2e) => ({ fake: upstream, probe } = e2e));

  beforeEach(() => upstream.reset());

  describe('two instances sharing Redis', () => {
    let a: RunningApp;
    let b: RunningApp;

    beforeAll(async () => {
      const env = LIMITS;
      a = await e2e.startApp(env);
      b = await e2e.startApp(env);
    });

    afterAll(async () => {
      await a.close();
      await b.close();
    });

    it('counts a client\'s misses across both instances and answers 429 with Retry-After past the limit', async () => {
      const client = '203.0.113.1';
      for (let i = 0; i < MISSES; i++) {
        const r = await ask(i % 2 === 0 ? a : b, `/search?q=miss-${i}`, client);
        expect({ i, status: r.status, cache: r.cache }).toEqual({ i, status: 200, cache: 'MISS' });
      }
      const before = await rateLimited(b, 'miss');
      for (const svc of [b, a]) {
        const r = await ask(svc, '/search?q=one-too-many', client);
        expect(r.status).toBe(429);
        expect(JSON.parse(r.body)).toEqual(TOO_MANY);
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
      }
      expect(await rateLimited(b, 'miss')).toBe(before + 1);
      // Refused before anything went upstream.
      expect(upstream.count()).toBe(MISSES);
      // Earlier X-Forwarded-For entries are the client's own claims: they change nothing.
      expect((await ask(a, '/search?q=spoofed', client, `198.51.100.77, ${client}`)).status).toBe(429);
      // Another client is not affected.
      expect((await ask(b, '/search?q=someone-else', '203.0.113.200')).status).toBe(200);
      // The counts live in Redis, under the service's namespace.
      expect((await probe.keys(`${THROTTLE_KEY_PREFIX}*`)).length).toBeGreaterThan(0);
    });

    it('counts one client however its address is written, and an IPv6 client by its /64', async () => {
      const spellings = {
        // IPv4-mapped (a dual-stack proxy's view), with a port (what some proxies append), bracketed.
        v4: ['203.0.113.13', '::ffff:203.0.113.13', '203.0.113.13:51234', '[::ffff:cb00:710d]:443', '0:0:0:0:0:FFFF:203.0.113.13'],
        // One site's /64: its hosts pick any address in it.
        v6: ['2001:db8:5:6::1', '2001:DB8:5:6::2', '[2001:db8:5:6:aaaa::3]:443', '2001:db8:5:6:ffff:ffff:ffff:ffff', '2001:0db8:0005:0006::4%eth0'],
      };
      expect(MISSES).toBe(5);
      for (const [family, xffs] of Object.entries(spellings)) {
        const statuses = [];
        for (const [i, xff] of xffs.entries()) statuses.push((await ask(i % 2 ? a : b, `/search?q=spelt-${family}-${i}`, xff)).status);
        statuses.push((await ask(a, `/search?q=spelt-${family}-over`, xffs[1])).status);
        expect({ family, statuses }).toEqual({ family, statuses: [200, 200, 200, 200, 200, 429] });
      }
      // The next /64 is another client.
      expect((await ask(a, '/search?q=spelt-v6-next', '2001:db8:5:7::1')).status).toBe(200);
    });

    it('gives back the fill lock a refused miss asked for while its limit was checked', async () => {
      const client = '203.0.113.12';
      for (let i = 0; i < MISSES; i++) expect((await ask(a, `/search?q=use-up-${i}`, client)).status).toBe(200);
      const lock = a.app.get<FillLock>(FILL_LOCK);
      const released: string[] = [];
      const release = jest.spyOn(lock, 'release').mockImplementation(async function (this: FillLock, key: string, token: string) {
        released.push(key);
        return FillLock.prototype.release.call(this, key, token);
      });
      try {
        expect((await ask(a, '/search?q=refused-while-locked', client)).status).toBe(429);
        await eventually(() => released.some((key) => key.includes('refused-while-locked')));
        expect(await probe.keys('*lock:*refused-while-locked*')).toEqual([]);
        // Another client asking the same question on the other instance goes upstream at once: it does
        // not wait out the lease of a lock nobody holds (UPSTREAM_QUEUE_MAX_WAIT_MS 10 s + the
        // harness's UPSTREAM_TIMEOUT_MS 2 s + 1 s), nor any large part of it.
        const LEASE_MS = 10_000 + 2000 + 1000;
        const r = await measure(() => ask(b, '/search?q=refused-while-locked', '203.0.113.201'));
        expect([r.result.status, r.result.cache]).toEqual([200, 'MISS']);
        expect(r.ownMs < LEASE_MS / 10 ? 'at once' : r.detail).toBe('at once');
      } finally {
        release.mockRestore();
      }
    });

    it('counts invalid requests as well (they reach Nest too)', async () => {
      const client = '203.0.113.2';
      for (let i = 0; i < MISSES; i++) expect((await ask(i % 2 ? a : b, '/search?format=json', client)).status).toBe(400);
      expect((await ask(a, '/search?q=valid', client)).status).toBe(429);
      expect(upstream.count()).toBe(0);
    });

    it('gives hits their own, higher allowance, per instance', async () => {
      const client = '203.0.113.3';
      const target = '/search?q=Berlin&format=json';
      expect((await ask(a, target, '203.0.113.99')).cache).toBe('MISS');
      for (let i = 0; i < HITS; i++) {
        const r = await ask(a, target, client);
        expect({ i, status: r.status, cache: r.cache }).toEqual({ i, status: 200, cache: 'HIT' });
      }
      const before = await rateLimited(a, 'hit');
      const hitsBefore = await outcomes(a, 'hit');
      const refused = await ask(a, target, client);
      expect(refused.status).toBe(429);
      // A 429 is not a hit: places_cache_outcomes_total (the hit ratio) counts answers served.
      expect(await outcomes(a, 'hit')).toBe(hitsBefore);
      expect(JSON.parse(refused.body)).toEqual(TOO_MANY);
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);
      expect(await rateLimited(a, 'hit')).toBe(before + 1);
      // Misses are a separate budget, shared through Redis...
      expect((await ask(a, '/search?q=still-a-miss', client)).status).toBe(200);
      // ...while hits are counted in each instance's memory (no Redis round trip on the hit path).
      expect((await ask(b, target, client)).cache).toBe('HIT');
      expect(upstream.count()).toBe(2);
    });

    it('still serves hits to a client that used up its misses', async () => {
      const client = '203.0.113.4';
      const target = '/search?q=Paris';
      expect((await ask(b, target, '203.0.113.98')).cache).toBe('MISS');
      for (let i = 0; i < MISSES; i++) expect((await ask(a, `/search?q=spend-${i}`, client)).status).toBe(200);
      expect((await ask(b, '/search?q=one-more', client)).status).toBe(429);
      const hit = await ask(b, target, client);
      expect([hit.status, hit.cache]).toEqual([200, 'HIT']);
    });

    it('does not limit health, metrics or the API document', async () => {
      const client = '203.0.113.5';
      for (let i = 0; i <= MISSES; i++) await ask(a, `/search?q=limit-${i}`, client);
      expect((await ask(a, '/search?q=limited', client)).status).toBe(429);
      for (const path of ['/docs-json', '/health/live', '/health/ready', '/health/upstream', '/metrics']) {
        for (let i = 0; i < 3; i++) {
          const { status } = await ask(a, path, client);
          expect({ path, status }).toEqual({ path, status: 200 });
        }
      }
    });
  });

  it('lets a client in again once its block ends', async () => {
    const svc = await e2e.startApp({ ...LIMITS, RATE_LIMIT_WINDOW_SECONDS: '1' });
    try {
      const client = '203.0.113.6';
      for (let i = 0; i < MISSES; i++) expect((await ask(svc, `/search?q=again-${i}`, client)).status).toBe(200);
      const refused = await ask(svc, '/search?q=again-x', client);
      expect([refused.status, refused.retryAfter]).toEqual([429, '1']);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await ask(svc, '/search?q=again-x', client)).status).toBe(200);
    } finally {
      await svc.close();
    }
  });

  describe('when Redis is unusable', () => {
    const OP_TIMEOUT_MS = 200;
    let lonely: RedisProcess;
    let svc: RunningApp;

    beforeAll(async () => {
      lonely = await startRedis();
      svc = await startApp({ ...LIMITS, REDIS_URL: lonely.url, NOMINATIM_URL: upstream.url, REDIS_OP_TIMEOUT_MS: String(OP_TIMEOUT_MS) });
      await eventually(() => svc.app.get(RedisConnectionService).state === 'ready');
    });

    afterAll(async () => {
      await svc.close();
      await lonely.stop();
    });

    it('keeps limiting in memory while Redis is frozen, each request bounded by the op timeout', async () => {
      await lonely.pause();
      try {
        const client = '203.0.113.7';
        const statuses: number[] = [];
        for (let i = 0; i <= MISSES; i++) {
          const r = await measure(() => ask(svc, `/search?q=frozen-${i}`, client));
          statuses.push(r.result.status);
          // A few op timeouts at most (the throttle's, the cache read's), never Redis's wake-up (it
          // wakes only after this loop): bounded by the op timeout, whatever the machine's stalls.
          expect([i, r.ownMs < 10 * OP_TIMEOUT_MS ? 'bounded' : r.detail]).toEqual([i, 'bounded']);
        }
        expect(statuses).toEqual([...Array(MISSES).fill(200), 429]);
      } finally {
        await lonely.resume();
      }
    });

    it('keeps limiting in memory when Redis is down, and never answers 500', async () => {
      await lonely.kill();
      await eventually(() => svc.app.get(RedisConnectionService).state === 'down');
      const client = '203.0.113.8';
      const answers: Answer[] = [];
      for (let i = 0; i < MISSES + 3; i++) answers.push(await ask(svc, `/search?q=down-${i}`, client));
      expect(answers.map((r) => r.status)).toEqual([...Array(MISSES).fill(200), 429, 429, 429]);
      expect(answers.slice(0, MISSES).every((r) => r.cache === 'BYPASS')).toBe(true);
      expect(JSON.parse(answers[MISSES].body)).toEqual(TOO_MANY);
      expect(Number(answers[MISSES].retryAfter)).toBeGreaterThanOrEqual(1);
    });
  });

  describe('without REDIS_URL', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ ...LIMITS, NOMINATIM_URL: upstream.url });
    });

    afterAll(() => svc.close());

    it('limits each client in memory', async () => {
      const client = '203.0.113.9';
      const statuses: number[] = [];
      for (let i = 0; i <= MISSES; i++) statuses.push((await ask(svc, `/search?q=mem-${i}`, client)).status);
      expect(statuses).toEqual([...Array(MISSES).fill(200), 429]);
      expect((await ask(svc, '/search?q=mem-0', '203.0.113.10')).status).toBe(200);
    });
  });

  describe('with RATE_LIMIT_ENABLED=false', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ ...LIMITS, RATE_LIMIT_ENABLED: 'false', NOMINATIM_URL: upstream.url });
    });

    afterAll(() => svc.close());

    it('limits nothing', async () => {
      for (let i = 0; i < MISSES * 2; i++) expect((await ask(svc, `/search?q=free-${i}`, '203.0.113.11')).status).toBe(200);
      for (let i = 0; i < HITS * 2; i++) expect((await ask(svc, '/search?q=free-0', '203.0.113.11')).status).toBe(200);
    });
  });
});
