import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, RunningApp, startApp } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { RedisProcess, startRedis } from './support/redis-server';

/**
 * Cross-instance single flight at the edge of a fill: instance B asks for a question just as instance A
 * finishes filling it. B's cache lookup can come just before A's write and B's lock just after A's
 * release; B must then find A's entry instead of asking upstream again. With rate limiting on (the
 * default: one more Redis round trip between B's lookup and its lock) this raced in about 1 % of the
 * pairs before the fill lock re-read the cache once it held the lock.
 */
describe('cross-instance single flight at the edge of a fill (e2e)', () => {
  let fake: FakeNominatim;
  let redis: RedisProcess;
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    fake = new FakeNominatim({ latencyMs: 20 });
    await fake.start();
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, NOMINATIM_URL: fake.url, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MISSES: '100000' };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    await eventually(() => [a, b].every((svc) => svc.app.get(RedisConnectionService).state === 'ready'));
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await fake.stop();
    await redis.stop();
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
