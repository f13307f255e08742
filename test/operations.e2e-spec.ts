import { APP_VERSION } from '../src/config/configuration';
import { eventually, RunningApp, startApp, useFake } from './support/app-harness';
import { parsePrometheus, Sample, sampleValue } from './support/prometheus';
import { RedisProcess, startRedis } from './support/redis-server';
import { stalledDuring, timedGet, watchEventLoop } from './support/traffic';

// The e2e project's testTimeout is not applied per project by Jest 30; these tests spawn processes and wait.
jest.setTimeout(60_000);

/**
 * Upstream rate with Redis: the shared pacer must start a request within a guard of 5% of the
 * interval, which at the harness's 1000/s (0.05 ms) no timer can meet; 10/s leaves it 5 ms.
 */
const PACED_RPS = '10';

interface IndicatorBody {
  status: string;
  state?: string;
  responseTimeMs?: number;
  lastCall?: { at: string } | null;
  [field: string]: unknown;
}

/** terminus' answer. */
interface HealthBody {
  status: string;
  info: Record<string, IndicatorBody>;
  error: Record<string, IndicatorBody>;
  details: Record<string, IndicatorBody>;
}

/** Health, metrics and log lines (issue 4, operations): asserted answers, not just fetched ones. */
describe('operations (e2e): health, metrics, request ids and logs', () => {
  const upstream = useFake();

  beforeEach(() => upstream.reset());

  const getJson = async (svc: RunningApp, path: string): Promise<{ status: number; body: HealthBody }> => {
    const res = await fetch(`${svc.url}${path}`);
    return { status: res.status, body: (await res.json()) as HealthBody };
  };

  const scrape = async (svc: RunningApp): Promise<{ text: string; samples: Sample[] }> => {
    const res = await fetch(`${svc.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    return { text, samples: parsePrometheus(text) };
  };

  /** terminus' answer for one indicator that is up or degraded. */
  const healthy = (status: 'ok' | 'degraded', key: string, indicator: Record<string, unknown>) => ({
    status,
    info: { [key]: indicator },
    error: {},
    details: { [key]: indicator },
  });

  describe('with Redis', () => {
    let redis: RedisProcess;
    let svc: RunningApp;

    beforeAll(async () => {
      redis = await startRedis();
      svc = await startApp({ REDIS_URL: redis.url, NOMINATIM_URL: upstream.url, NOMINATIM_MAX_RPS: PACED_RPS, LOG_LEVEL: 'info' }, { captureLogs: true });
      await eventually(async () => (await getJson(svc, '/health/ready')).body.details.redis.state === 'ready');
    });

    afterAll(async () => {
      await svc.close();
      await redis.stop();
    });

    it('/health/live: 200 with the process, never cached', async () => {
      const res = await fetch(`${svc.url}/health/live`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-cache, no-store, must-revalidate');
      const process_ = { status: 'up', pid: process.pid, uptimeSeconds: expect.any(Number), version: APP_VERSION };
      expect(await res.json()).toEqual(healthy('ok', 'process', process_));
    });

    it('/health/ready: ok after a PING round trip to Redis', async () => {
      const { status, body } = await getJson(svc, '/health/ready');
      expect(status).toBe(200);
      // 'up' is a PING answered within REDIS_OP_TIMEOUT_MS (a later one is 'degraded'; see the frozen case below).
      expect(body).toEqual(healthy('ok', 'redis', { status: 'up', state: 'ready', responseTimeMs: expect.any(Number) }));
    });

    it('counts a miss and a hit, the upstream call and its latency, and reports the upstream from that call only', async () => {
      const before = await getJson(svc, '/health/upstream');
      expect(before).toEqual({
        status: 200,
        body: healthy('ok', 'upstream', {
          status: 'up',
          state: 'unknown',
          url: upstream.url,
          lastCall: null,
          lastSuccessAgeSeconds: null,
          consecutiveFailures: 0,
          coolDownRemainingSeconds: 0,
          queued: 0,
        }),
      });

      const askedAt = Date.now();
      const miss = await fetch(`${svc.url}/api?q=Berlin`);
      expect(miss.status).toBe(200);
      expect(miss.headers.get('x-cache')).toBe('MISS');
      const hit = await fetch(`${svc.url}/api?q=Berlin`);
      expect(hit.headers.get('x-cache')).toBe('HIT');
      expect(((await hit.json()) as { cache: boolean }).cache).toBe(true);

      const { samples } = await scrape(svc);
      expect(sampleValue(samples, 'places_cache_outcomes_total', { outcome: 'miss', tier: 'l2' })).toBe(1);
      expect(sampleValue(samples, 'places_cache_outcomes_total', { outcome: 'hit', tier: 'l1' })).toBe(1);
      expect(samples.filter((s) => s.name === 'places_cache_outcomes_total').map((s) => s.value)).toEqual([1, 1]);
      expect(sampleValue(samples, 'places_upstream_requests_total', { endpoint: 'search', status: '200', upstream: new URL(upstream.url).host })).toBe(1);
      expect(sampleValue(samples, 'places_upstream_duration_seconds_count', { endpoint: 'search', upstream: new URL(upstream.url).host })).toBe(1);
      expect(sampleValue(samples, 'places_upstream_duration_seconds_sum', { endpoint: 'search', upstream: new URL(upstream.url).host })).toBeGreaterThan(0);
      expect(sampleValue(samples, 'places_pacing_wait_seconds_count')).toBe(1);
      expect(sampleValue(samples, 'places_pacing_queue_length')).toBe(0);
      expect(sampleValue(samples, 'places_http_requests_total', { route: '/api', method: 'GET', status: '200' })).toBe(2);
      expect(sampleValue(samples, 'places_http_request_duration_seconds_count', { route: '/api' })).toBe(2);
      expect(sampleValue(samples, 'places_redis_connected')).toBe(1);
      expect(sampleValue(samples, 'places_l1_entries')).toBe(1);
      expect(sampleValue(samples, 'places_l1_bytes')).toBeGreaterThan(100);
      expect(sampleValue(samples, 'places_redis_errors_total', {}, true)).toBeUndefined();

      const after = await getJson(svc, '/health/upstream');
      expect(after.status).toBe(200);
      expect(after.body).toEqual(
        healthy('ok', 'upstream', {
          status: 'up',
          state: 'ok',
          url: upstream.url,
          lastCall: { endpoint: 'search', status: 200, durationMs: expect.any(Number), at: expect.any(String), ageSeconds: expect.any(Number) },
          lastSuccessAgeSeconds: expect.any(Number),
          consecutiveFailures: 0,
          coolDownRemainingSeconds: 0,
          queued: 0,
        }),
      );
      // The call of the miss above: made after it was asked, before now.
      const at = Date.parse(after.body.details.upstream.lastCall!.at);
      expect([at >= askedAt, at <= Date.now()]).toEqual([true, true]);
      // Health probes never reach Nominatim: the one request is the miss's.
      await Promise.all([1, 2, 3].map(() => getJson(svc, '/health/upstream')));
      await getJson(svc, '/health/ready');
      expect(upstream.count()).toBe(1);
    });

    it('/health/upstream counts in queued the misses waiting for their upstream slot, and 0 once they are answered', async () => {
      // At PACED_RPS=10 six distinct misses at once take half a second to send: the later ones wait.
      const misses = Promise.all(Array.from({ length: 6 }, (_, i) => fetch(`${svc.url}/api?q=Queued%20${i}`)));
      await eventually(async () => ((await getJson(svc, '/health/upstream')).body.details.upstream.queued as number) > 0);
      expect((await misses).map((r) => r.status)).toEqual(Array(6).fill(200));
      expect((await getJson(svc, '/health/upstream')).body.details.upstream).toMatchObject({ state: 'ok', queued: 0 });
      expect(upstream.count()).toBe(6);
    });

    it('reports a failing upstream, then a cool-down, as degraded but 200', async () => {
      upstream.failNext(1, { status: 500, body: 'Internal Server Error' });
      const failed = await fetch(`${svc.url}/api?q=Nowhere%20500`);
      expect(failed.status).toBe(502);
      const failing = await getJson(svc, '/health/upstream');
      expect(failing.status).toBe(200);
      expect(failing.body.status).toBe('degraded');
      expect(failing.body.info.upstream).toMatchObject({
        status: 'degraded',
        state: 'failing',
        lastCall: { endpoint: 'search', status: 500 },
        consecutiveFailures: 1,
        coolDownRemainingSeconds: 0,
      });

      upstream.failNext(1, { status: 429, headers: { 'Retry-After': '2' } });
      const refused = await fetch(`${svc.url}/api?q=Nowhere%20429`);
      expect(refused.status).toBe(503);
      const cooling = await getJson(svc, '/health/upstream');
      expect(cooling.status).toBe(200);
      expect(cooling.body.details.upstream).toMatchObject({
        status: 'degraded',
        state: 'cooling_down',
        lastCall: { status: 429 },
        consecutiveFailures: 2,
        coolDownRemainingSeconds: 2,
      });
      const { samples } = await scrape(svc);
      expect(sampleValue(samples, 'places_upstream_requests_total', { endpoint: 'search', status: '500', upstream: new URL(upstream.url).host })).toBe(1);
      expect(sampleValue(samples, 'places_upstream_requests_total', { endpoint: 'search', status: '429', upstream: new URL(upstream.url).host })).toBe(1);
      expect(upstream.count()).toBe(2);

      // The 2 s cool-down ends (whenever this machine gets there), so the next test starts without it.
      await eventually(async () => (await getJson(svc, '/health/upstream')).body.details.upstream.state !== 'cooling_down', 15_000);
    });

    it('stays ready (200, degraded) when Redis dies; /api still answers (BYPASS) and the gauge drops to 0', async () => {
      await redis.kill();
      await eventually(async () => (await getJson(svc, '/health/ready')).body.details.redis.state === 'down');
      const ready = await getJson(svc, '/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body).toEqual(
        healthy('degraded', 'redis', {
          status: 'degraded',
          state: 'down',
          message: 'Redis unavailable: down; serving without the shared cache (X-Cache: BYPASS)',
          responseTimeMs: expect.any(Number),
        }),
      );
      expect((await fetch(`${svc.url}/health/live`)).status).toBe(200);

      const res = await fetch(`${svc.url}/api?q=${encodeURIComponent('Zürich')}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-cache')).toBe('BYPASS');
      expect(((await res.json()) as { cache: boolean; data: unknown[] }).data.length).toBeGreaterThan(0);

      const { samples } = await scrape(svc);
      expect(sampleValue(samples, 'places_redis_connected')).toBe(0);
      expect(sampleValue(samples, 'places_cache_outcomes_total', { outcome: 'bypass', tier: 'l1' })).toBe(1);
      // State changes are logged, not every failed command.
      const down = svc.logs.filter((l) => l.context === 'RedisConnectionService' && l.level === 'warn');
      expect(down.length).toBeGreaterThanOrEqual(1);
      expect(down.length).toBeLessThanOrEqual(2);
    });
  });

  describe('without REDIS_URL (in-memory)', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: upstream.url });
    });

    afterAll(() => svc.close());

    it('/health/ready reports Redis as disabled, and ready', async () => {
      expect(await getJson(svc, '/health/ready')).toEqual({
        status: 200,
        body: healthy('ok', 'redis', {
          status: 'up',
          state: 'disabled',
          message: 'REDIS_URL is not set: in-memory cache, nothing shared between instances',
        }),
      });
    });

    it('documents the operational endpoints in the OpenAPI document, with the answers above as examples', async () => {
      const doc = (await (await fetch(`${svc.url}/docs-json`)).json()) as {
        paths: Record<string, { get?: { tags?: string[]; responses: Record<string, { content?: Record<string, { examples?: Record<string, unknown> }> }> } }>;
      };
      for (const path of ['/health/live', '/health/ready', '/health/upstream', '/metrics']) {
        expect([path, doc.paths[path]?.get?.tags]).toEqual([path, ['operations']]);
      }
      const ready = doc.paths['/health/ready'].get!.responses['200'].content!['application/json'].examples!;
      expect(Object.keys(ready)).toEqual(['ok', 'degraded', 'refusing', 'full', 'memory']);
      expect(Object.keys(doc.paths['/health/upstream'].get!.responses['200'].content!['application/json'].examples!)).toEqual(['ok', 'coolingDown']);
      expect(Object.keys(doc.paths['/metrics'].get!.responses['200'].content!)).toEqual(['text/plain']);
    });

    it('leaves the Redis gauge out and still counts misses and hits', async () => {
      await fetch(`${svc.url}/search?q=Berlin&format=json`);
      await fetch(`${svc.url}/search?q=Berlin&format=json`);
      const { text, samples } = await scrape(svc);
      expect(text).not.toContain('places_redis_connected');
      expect(sampleValue(samples, 'places_cache_outcomes_total', { outcome: 'miss', tier: 'l2' })).toBe(1);
      expect(sampleValue(samples, 'places_cache_outcomes_total', { outcome: 'hit', tier: 'l1' })).toBe(1);
      expect(sampleValue(samples, 'places_http_requests_total', { route: '/search', method: 'GET', status: '200' })).toBe(2);
      expect(sampleValue(samples, 'places_l1_entries')).toBe(1);
      // Node.js process metrics come along, under the same prefix.
      expect(sampleValue(samples, 'places_process_resident_memory_bytes')).toBeGreaterThan(0);
    });
  });

  describe('NOMINATIM_URL with credentials (a private server behind basic auth)', () => {
    let svc: RunningApp;
    const withCredentials = () => {
      const url = new URL(upstream.url);
      url.username = 'places';
      url.password = 'upstream-secret-pw';
      return url.toString();
    };

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: withCredentials() });
    });

    afterAll(() => svc.close());

    it('/health/upstream names the upstream without the credentials, before and after a call', async () => {
      const expectNoCredentials = async () => {
        const text = await (await fetch(`${svc.url}/health/upstream`)).text();
        expect(text).not.toContain('upstream-secret-pw');
        expect(text).not.toContain('places@');
        expect((JSON.parse(text) as HealthBody).details.upstream.url).toBe(upstream.url);
      };
      await expectNoCredentials();
      expect((await fetch(`${svc.url}/search?q=Credentials&format=json`)).status).toBe(200);
      await expectNoCredentials();
      expect(upstream.count('/search')).toBe(1);
    });
  });

  describe('request ids and request log lines', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: upstream.url, LOG_LEVEL: 'info' }, { captureLogs: true });
    });

    afterAll(() => svc.close());

    const requestLines = (app: RunningApp) =>
      app.logs.filter((l) => l.msg === 'request').map((l) => JSON.parse(l.raw) as Record<string, unknown>);

    it('returns the X-Request-Id it was given on every answer: hit, miss, 400, 404, 502, health, metrics, preflight', async () => {
      upstream.failNext(1, { status: 500 }); // the first upstream call, the first case's
      const cases: Array<[string, RequestInit | undefined, number]> = [
        ['/api?q=Upstream%20fails', undefined, 502],
        ['/api?q=Bern', undefined, 200],
        ['/api?q=Bern', undefined, 200],
        ['/api', undefined, 400],
        ['/search?q=Berlin&format=nonsense', undefined, 400],
        ['/no/such/route', undefined, 404],
        ['/health/ready', undefined, 200],
        ['/metrics', undefined, 200],
        ['/api?q=Bern', { method: 'OPTIONS', headers: { Origin: 'https://maps.example', 'Access-Control-Request-Method': 'GET' } }, 204],
      ];
      for (const [i, [path, init, status]] of cases.entries()) {
        const id = `client-${i}.trace:1@svc_a`;
        const res = await fetch(`${svc.url}${path}`, { ...init, headers: { ...(init?.headers as object), 'X-Request-Id': id } });
        expect([path, res.status]).toEqual([path, status]);
        expect([path, res.headers.get('x-request-id')]).toEqual([path, id]);
        await res.arrayBuffer();
      }
    });

    it('generates an id when there is none or it is not a plain token (spaces, too long)', async () => {
      const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
      const ids: string[] = [];
      for (const header of [undefined, 'two words', 'x'.repeat(129), '<script>']) {
        const res = await fetch(`${svc.url}/no/such/route`, { headers: header === undefined ? {} : { 'X-Request-Id': header } });
        expect(res.status).toBe(404);
        ids.push(res.headers.get('x-request-id') ?? '');
      }
      for (const id of ids) expect(id).toMatch(uuid);
      expect(new Set(ids).size).toBe(4);
    });

    it('writes one info line per request with id, method, route, status, ms, cache and a hash of the query, never the query', async () => {
      const secret = 'Pilkington Avenue 17, Birmingham';
      const q = `/search?q=${encodeURIComponent(secret)}&format=json`;
      await (await fetch(`${svc.url}${q}`, { headers: { 'X-Request-Id': 'log-miss' } })).arrayBuffer();
      await (await fetch(`${svc.url}${q}`, { headers: { 'X-Request-Id': 'log-hit' } })).arrayBuffer();
      await eventually(() => requestLines(svc).some((l) => l.reqId === 'log-hit'));
      const miss = requestLines(svc).find((l) => l.reqId === 'log-miss');
      const hit = requestLines(svc).find((l) => l.reqId === 'log-hit');
      const qhash = expect.stringMatching(/^[\w-]{16}$/);
      const common = { level: 'info', time: expect.any(String), app: 'places-cache', method: 'GET', route: '/search', status: 200, ms: expect.any(Number), qhash, msg: 'request' };
      expect(miss).toEqual({ ...common, reqId: 'log-miss', cache: 'MISS' });
      expect(hit).toEqual({ ...common, reqId: 'log-hit', cache: 'HIT' });
      expect(hit!.qhash).toBe(miss!.qhash);
      for (const line of svc.logs) {
        expect(line.raw).not.toMatch(/pilkington/i);
        expect(line.raw).not.toContain('Birmingham');
      }
      // Paths outside the known routes are one label, so a scanner cannot blow up the metrics.
      await (await fetch(`${svc.url}/wp-admin/${'a'.repeat(20)}`, { headers: { 'X-Request-Id': 'log-404' } })).arrayBuffer();
      await eventually(() => requestLines(svc).some((l) => l.reqId === 'log-404'));
      expect(requestLines(svc).find((l) => l.reqId === 'log-404')).toMatchObject({ route: 'other', status: 404 });
    });

    it('shows the raw query only at LOG_LEVEL=debug', async () => {
      const debug = await startApp({ NOMINATIM_URL: upstream.url, LOG_LEVEL: 'debug' }, { captureLogs: true });
      try {
        await (await fetch(`${debug.url}/api?q=Unter%20den%20Linden`, { headers: { 'X-Request-Id': 'dbg' } })).arrayBuffer();
        await eventually(() => requestLines(debug).some((l) => l.reqId === 'dbg'));
        expect(requestLines(debug).find((l) => l.reqId === 'dbg')).toMatchObject({
          route: '/api',
          cache: 'MISS',
          qhash: expect.stringMatching(/^[\w-]{16}$/),
          query: 'q=Unter%20den%20Linden',
        });
      } finally {
        await debug.close();
      }
    });

    it('honours LOG_LEVEL=warn: no start-up or request lines', async () => {
      const quiet = await startApp({ NOMINATIM_URL: upstream.url, LOG_LEVEL: 'warn' }, { captureLogs: true });
      try {
        const res = await fetch(`${quiet.url}/api?q=Berlin`);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        await (await fetch(`${quiet.url}/health/live`)).arrayBuffer();
        expect(quiet.logs.filter((l) => l.level === 'info' || l.level === 'debug')).toEqual([]);
      } finally {
        await quiet.close();
      }
      // Shutdown lines are info too.
      expect(quiet.logs.every((l) => ['warn', 'error', 'fatal'].includes(l.level))).toBe(true);
    });
  });

  describe('METRICS_TOKEN', () => {
    const TOKEN = 'a-long-enough-metrics-token';
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: upstream.url, METRICS_TOKEN: TOKEN });
    });

    afterAll(() => svc.close());

    it('makes /metrics ask for the bearer token: 401 in the error shape without it, the metrics with it', async () => {
      for (const headers of [{}, { Authorization: `Bearer ${TOKEN}x` }, { Authorization: TOKEN }] as Array<Record<string, string>>) {
        const res = await fetch(`${svc.url}/metrics`, { headers });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="places-cache metrics"');
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('x-request-id')).toEqual(expect.any(String));
        expect(await res.json()).toEqual({ statusCode: 401, error: 'Unauthorized', message: expect.stringMatching(/METRICS_TOKEN|not valid/) });
      }
      const res = await fetch(`${svc.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
      // The refusals above are counted like any answer.
      expect(sampleValue(parsePrometheus(await res.text()), 'places_http_requests_total', { route: '/metrics', method: 'GET', status: '401' })).toBe(3);
    });

    it('leaves health, the places routes and the API document open, and documents the scheme', async () => {
      for (const path of ['/health/live', '/health/ready', '/search?q=Berlin&format=json', '/docs-json']) {
        expect([path, (await fetch(`${svc.url}${path}`)).status]).toEqual([path, 200]);
      }
      const doc = (await (await fetch(`${svc.url}/docs-json`)).json()) as {
        paths: Record<string, { get?: { security?: unknown; responses: Record<string, unknown> } }>;
        components: { securitySchemes?: Record<string, unknown> };
      };
      expect(doc.paths['/metrics'].get?.security).toEqual([{ metrics: [] }]);
      expect(Object.keys(doc.paths['/metrics'].get!.responses)).toContain('401');
      expect(doc.components.securitySchemes?.metrics).toMatchObject({ type: 'http', scheme: 'bearer' });
    });
  });

  describe('Redis password in REDIS_URL', () => {
    const password = 'Hunter2-Secr3t';
    let redis: RedisProcess;

    beforeAll(async () => {
      redis = await startRedis({ password });
    });

    afterAll(() => redis.stop());

    it('never appears in any log line, at trace level, through connect, traffic and a Redis failure', async () => {
      expect(redis.url).toContain(password);
      const svc = await startApp(
        { REDIS_URL: redis.url, NOMINATIM_URL: upstream.url, NOMINATIM_MAX_RPS: PACED_RPS, LOG_LEVEL: 'trace' },
        { captureLogs: true },
      );
      try {
        await eventually(async () => (await getJson(svc, '/health/ready')).body.details.redis.state === 'ready');
        expect((await fetch(`${svc.url}/api?q=Berlin`)).status).toBe(200);
        await redis.kill();
        await eventually(() => svc.logs.some((l) => l.context === 'RedisConnectionService' && l.level === 'warn'));
        expect((await fetch(`${svc.url}/api?q=Bern`)).headers.get('x-cache')).toBe('BYPASS');
      } finally {
        await svc.close();
      }
      expect(svc.logs.length).toBeGreaterThan(10);
      expect(svc.logs.map((l) => l.msg)).toContain(`Connecting to Redis at redis://:***@127.0.0.1:${redis.port}`);
      for (const line of svc.logs) {
        expect(line.raw).not.toContain(password);
        expect(() => JSON.parse(line.raw)).not.toThrow();
      }
    });
  });

  describe('/health/ready with Redis frozen (SIGSTOP)', () => {
    const OP_TIMEOUT_MS = 300;
    let redis: RedisProcess;
    let svc: RunningApp;

    beforeAll(async () => {
      redis = await startRedis();
      svc = await startApp({ REDIS_URL: redis.url, NOMINATIM_URL: upstream.url, REDIS_OP_TIMEOUT_MS: String(OP_TIMEOUT_MS) });
      await eventually(async () => (await getJson(svc, '/health/ready')).body.details.redis.state === 'ready');
    });

    afterAll(async () => {
      await svc.close();
      await redis.stop();
    });

    it('answers within REDIS_OP_TIMEOUT_MS, 200 degraded, while Redis stays frozen', async () => {
      const lag = watchEventLoop();
      await redis.pause();
      let answer: Awaited<ReturnType<typeof timedGet>> | 'none while Redis was frozen';
      try {
        // Without the bound the PING would wait for Redis to wake: it wakes here only after the answer (or long after).
        answer = await Promise.race([
          timedGet(`${svc.url}/health/ready`, 30_000),
          new Promise<'none while Redis was frozen'>((resolve) => setTimeout(() => resolve('none while Redis was frozen'), 30 * OP_TIMEOUT_MS)),
        ]);
      } finally {
        await redis.resume();
        lag.stop();
      }
      if (answer === 'none while Redis was frozen') throw new Error(`/health/ready gave ${answer}`);
      expect(answer.status).toBe(200);
      const body = JSON.parse(answer.body) as HealthBody;
      expect(body).toEqual(
        healthy('degraded', 'redis', {
          status: 'degraded',
          state: 'unresponsive',
          message: `Redis unavailable: redis ping timed out after ${OP_TIMEOUT_MS} ms; serving without the shared cache (X-Cache: BYPASS)`,
          responseTimeMs: expect.any(Number),
        }),
      );
      // It did wait for the PING, for the bound and not much more: what this process spent otherwise
      // (event-loop stalls on a loaded machine) is not the app waiting on Redis.
      expect(body.details.redis.responseTimeMs).toBeGreaterThanOrEqual(OP_TIMEOUT_MS - 1);
      const own = answer.ms - stalledDuring(lag.stalls, answer.start, answer.end);
      expect(own < 2 * OP_TIMEOUT_MS ? 'within the bound' : `${answer.ms.toFixed(0)} ms, ${own.toFixed(0)} ms without stalls`).toBe('within the bound');
    });
  });

  describe('what the cache and the pacing did, counted (places_cache_outcomes_total, places_pacing_rejected_total, places_redis_errors_total)', () => {
    /** The sum of a metric's samples whose labels include `labels`. */
    const total = async (svc: RunningApp, name: string, labels: Record<string, string> = {}): Promise<number> => {
      const { samples } = await scrape(svc);
      return samples
        .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0);
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    it('stale: every STALE answer, served by stale-while-revalidate or by stale-if-error', async () => {
      const swr = await startApp({ NOMINATIM_URL: upstream.url, CACHE_TTL_SECONDS: '1', STALE_WHILE_REVALIDATE_SECONDS: '30' });
      const sie = await startApp({ NOMINATIM_URL: upstream.url, CACHE_TTL_SECONDS: '1', STALE_WHILE_REVALIDATE_SECONDS: '0' });
      try {
        for (const svc of [swr, sie]) expect((await fetch(`${svc.url}/api?q=Lisbon`)).headers.get('x-cache')).toBe('MISS');
        await sleep(1200); // past the 1 s TTL
        // Nominatim fails from now on: stale-if-error's case, and stale-while-revalidate's refreshes fail.
        upstream.failAll({ status: 500, body: 'Internal Server Error' });
        for (const [svc, detail] of [[swr, 'stale-while-revalidate'], [sie, 'stale-if-error']] as const) {
          for (let i = 0; i < 3; i++) {
            const res = await fetch(`${svc.url}/api?q=Lisbon`);
            expect([res.status, res.headers.get('x-cache'), res.headers.get('cache-status')?.endsWith(`detail=${detail}`)]).toEqual([200, 'STALE', true]);
          }
          expect([detail, await total(svc, 'places_cache_outcomes_total', { outcome: 'stale' })]).toEqual([detail, 3]);
        }
      } finally {
        upstream.failAll(null);
        await Promise.all([swr.close(), sie.close()]);
      }
    });

    it('coalesced: every request that waited for another one\'s upstream call', async () => {
      const svc = await startApp({ NOMINATIM_URL: upstream.url });
      try {
        upstream.latencyMs = 300;
        const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${svc.url}/api?q=Cairo`)));
        expect(upstream.count()).toBe(1);
        const collapsed = answers.filter((r) => r.headers.get('cache-status')?.endsWith('; collapsed')).length;
        expect(collapsed).toBe(19);
        expect(await total(svc, 'places_cache_outcomes_total', { outcome: 'coalesced' })).toBe(collapsed);
      } finally {
        await svc.close();
      }
    });

    it('a full queue names the upstream\'s own rate', async () => {
      const svc = await startApp({ NOMINATIM_URL: upstream.url, NOMINATIM_MAX_RPS: '2.5', UPSTREAM_QUEUE_MAX_WAIT_MS: '0' });
      try {
        const answers = await Promise.all(['Oslo', 'Bergen'].map((q) => fetch(`${svc.url}/api?q=${q}`)));
        const refused = answers.filter((r) => r.status === 503);
        expect(refused).toHaveLength(1);
        expect(((await refused[0].json()) as { message: string }).message).toBe(
          'Too many uncached requests are waiting for Nominatim (at most 2.5 requests/second); try again later',
        );
      } finally {
        await svc.close();
      }
    });

    it('pacing refusals: each 503 for a full queue and each for a cool-down, by reason', async () => {
      const svc = await startApp({ NOMINATIM_URL: upstream.url, NOMINATIM_MAX_RPS: '1', UPSTREAM_QUEUE_MAX_WAIT_MS: '0' });
      const code = async (res: Response) => {
        const body = (await res.json()) as { code?: string; message?: string };
        return [res.status, body.code ?? 'none', body.message];
      };
      try {
        // One slot a second and no waiting: of five misses at once, one goes upstream, the others are refused.
        const burst = await Promise.all(['Lima', 'Quito', 'Bogota', 'Caracas', 'Santiago'].map(async (q) => code(await fetch(`${svc.url}/api?q=${q}`))));
        const queueFull = burst.filter(([status, c]) => status === 503 && c === 'upstream_queue_full').length;
        expect(queueFull).toBe(4);
        expect(new Set(burst.filter(([, c]) => c === 'upstream_queue_full').map(([, , message]) => message))).toEqual(
          new Set(['Too many uncached requests are waiting for Nominatim (at most 1 request/second); try again later']),
        );
        expect(await total(svc, 'places_pacing_rejected_total', { reason: 'queue_full' })).toBe(queueFull);

        await sleep(1100); // the next slot
        upstream.failNext(1, { status: 429, headers: { 'Retry-After': '60' }, body: 'Too Many Requests' });
        expect((await code(await fetch(`${svc.url}/api?q=Montevideo`))).slice(0, 2)).toEqual([503, 'upstream_refused']);
        const cooling = [];
        for (const q of ['Asuncion', 'La Paz']) cooling.push((await code(await fetch(`${svc.url}/api?q=${q}`))).slice(0, 2));
        expect(cooling).toEqual([[503, 'upstream_cooldown'], [503, 'upstream_cooldown']]);
        expect(await total(svc, 'places_pacing_rejected_total', { reason: 'cooldown' })).toBe(2);
        expect(await total(svc, 'places_pacing_rejected_total')).toBe(queueFull + 2);
        expect(upstream.count()).toBe(2);
      } finally {
        await svc.close();
      }
    });

    it('Redis errors: an operation that timed out on a frozen Redis', async () => {
      const redis = await startRedis();
      const svc = await startApp({ REDIS_URL: redis.url, NOMINATIM_URL: upstream.url, REDIS_OP_TIMEOUT_MS: '200' });
      try {
        await eventually(async () => (await getJson(svc, '/health/ready')).body.details.redis.state === 'ready');
        expect((await fetch(`${svc.url}/api?q=Accra`)).headers.get('x-cache')).toBe('MISS');
        expect(await total(svc, 'places_redis_errors_total')).toBe(0);
        await redis.pause();
        try {
          expect((await fetch(`${svc.url}/api?q=Dakar`)).headers.get('x-cache')).toBe('BYPASS');
        } finally {
          await redis.resume();
        }
        expect(await total(svc, 'places_redis_errors_total')).toBeGreaterThanOrEqual(1);
      } finally {
        await svc.close();
        await redis.stop();
      }
    });
  });
});
