import http from 'node:http';
import { AppProcess, spawnApp } from './support/app-process';
import { BuiltApp, buildApp } from './support/build-app';
import { FakeNominatim } from './support/fake-nominatim';
import { freePort, RedisProcess, startRedis } from './support/redis-server';
import { watchObserverLag } from './support/traffic';

// The e2e project's testTimeout is not applied per project by Jest 30; these tests spawn processes and wait.
jest.setTimeout(120_000);

/*
 * README, Configuration: WEB_CONCURRENCY=N forks N node:cluster workers sharing the port; they share the
 * cache, the upstream pacer and the miss rate limit through Redis; /metrics reports the whole group;
 * SIGTERM drains every worker and the group exits 0. Run as production runs it: `node main.js`.
 */

const WORKERS = 3;
const MAX_RPS = 5;

interface Line {
  msg: string;
  worker?: number;
  route?: string;
  cache?: string;
  status?: number;
  context?: string;
}

/** One GET on a connection of its own (no keep-alive), so the primary hands each to a worker anew. */
function get(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

describe('WEB_CONCURRENCY (e2e)', () => {
  let build: BuiltApp;
  let redis: RedisProcess;
  let upstream: FakeNominatim;
  let group: AppProcess | undefined;
  let url: string;
  /** /search requests sent so far, whichever worker answered. */
  let searches = 0;
  /** Distinct /search questions answered so far (each stored in the L1 of the worker that asked upstream). */
  let questions = 0;

  const lines = (): Line[] => group!.lines<Line>();

  beforeAll(async () => {
    [build, redis] = await Promise.all([buildApp(), startRedis()]);
    upstream = new FakeNominatim();
    await upstream.start();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    group = spawnApp(build, {
      env: {
        WEB_CONCURRENCY: String(WORKERS),
        PORT: String(port),
        REDIS_URL: redis.url,
        NOMINATIM_URL: upstream.url,
        NOMINATIM_MAX_RPS: String(MAX_RPS),
        RATE_LIMIT_ENABLED: 'false',
      },
    });
    // Every worker is up when each has said it listens.
    await group.until(() => lines().filter((l) => l.msg.startsWith('places-cache listening')).length === WORKERS, `${WORKERS} workers listening`, 60_000);
  });

  afterAll(async () => {
    await group?.stop();
    await upstream?.stop();
    await redis?.stop();
    build?.remove();
  });

  it('forks the workers, each a process of its own listening on the one port', () => {
    const listening = lines().filter((l) => l.msg.startsWith('places-cache listening'));
    expect(new Set(listening.map((l) => l.worker))).toEqual(new Set([1, 2, 3]));
    expect(lines().find((l) => l.context === 'Cluster')?.msg).toBe(`WEB_CONCURRENCY=${WORKERS}: starting ${WORKERS} workers sharing one port`);
  });

  it('serves from several workers, which share one cache: one upstream request, then hits on every worker', async () => {
    const first = await get(`${url}/search?q=berlin&format=json`);
    searches += 13;
    questions += 1;
    expect([first.status, first.headers['x-cache']]).toEqual([200, 'MISS']);
    const rest = [];
    for (let i = 0; i < 12; i++) rest.push(await get(`${url}/search?q=berlin&format=json`));
    expect(rest.map((r) => r.headers['x-cache'])).toEqual(Array(12).fill('HIT'));
    expect(rest.every((r) => r.body === first.body)).toBe(true);
    expect(upstream.count('/search')).toBe(1);
    // Who answered: the request lines carry the worker's id.
    await new Promise((r) => setTimeout(r, 200)); // log lines are batched for at most 50 ms
    const served = lines().filter((l) => l.msg === 'request' && l.route === '/search');
    expect(served).toHaveLength(13);
    const hitWorkers = new Set(served.filter((l) => String(l.cache).toUpperCase() === 'HIT').map((l) => l.worker));
    const allWorkers = new Set(served.map((l) => l.worker));
    expect(allWorkers).toEqual(new Set([1, 2, 3]));
    // Workers that never asked upstream answered HIT: from the shared Redis.
    expect(hitWorkers.size).toBeGreaterThanOrEqual(2);
  });

  it('paces the upstream for the whole group, never WEB_CONCURRENCY times the rate', async () => {
    const pacerLines = () => lines().filter((l) => l.context === 'UpstreamPacer');
    const fellBack = (l: Line) => l.msg.startsWith('Redis unavailable for upstream pacing');
    const n = 8;
    // A worker whose Redis call took longer than REDIS_OP_TIMEOUT_MS (a stalled machine) paces on its
    // own for a while, at its share: then the burst says nothing about shared pacing and is sent again
    // (at most three times). Shared pacing that never works fails all three.
    let verdict = 'every attempt saw a worker fall back to pacing per process';
    for (let attempt = 1; attempt <= 3; attempt++) {
      upstream.reset();
      const logged = pacerLines().length;
      const lag = watchObserverLag();
      const answers = await Promise.all(Array.from({ length: n }, (_, i) => get(`${url}/search?q=pacing%20${attempt}%20${i}&format=json`)));
      const lateMs = lag.stop();
      searches += n;
      questions += n;
      expect(answers.map((a) => a.status)).toEqual(Array(n).fill(200));
      const arrivals = upstream.requests.map((r) => r.startedAtHr).sort((a, b) => a - b);
      expect(arrivals).toHaveLength(n);
      await new Promise((r) => setTimeout(r, 200)); // log lines are batched for at most 50 ms
      const said = pacerLines().slice(logged);
      if (said.some(fellBack)) continue;
      // 1000 / NOMINATIM_MAX_RPS apart, less the pacer's 5 % start guard and how late this process (the
      // fake's) stamped an arrival; per-worker pacing would put three requests at once. A failure says
      // what the workers' pacers logged meanwhile.
      const closest = Math.min(...arrivals.slice(1).map((t, i) => t - arrivals[i]));
      verdict =
        closest >= (1000 / MAX_RPS) * 0.95 - 1 - lateMs
          ? 'spaced'
          : `closest ${closest.toFixed(1)} ms (the fake's stamps up to ${lateMs.toFixed(1)} ms late); pacers: ${said.map((l) => `worker ${l.worker}: ${l.msg}`).join(' | ') || 'nothing'}`;
      break;
    }
    expect(verdict).toBe('spaced');
  });

  it('/metrics on any worker reports the whole group', async () => {
    const scrapes = await Promise.all([get(`${url}/metrics`), get(`${url}/metrics`), get(`${url}/metrics`)]);
    for (const s of scrapes) {
      expect(s.status).toBe(200);
      const total = [...s.body.matchAll(/^places_http_requests_total\{[^}]*route="\/search"[^}]*\} (\d+)$/gm)]
        .map((m) => Number(m[1]))
        .reduce((a, b) => a + b, 0);
      // Every /search request of the tests above, whichever worker answered it.
      expect(total).toBe(searches);
      // Gauges that hold one value for the group are not multiplied by WEB_CONCURRENCY: the budget
      // alert compares the upstream rate with NOMINATIM_MAX_RPS, and Redis is connected (1), not 3.
      expect(s.body).toMatch(new RegExp(`^places_upstream_budget_requests_per_second\\{upstream="[^"]+"\\} ${MAX_RPS}$`, 'm'));
      expect(s.body).toMatch(/^places_redis_connected 1$/m);
      // …while the count of workers is their sum: every one answered the scrape.
      expect(s.body).toMatch(new RegExp(`^places_workers ${WORKERS}$`, 'm'));
      // Histograms add up too: one observation per /search request, whichever worker timed it.
      expect(s.body).toMatch(new RegExp(`^places_http_request_duration_seconds_count\\{route="/search"\\} ${searches}$`, 'm'));
      // L1 is per worker, and the scrape sums the workers' L1s (docs/operations.md): every worker holds
      // berlin (the one that asked upstream, and the others from their hits on Redis), and each other
      // question is in the L1 of the worker that filled it. One worker's own L1 holds fewer.
      const entries = Number(/^places_l1_entries (\d+)$/m.exec(s.body)?.[1]);
      expect(entries).toBeGreaterThanOrEqual(WORKERS + questions - 1);
    }
  });

  it('with Redis frozen, each worker paces its share: the group stays within NOMINATIM_MAX_RPS', async () => {
    upstream.reset();
    const n = 12;
    await redis.pause();
    let answers: Array<{ status: number; headers: http.IncomingHttpHeaders }>;
    try {
      answers = await Promise.all(Array.from({ length: n }, (_, i) => get(`${url}/search?q=frozen%20${i}&format=json`)));
    } finally {
      await redis.resume();
    }
    searches += n;
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(200));
    expect(new Set(answers.map((a) => a.headers['x-cache']))).toEqual(new Set(['BYPASS']));
    const arrivals = upstream.requests.map((r) => r.startedAtHr).sort((a, b) => a - b);
    expect(arrivals).toHaveLength(n);
    // Each worker paces on its own at MAX_RPS / WORKERS: after each one's first request, the group
    // sends no more than MAX_RPS × the time taken. Each at the whole MAX_RPS (the fall-back before
    // FLEET_INSTANCES × WEB_CONCURRENCY shares) sends these in a third of the time.
    const spanS = (arrivals[n - 1] - arrivals[0]) / 1000;
    expect(n - WORKERS).toBeLessThanOrEqual(MAX_RPS * spanS);
    await new Promise((r) => setTimeout(r, 200)); // log lines are batched for at most 50 ms
    const share = lines().filter((l) => l.context === 'UpstreamPacer' && l.msg.startsWith('Redis unavailable for upstream pacing'));
    // 5/s with its 5 % guard is 4.76/s; a third of it each.
    expect(share.length).toBeGreaterThanOrEqual(1);
    for (const l of share) expect(l.msg).toContain('pacing per process at 1.587/s until it returns');
  });

  it('SIGTERM stops every worker, and the group exits 0', async () => {
    group!.child.kill('SIGTERM');
    await expect(group!.exited).resolves.toMatchObject({ code: 0, signal: null });
    const exits = lines().filter((l) => l.context === 'Cluster' && /^Worker \d+ exited$/.test(l.msg));
    expect(exits).toHaveLength(WORKERS);
    expect(lines().at(-1)?.msg).toBe('All workers stopped; exiting with code 0');
  });
});
