import type { ServerResponse } from 'node:http';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, RunningApp, useE2e, useFake } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { stalledDuring, timedGet, watchEventLoop } from './support/traffic';

/**
 * Cross-instance single flight at the edge of a fill: instance B asks for a question just as instance A
 * finishes filling it. B's cache lookup can come just before A's write and B's lock just after A's
 * release; B must then find A's entry instead of asking upstream again. With rate limiting on (the
 * default: one more Redis round trip between B's lookup and its lock) this raced in about 1 % of the
 * pairs before the fill lock re-read the cache once it held the lock.
 */
describe('cross-instance single flight at the edge of a fill (e2e)', () => {
  let fake: FakeNominatim;
  let a: RunningApp;
  let b: RunningApp;

  useE2e({ fake: { latencyMs: 20 } }, async (e2e) => {
    ({ fake } = e2e);
    const env = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MISSES: '100000' };
    [a, b] = await Promise.all([e2e.startApp(env), e2e.startApp(env)]);
  });

  it('300 questions, each asked on A and ~20 ms later (as A fills it) on B: each goes upstream once', async () => {
    const answers = [];
    for (let i = 0; i < 300; i++) {
      const path = `/search?q=edge%20${i}&format=json`;
      const first = rawGet(`${a.url}${path}`);
      await new Promise((r) => setTimeout(r, 14 + (i % 30) / 3));
      answers.push(...(await Promise.all([first, rawGet(`${b.url}${path}`)])));
    }
    for (const r of answers) expect(r.status).toBe(200);
    const perQuestion = new Map<string, number>();
    for (const r of fake.requests) perQuestion.set(String(r.query.get('q')), (perQuestion.get(String(r.query.get('q'))) ?? 0) + 1);
    expect(perQuestion.size).toBe(300);
    expect([...perQuestion].filter(([, n]) => n > 1)).toEqual([]);
  }, 60_000);
});

/**
 * When the fill-lock holder's upstream call fails, the instances waiting for it fail the same way at
 * once (or serve their stale copy), instead of taking the lock one after another and asking again, a
 * whole UPSTREAM_TIMEOUT_MS apiece: with 3 instances and a hanging upstream, that was 3 upstream calls
 * for one question and answers after 1, 2 and 3 timeouts.
 */
describe('cross-instance single flight when the upstream call fails (e2e)', () => {
  const TIMEOUT_MS = 1500;
  /** How long the failing upstream takes to answer 500 or 429: the other instances are waiting by then. */
  const FAIL_AFTER_MS = 300;
  /** Past the answer's own time (a timeout, or FAIL_AFTER_MS): well under one more timeout. */
  const MARGIN_MS = 700;
  let fake: FakeNominatim;
  let apps: RunningApp[];
  let mode: 'ok' | 'timeout' | 500 | 429 = 'ok';
  let seq = 0;
  const unique = (what: string) => `${what}${++seq}x${Date.now() % 1e8}`;

  useE2e({}, async (e2e) => {
    ({ fake } = e2e);
    fake.setHandler((req, res: ServerResponse, entry) => {
      const answer = () => {
        if (res.destroyed) return;
        if (mode === 500) res.writeHead(500, { 'Content-Type': 'text/plain' }).end('Internal Server Error');
        else if (mode === 429) res.writeHead(429, { 'Content-Type': 'text/plain', 'Retry-After': '1' }).end('Too Many Requests');
        else res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify([{ place_id: 1, display_name: `${entry.query.get('q')}` }]));
      };
      if (mode === 'timeout') return; // held open: the app gives up after UPSTREAM_TIMEOUT_MS
      if (mode === 'ok') answer();
      else setTimeout(answer, FAIL_AFTER_MS);
    });
    const env = {
      UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
      CACHE_TTL_SECONDS: '1',
      STALE_WHILE_REVALIDATE_SECONDS: '0',
    };
    apps = await Promise.all([e2e.startApp(env), e2e.startApp(env), e2e.startApp(env)]);
    await eventually(() => apps.every((svc) => svc.app.get(RedisConnectionService).state === 'ready'));
  });

  afterEach(async () => {
    // A 429 starts the fleet's cool-down (Retry-After: 1): the next test must not start inside it.
    if (mode === 429) await new Promise((resolve) => setTimeout(resolve, 1100));
    mode = 'ok';
  });

  const askedFor = (q: string) => fake.requests.filter((r) => r.query.get('q') === q).length;

  /** `path` asked on every instance at once; the slowest answer's time less this process's stalls. */
  async function everywhere(path: string) {
    const lag = watchEventLoop();
    const answers = await Promise.all(apps.map((svc) => timedGet(`${svc.url}${path}`, 4 * TIMEOUT_MS)));
    lag.stop();
    const slowestMs = Math.max(...answers.map((r) => r.ms - stalledDuring(lag.stalls, r.start, r.end)));
    const detail = `answers after ${answers.map((r) => r.ms.toFixed(0)).join(', ')} ms, stalls ${lag.stalls.map((st) => st.ms.toFixed(0)).join(',') || 'none'}`;
    return { answers, slowestMs, detail };
  }

  it.each([
    ['hangs', 'timeout' as const, TIMEOUT_MS, 504, 'upstream_timeout'],
    ['answers 500', 500 as const, FAIL_AFTER_MS, 502, 'upstream_error'],
    ['answers 429 with Retry-After', 429 as const, FAIL_AFTER_MS, 503, 'upstream_refused'],
  ])('Nominatim %s: every instance gives the same error within one upstream call, after one request', async (_what, failing, failsAfterMs, status, code) => {
    mode = failing;
    const q = unique('fails');
    const r = await everywhere(`/api?q=${q}`);
    expect(r.answers.map((a) => a.status)).toEqual([status, status, status]);
    const bodies = r.answers.map((a) => JSON.parse(a.body) as { code: string; message: string });
    for (const body of bodies) expect(body).toEqual({ statusCode: status, error: expect.any(String), code, message: bodies[0].message });
    if (status === 503) for (const a of r.answers) expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(askedFor(q)).toBe(1);
    expect(r.slowestMs < failsAfterMs + MARGIN_MS ? 'within one upstream call' : r.detail).toBe('within one upstream call');
  }, 20_000);

  it.each([
    ['hangs', 'timeout' as const, TIMEOUT_MS, '504'],
    ['answers 500', 500 as const, FAIL_AFTER_MS, '500'],
  ])('Nominatim %s with a stale copy in Redis: every instance serves it within one upstream call, after one request', async (_what, failing, failsAfterMs, fwdStatus) => {
    const q = unique('stale');
    const primed = await timedGet(`${apps[0].url}/api?q=${q}`);
    expect(primed.headers.get('x-cache')).toBe('MISS');
    await new Promise((resolve) => setTimeout(resolve, 1150)); // past CACHE_TTL_SECONDS=1
    mode = failing;
    const r = await everywhere(`/api?q=${q}`);
    for (const a of r.answers) {
      expect(a.status).toBe(200);
      expect(a.headers.get('x-cache')).toBe('STALE');
      expect(a.headers.get('cache-status')).toContain(`fwd-status=${fwdStatus}`);
      expect(JSON.parse(a.body)).toMatchObject({ cache: true, data: [{ display_name: q }] });
    }
    expect(askedFor(q)).toBe(2); // the copy's fill, and one try for all three instances
    expect(r.slowestMs < failsAfterMs + MARGIN_MS ? 'within one upstream call' : r.detail).toBe('within one upstream call');
  }, 20_000);
});

/**
 * The fill lock's lease must outlast its holder's fill. With several upstreams the holder tries each in
 * turn (NOMINATIM_URL's fail-over): three that hang take three upstream timeouts, past a lease sized
 * for one. Another instance waiting for the question then found the lock gone and asked upstream again.
 */
describe('cross-instance single flight through a fail-over of hanging upstreams (e2e)', () => {
  const TIMEOUT_MS = 1500;
  const fallbacks = [useFake(), useFake()];
  let fakes: FakeNominatim[];
  let a: RunningApp;
  let b: RunningApp;

  useE2e({}, async (e2e) => {
    fakes = [e2e.fake, ...fallbacks];
    // UPSTREAM_QUEUE_MAX_WAIT_MS=0: the lease for one upstream is the timeout + 1 s (2.5 s), the fail-over takes 4.5 s.
    const env = { NOMINATIM_URL: fakes.map((f) => f.url).join(','), UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS), UPSTREAM_QUEUE_MAX_WAIT_MS: '0' };
    [a, b] = await Promise.all([e2e.startApp(env), e2e.startApp(env)]);
  });

  it('an instance waiting for the question while the holder tries each upstream in turn asks none of them itself: each upstream is asked once', async () => {
    for (const f of fakes) f.failAll('timeout');
    const path = `/api?q=hanging${Date.now() % 1e8}`;
    const first = timedGet(`${a.url}${path}`, 6 * TIMEOUT_MS);
    await eventually(() => fakes[0].count('/search') === 1, 2_000, 10);
    const second = timedGet(`${b.url}${path}`, 6 * TIMEOUT_MS);
    const answers = await Promise.all([first, second]);
    expect(answers.map((r) => [r.status, (JSON.parse(r.body) as { code: string }).code])).toEqual([
      [504, 'upstream_timeout'],
      [504, 'upstream_timeout'],
    ]);
    expect(fakes.map((f) => f.count('/search'))).toEqual([1, 1, 1]);
  }, 30_000);
});
