import { RedisClientType } from 'redis';
import { eventually, LogLine, RunningApp, useE2e, useApp } from './support/app-harness';
import { FakeFailure, FakeNominatim } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { RedisProcess } from './support/redis-server';

/*
 * What an upstream answer says about the upstream, and what follows from it: a 4xx that is not
 * Nominatim's (a web server's or a proxy's HTML page) is a failure, not an answer to pass on.
 */

jest.setTimeout(90_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
}

interface HealthEntry {
  state: string;
  status?: string;
  lastCall: { status: number | string } | null;
  coolDownRemainingSeconds: number;
  upstreams?: Array<{ host: string; state: string }>;
}

const HTML_404 = '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>\n';

let seq = 0;
/** A number in letters: digits next to n/s/e/w would be read as hemispheres by the canonicaliser. */
const letters = (n: number) => n.toString(26).replace(/./g, (c) => String.fromCharCode(97 + parseInt(c, 26)));
const unique = (what: string) => `${what}x${letters(++seq)}x${letters(Date.now() % 1e7)}`;

describe('upstream verdicts (e2e)', () => {
  let fake: FakeNominatim;
  let redis: RedisProcess;
  let probe: RedisClientType;
  const e2e = useE2e({ probe: true }, (e2e) => ({ fake, redis, probe } = e2e));

  afterEach(() => fake.reset());

  const health = async (app: RunningApp): Promise<{ status: string; upstream: HealthEntry }> => {
    const body = JSON.parse((await rawGet(`${app.url}/health/upstream`)).body.toString()) as { status: string; details: { upstream: HealthEntry } };
    return { status: body.status, upstream: body.details.upstream };
  };
  const warnings = (app: RunningApp, from: number): LogLine[] => app.logs.slice(from).filter((l) => l.level === 'warn' && l.context === 'NominatimClient');
  const keysFor = async (token: string): Promise<string[]> =>
    (await probe.keys('places:*')).filter((k) => k.includes(token.toLowerCase()) && !k.startsWith('places:v1:lock:'));

  describe('a 4xx that is not Nominatim\'s (one upstream)', () => {
    const app = useApp(e2e, { CACHE_TTL_SECONDS: '1', STALE_WHILE_REVALIDATE_SECONDS: '0', LOG_LEVEL: 'warn' }, { captureLogs: true });

    it.each<[string, FakeFailure, string, string]>([
      ["a web server's HTML 404 (a wrong path in NOMINATIM_URL)", { status: 404, body: HTML_404, headers: { 'Content-Type': 'text/html; charset=iso-8859-1' } }, 'json', 'a 404 with Content-Type text/html'],
      ["a proxy's HTML 407", { status: 407, body: '<html><body>Proxy Authentication Required</body></html>', headers: { 'Content-Type': 'text/html' } }, 'xml', 'a 407 with Content-Type text/html'],
      ["a proxy's HTML 413", { status: 413, body: '<html><body>Request Entity Too Large</body></html>', headers: { 'Content-Type': 'text/html' } }, 'geojson', 'a 413 with Content-Type text/html'],
      ["an API gateway's JSON 404", { status: 404, body: { message: 'no Route matched with those values' } }, 'jsonv2', "a 404 whose JSON is not Nominatim's error"],
      ["an XML 404 that is not Nominatim's", { status: 404, body: '<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>', headers: { 'Content-Type': 'text/xml' } }, 'xml', "a 404 whose XML is not Nominatim's error"],
      ["a proxy's plain-text 404 (Go's)", { status: 404, body: '404 page not found\n', headers: { 'Content-Type': 'text/plain; charset=utf-8' } }, 'json', "a 404 whose text is not Nominatim's error"],
      ["a framework's plain-text 404 for a path it has no route for", { status: 404, body: 'Not Found', headers: { 'Content-Type': 'text/plain; charset=utf-8' } }, 'xml', "a 404 whose text is not Nominatim's error"],
    ])('%s: 502 upstream_invalid, nothing stored, logged once, /health/upstream failing', async (_what, failure, format, problem) => {
      const q = unique('Berlin');
      const from = app.logs.length;
      fake.failNext(1, failure);
      const bad = await rawGet(`${app.url}/search?q=${q}&format=${format}`);
      expect(bad.status).toBe(502);
      expect(bad.headers['content-type']).toBe('application/json; charset=utf-8');
      const body = JSON.parse(bad.body.toString()) as ErrorBody;
      expect(body).toMatchObject({ statusCode: 502, code: 'upstream_invalid' });
      expect(body.message).toContain(problem);
      expect(await keysFor(q)).toEqual([]);
      const warned = warnings(app, from);
      expect(warned.map((l) => l.msg)).toEqual([expect.stringMatching(new RegExp(`^Nominatim 127\\.0\\.0\\.1:\\d+ search answered ${(failure as { status: number }).status} after \\d+ ms with ${problem}.*; not stored$`))]);
      expect(warned[0].raw).not.toContain(q);
      const h = await health(app);
      expect(h.status).toBe('degraded');
      expect(h.upstream).toMatchObject({ state: 'failing', lastCall: { status: 'invalid' } });

      // Asked again, and Nominatim's real answer is stored.
      const good = await rawGet(`${app.url}/search?q=${q}&format=${format}`);
      expect(good.status).toBe(200);
      expect(good.headers['x-cache']).toBe('MISS');
      expect(fake.count('/search')).toBe(2);
      expect((await health(app)).status).toBe('ok');
    });

    it("passes Nominatim's own 4xx on as they are (JSON, XML and text errors)", async () => {
      // Nominatim 5.1 writes an error raised before it knows the format as text/plain `ERROR <status>: …`.
      const text = "ERROR 400: Parameter 'format' must be one of: xml, geojson, geocodejson, json, jsonv2";
      const cases: Array<[string, FakeFailure]> = [
        ['/search?format=json&q=', { status: 400, body: { error: { code: 400, message: 'Parameter checked only upstream.' } } }],
        ['/search?format=xml&q=', { status: 400, body: '<?xml version="1.0" encoding="UTF-8" ?>\n   <error>\n <code>400</code>\n <message>Nothing to search for.</message>\n </error>\n', headers: { 'Content-Type': 'text/xml; charset=utf-8' } }],
        ...['json', 'jsonv2', 'geojson', 'geocodejson', 'xml'].map((f): [string, FakeFailure] => [`/search?format=${f}&q=`, { status: 400, body: text }]),
        // /status is stored for 1 s here (STATUS_TTL_SECONDS): none is yet, and a 4xx is never stored.
        ['/status?format=text', { status: 400, body: text }],
        ['/status?format=json', { status: 400, body: text }],
        ['/details?osmtype=N&osmid=', { status: 404, body: { error: { code: 404, message: 'No place with that OSM ID found.' } } }],
        ['/details?osmtype=N&osmid=', { status: 400, body: text }],
      ];
      for (const [path, failure] of cases) {
        fake.failNext(1, failure);
        const got = await rawGet(`${app.url}${path}${path.startsWith('/search') ? unique('Bern') : path.startsWith('/details') ? ++seq : ''}`);
        const { status } = failure as { status: number; body: unknown };
        expect([path, got.status]).toEqual([path, status]);
        const sent = (failure as { body: unknown }).body;
        expect([path, got.body.toString()]).toEqual([path, typeof sent === 'string' ? sent : JSON.stringify(sent)]);
      }
      expect((await health(app)).upstream.state).toBe('ok');
    });

    it('serves a stale copy instead (stale-if-error)', async () => {
      const q = unique('Zurich');
      expect((await rawGet(`${app.url}/search?q=${q}&format=json`)).status).toBe(200);
      await sleep(1_200);
      fake.failNext(1, { status: 404, body: HTML_404, headers: { 'Content-Type': 'text/html' } });
      const stale = await rawGet(`${app.url}/search?q=${q}&format=json`);
      expect(stale.status).toBe(200);
      expect(stale.headers['x-cache']).toBe('STALE');
      expect(stale.headers['cache-status']).toContain('detail=stale-if-error');
    });

    it("keeps an HTML 403 a refusal (the public server's block page): 503 upstream_refused, then the cool-down", async () => {
      fake.failNext(1, { status: 403, body: '<html><body><h1>Access blocked</h1></body></html>', headers: { 'Content-Type': 'text/html' } });
      const refused = await rawGet(`${app.url}/search?q=${unique('Paris')}&format=json`);
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body.toString())).toMatchObject({ code: 'upstream_refused' });
      const before = fake.count();
      const cooling = await rawGet(`${app.url}/search?q=${unique('Paris')}&format=json`);
      expect(cooling.status).toBe(503);
      expect(JSON.parse(cooling.body.toString())).toMatchObject({ code: 'upstream_cooldown' });
      expect(fake.count()).toBe(before);
      expect((await health(app)).upstream.state).toBe('cooling_down');
    });
  });

  describe('a 503 with Retry-After (maintenance)', () => {
    const app = useApp(
      e2e,
      () => ({ REDIS_URL: `${redis.url}/2`, NOMINATIM_MAX_RPS: '20', CACHE_TTL_SECONDS: '1', STALE_WHILE_REVALIDATE_SECONDS: '0', LOG_LEVEL: 'warn' }),
      { captureLogs: true },
    );

    it('is honoured as a 429 is: a shared cool-down, Retry-After on the 502 and the 503s after it, stale copies served meanwhile', async () => {
      const kept = unique('Oslo');
      expect((await rawGet(`${app.url}/search?q=${kept}&format=json`)).status).toBe(200);
      await sleep(1_200);

      fake.failNext(1, { status: 503, body: 'Down for maintenance', headers: { 'Retry-After': '3' } });
      const from = app.logs.length;
      const first = await rawGet(`${app.url}/search?q=${unique('Oslo')}&format=json`);
      expect(first.status).toBe(502);
      expect(JSON.parse(first.body.toString())).toMatchObject({ code: 'upstream_error' });
      expect(first.headers['retry-after']).toBe('3');
      expect(warnings(app, from).map((l) => l.msg)).toEqual([expect.stringMatching(/answered 503 after \d+ ms; sending nothing to it for 3 s \(Retry-After\)$/)]);
      const sent = fake.count();

      // Nothing more is sent until it ends: a new question is refused at once, an expired one is served stale.
      const next = await rawGet(`${app.url}/search?q=${unique('Oslo')}&format=json`);
      expect(next.status).toBe(503);
      expect(JSON.parse(next.body.toString())).toMatchObject({ code: 'upstream_cooldown' });
      expect(Number(next.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(next.headers['retry-after'])).toBeLessThanOrEqual(3);
      const stale = await rawGet(`${app.url}/search?q=${kept}&format=json`);
      expect(stale.status).toBe(200);
      expect(stale.headers['x-cache']).toBe('STALE');
      expect(stale.headers['cache-status']).toContain('detail=stale-if-error');
      expect((await health(app)).upstream).toMatchObject({ state: 'cooling_down', lastCall: { status: 503 } });

      // The fleet: another instance on the same Redis sends nothing either.
      const other = await e2e.startApp({ REDIS_URL: `${redis.url}/2`, NOMINATIM_MAX_RPS: '20' });
      try {
        const elsewhere = await rawGet(`${other.url}/search?q=${unique('Oslo')}&format=json`);
        expect(elsewhere.status).toBe(503);
        expect(JSON.parse(elsewhere.body.toString())).toMatchObject({ code: 'upstream_cooldown' });
      } finally {
        await other.close();
      }
      expect(fake.count()).toBe(sent);

      await eventually(async () => (await rawGet(`${app.url}/search?q=${unique('Oslo')}&format=json`)).status === 200, 5_000, 200);
    });

    it('without Retry-After, a 503 is an ordinary failure: the next question is asked', async () => {
      fake.failNext(1, { status: 503, body: 'Query took too long to process.' });
      const first = await rawGet(`${app.url}/search?q=${unique('Lima')}&format=json`);
      expect(first.status).toBe(502);
      expect(first.headers['retry-after']).toBeUndefined();
      expect((await rawGet(`${app.url}/search?q=${unique('Lima')}&format=json`)).status).toBe(200);
    });

    it('caps the cool-down as the 429 one is (10 min with one upstream)', async () => {
      const capped = await e2e.startApp({ REDIS_URL: `${redis.url}/3` });
      try {
        fake.failNext(1, { status: 503, headers: { 'Retry-After': '86400' } });
        const first = await rawGet(`${capped.url}/search?q=${unique('Quito')}&format=json`);
        expect(first.status).toBe(502);
        expect(first.headers['retry-after']).toBe('600');
      } finally {
        await capped.close();
      }
    });
  });

  describe("a 4xx that is not Nominatim's (several upstreams)", () => {
    let pub: FakeNominatim;
    let app: RunningApp;

    beforeAll(async () => {
      pub = new FakeNominatim();
      await pub.start();
      app = await e2e.startApp({ REDIS_URL: `${redis.url}/1`, NOMINATIM_URL: `${fake.url},${pub.url}`, NOMINATIM_MAX_RPS: '50,50', UPSTREAM_BACKOFF_MAX_SECONDS: '30' });
    });

    afterAll(async () => {
      await app?.close();
      await pub?.stop();
    });

    it('fails over to the next upstream and passes the one that sent it over', async () => {
      fake.failAll({ status: 404, body: HTML_404, headers: { 'Content-Type': 'text/html' } });
      const first = await rawGet(`${app.url}/search?q=${unique('Rome')}&format=json`);
      expect(first.status).toBe(200);
      expect([fake.count('/search'), pub.count('/search')]).toEqual([1, 1]);
      const second = await rawGet(`${app.url}/search?q=${unique('Rome')}&format=json`);
      expect(second.status).toBe(200);
      expect([fake.count('/search'), pub.count('/search')]).toEqual([1, 2]);
    });

    it('a 503 with Retry-After cools the upstream down fleet-wide, capped at UPSTREAM_BACKOFF_MAX_SECONDS', async () => {
      const capped = await e2e.startApp({ REDIS_URL: `${redis.url}/4`, NOMINATIM_URL: `${fake.url},${pub.url}`, NOMINATIM_MAX_RPS: '50,50', UPSTREAM_BACKOFF_MAX_SECONDS: '2' });
      try {
        fake.failNext(1, { status: 503, headers: { 'Retry-After': '86400' } });
        expect((await rawGet(`${capped.url}/search?q=${unique('Kyiv')}&format=json`)).status).toBe(200);
        const h = await health(capped);
        expect(h.upstream.upstreams?.[0]).toMatchObject({ state: 'cooling_down' });
        const preferred = h.upstream.upstreams?.[0] as unknown as HealthEntry;
        expect(preferred.coolDownRemainingSeconds).toBeGreaterThanOrEqual(1);
        expect(preferred.coolDownRemainingSeconds).toBeLessThanOrEqual(2);
      } finally {
        await capped.close();
      }
    });
  });

  describe('one outage counts once (several upstreams)', () => {
    let pub: FakeNominatim;

    beforeAll(async () => {
      pub = new FakeNominatim();
      await pub.start();
    });

    afterAll(async () => {
      await pub?.stop();
    });

    const demotions = (app: RunningApp, from: number) => warnings(app, from).filter((l) => l.msg.startsWith('Upstream '));

    it('misses in flight when the preferred one begins timing out: one demotion, one warn line, the first back-off', async () => {
      const app = await e2e.startApp(
        { REDIS_URL: `${redis.url}/5`, NOMINATIM_URL: `${fake.url},${pub.url}`, NOMINATIM_MAX_RPS: '50,50', UPSTREAM_TIMEOUT_MS: '400', UPSTREAM_BACKOFF_MAX_SECONDS: '30', LOG_LEVEL: 'warn' },
        { captureLogs: true },
      );
      try {
        fake.failAll('timeout');
        const from = app.logs.length;
        const answers = await Promise.all([1, 2, 3, 4].map(() => rawGet(`${app.url}/search?q=${unique('Riga')}&format=json`)));
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
        expect(fake.count('/search')).toBe(4);
        expect(demotions(app, from).map((l) => l.msg)).toEqual([expect.stringMatching(/^Upstream 127\.0\.0\.1:\d+ failed \(upstream_timeout\); passed over for 1 s$/)]);

        // Passed over for the first back-off (1 s), not for one doubled by each miss in flight (8 s).
        fake.failAll(null);
        await sleep(1_300);
        expect((await rawGet(`${app.url}/search?q=${unique('Riga')}&format=json`)).status).toBe(200);
        expect(fake.count('/search')).toBe(5);
      } finally {
        await app.close();
      }
    });

    it('misses queued behind a 429: one demotion, one warn line, for the cool-down', async () => {
      const app = await e2e.startApp(
        { REDIS_URL: `${redis.url}/6`, NOMINATIM_URL: `${fake.url},${pub.url}`, NOMINATIM_MAX_RPS: '2,50', UPSTREAM_BACKOFF_MAX_SECONDS: '2', LOG_LEVEL: 'warn' },
        { captureLogs: true },
      );
      try {
        fake.failAll({ status: 429 });
        const from = app.logs.length;
        const answers = await Promise.all([1, 2, 3, 4].map(() => rawGet(`${app.url}/search?q=${unique('Baku')}&format=json`)));
        expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
        expect(fake.count('/search')).toBe(1);
        expect(demotions(app, from).map((l) => l.msg)).toEqual([expect.stringMatching(/^Upstream 127\.0\.0\.1:\d+ failed \(upstream_refused\); passed over for 2 s$/)]);
      } finally {
        await app.close();
      }
    });
  });

  describe('a 429 back-off grows once per episode (one upstream)', () => {
    it('refusals of requests already in flight when the first came: one cool-down at the first back-off (5 s), then 10 s for the next episode', async () => {
      const app = await e2e.startApp({ REDIS_URL: `${redis.url}/7`, NOMINATIM_MAX_RPS: '20', LOG_LEVEL: 'warn' }, { captureLogs: true });
      try {
        // No Retry-After: the back-off decides. Slots 50 ms apart, answers 400 ms later: all three are in flight together.
        fake.latencyMs = 400;
        fake.failAll({ status: 429 });
        const burst = async () => {
          const answers = await Promise.all([1, 2, 3].map(() => rawGet(`${app.url}/search?q=${unique('Minsk')}&format=json`)));
          expect(answers.map((a) => [a.status, JSON.parse(a.body.toString()).code])).toEqual(Array(3).fill([503, 'upstream_refused']));
          return answers.map((a) => Number(a.headers['retry-after']));
        };
        const refusedLines = (from: number) => app.logs.slice(from).filter((l) => l.context === 'NominatimClient' && /answered 429: sending nothing/.test(l.msg));

        const from = app.logs.length;
        const first = await burst();
        expect(fake.count('/search')).toBe(3);
        // One episode: 5 s for each, not 5, 10 and 20 s (one doubling per refusal already on its way).
        expect(first).toEqual([5, 5, 5]);
        expect((await health(app)).upstream.coolDownRemainingSeconds).toBeLessThanOrEqual(5);
        expect(refusedLines(from).map((l) => l.msg)).toEqual([expect.stringMatching(/answered 429: sending nothing to it for 5 s/)]);

        // The next episode (refused again once the cool-down is over) doubles it once.
        await eventually(async () => (await health(app)).upstream.coolDownRemainingSeconds === 0, 8_000, 100);
        const next = app.logs.length;
        const second = await burst();
        expect(fake.count('/search')).toBe(6);
        expect(second).toEqual([10, 10, 10]);
        // Still refusing after a cool-down is news to the operator: one line for this episode too.
        expect(refusedLines(next).map((l) => l.msg)).toEqual([expect.stringMatching(/answered 429: sending nothing to it for 10 s/)]);
      } finally {
        await app.close();
      }
    });
  });

  describe('/health/upstream with several upstreams', () => {
    let pub: FakeNominatim;
    let app: RunningApp;

    beforeAll(async () => {
      pub = new FakeNominatim();
      await pub.start();
      app = await e2e.startApp({ REDIS_URL: `${redis.url}/7`, NOMINATIM_URL: `${fake.url},${pub.url}`, NOMINATIM_MAX_RPS: '50,50', UPSTREAM_BACKOFF_MAX_SECONDS: '1' });
    });

    afterAll(async () => {
      await app?.close();
      await pub?.stop();
    });

    it("reads ok while the preferred one works, whatever a fallback's last (stale) call showed; degraded while the preferred one fails", async () => {
      // Both fail once; then the preferred one works again, and the fallback is not asked any more.
      fake.failNext(1, { status: 500 });
      pub.failNext(1, { status: 500 });
      expect((await rawGet(`${app.url}/search?q=${unique('Nice')}&format=json`)).status).toBe(502);
      expect((await health(app)).status).toBe('degraded');
      await sleep(1_200);
      expect((await rawGet(`${app.url}/search?q=${unique('Nice')}&format=json`)).status).toBe(200);
      expect(pub.count('/search')).toBe(1);

      const h = await health(app);
      expect(h.status).toBe('ok');
      expect(h.upstream.state).toBe('ok');
      expect(h.upstream.upstreams?.map((u) => u.state)).toEqual(['ok', 'failing']);

      // The preferred one failing makes it degraded, though the fallback answers.
      fake.failNext(1, { status: 500 });
      expect((await rawGet(`${app.url}/search?q=${unique('Nice')}&format=json`)).status).toBe(200);
      const failing = await health(app);
      expect(failing.status).toBe('degraded');
      expect(failing.upstream.upstreams?.map((u) => u.state)).toEqual(['failing', 'ok']);
    });
  });
});
