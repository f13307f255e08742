import { RedisClientType } from 'redis';
import { AdminController } from '../src/admin/admin.controller';
import { isEntryKey, PURGE_CHANNEL } from '../src/places/cache/cache-purge.service';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { canonicaliseRoute, findRoute } from '../src/places/place-routes';
import { PlacesCacheService } from '../src/places/cache/places-cache.service';
import { eventually, RunningApp, startApp, useE2e } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { RedisProcess, startRedis } from './support/redis-server';

jest.setTimeout(60_000);

const TOKEN = 'test-admin-token-0123456789abcdef';
/** The shared (Redis) pacer cannot keep the harness's 1000 requests/s: its start guard is 5% of the interval. */
const PACED_RPS = '10';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

/**
 * The canonical key the gateway gives a request target, computed by the same canonicaliser, with the
 * `Accept-Language: *` that fetch (undici) sends.
 */
function keyOf(target: string, acceptLanguage = '*'): string {
  const [path, query = ''] = target.split('?');
  const result = canonicaliseRoute(findRoute(path)!, query, acceptLanguage);
  if (!result.ok) throw new Error(`not a valid question: ${target}`);
  return result.request.key;
}

function l1Has(svc: RunningApp, key: string): boolean {
  return svc.app.get(PlacesCacheService).l1.get(key, Date.now()) !== undefined;
}

async function get(svc: RunningApp, target: string): Promise<string | null> {
  const res = await fetch(`${svc.url}${target}`);
  await res.arrayBuffer();
  expect(res.status).toBe(200);
  return res.headers.get('x-cache');
}

async function purge(svc: RunningApp, target: string, headers: Record<string, string> = AUTH): Promise<{ status: number; body: Record<string, unknown>; res: Response }> {
  const res = await fetch(`${svc.url}${target}`, { method: 'DELETE', headers });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), res };
}

describe(AdminController.name, () => {
  let upstream: FakeNominatim;
  let probe: RedisClientType;
  let a: RunningApp;
  let b: RunningApp;
  /** Shares the Redis but has no ADMIN_TOKEN: no admin routes, still honours purge broadcasts. */
  let c: RunningApp;
  const all = () => [a, b, c];

  useE2e({ probe: true }, async (e2e) => {
    ({ fake: upstream, probe } = e2e);
    const env = { NOMINATIM_MAX_RPS: PACED_RPS, CACHE_TTL_SECONDS: '3600' };
    a = await e2e.startApp({ ...env, ADMIN_TOKEN: TOKEN });
    b = await e2e.startApp({ ...env, ADMIN_TOKEN: TOKEN });
    c = await e2e.startApp(env);
    // Every instance listens for purges (the fill lock's channel shares the connection).
    await eventually(async () => Number((await probe.pubSubNumSub(PURGE_CHANNEL))[PURGE_CHANNEL]) === 3);
  });

  beforeEach(async () => {
    upstream.reset();
    await probe.flushDb();
    for (const s of all()) s.app.get(PlacesCacheService).l1.clear();
  });

  it('purges one key on every instance: the next request on the OTHER instance is a MISS', async () => {
    const target = '/search?q=Berlin&format=json';
    const key = keyOf(target);
    expect(await get(a, target)).toBe('MISS');
    expect(await get(b, target)).toBe('HIT');
    expect(await get(c, target)).toBe('HIT');
    for (const s of all()) expect(l1Has(s, key)).toBe(true);
    expect(await get(b, target)).toBe('HIT');
    expect(upstream.count()).toBe(1);

    const { status, body, res } = await purge(a, `/admin/cache?key=${encodeURIComponent(key)}`);
    expect(status).toBe(200);
    expect(body).toEqual({ key, deleted: 1, l1Deleted: 1, complete: true });
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await probe.exists(key)).toBe(0);

    await eventually(() => !l1Has(b, key) && !l1Has(c, key));
    expect(await get(b, target)).toBe('MISS');
    expect(upstream.count()).toBe(2);
    // The fresh copy is shared again: the instance without admin routes hits it.
    expect(await get(c, target)).toBe('HIT');
  });

  it('purges a question given as the client asked it, canonicalised to its key', async () => {
    const target = `/api?q=${encodeURIComponent('Zürich')}`;
    const key = keyOf(target);
    expect(await get(a, target)).toBe('MISS');
    expect(await get(b, target)).toBe('HIT');

    // Another spelling of the same question.
    const { status, body } = await purge(b, `/admin/cache/question?path=/api&q=${encodeURIComponent('  zÜRICH ')}`);
    expect(status).toBe(200);
    expect(body).toEqual({ key, deleted: 1, l1Deleted: 1, complete: true });
    await eventually(() => !l1Has(a, key));
    expect(await get(a, target)).toBe('MISS');

    // A Nominatim route with its parameters in any order and q in any case: the same entry as the
    // request's. Names are Nominatim's, case-sensitive: LIMIT=5 is not limit=5 there.
    const search = '/search?format=json&q=Berlin&limit=5';
    expect(await get(a, search)).toBe('MISS');
    const other = await purge(a, '/admin/cache/question?LIMIT=5&path=/search.php&q=berlin&format=json');
    expect(other.body).toMatchObject({ deleted: 0 });
    expect((other.body as { key: string }).key).not.toBe(keyOf(search));
    const again = await purge(a, '/admin/cache/question?limit=5&path=/search.php&q=berlin&format=json');
    expect(again.body).toEqual({ key: keyOf(search), deleted: 1, l1Deleted: 1, complete: true });
    // Nothing left to purge the second time.
    const twice = await purge(a, '/admin/cache/question?limit=5&path=/search.php&q=berlin&format=json');
    expect(twice.body).toMatchObject({ deleted: 0, l1Deleted: 0 });
  });

  it('purges by prefix on every instance and leaves other endpoints alone', async () => {
    const searches = ['/search?q=Berlin', '/search?q=Paris&format=json', '/search?q=Tokyo&format=xml'];
    const reverse = '/reverse?lat=52.52&lon=13.40&format=json';
    for (const t of [...searches, reverse]) expect(await get(a, t)).toBe('MISS');
    for (const t of [...searches, reverse]) expect(await get(b, t)).toBe('HIT');
    expect(upstream.count()).toBe(4);

    const { status, body } = await purge(b, `/admin/cache/prefix?prefix=${encodeURIComponent('places:v1:search:')}`);
    expect(status).toBe(200);
    expect(body).toEqual({ prefix: 'places:v1:search:', deleted: 3, l1Deleted: 3, complete: true });
    expect(await probe.keys('places:v1:search:*')).toEqual([]);

    await eventually(() => searches.every((t) => !l1Has(a, keyOf(t))));
    for (const t of searches) expect(await get(a, t)).toBe('MISS');
    expect(await get(a, reverse)).toBe('HIT');
    expect(upstream.count()).toBe(7);
  });

  it('purges in batches past one SCAN page', async () => {
    const keys = Array.from({ length: 2500 }, (_, i) => `places:v1:lookup:osm_ids=N${i}`);
    for (let i = 0; i < keys.length; i += 500) {
      await probe.mSet(keys.slice(i, i + 500).map((k) => [k, '{}'] as [string, string]));
    }
    const { body } = await purge(a, '/admin/cache/prefix?prefix=places:v1:lookup:');
    expect(body).toMatchObject({ deleted: 2500, complete: true });
    expect(await probe.keys('places:v1:lookup:*')).toEqual([]);
  });

  it('never touches keys outside the answers under places:v1:', async () => {
    const foreign = {
      'other-app:session:1': 'x',
      'places:v2:search:q=berlin': 'x',
      'places:v1searchq=berlin': 'x',
      'places:v1:lock:places:v1:search:q=berlin': 'x',
      'places:v1:pacer:elsewhere': '1',
      'places:v1:throttle:abc': '1',
      'places:v1:search*': 'x',
    };
    await probe.mSet(Object.entries(foreign));
    expect(await get(a, '/search?q=Berlin')).toBe('MISS');

    for (const key of Object.keys(foreign)) {
      const res = await purge(a, `/admin/cache?key=${encodeURIComponent(key)}`);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringContaining('answer key') });
    }
    for (const prefix of ['other-app:', 'places:v2:', 'places:v1', '*', '']) {
      expect((await purge(a, `/admin/cache/prefix?prefix=${encodeURIComponent(prefix)}`)).status).toBe(400);
    }
    // Glob characters in a prefix match themselves only.
    const globbed = await purge(a, `/admin/cache/prefix?prefix=${encodeURIComponent('places:v1:s*')}`);
    expect(globbed.body).toMatchObject({ deleted: 0 });
    const bracket = await purge(a, `/admin/cache/prefix?prefix=${encodeURIComponent('places:v1:[s]earch:')}`);
    expect(bracket.body).toMatchObject({ deleted: 0 });
    expect(await probe.exists(keyOf('/search?q=Berlin'))).toBe(1);

    // Everything this service cached, and nothing else.
    const everything = await purge(a, '/admin/cache/prefix?prefix=places:v1:');
    expect(everything.body).toMatchObject({ deleted: 1, l1Deleted: 1 });
    expect(await probe.mGet(Object.keys(foreign))).toEqual(Object.values(foreign));
    // (The pacer may have working state of its own by now; only answer keys are gone.)
    expect((await probe.keys('*')).filter((k) => isEntryKey(k))).toEqual([]);
  });

  it('answers 400 to a purge it cannot make sense of', async () => {
    const cases: Array<[string, string]> = [
      ['/admin/cache', 'Give exactly one key parameter'],
      ['/admin/cache?key=places:v1:search:q=a&key=places:v1:search:q=b', 'Give exactly one key parameter'],
      ['/admin/cache/question?q=Berlin', 'Give exactly one path parameter'],
      ['/admin/cache/question?path=/admin&q=Berlin', 'path must be one of /api, /search, /reverse, /lookup, /status'],
      ['/admin/cache/question?path=/search', 'Not a valid question: Nothing to search for.'],
      ['/admin/cache/question?path=/api&q=', 'Not a valid question: q must not be blank'],
      ['/admin/cache/question?path=/details&place_id=1', 'Answers of /details are never cached'],
      ['/admin/cache/prefix', 'Give exactly one prefix parameter'],
    ];
    for (const [target, message] of cases) {
      const { status, body } = await purge(a, target);
      expect({ target, status, body }).toEqual({ target, status: 400, body: { statusCode: 400, error: 'Bad Request', message } });
    }
  });

  it('answers 401 without the right bearer token, and purges nothing', async () => {
    expect(await get(a, '/search?q=Berlin')).toBe('MISS');
    const key = keyOf('/search?q=Berlin');
    const wrong: Array<Record<string, string>> = [
      {},
      { Authorization: TOKEN },
      { Authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      { Authorization: 'Bearer ' },
      { Authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { Authorization: `Bearer ${TOKEN}x` },
      { Authorization: `Bearer ${TOKEN.toUpperCase()}` },
      { Authorization: `Bearer ${TOKEN} ${TOKEN}` },
    ];
    for (const headers of wrong) {
      for (const target of [`/admin/cache?key=${encodeURIComponent(key)}`, '/admin/cache/question?path=/search&q=Berlin', '/admin/cache/prefix?prefix=places:v1:']) {
        const { status, body, res } = await purge(a, target, headers);
        expect({ headers, status }).toEqual({ headers, status: 401 });
        expect(body).toEqual({ statusCode: 401, error: 'Unauthorized', message: expect.any(String) });
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="places-cache admin"');
      }
    }
    expect(await probe.exists(key)).toBe(1);
    expect(l1Has(a, key)).toBe(true);
    // The scheme name is case-insensitive (RFC 9110).
    expect((await purge(a, `/admin/cache?key=${encodeURIComponent(key)}`, { Authorization: `bearer ${TOKEN}` })).status).toBe(200);
  });

  it('has no admin routes without ADMIN_TOKEN: 404, and none in the API document', async () => {
    for (const target of ['/admin/cache?key=places:v1:search:q=x', '/admin/cache/question?path=/api&q=x', '/admin/cache/prefix?prefix=places:v1:']) {
      expect((await purge(c, target)).status).toBe(404);
      expect((await purge(c, target, {})).status).toBe(404);
    }
    const withoutToken = (await (await fetch(`${c.url}/docs-json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(withoutToken.paths).filter((p) => p.startsWith('/admin'))).toEqual([]);

    const withToken = (await (await fetch(`${a.url}/docs-json`)).json()) as {
      paths: Record<string, { delete?: { security?: unknown } }>;
      components: { securitySchemes?: Record<string, unknown> };
    };
    expect(Object.keys(withToken.paths).filter((p) => p.startsWith('/admin')).sort()).toEqual([
      '/admin/cache',
      '/admin/cache/prefix',
      '/admin/cache/question',
    ]);
    expect(withToken.paths['/admin/cache'].delete?.security).toEqual([{ admin: [] }]);
    expect(withToken.components.securitySchemes?.admin).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  describe('without REDIS_URL (in-memory mode)', () => {
    let mem: RunningApp;

    beforeAll(async () => {
      mem = await startApp({ NOMINATIM_URL: upstream.url, ADMIN_TOKEN: TOKEN });
    });

    afterAll(() => mem.close());

    it('purges the memory store and the L1', async () => {
      const targets = ['/search?q=Berlin', '/search?q=Paris', '/reverse?lat=52.52&lon=13.40'];
      for (const t of targets) expect(await get(mem, t)).toBe('MISS');
      for (const t of targets) expect(await get(mem, t)).toBe('HIT');

      expect((await purge(mem, `/admin/cache?key=${encodeURIComponent(keyOf(targets[0]))}`)).body).toMatchObject({ deleted: 1, l1Deleted: 1 });
      expect(await get(mem, targets[0])).toBe('MISS');
      expect((await purge(mem, '/admin/cache/prefix?prefix=places:v1:search:')).body).toMatchObject({ deleted: 2, l1Deleted: 2, complete: true });
      expect(await get(mem, targets[1])).toBe('MISS');
      expect(await get(mem, targets[2])).toBe('HIT');
    });
  });

  describe('with Redis down', () => {
    let lonely: RedisProcess;
    let svc: RunningApp;

    beforeAll(async () => {
      lonely = await startRedis();
      svc = await startApp({ REDIS_URL: lonely.url, NOMINATIM_URL: upstream.url, NOMINATIM_MAX_RPS: PACED_RPS, ADMIN_TOKEN: TOKEN });
      await eventually(() => svc.app.get(RedisConnectionService).state === 'ready');
    });

    afterAll(async () => {
      await svc.close();
      await lonely.stop();
    });

    it('answers 503 with Retry-After, after dropping its own L1 copy', async () => {
      const target = '/search?q=Berlin';
      expect(await get(svc, target)).toBe('MISS');
      await lonely.kill();
      await eventually(() => svc.app.get(RedisConnectionService).state === 'down');
      const { status, body, res } = await purge(svc, `/admin/cache?key=${encodeURIComponent(keyOf(target))}`);
      expect(status).toBe(503);
      expect(body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        code: 'redis_unavailable',
        message: 'Redis is unavailable: the shared cache was not purged; 1 L1 entries dropped here',
      });
      expect(res.headers.get('retry-after')).toBe('1');
      expect(l1Has(svc, keyOf(target))).toBe(false);
      expect((await purge(svc, '/admin/cache/prefix?prefix=places:v1:')).status).toBe(503);
    });
  });
});

/**
 * README, Operations/Admin: purges use "SCAN + UNLINK, never KEYS or FLUSHDB". Checked by Redis itself:
 * the app runs as an ACL user that may not call KEYS, FLUSHDB or FLUSHALL (any such call is refused
 * and shows in ACL LOG), and INFO commandstats counts what the purges ran.
 */
describe('purges as a Redis user that may not call KEYS, FLUSHDB or FLUSHALL', () => {
  let redis: RedisProcess;
  let probe: RedisClientType;
  let svc: RunningApp;

  // The test's own look (the probe) goes through the default user.
  useE2e({ probe: true, redis: { users: ['gateway on >gateway-secret ~* &* +@all -keys -flushdb -flushall'] } }, async (e2e) => {
    ({ redis, probe } = e2e);
    svc = await e2e.startApp({ REDIS_URL: `redis://gateway:gateway-secret@127.0.0.1:${redis.port}`, NOMINATIM_MAX_RPS: PACED_RPS, ADMIN_TOKEN: TOKEN });
  });

  it('purges one key, a prefix over several SCAN pages, and everything, with SCAN and UNLINK only', async () => {
    const searches = ['/search?q=Berlin', '/search?q=Paris', '/search?q=Tokyo'];
    for (const t of [...searches, '/reverse?lat=52.52&lon=13.40']) expect(await get(svc, t)).toBe('MISS');
    const lookups = Array.from({ length: 1500 }, (_, i) => `places:v1:lookup:osm_ids=N${i}`);
    await probe.mSet(lookups.map((k) => [k, '{}'] as [string, string]));
    const before = await redis.commandCalls();

    const one = await purge(svc, `/admin/cache?key=${encodeURIComponent(keyOf(searches[0]))}`);
    expect([one.status, one.body]).toEqual([200, { key: keyOf(searches[0]), deleted: 1, l1Deleted: 1, complete: true }]);
    const pages = await purge(svc, '/admin/cache/prefix?prefix=places:v1:lookup:');
    expect([pages.status, pages.body]).toEqual([200, { prefix: 'places:v1:lookup:', deleted: 1500, l1Deleted: 0, complete: true }]);
    const everything = await purge(svc, '/admin/cache/prefix?prefix=places:v1:');
    expect([everything.status, everything.body]).toEqual([200, { prefix: 'places:v1:', deleted: 3, l1Deleted: 3, complete: true }]);

    const after = await redis.commandCalls();
    const ran = (cmd: string) => (after[cmd] ?? 0) - (before[cmd] ?? 0);
    expect({ keys: ran('keys'), flushdb: ran('flushdb'), flushall: ran('flushall'), del: ran('del') }).toEqual({ keys: 0, flushdb: 0, flushall: 0, del: 0 });
    expect(ran('scan')).toBeGreaterThanOrEqual(3); // a page for each prefix, more than one for 1500 keys
    expect(ran('unlink')).toBeGreaterThanOrEqual(3);
    // Nothing the app asked for was refused, at any time (fills, locks and pacing included).
    expect(await probe.sendCommand(['ACL', 'LOG'])).toEqual([]);
    const left: string[] = [];
    for await (const key of probe.scanIterator({ MATCH: 'places:v1:*' })) if (isEntryKey(key)) left.push(key);
    expect(left).toEqual([]);
  });
});

/*
 * Redis 7 gives a new ACL user no pub/sub channel (acl-pubsub-default resetchannels): a user made with
 * `~* +@all` and no `&*` may UNLINK but not PUBLISH. A purge then removes the shared copies but cannot
 * tell the other instances; it used to answer "the shared cache was not purged", which was false.
 */
describe('purges as a Redis user without access to the pub/sub channels', () => {
  let probe: RedisClientType;
  let svc: RunningApp;

  useE2e({ probe: true, redis: { users: ['gateway on >gateway-secret ~* resetchannels +@all'] } }, async (e2e) => {
    probe = e2e.probe;
    svc = await e2e.startApp(
      { REDIS_URL: `redis://gateway:gateway-secret@127.0.0.1:${e2e.redis.port}`, NOMINATIM_MAX_RPS: PACED_RPS, ADMIN_TOKEN: TOKEN },
      { captureLogs: true },
    );
  });

  it('says the shared copies were removed and the broadcast failed (503, logged), not that nothing was purged', async () => {
    const target = '/search?q=Berlin';
    expect(await get(svc, target)).toBe('MISS');
    expect(await probe.exists(keyOf(target))).toBe(1);
    const { status, body, res } = await purge(svc, `/admin/cache?key=${encodeURIComponent(keyOf(target))}`);
    expect(await probe.exists(keyOf(target))).toBe(0);
    expect(l1Has(svc, keyOf(target))).toBe(false);
    expect([status, res.headers.get('retry-after'), body.code]).toEqual([503, '1', 'redis_unavailable']);
    expect(body.message).toMatch(
      /^1 entries removed from Redis, but the purge could not be broadcast to the other instances \(NOPERM .*\): their L1 copies stay until they expire; run it again; 1 L1 entries dropped here$/,
    );
    expect(svc.logs.filter((l) => l.context === 'CachePurgeService' && /could not be broadcast/.test(l.msg)).map((l) => l.level)).toEqual(['warn']);

    expect(await get(svc, target)).toBe('MISS');
    const prefix = await purge(svc, '/admin/cache/prefix?prefix=places:v1:search:');
    expect(await probe.exists(keyOf(target))).toBe(0);
    expect([prefix.status, String(prefix.body.message)]).toEqual([503, expect.stringMatching(/^1 entries removed from Redis, but the purge could not be broadcast/) as unknown as string]);
  });

  it('says at start-up, once each, that neither purge broadcasts nor fill notices can be received', () => {
    const refused = svc.logs.filter((l) => l.level === 'warn' && /subscription failed \(NOPERM/.test(l.msg)).map((l) => l.context);
    expect(refused.sort()).toEqual(['CachePurgeService', 'FillLock']);
  });
});

/*
 * A Redis whose PUBLISH was renamed away answers `ERR unknown command 'PUBLISH', with args beginning
 * with: 'places:v1:purge' '<the key>'`: the key holds the question, which stays out of the logs.
 */
describe('purges on a Redis that refuses PUBLISH with an error quoting its arguments', () => {
  let svc: RunningApp;

  useE2e({ redis: { args: ['--rename-command', 'PUBLISH', ''] } }, async (e2e) => {
    svc = await e2e.startApp({ NOMINATIM_MAX_RPS: PACED_RPS, ADMIN_TOKEN: TOKEN }, { captureLogs: true });
  });

  it('says the broadcast failed with Redis words, the key in them masked', async () => {
    // Short: Redis quotes the first 128 characters of the arguments, the question at their end.
    const target = '/search?q=Zoo7';
    expect(await get(svc, target)).toBe('MISS');
    const { status, body } = await purge(svc, `/admin/cache?key=${encodeURIComponent(keyOf(target))}`);
    expect([status, body.code]).toEqual([503, 'redis_unavailable']);
    expect(body.message).toMatch(/^1 entries removed from Redis, but the purge could not be broadcast to the other instances \(ERR unknown command 'PUBLISH'/);
    const warned = svc.logs.filter((l) => l.context === 'CachePurgeService' && /could not be broadcast/.test(l.msg));
    expect(warned.map((l) => l.level)).toEqual(['warn']);
    expect(svc.logs.filter((l) => /q=zoo7/i.test(l.raw)).map((l) => l.raw)).toEqual([]);
    expect(body.message).not.toMatch(/zoo7/i);
  });
});
