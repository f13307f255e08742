import type { DashboardData, Point } from '../src/dashboard/dashboard-sampler';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, useApp, useE2e } from './support/app-harness';
import { rawGet } from './support/raw-http';

jest.setTimeout(120_000);

const MAX_RPS = 50;

/**
 * docs/operations.md, Dashboard: what each number of /dashboard/data counts, read from the real app
 * after traffic of one kind at a time. The browser test (dashboard.e2e-spec.ts) shows that the page
 * draws and moves; this one that the numbers mean what the page says: miss includes bypass, error is
 * 5xx answers only, the hit ratio is hits among hits, misses and stale answers, upstream errors, the budget.
 */
describe('/dashboard/data numbers (e2e)', () => {
  const e2e = useE2e();
  // A one-second fresh life: the copies stored early are stale (served while revalidating) later on.
  const svc = useApp(e2e, { NOMINATIM_MAX_RPS: String(MAX_RPS), CACHE_TTL_SECONDS: '1' });

  const data = async (): Promise<DashboardData> => {
    const res = await rawGet(`${svc.url}/dashboard/data`);
    expect(res.status).toBe(200);
    return JSON.parse(res.body.toString('utf8')) as DashboardData;
  };
  /**
   * Runs `traffic`, then waits for two more points, and returns the points sampled after the previous
   * phase: the first new point may still cover the traffic's last moment, the second is past it.
   */
  const phase = async (traffic: () => Promise<void>): Promise<Point[]> => {
    const from = (await data()).points.length;
    await traffic();
    const after = (await data()).points.length;
    await eventually(async () => (await data()).points.length >= after + 2, 30_000, 200);
    return (await data()).points.slice(from);
  };
  const sum = (points: Point[], k: keyof Point) => points.reduce((s, p) => s + Number(p[k] ?? 0), 0);

  beforeAll(async () => {
    await eventually(() => svc.app.get(RedisConnectionService).state === 'ready');
    // The first call starts the sampling; points begin two seconds later.
    await data();
    await eventually(async () => (await data()).points.length >= 1, 30_000, 200);
  });

  it('4xx answers are not errors; the budget is NOMINATIM_MAX_RPS', async () => {
    const points = await phase(async () => {
      for (let i = 0; i < 3; i++) expect((await rawGet(`${svc.url}/search?q=dash-a${i}&format=json`)).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await rawGet(`${svc.url}/search?q=dash-a${i}&format=json`)).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await rawGet(`${svc.url}/search?q=dash&format=nonsense`)).status).toBe(400);
    });
    expect(sum(points, 'hit') + sum(points, 'miss') + sum(points, 'stale')).toBeGreaterThan(0);
    expect(points.map((p) => p.error)).toEqual(points.map(() => 0));
    expect(points.map((p) => p.budget)).toEqual(points.map(() => MAX_RPS));
  });

  it('answers without Redis (BYPASS) count as misses, in the hit ratio too', async () => {
    const points = await phase(async () => {
      await e2e.redis.pause();
      try {
        for (let i = 0; i < 2; i++) expect((await rawGet(`${svc.url}/search?q=dash-b${i}&format=json`)).headers['x-cache']).toBe('BYPASS');
      } finally {
        await e2e.redis.resume();
      }
    });
    expect(sum(points, 'miss')).toBeGreaterThan(0);
    // Nothing but bypasses: no hit among them.
    expect(points.some((p) => p.hitRatio === 0)).toBe(true);
    await eventually(() => svc.app.get(RedisConnectionService).state === 'ready');
  });

  it('a 502 is an error and an upstream error', async () => {
    const points = await phase(async () => {
      e2e.fake.failNext(2, { status: 500, body: 'Internal Server Error' });
      for (let i = 0; i < 2; i++) expect((await rawGet(`${svc.url}/search?q=dash-c${i}&format=json`)).status).toBe(502);
    });
    expect(sum(points, 'error')).toBeGreaterThan(0);
    expect(sum(points, 'upstreamErrors')).toBeGreaterThan(0);
  });

  it('stale answers count in the hit ratio: stale only is 0 %, not "no requests"', async () => {
    // Upstream fails: each stale copy's background refresh fails, so nothing but STALE is counted.
    e2e.fake.failAll({ status: 500, body: 'Internal Server Error' });
    try {
      const points = await phase(async () => {
        for (let i = 0; i < 3; i++) expect((await rawGet(`${svc.url}/search?q=dash-a${i}&format=json`)).headers['x-cache']).toBe('STALE');
      });
      expect(sum(points, 'stale')).toBeGreaterThan(0);
      expect(points.some((p) => p.stale > 0 && p.hitRatio === 0)).toBe(true);
    } finally {
      e2e.fake.failAll(null);
    }
  });
});
