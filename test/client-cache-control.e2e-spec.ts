import { eventually, RunningApp, useE2e } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { RawAnswer, rawGet } from './support/raw-http';
import { RedisProcess } from './support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MISS_LIMIT = 60;

/**
 * Issue 20: the client's Cache-Control request directives (RFC 9111 5.2.1), honoured by default and
 * ignored with CLIENT_CACHE_CONTROL=ignore, against real Redis and the fake Nominatim. Entries are
 * fresh for 2 s and kept an hour after (stale-if-error), with no stale-while-revalidate, so staleness
 * can be observed.
 */
describe('client Cache-Control (e2e)', () => {
  let fake: FakeNominatim;
  let redis: RedisProcess;
  let svc: RunningApp;
  let ignoring: RunningApp;
  let n = 0;

  const e2e = useE2e({}, async (e2e) => {
    ({ fake, redis } = e2e);
    const env = {
      NOMINATIM_MAX_RPS: '50',
      CACHE_TTL_SECONDS: '2',
      STALE_WHILE_REVALIDATE_SECONDS: '0',
      STALE_IF_ERROR_SECONDS: '3600',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_MISSES: String(MISS_LIMIT),
    };
    svc = await e2e.startApp(env);
    ignoring = await e2e.startApp({ ...env, REDIS_URL: `${redis.url}/1`, CLIENT_CACHE_CONTROL: 'ignore' });
  });

  /** A question no other test asks. */
  const fresh = () => `/search?q=Berlin&format=json&limit=${++n}`;
  const get = (target: string, headers: Record<string, string> = {}, app = svc) => rawGet(`${app.url}${target}`, headers);
  const upstream = () => fake.count('/search');
  const cache = (a: RawAnswer) => a.headers['x-cache'];

  it('every answer carries Age: 0 on a miss, the copy\'s age on a hit', async () => {
    const q = fresh();
    const miss = await get(q);
    expect(cache(miss)).toBe('MISS');
    expect(miss.headers.age).toBe('0');
    await sleep(1100);
    const hit = await get(q);
    expect(cache(hit)).toBe('HIT');
    expect(Number(hit.headers.age)).toBeGreaterThanOrEqual(1);
  });

  it("a hit's max-age is the copy's lifetime, so that max-age minus Age is the freshness left (RFC 9111 4.2.3)", async () => {
    const q = fresh();
    const miss = await get(q);
    expect(miss.headers['cache-control']).toMatch(/^public, max-age=[12]$/);
    await sleep(1100);
    const hit = await get(q);
    expect(cache(hit)).toBe('HIT');
    const age = Number(hit.headers.age);
    const maxAge = Number(/^public, max-age=(\d+)$/.exec(String(hit.headers['cache-control']))?.[1]);
    const ttl = Number(/; ttl=(-?\d+)/.exec(String(hit.headers['cache-status']))?.[1]);
    expect(age).toBeGreaterThanOrEqual(1);
    // A downstream cache keeps the answer while its age (from Age) is below max-age: what is left here.
    expect(maxAge - age).toBe(ttl);
  });

  it("Cache-Status's fwd says why Nominatim was asked: no copy, a stale one, or the request refused a fresh one (RFC 9211 2.2)", async () => {
    const q = fresh();
    expect((await get(q)).headers['cache-status']).toMatch(/^places-cache; fwd=uri-miss; fwd-status=200; stored; ttl=\d+$/);
    expect((await get(q, { 'Cache-Control': 'no-cache' })).headers['cache-status']).toMatch(/^places-cache; fwd=request; fwd-status=200; stored; ttl=\d+$/);
    const noStore = await get(q, { 'Cache-Control': 'no-store, no-cache' });
    expect(noStore.headers['cache-status']).toBe('places-cache; fwd=request; fwd-status=200');
    await sleep(2300);
    // Expired (no stale-while-revalidate here): asked again, the stale copy replaced.
    const again = await get(q);
    expect([cache(again), again.headers['cache-status']]).toEqual(['MISS', expect.stringMatching(/^places-cache; fwd=stale; fwd-status=200; stored; ttl=\d+$/)]);
    await sleep(2300);
    const refused = await get(q, { 'Cache-Control': 'max-age=60' });
    expect([cache(refused), refused.headers['cache-status']]).toEqual(['MISS', expect.stringMatching(/^places-cache; fwd=stale; fwd-status=200; stored; ttl=\d+$/)]);
  });

  it('no-cache asks upstream again and the fresh answer replaces the entry', async () => {
    const q = fresh();
    await get(q);
    await sleep(1100);
    const before = upstream();
    const again = await get(q, { 'Cache-Control': 'no-cache' });
    expect(again.status).toBe(200);
    expect(cache(again)).toBe('MISS');
    expect(again.headers.age).toBe('0');
    expect(upstream()).toBe(before + 1);
    // The entry is the new copy: a plain request now finds it 0 s old, not 1 s.
    const after = await get(q);
    expect(cache(after)).toBe('HIT');
    expect(after.headers.age).toBe('0');
    expect(upstream()).toBe(before + 1);
  });

  it('no-cache is still coalesced: concurrent ones make one upstream call', async () => {
    const q = fresh();
    await get(q);
    const before = upstream();
    // A slow upstream, so that all six are asked while the first one's call runs.
    fake.latencyMs = 500;
    try {
      const answers = await Promise.all(Array.from({ length: 6 }, () => get(q, { 'Cache-Control': 'no-cache' })));
      for (const a of answers) expect(a.status).toBe(200);
      expect(answers.filter((a) => a.headers['cache-status']?.includes('collapsed')).length).toBe(5);
    } finally {
      fake.latencyMs = 0;
    }
    expect(upstream()).toBe(before + 1);
  });

  it('Pragma: no-cache counts as no-cache only without Cache-Control', async () => {
    const q = fresh();
    await get(q);
    const before = upstream();
    expect(cache(await get(q, { Pragma: 'no-cache' }))).toBe('MISS');
    expect(upstream()).toBe(before + 1);
    expect(cache(await get(q, { Pragma: 'no-cache', 'Cache-Control': 'max-stale=10' }))).toBe('HIT');
    expect(upstream()).toBe(before + 1);
  });

  it('max-age=N does not use a copy older than N seconds', async () => {
    const q = fresh();
    await get(q);
    await sleep(1100);
    const before = upstream();
    expect(cache(await get(q, { 'Cache-Control': 'max-age=60' }))).toBe('HIT');
    expect(upstream()).toBe(before);
    expect(cache(await get(q, { 'Cache-Control': 'max-age=0' }))).toBe('MISS');
    expect(upstream()).toBe(before + 1);
  });

  it('min-fresh=N does not use a copy fresh for less than N more seconds', async () => {
    const q = fresh();
    await get(q);
    const before = upstream();
    expect(cache(await get(q, { 'Cache-Control': 'min-fresh=0' }))).toBe('HIT');
    expect(cache(await get(q, { 'Cache-Control': 'min-fresh=60' }))).toBe('MISS');
    expect(upstream()).toBe(before + 1);
  });

  /**
   * Tests about a copy past its 2 s of freshness. Each has a question of its own, primed in beforeAll,
   * and they share the one wait for those copies to expire (stale-if-error keeps them for an hour, so
   * the later ones are no less stale for it) instead of waiting 2.3 s each.
   */
  describe('on an expired copy', () => {
    const SIE_DIRECTIVES = ['no-cache', 'max-age=0', 'max-age=3600', 'min-fresh=1', 'max-stale=0', 'no-store'];
    const primed = new Map<string, string>();
    /** The question primed for `use`, expired by now. */
    const expired = (use: string): string => {
      const q = primed.get(use);
      if (q === undefined) throw new Error(`no question primed for ${use}`);
      return q;
    };

    beforeAll(async () => {
      for (const use of ['join', 'max-stale', ...SIE_DIRECTIVES]) {
        const q = fresh();
        expect([use, cache(await get(q))]).toEqual([use, 'MISS']);
        primed.set(use, q);
      }
      await sleep(2300);
    });

    it('requests that join the call replacing an expired copy say fwd=stale too, as the one that made it does', async () => {
      const q = expired('join');
      const before = upstream();
      fake.latencyMs = 300;
      try {
        const answers = await Promise.all([get(q), get(q), get(q)]);
        expect(upstream()).toBe(before + 1);
        const statuses = answers.map((a) => String(a.headers['cache-status']));
        // RFC 9211 fwd=uri-miss says the cache held nothing for the URI: all three found the expired copy.
        for (const status of statuses) expect(status).toMatch(/^places-cache; fwd=stale; fwd-status=200; stored; ttl=\d+(?:; collapsed)?$/);
        expect(statuses.filter((status) => status.endsWith('; collapsed'))).toHaveLength(2);
      } finally {
        fake.latencyMs = 0;
      }
    });

    it('max-stale[=N] accepts a stale copy, within N seconds of staleness', async () => {
      const q = expired('max-stale');
      const before = upstream();
      const stale = await get(q, { 'Cache-Control': 'max-stale=60' });
      expect(stale.status).toBe(200);
      expect(cache(stale)).toBe('STALE');
      // Served without forwarding anything, and no refresh started: a hit, in RFC 9211's words.
      expect(stale.headers['cache-status']).toMatch(/^places-cache; hit; ttl=-\d+; detail=max-stale$/);
      expect(cache(await get(q, { 'Cache-Control': 'max-stale' }))).toBe('STALE');
      expect(upstream()).toBe(before);
      expect(cache(await get(q, { 'Cache-Control': 'max-stale=0' }))).toBe('MISS');
      expect(upstream()).toBe(before + 1);
    });

    it.each(SIE_DIRECTIVES)(
      'with %s, stale-if-error still answers from the copy when Nominatim fails',
      async (directive) => {
        const q = expired(directive);
        fake.failAll({ status: 500 });
        try {
          const before = upstream();
          const a = await get(q, { 'Cache-Control': directive });
          expect([a.status, cache(a)]).toEqual([200, 'STALE']);
          expect(a.headers['cache-status']).toMatch(/^places-cache; fwd=stale; fwd-status=500; ttl=-\d+; detail=stale-if-error$/);
          expect(upstream()).toBe(before + 1);
        } finally {
          fake.failAll(null);
        }
      },
    );
  });

  it.each([
    ['min-fresh=60', 0],
    ['max-age=0', 1100],
  ])('with %s refusing a copy still fresh, a failed revalidation answers with it as stale-if-error, not as a hit', async (directive, waitMs) => {
    const q = fresh();
    expect(cache(await get(q))).toBe('MISS');
    await sleep(waitMs); // ages are whole seconds: max-age=0 refuses a copy 1 s old (fresh for 2 s)
    fake.failAll({ status: 500 });
    try {
      const before = upstream();
      const a = await get(q, { 'Cache-Control': directive });
      expect(upstream()).toBe(before + 1);
      // The client refused the copy and Nominatim was asked: Cache-Status must not say "hit" (not forwarded).
      expect([a.status, cache(a), a.headers['cache-status']]).toEqual([200, 'STALE', expect.stringMatching(/^places-cache; fwd=stale; fwd-status=500; ttl=\d+; detail=stale-if-error$/)]);
    } finally {
      fake.failAll(null);
    }
  });

  it("no-cache under a failing Nominatim answers with Redis's copy when it is newer than this instance's", async () => {
    const peer = await e2e.startApp({ NOMINATIM_MAX_RPS: '50', CACHE_TTL_SECONDS: '2', STALE_IF_ERROR_SECONDS: '3600' });
    try {
      const q = fresh();
      expect(cache(await get(q))).toBe('MISS');
      await eventually(async () => cache(await get(q, {}, peer)) === 'HIT'); // the peer's L1 holds this copy
      await sleep(2100);
      expect(cache(await get(q, { 'Cache-Control': 'no-cache' }))).toBe('MISS'); // Redis: a copy 2.1 s newer
      fake.failAll({ status: 500 });
      try {
        const a = await get(q, { 'Cache-Control': 'no-cache' }, peer);
        expect([a.status, cache(a)]).toEqual([200, 'STALE']);
        expect(Number(a.headers['age'])).toBeLessThanOrEqual(1);
      } finally {
        fake.failAll(null);
      }
    } finally {
      await peer.close();
    }
  });

  it('only-if-cached answers 504 and sends nothing upstream when nothing usable is stored', async () => {
    const q = fresh();
    const before = upstream();
    const none = await get(q, { 'Cache-Control': 'only-if-cached' });
    expect(none.status).toBe(504);
    expect(JSON.parse(none.body.toString())).toMatchObject({ statusCode: 504, code: 'not_cached' });
    expect(upstream()).toBe(before);
    await get(q);
    const some = await get(q, { 'Cache-Control': 'only-if-cached' });
    expect(some.status).toBe(200);
    expect(cache(some)).toBe('HIT');
    expect(upstream()).toBe(before + 1);
    const api = await get('/api?q=Nowhere%20Cached', { 'Cache-Control': 'only-if-cached' });
    expect(api.status).toBe(504);
    expect(upstream()).toBe(before + 1);
  });

  it('no-store does not keep the answer', async () => {
    const q = fresh();
    const before = upstream();
    const a = await get(q, { 'Cache-Control': 'no-store' });
    expect(a.status).toBe(200);
    expect(cache(a)).toBe('MISS');
    expect(a.headers['cache-control']).toBe('no-store');
    expect(upstream()).toBe(before + 1);
    expect(cache(await get(q))).toBe('MISS');
    expect(upstream()).toBe(before + 2);
  });

  it('CLIENT_CACHE_CONTROL=ignore answers as if no directive were sent', async () => {
    const q = fresh();
    await get(q, {}, ignoring);
    const before = upstream();
    expect(cache(await get(q, { 'Cache-Control': 'no-cache' }, ignoring))).toBe('HIT');
    expect(cache(await get(q, { Pragma: 'no-cache' }, ignoring))).toBe('HIT');
    expect(cache(await get(fresh(), { 'Cache-Control': 'only-if-cached' }, ignoring))).toBe('MISS');
    expect(upstream()).toBe(before + 1);
  });

  // Last: it spends this client's miss budget.
  it('the per-client limiter counts requests with directives as misses', async () => {
    const q = fresh();
    await get(q);
    for (let i = 0; i < 3 * MISS_LIMIT; i++) expect((await get(q)).status).toBe(200);
    let refused: RawAnswer | undefined;
    for (let i = 0; i <= MISS_LIMIT && refused === undefined; i++) {
      const a = await get(q, { 'Cache-Control': 'max-stale' });
      if (a.status === 429) refused = a;
      else expect(cache(a)).toBe('HIT');
    }
    expect(refused?.status).toBe(429);
  });
});
