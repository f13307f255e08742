import http, { Agent } from 'node:http';
import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { RedisClientType } from 'redis';
import { HitRateLimiter } from '../src/throttle/hit-rate-limiter';
import { RateLimits } from '../src/throttle/rate-limits';
import { LogLine, RunningApp, startApp, useE2e, useApp, useFake } from './support/app-harness';
import { FakeFailure, FakeNominatim, HostileMode } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { timedGet } from './support/traffic';

/*
 * Issue 18, hostile upstreams and clients: nothing wrong is ever kept (an upstream 200 is checked for
 * its format, an answer past UPSTREAM_MAX_BYTES is cut off, a redirect is not followed); upstream failures are logged at warn with
 * status, endpoint and duration, never the question; the hit limiter stays closed under a flood of
 * client keys; Accept-Encoding's q-values are honoured; slow clients are cut off and counted.
 */

jest.setTimeout(90_000);

let seq = 0;
/** A number in letters: digits next to n/s/e/w would be read as hemispheres by the canonicaliser. */
const letters = (n: number) => n.toString(26).replace(/./g, (c) => String.fromCharCode(97 + parseInt(c, 26)));
const unique = (what: string) => `${what}x${letters(++seq)}x${letters(Date.now() % 1e7)}`;

interface ErrorBody {
  statusCode: number;
  error: string;
  code: string;
  message: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hostile upstreams (e2e)', () => {
  let fake: FakeNominatim;
  let probe: RedisClientType;
  const e2e = useE2e({ probe: true }, (e2e) => ({ fake, probe } = e2e));

  afterEach(() => fake.reset());

  /** Cache entries in Redis whose question contains `token` (the canonical question is lower-cased); fill locks aside. */
  const keysFor = async (token: string): Promise<string[]> =>
    (await probe.keys('places:*')).filter((k) => k.includes(token.toLowerCase()) && !k.startsWith('places:v1:lock:'));

  /** The warn lines one client logged since `from` (an index into logs). */
  const warnings = (app: RunningApp, from: number, context: string): LogLine[] =>
    app.logs.slice(from).filter((l) => l.level === 'warn' && l.context === context);

  /** Nothing was kept: the same question goes upstream again (its second request) and the real answer is stored. */
  async function expectAskedAgainAndStored(app: RunningApp, url: string, q: string): Promise<void> {
    const good = await timedGet(`${app.url}${url}`);
    expect(good.status).toBe(200);
    expect(good.headers.get('x-cache')).toBe('MISS');
    expect(fake.count('/search')).toBe(2);
    expect(await keysFor(q)).toHaveLength(1);
  }

  /** A question answered and stored, then left past its 1 s TTL: what stale-if-error can serve. */
  async function storedThenExpired(app: RunningApp, q: string): Promise<{ body: string; key: string; storedBefore: string | null }> {
    const first = await timedGet(`${app.url}/search?q=${q}&format=json`);
    expect(first.status).toBe(200);
    const [key] = await keysFor(q);
    const storedBefore = await probe.get(key);
    await sleep(1_200);
    return { body: first.body, key, storedBefore };
  }

  describe('an upstream 200 that is not the format asked for: 502, nothing stored, stale-if-error', () => {
    const app = useApp(e2e, { CACHE_TTL_SECONDS: '1', STALE_WHILE_REVALIDATE_SECONDS: '0', LOG_LEVEL: 'warn' }, { captureLogs: true });

    it.each<[string, FakeFailure, (q: string) => string, string]>([
      ['an HTML error page', { mode: 'html' }, (q) => `/search?q=${q}&format=json`, 'Content-Type text/html where application/json was expected'],
      ['an HTML error page, to /api', { mode: 'html' }, (q) => `/api?q=${q}`, 'Content-Type text/html where application/json was expected'],
      ['truncated JSON', { mode: 'truncated' }, (q) => `/search?q=${q}&format=jsonv2`, 'invalid JSON'],
      ['malformed XML', { mode: 'malformed-xml' }, (q) => `/search?q=${q}&format=xml`, 'malformed XML (</searchresults> closes <place>'],
      ['truncated XML', { mode: 'truncated' }, (q) => `/search?q=${q}&format=xml`, 'malformed XML'],
      [
        "well-formed XML that is not Nominatim's (a portal's XHTML page)",
        { status: 200, body: '<?xml version="1.0"?>\n<html><body><p>Log in to continue</p></body></html>', headers: { 'Content-Type': 'text/xml; charset=utf-8' } },
        (q) => `/search?q=${q}&format=xml`,
        'XML whose root element is <html>',
      ],
    ])('%s', async (_what, mode, path, problem) => {
      const q = unique('Berlin');
      const logsFrom = app.logs.length;
      fake.failNext(1, mode);
      const bad = await timedGet(`${app.url}${path(q)}`);
      expect(bad.status).toBe(502);
      expect(bad.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(bad.headers.get('cache-control')).toBe('no-store');
      const body = JSON.parse(bad.body) as ErrorBody;
      expect(body).toMatchObject({ statusCode: 502, error: 'Bad Gateway', code: 'upstream_invalid' });
      expect(body.message).toContain(`Nominatim sent an answer that is not valid: ${problem}`);
      expect(await keysFor(q)).toEqual([]);

      // Logged at warn with endpoint and duration, without the question.
      const warned = warnings(app, logsFrom, 'NominatimClient');
      expect(warned.map((l) => l.msg)).toEqual([expect.stringMatching(new RegExp(`^Nominatim 127\\.0\\.0\\.1:\\d+ search answered 200 after \\d+ ms with .*; not stored$`))]);
      expect(warned[0].raw).not.toContain(q);

      await expectAskedAgainAndStored(app, path(q), q);
    });

    it('serves the stale copy instead (stale-if-error), and keeps it as it was', async () => {
      const q = unique('Zurich');
      const first = await storedThenExpired(app, q);

      for (const mode of [{ mode: 'html' }, { mode: 'truncated' }] as HostileMode[]) {
        fake.failNext(1, mode);
        const stale = await timedGet(`${app.url}/search?q=${q}&format=json`);
        expect(stale.status).toBe(200);
        expect(stale.headers.get('x-cache')).toBe('STALE');
        expect(stale.headers.get('cache-status')).toContain('fwd-status=502');
        expect(stale.headers.get('cache-status')).toContain('detail=stale-if-error');
        expect(stale.body).toBe(first.body);
      }
      expect(fake.count('/search')).toBe(3);
      expect(await probe.get(first.key)).toBe(first.storedBefore);
    });

    it('a text /status cut to "O" (Nominatim answers exactly OK): 502, nothing stored; stale-if-error later', async () => {
      const statusKeys = async () => (await probe.keys('places:v1:status:*')).filter((k) => !k.startsWith('places:v1:lock:'));
      fake.failNext(1, { mode: 'truncated' });
      const bad = await timedGet(`${app.url}/status`);
      expect(bad.status).toBe(502);
      expect(bad.headers.get('cache-control')).toBe('no-store');
      expect(JSON.parse(bad.body)).toMatchObject({
        statusCode: 502,
        code: 'upstream_invalid',
        message: 'Nominatim sent an answer that is not valid: a text status other than OK',
      });
      expect(await statusKeys()).toEqual([]);

      const good = await timedGet(`${app.url}/status`);
      expect({ status: good.status, body: good.body, cache: good.headers.get('x-cache') }).toEqual({ status: 200, body: 'OK', cache: 'MISS' });
      expect(fake.count('/status')).toBe(2);
      expect(await statusKeys()).toEqual(['places:v1:status:format=text']);

      await sleep(1_200); // past the 1 s STATUS_TTL_SECONDS (at most CACHE_TTL_SECONDS)
      fake.failNext(1, { mode: 'truncated' });
      const stale = await timedGet(`${app.url}/status`);
      expect({ status: stale.status, body: stale.body, cache: stale.headers.get('x-cache') }).toEqual({ status: 200, body: 'OK', cache: 'STALE' });
      expect(stale.headers.get('cache-status')).toContain('fwd-status=502');
      expect(fake.count('/status')).toBe(3);
    });
  });

  describe('an upstream redirect (NOMINATIM_URL http:// of a server on https): 502, not followed, nothing stored, stale-if-error', () => {
    const app = useApp(e2e, { CACHE_TTL_SECONDS: '1', STALE_WHILE_REVALIDATE_SECONDS: '0', LOG_LEVEL: 'warn' }, { captureLogs: true });
    const movedTo = (q: string) => ({ status: 301, body: '<html><body>301 Moved Permanently</body></html>', headers: { Location: `https://nominatim.example/search?q=${q}&format=json` } });

    it('answers 502 upstream_error without the Location, logs where it points, keeps nothing and marks the upstream failing', async () => {
      const q = unique('Berlin');
      const logsFrom = app.logs.length;
      fake.failNext(1, movedTo(q));
      const bad = await timedGet(`${app.url}/search?q=${q}&format=json`);
      expect(bad.status).toBe(502);
      expect(bad.headers.get('location')).toBeNull();
      expect(bad.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(bad.headers.get('cache-control')).toBe('no-store');
      expect(JSON.parse(bad.body)).toEqual({
        statusCode: 502,
        error: 'Bad Gateway',
        code: 'upstream_error',
        message: 'Nominatim request failed: status 301 (a redirect, not followed)',
      });
      expect(await keysFor(q)).toEqual([]);
      const health = (await (await fetch(`${app.url}/health/upstream`)).json()) as { info: { upstream: unknown } };
      expect(health.info.upstream).toMatchObject({ state: 'failing', lastCall: { status: 301 }, consecutiveFailures: 1 });

      // For the operator: where it points and what to set, at warn, without the question from the Location.
      const warned = warnings(app, logsFrom, 'NominatimClient');
      expect(warned.map((l) => l.msg)).toEqual([
        expect.stringMatching(
          /^Nominatim 127\.0\.0\.1:\d+ search answered 301 after \d+ ms: a redirect to https:\/\/nominatim\.example\/search, not followed; set NOMINATIM_URL to https:\/\/nominatim\.example$/,
        ),
      ]);
      expect(warned[0].raw).not.toContain(q);

      await expectAskedAgainAndStored(app, `/search?q=${q}&format=json`, q);
    });

    it('serves the stale copy instead (stale-if-error), and keeps it as it was', async () => {
      const q = unique('Zurich');
      const first = await storedThenExpired(app, q);

      fake.failNext(1, movedTo(q));
      const stale = await timedGet(`${app.url}/search?q=${q}&format=json`);
      expect(stale.status).toBe(200);
      expect(stale.headers.get('location')).toBeNull();
      expect(stale.headers.get('x-cache')).toBe('STALE');
      expect(stale.headers.get('cache-status')).toContain('fwd-status=301');
      expect(stale.headers.get('cache-status')).toContain('detail=stale-if-error');
      expect(stale.body).toBe(first.body);
      expect(fake.count('/search')).toBe(2);
      expect(await probe.get(first.key)).toBe(first.storedBefore);
    });
  });

  describe('an upstream status other than 200 and 4xx (Nominatim answers 200; a 204, 206 or 101 is something in front of it): 502, nothing stored, stale-if-error', () => {
    const app = useApp(e2e, { CACHE_TTL_SECONDS: '1', STALE_WHILE_REVALIDATE_SECONDS: '0', LOG_LEVEL: 'warn' }, { captureLogs: true });

    it.each<[string, FakeFailure, number]>([
      ['204 without a body', { status: 204, body: '' }, 204],
      ['206 with a part of a JSON array', { status: 206, body: '[]', headers: { 'Content-Type': 'application/json; charset=utf-8', 'Content-Range': 'bytes 0-1/400' } }, 206],
      // Node's client ends such a request without a response or an error: it used to wait for the timeout (504).
      ['101 Switching Protocols (a final 1xx), at once', { mode: 'switching-protocols' }, 101],
    ])('%s: 502 upstream_error, nothing stored, the upstream marked failing', async (_what, failure, status) => {
      const q = unique('Berlin');
      fake.failNext(1, failure);
      const started = performance.now();
      const bad = await timedGet(`${app.url}/search?q=${q}&format=json`);
      expect(bad.status).toBe(502);
      // Well before UPSTREAM_TIMEOUT_MS (10 s here): no waiting for an answer that will not come.
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(bad.headers.get('cache-control')).toBe('no-store');
      expect(JSON.parse(bad.body)).toEqual({
        statusCode: 502,
        error: 'Bad Gateway',
        code: 'upstream_error',
        message: `Nominatim request failed: status ${status}`,
      });
      expect(await keysFor(q)).toEqual([]);
      const health = (await (await fetch(`${app.url}/health/upstream`)).json()) as { info: { upstream: unknown } };
      expect(health.info.upstream).toMatchObject({ state: 'failing', lastCall: { status } });

      await expectAskedAgainAndStored(app, `/search?q=${q}&format=json`, q);
    });

    it('serves the stale copy instead of a 204 (stale-if-error), and keeps it as it was', async () => {
      const q = unique('Zurich');
      const first = await storedThenExpired(app, q);

      fake.failNext(1, { status: 204, body: '' });
      const stale = await timedGet(`${app.url}/search?q=${q}&format=json`);
      expect(stale.status).toBe(200);
      expect(stale.headers.get('x-cache')).toBe('STALE');
      expect(stale.headers.get('cache-status')).toContain('fwd-status=204');
      expect(stale.body).toBe(first.body);
      expect(fake.count('/search')).toBe(2);
      expect(await probe.get(first.key)).toBe(first.storedBefore);
    });
  });

  describe('an entry in Redis this service could not have written (a shared Redis, a hand-made import)', () => {
    // L1 off: every hit reads Redis, so what is there is what is served.
    const app = useApp(e2e, { L1_MAX_BYTES: '0', LOG_LEVEL: 'warn' }, { captureLogs: true });

    it.each([
      ['a Content-Type Node will not send', { t: 'application/json; charset=€' }],
      ['a control character in the Content-Type', { t: 'application/json\u0000' }],
      ['a status without a body', { s: 304 }],
      ['a body that is not a string', { b: 42 }],
    ])('%s: read as no entry, asked upstream again and replaced; the process answers on', async (_what, corrupt) => {
      const q = unique('Lyon');
      const url = `${app.url}/search?q=${q}&format=json`;
      expect((await timedGet(url)).headers.get('x-cache')).toBe('MISS');
      const [key] = await keysFor(q);
      const stored = JSON.parse((await probe.get(key))!) as Record<string, unknown>;
      await probe.set(key, JSON.stringify({ ...stored, ...corrupt }));

      const again = await timedGet(url);
      expect([again.status, again.headers.get('x-cache'), again.headers.get('content-type')]).toEqual([200, 'MISS', 'application/json; charset=utf-8']);
      expect(fake.count('/search')).toBe(2);
      expect(JSON.parse((await probe.get(key))!)).toMatchObject({ s: 200, t: 'application/json; charset=utf-8' });
      expect((await timedGet(url)).headers.get('x-cache')).toBe('HIT');
    });

    it.each([
      ['longer than 200 characters', `application/json; charset=utf-8; profile="${'p'.repeat(200)}"`],
      ['with a byte beyond ASCII', 'application/json; charset=utf-8; x=\u00e9'],
    ])('an upstream 200 whose Content-Type is %s is stored with Nominatim\'s, so that it reads back: one upstream request, then hits', async (_what, contentType) => {
      const q = unique('Nantes');
      const url = `${app.url}/search?q=${q}&format=json`;
      const body = JSON.stringify([{ place_id: 1, display_name: q }]);
      fake.failNext(1, { status: 200, body, headers: { 'Content-Type': contentType } });
      const miss = await timedGet(url);
      expect([miss.status, miss.headers.get('x-cache'), miss.body]).toEqual([200, 'MISS', body]);
      expect(miss.headers.get('cache-status')).toContain('; stored;');

      const hit = await timedGet(url);
      expect([hit.status, hit.headers.get('x-cache'), hit.headers.get('content-type'), hit.body]).toEqual([200, 'HIT', 'application/json; charset=utf-8', body]);
      expect(fake.count('/search')).toBe(1);
    });
  });

  describe('UPSTREAM_MAX_BYTES', () => {
    let app: RunningApp;

    afterEach(async () => {
      await app?.close();
    });

    it('cuts a huge answer off as soon as the limit is passed: 502 upstream_too_large, nothing stored', async () => {
      const limit = 64 * 1024;
      const huge = 64 * 1024 * 1024;
      app = await e2e.startApp({ UPSTREAM_MAX_BYTES: String(limit) }, { captureLogs: true });
      const q = unique('Moscow');
      fake.failNext(1, { mode: 'huge', bytes: huge });
      const res = await timedGet(`${app.url}/search?q=${q}&format=json`, 60_000);
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toEqual({
        statusCode: 502,
        error: 'Bad Gateway',
        code: 'upstream_too_large',
        message: `Nominatim's answer is larger than ${limit} bytes (UPSTREAM_MAX_BYTES)`,
      });
      expect(await keysFor(q)).toEqual([]);
      // The connection was closed under the fake: it never finished, and sent a small part of the answer
      // (what the loopback socket buffers hold past the limit, a few MiB, not the 64 MiB).
      const sent = fake.requests[0];
      for (let i = 0; i < 100 && sent.completed === undefined; i++) await sleep(20);
      expect(sent.completed).toBe(false);
      expect(sent.bytesSent).toBeGreaterThan(limit);
      expect(sent.bytesSent).toBeLessThan(huge / 4);
      const warned = app.logs.filter((l) => l.level === 'warn' && l.context === 'NominatimClient').map((l) => l.msg);
      expect(warned).toEqual([
        expect.stringMatching(new RegExp(`^Nominatim 127\\.0\\.0\\.1:\\d+ search answered more than ${limit} bytes \\(UPSTREAM_MAX_BYTES\\); cut off after \\d+ ms$`)),
      ]);
    });

    it('by default (2 MiB): a 3 MiB answer is refused, a 1.5 MiB one stored gzip-compressed and served', async () => {
      app = await e2e.startApp();
      const tooBig = unique('Paris');
      fake.failNext(1, { mode: 'huge', bytes: 3 * 1024 * 1024 });
      const refused = await timedGet(`${app.url}/search?q=${tooBig}&format=json`, 60_000);
      expect(refused.status).toBe(502);
      expect((JSON.parse(refused.body) as ErrorBody).code).toBe('upstream_too_large');
      expect(await keysFor(tooBig)).toEqual([]);

      const big = unique('Rome');
      fake.failNext(1, { mode: 'huge', bytes: 1.5 * 1024 * 1024 });
      const miss = await timedGet(`${app.url}/search?q=${big}&format=json`, 60_000);
      expect(miss.status).toBe(200);
      expect(Buffer.byteLength(miss.body)).toBeGreaterThanOrEqual(1.5 * 1024 * 1024);
      const [key] = await keysFor(big);
      const stored = JSON.parse((await probe.get(key))!) as { z: boolean; b: string };
      expect(stored.z).toBe(true);
      expect(gunzipSync(Buffer.from(stored.b, 'base64')).toString()).toBe(miss.body);
      const hit = await fetch(`${app.url}/search?q=${big}&format=json`, { headers: { 'Accept-Encoding': 'gzip' } });
      expect(hit.headers.get('x-cache')).toBe('HIT');
      expect(hit.headers.get('content-encoding')).toBe('gzip');
      expect(await hit.text()).toBe(miss.body);
    });
  });
});

/** The value of one series in a Prometheus text exposition (0 when absent). */
async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('hostile clients (e2e)', () => {
  const fake = useFake();

  afterEach(() => fake.reset());

  describe('upstream failures in the log', () => {
    let app: RunningApp;

    beforeAll(async () => {
      app = await startApp({ NOMINATIM_URL: fake.url, UPSTREAM_TIMEOUT_MS: '1000', LOG_LEVEL: 'info' }, { captureLogs: true });
    });

    afterAll(async () => {
      await app?.close();
    });

    it('logs an upstream 5xx and a timeout (a slow drip) at warn with status, endpoint and duration, never the question', async () => {
      const from = app.logs.length;
      fake.failNext(1, { status: 503, body: 'Service Unavailable' });
      const failed = await timedGet(`${app.url}/search?q=Secretstrasse&format=json`);
      expect(failed.status).toBe(502);
      // A byte every 200 ms: never idle for long, but far from done within UPSTREAM_TIMEOUT_MS.
      fake.failNext(1, { mode: 'drip', intervalMs: 200 });
      const dripped = await timedGet(`${app.url}/reverse?lat=52.5163&lon=13.3777&format=json`);
      expect(dripped.status).toBe(504);
      expect(fake.requests[1].completed).toBe(false);

      const warned = app.logs.slice(from).filter((l) => l.level === 'warn');
      expect(warned.map((l) => [l.context, l.msg])).toEqual([
        ['NominatimClient', expect.stringMatching(/^Nominatim 127\.0\.0\.1:\d+ search answered 503 after \d+ ms$/)],
        ['NominatimClient', expect.stringMatching(/^Nominatim 127\.0\.0\.1:\d+ reverse timed out after \d+ ms$/)],
      ]);
      for (const line of app.logs.slice(from).filter((l) => l.level === 'warn' || l.level === 'info')) {
        expect(line.raw).not.toMatch(/Secretstrasse|secretstrasse|52\.5163/);
      }
    });
  });

  describe('the hit limiter under a flood of client keys (TRUST_PROXY=true, forged X-Forwarded-For)', () => {
    let app: RunningApp;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });

    beforeAll(async () => {
      app = await startApp({
        NOMINATIM_URL: fake.url,
        TRUST_PROXY: 'true',
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_HITS: '5',
        RATE_LIMIT_MISSES: '1000000',
        RATE_LIMIT_HIT_CLIENTS: '100',
      });
    });

    afterAll(async () => {
      agent.destroy();
      await app?.close();
    });

    const hit = (xff: string) =>
      new Promise<number>((resolve, reject) => {
        const req = new URL(`${app.url}/search?q=Berlin&format=json`);
        import('node:http')
          .then(({ get }) =>
            get(req, { agent, headers: { 'X-Forwarded-For': xff } }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            }).on('error', reject),
          )
          .catch(reject);
      });

    it('keeps counting: a heavy client stays refused, a newcomer is limited, memory stays bounded', async () => {
      expect(await hit('10.0.0.1')).toBe(200); // the miss that fills the cache (not a hit)
      for (let i = 0; i < 5; i++) expect(await hit('10.0.0.2')).toBe(200);
      expect(await hit('10.0.0.2')).toBe(429);

      // 20x the limiter's capacity in forged client keys, 8 at a time; the heavy client asks in between.
      const limiter = (app.app.get(RateLimits) as unknown as { hits: HitRateLimiter }).hits;
      const statuses = new Map<number, number>();
      let heavyAllowed = 0;
      let mostClients = 0;
      for (let i = 0; i < 2000; i += 8) {
        const batch = await Promise.all(Array.from({ length: 8 }, (_, j) => hit(`203.0.${(i + j) >> 8}.${(i + j) & 255}`)));
        for (const status of batch) statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if ((await hit('10.0.0.2')) !== 429) heavyAllowed++;
        mostClients = Math.max(mostClients, limiter.clients);
      }
      expect({ statuses: Object.fromEntries(statuses), heavyAllowed, mostClients }).toEqual({ statuses: { 200: 2000 }, heavyAllowed: 0, mostClients: 100 });

      // Once the table is full, a new client is counted like any other (it failed open here before).
      for (let i = 0; i < 5; i++) expect(await hit('10.0.0.3')).toBe(200);
      expect(await hit('10.0.0.3')).toBe(429);
    });
  });

  describe('Accept-Encoding with q-values (RFC 9110 section 12.5.3)', () => {
    let app: RunningApp;

    beforeAll(async () => {
      app = await startApp({ NOMINATIM_URL: fake.url, COMPRESS_MIN_BYTES: '100' });
    });

    afterAll(async () => {
      await app?.close();
    });

    // Each case asks in its own language, so that its first request is a miss.
    const languages = ['de', 'en', 'fr', 'it', 'es', 'ru', 'ja', 'pt', 'pl', 'is', 'nl', 'sv'];
    it.each([
      ['gzip', 'gzip'],
      ['gzip, deflate, br', 'gzip'],
      ['*', 'gzip'],
      ['identity;q=0, gzip;q=0.5', 'gzip'],
      ['x-gzip', 'gzip'],
      ['gzip;q=0', undefined],
      ['gzip;q=0.000, *', undefined],
      ['nogzip', undefined],
      ['br, deflate', undefined],
      ['gzip;q=0.5, identity', undefined],
      ['gzip;q=2', undefined],
      ['', undefined],
    ])('%j → %s, on a miss and on a hit, raw and /api', async (acceptEncoding, expected) => {
      const language = languages.shift()!;
      for (const path of ['/search?q=Zurich&format=json', '/api?q=Berlin']) {
        for (const cache of ['MISS', 'HIT']) {
          const res = await rawGet(`${app.url}${path}`, { 'Accept-Encoding': acceptEncoding, 'Accept-Language': language });
          expect([path, res.status, res.headers['x-cache'], res.headers['content-encoding']]).toEqual([path, 200, cache, expected]);
          const text = (expected === 'gzip' ? gunzipSync(res.body) : res.body).toString();
          expect(text).toContain('"place_id":');
        }
      }
    });
  });

  describe('request bodies: no route reads one', () => {
    let app: RunningApp;

    beforeAll(async () => {
      app = await startApp({ NOMINATIM_URL: fake.url });
    });

    afterAll(async () => {
      await app?.close();
    });

    /** One request with a body, over plain node:http (fetch sends no body with a GET). */
    const send = (method: string, path: string, contentType: string, body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        // Content-Length set here: node:http sends a GET's body without one, as the start of another request.
        const headers = { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)) };
        const req = http.request(`${app.url}${path}`, { method, agent: false, headers }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });

    it('another method on a place route is the documented 404 whatever its body; a probe with a body is answered', async () => {
      // A JSON body that does not parse, and a form body past body-parser's 100 kB: 404 like any POST or PUT there.
      const post = await send('POST', '/api?q=berlin', 'application/json', '{bad');
      expect(post.status).toBe(404);
      expect(JSON.parse(post.body)).toMatchObject({ statusCode: 404, error: 'Not Found' });
      const put = await send('PUT', '/search?q=berlin', 'application/x-www-form-urlencoded', `q=${'a'.repeat(200_000)}`);
      expect(put.status).toBe(404);
      expect(JSON.parse(put.body)).toMatchObject({ statusCode: 404, error: 'Not Found' });
      // A health check that sends a body (some load balancers' probes can) still learns the health.
      const ready = await send('GET', '/health/ready', 'application/json', '{bad');
      expect(ready.status).toBe(200);
      expect(fake.count()).toBe(0);
    });
  });

  describe('slow clients are cut off and counted', () => {
    let app: RunningApp;
    let port: number;

    beforeAll(async () => {
      app = await startApp({ NOMINATIM_URL: fake.url, HEADERS_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '2000', KEEP_ALIVE_TIMEOUT_MS: '1000' });
      port = Number(new URL(app.url).port);
    });

    afterAll(async () => {
      await app?.close();
    });

    /**
     * Sends `head` at once, then `drip` one byte every 50 ms until done or the server closes: how many
     * of the drip's bytes went out, what came back, and how long the connection lived.
     */
    const slowClient = (head: string, drip: string) =>
      new Promise<{ dripped: number; reply: string; ms: number }>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        const started = performance.now();
        let reply = '';
        let dripped = 0;
        let timer: NodeJS.Timeout | undefined;
        socket.on('connect', () => {
          socket.write(head);
          timer = setInterval(() => {
            if (dripped >= drip.length) return clearInterval(timer);
            socket.write(drip[dripped++]);
          }, 50);
        });
        socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearInterval(timer);
          resolve({ dripped, reply, ms: performance.now() - started });
        });
      });

    it('slowloris (headers a byte at a time) gets 408 and is closed after HEADERS_TIMEOUT_MS, long before it is done', async () => {
      const before = await metric(app.url, 'places_http_client_errors_total{reason="timeout"}');
      // 400 bytes at 50 ms: 20 s of sending, against a 1 s bound.
      const r = await slowClient('GET /health/live HTTP/1.1\r\nHost: x\r\n', `X-Slow: ${'a'.repeat(400)}\r\n\r\n`);
      expect(r.reply).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      expect(r.dripped).toBeLessThan(200);
      expect(r.ms).toBeGreaterThanOrEqual(1000);
      expect(await metric(app.url, 'places_http_client_errors_total{reason="timeout"}')).toBe(before + 1);
    });

    it('a slow body (a byte at a time) is cut off after REQUEST_TIMEOUT_MS, long before it is done', async () => {
      const before = await metric(app.url, 'places_http_client_errors_total{reason="timeout"}');
      const r = await slowClient('GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n', 'b'.repeat(400));
      // The GET is answered at once; its body keeps the connection until the request timeout.
      expect(r.reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(r.dripped).toBeLessThan(200);
      expect(r.ms).toBeGreaterThanOrEqual(2000);
      expect(await metric(app.url, 'places_http_client_errors_total{reason="timeout"}')).toBe(before + 1);
    });

    it('answers an ordinary client as before, on a kept-alive connection closed once idle for KEEP_ALIVE_TIMEOUT_MS', async () => {
      const r = await slowClient('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n', '');
      expect(r.reply).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Keep-Alive: timeout=1\r\n/);
      expect(r.ms).toBeGreaterThanOrEqual(1000);
    });
  });
});
