import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, RunningApp, startApp } from './support/app-harness';
import { FakeNominatim, FakeRequest } from './support/fake-nominatim';
import { RawAnswer, rawGet } from './support/raw-http';
import { RedisProcess, startRedis } from './support/redis-server';
import { measure, Measured, stalledDuring, watchEventLoop } from './support/traffic';

/**
 * Issue 3, "one upstream call per question" and "polite by construction", with the real default of
 * NOMINATIM_MAX_RPS=1: two app instances share one private Redis (and so one pacer, one cool-down and
 * one set of fill locks). Slow by nature: a few tens of seconds.
 */
const USER_AGENT = 'places-cache-pacing-e2e/1.0 (pacing@places-cache.test)';
const MIN_GAP_MS = 1000;
const QUEUE_MAX_WAIT_MS = 8000;

jest.setTimeout(90_000);

describe('upstream pacing, single flight and cool-down across instances (e2e)', () => {
  let fake: FakeNominatim;
  let redis: RedisProcess;
  let a: RunningApp;
  let b: RunningApp;

  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: redis.url,
    NOMINATIM_URL: fake.url,
    NOMINATIM_USER_AGENT: USER_AGENT,
    NOMINATIM_MAX_RPS: '1',
    UPSTREAM_QUEUE_MAX_WAIT_MS: String(QUEUE_MAX_WAIT_MS),
    UPSTREAM_TIMEOUT_MS: '2000',
    ...extra,
  });
  const ready = (svc: RunningApp) => eventually(() => svc.app.get(RedisConnectionService).state === 'ready');

  beforeAll(async () => {
    fake = new FakeNominatim();
    await fake.start();
    redis = await startRedis();
    [a, b] = await Promise.all([startApp(env()), startApp(env())]);
    await Promise.all([ready(a), ready(b)]);
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await fake.stop();
    await redis.stop();
  });

  beforeEach(() => {
    fake.latencyMs = 0;
  });

  const q = (text: string) => `/search?q=${encodeURIComponent(text)}&format=json`;
  /** Upstream requests for one question (the forwarded q is the canonical, lower-cased one). */
  const upstreamFor = (text: string) => fake.requests.filter((r) => r.query.get('q') === text.toLowerCase());
  const since = (index: number) => fake.requests.slice(index);
  /** Start-to-start gaps between consecutive upstream arrivals that are shorter than the policy allows. */
  const closePairs = (requests: FakeRequest[]) =>
    requests
      .slice(1)
      .map((r, i) => ({ gap: r.startedAtHr - requests[i].startedAtHr, pair: `${requests[i].query.get('q')} → ${r.query.get('q')}` }))
      .filter(({ gap }) => gap < MIN_GAP_MS)
      .map(({ gap, pair }) => `${gap.toFixed(1)} ms: ${pair}`);

  function expectBusy(res: RawAnswer): void {
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  }

  it('a burst of 20 distinct misses over both instances: paced 1/s globally, every caller answered, hits never delayed', async () => {
    // Two entries to hit during the burst, one stored through each instance.
    expect((await rawGet(`${a.url}${q('Berlin')}`)).headers['x-cache']).toBe('MISS');
    expect((await rawGet(`${b.url}${q('Zürich')}`)).headers['x-cache']).toBe('MISS');
    const start = fake.requests.length;

    // This process runs both apps, the fake and the clients: time it was not scheduled at all (a loaded
    // machine) is taken out of every duration below.
    const lag = watchEventLoop();
    const own = (r: RawAnswer & { sentAt: number }) => r.ms - stalledDuring(lag.stalls, r.sentAt, r.sentAt + r.ms);
    const timed = async (url: string) => {
      const sentAt = Date.now();
      return { ...(await rawGet(url)), sentAt };
    };
    let bursting = true;
    const launchedAt = performance.now();
    const probes: Array<RawAnswer & { at: number; sentAt: number }> = [];
    const prober = (async () => {
      while (bursting) {
        const at = performance.now() - launchedAt;
        const batch = await Promise.all([a, b].flatMap((svc) => [timed(`${svc.url}${q('Berlin')}`), timed(`${svc.url}${q('Zürich')}`)]));
        probes.push(...batch.map((p) => ({ ...p, at })));
        await sleep(100);
      }
    })();

    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) => timed(`${(i % 2 === 0 ? a : b).url}${q(`burst place ${i}`)}`)),
    );
    bursting = false;
    await prober;
    lag.stop();

    const ok = burst.filter((r) => r.status === 200);
    const busy = burst.filter((r) => r.status !== 200);
    busy.forEach(expectBusy);
    // Both outcomes: what fits in UPSTREAM_QUEUE_MAX_WAIT_MS at 1/s is served, the rest refused at once.
    expect(ok.length).toBeGreaterThanOrEqual(6);
    expect(ok.length).toBeLessThanOrEqual(10);
    expect(busy.length).toBe(20 - ok.length);
    // Refused at once, or (a caller that missed its slot and queued again) once the bound is reached:
    // never more than one slot past the bound.
    expect(burst.filter((r) => own(r) >= QUEUE_MAX_WAIT_MS + MIN_GAP_MS).map((r) => `${r.ms.toFixed(0)} ms, own ${own(r).toFixed(0)} ms`)).toEqual([]);

    const upstream = since(start);
    expect(upstream).toHaveLength(ok.length);
    expect(closePairs(upstream)).toEqual([]);
    for (const r of upstream) expect(r.userAgent).toBe(USER_AGENT);
    // The refused callers hold no slot: a new question right after the burst is served. Had the
    // 10-14 refused callers kept their slots, the schedule would reach 10 s or more ahead, past the
    // 8 s queue bound, and it would be refused. (Not the burst's span: a pacer that gives a slot up
    // because a Redis reply came too late to place it, as it does on a loaded machine, stretches that
    // by a whole interval too.)
    const next = await rawGet(`${(ok.length % 2 === 0 ? a : b).url}${q('after the burst')}`);
    expect([next.status, next.headers['x-cache']]).toEqual([200, 'MISS']);

    expect(probes.length).toBeGreaterThanOrEqual(20);
    expect(probes.filter((p) => p.at > 500).length).toBeGreaterThanOrEqual(20);
    for (const p of probes) {
      expect(p.status).toBe(200);
      expect(p.headers['x-cache']).toBe('HIT');
    }
    // Never a pacing wait, which would be a whole interval (1 s) or more: a hit takes a few ms when idle,
    // ~200 ms of CPU queueing while the 20 misses are being admitted (both apps, the fake and this test
    // share one event loop), and whatever the machine did not schedule this process (taken out).
    expect(probes.filter((p) => own(p) >= MIN_GAP_MS / 2).map((p) => `at ${p.at.toFixed(0)}: ${p.ms.toFixed(0)} ms, own ${own(p).toFixed(0)} ms`)).toEqual([]);
  });

  it.each([
    ['one instance', () => [a]],
    ['two instances sharing Redis', () => [a, b]],
  ])('200 concurrent identical misses on %s: exactly 1 upstream request, all 200 get the same body', async (_name, instances) => {
    fake.latencyMs = 300;
    const text = instances().length === 1 ? 'Paris' : 'München';
    const targets = instances();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => rawGet(`${targets[i % targets.length].url}${q(text)}`)));
    expect(upstreamFor(text)).toHaveLength(1);
    const body = answers[0].body;
    expect(body.length).toBeGreaterThan(50);
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(r.body).toEqual(body);
    }
    expect(answers.filter((r) => r.headers['x-cache'] === 'MISS').length).toBeGreaterThanOrEqual(1);
  });

  it('upstream 429 with Retry-After: 2 → callers get 503 + Retry-After, nothing goes upstream on either instance during the cool-down, then requests flow', async () => {
    await rawGet(`${a.url}${q('Tokyo')}`); // an entry to hit during the cool-down
    fake.failNext(1, { status: 429, headers: { 'Retry-After': '2' }, body: 'Too Many Requests' });
    const start = fake.requests.length;
    const refused = await rawGet(`${a.url}${q('cool 0')}`);
    expectBusy(refused);
    expect(refused.headers['retry-after']).toBe('2');
    expect(since(start)).toHaveLength(1);
    const refusedAt = fake.requests[start].startedAtHr;

    // Misses on both instances while the 2 s cool-down runs: refused at once, not held until it ends.
    const COOL_DOWN_MS = 2000;
    const during: Array<Measured<RawAnswer>> = [];
    for (let i = 1; performance.now() < refusedAt + COOL_DOWN_MS - 300; i++) {
      during.push(await measure(() => rawGet(`${(i % 2 ? b : a).url}${q(`cool ${i}`)}`)));
      await sleep(150);
    }
    expect(during.length).toBeGreaterThanOrEqual(2); // one on each instance (however slow this machine is)
    during.forEach((r) => expectBusy(r.result));
    expect(during.filter((r) => r.ownMs >= COOL_DOWN_MS / 2).map((r) => r.detail)).toEqual([]);
    // A cache hit is still served during the cool-down.
    const hit = await rawGet(`${b.url}${q('Tokyo')}`);
    expect(hit.status).toBe(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(since(start)).toHaveLength(1);

    await sleep(Math.max(0, refusedAt + 2100 - performance.now()));
    const after = await Promise.all([rawGet(`${b.url}${q('cool after b')}`), rawGet(`${a.url}${q('cool after a')}`)]);
    for (const r of after) expect(r.status).toBe(200);
    const upstream = since(start);
    expect(upstream).toHaveLength(3);
    expect(upstream[1].startedAtHr - refusedAt).toBeGreaterThanOrEqual(2000);
    expect(closePairs(upstream)).toEqual([]);
  });

  it('cross-instance fill lock: a holder whose upstream call hangs and that is then shut down does not block the question; its lease expires and exactly one of the two waiting instances asks upstream', async () => {
    // Lease of this holder: UPSTREAM_QUEUE_MAX_WAIT_MS + UPSTREAM_TIMEOUT_MS + 1000 = 5000 ms.
    const lag = watchEventLoop();
    const holder = await startApp(env({ UPSTREAM_QUEUE_MAX_WAIT_MS: '1000', UPSTREAM_TIMEOUT_MS: '3000' }));
    await ready(holder);
    await sleep(MIN_GAP_MS); // a free pacing slot, so the lease starts now
    const text = 'Springfield';
    fake.failNext(1, 'timeout');
    const abort = new AbortController();
    const held = rawGet(`${holder.url}${q(text)}`, {}, abort.signal).catch((e: Error) => e);
    await eventually(() => upstreamFor(text).length === 1, 10_000, 5);
    const lockedAt = upstreamFor(text)[0].startedAtHr;

    const waiters = [rawGet(`${b.url}${q(text)}`), rawGet(`${a.url}${q(text)}`)];
    await sleep(200);
    abort.abort();
    const closing = holder.close();

    const answers = await Promise.all(waiters);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers['x-cache']).toBe('MISS');
      expect(answer.body).toEqual(answers[0].body);
    }
    expect(JSON.parse(answers[0].body.toString())[0].display_name).toContain('Springfield');
    // One waiter took the expired lock and asked; the other waited for its fill instead of asking too.
    expect(answers.map((r) => r.headers['cache-status']).filter((s) => String(s).endsWith('; collapsed'))).toHaveLength(1);
    const requests = upstreamFor(text);
    expect(requests).toHaveLength(2);
    // The second call waited for the lease (not for the holder, which never released it) and not for
    // the waiter's own give-up time (UPSTREAM_QUEUE_MAX_WAIT_MS + UPSTREAM_TIMEOUT_MS + 1000 = 11 s):
    // nearer the first than the second, whatever this machine spent not running this process.
    const LEASE_MS = 5000;
    const GIVE_UP_MS = QUEUE_MAX_WAIT_MS + 2000 + 1000;
    const waited = requests[1].startedAtHr - lockedAt;
    expect(waited).toBeGreaterThanOrEqual(LEASE_MS - 100);
    expect(waited - stalledDuring(lag.stalls, requests[0].arrivedAt, requests[1].arrivedAt)).toBeLessThan((LEASE_MS + GIVE_UP_MS) / 2);
    lag.stop();
    expect(await held).toHaveProperty('name', 'AbortError');
    await closing;
  });

  // The back-off exponent is kept per instance (NominatimClient.backoffMs): a 403 taken by another
  // instance would start that one at 5 s again. The cool-down itself is shared through Redis.
  it('upstream 403 without Retry-After → exponential back-off (5 s, then 10 s) on the refused instance; the cool-down holds on both', async () => {
    fake.failNext(1, { status: 403, body: 'Forbidden' });
    const start = fake.requests.length;
    const first = await rawGet(`${a.url}${q('blocked 1')}`);
    expectBusy(first);
    expect(first.headers['retry-after']).toBe('5');
    const firstAt = fake.requests[start].startedAtHr;

    await sleep(1000);
    expectBusy(await rawGet(`${b.url}${q('blocked 2')}`));
    expectBusy(await rawGet(`${a.url}${q('blocked 3')}`));
    expect(since(start)).toHaveLength(1);

    await sleep(Math.max(0, firstAt + 5100 - performance.now()));
    fake.failNext(1, { status: 403, body: 'Forbidden' });
    const second = await rawGet(`${a.url}${q('blocked 4')}`);
    expectBusy(second);
    expect(second.headers['retry-after']).toBe('10');
    expect(since(start)).toHaveLength(2);
    const secondAt = fake.requests[start + 1].startedAtHr;
    expect(secondAt - firstAt).toBeGreaterThanOrEqual(5000);

    await sleep(5000);
    expectBusy(await rawGet(`${b.url}${q('blocked 5')}`));
    expect(since(start)).toHaveLength(2);

    await sleep(Math.max(0, secondAt + 10100 - performance.now()));
    const flowing = await rawGet(`${b.url}${q('blocked 6')}`);
    expect(flowing.status).toBe(200);
    expect(since(start)).toHaveLength(3);
    expect(fake.requests[start + 2].startedAtHr - secondAt).toBeGreaterThanOrEqual(10000);
  });

  it('over this whole file, no two upstream requests started less than 1000 ms apart, all with the configured User-Agent', () => {
    expect(fake.requests.length).toBeGreaterThan(15);
    expect(closePairs(fake.requests)).toEqual([]);
    for (const r of fake.requests) expect(r.userAgent).toBe(USER_AGENT);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
