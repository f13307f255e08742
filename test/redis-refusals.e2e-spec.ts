import { createClient, type RedisClientType } from 'redis';
import { REDIS_CLIENT } from '../src/cache/cache.constants';
import { eventually, LogLine, RunningApp, startApp } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { startRedis } from './support/redis-server';
import { timedGet } from './support/traffic';

/*
 * A Redis that is reachable (PING works) but refuses the service's commands: full with
 * `maxmemory-policy noeviction` (OOM), an ACL user without EVAL or PUBLISH (NOPERM). The service keeps
 * answering; operators are told: one warn line per kind of refusal and 30 s (with a count, never a
 * question), and /health/ready `degraded` while Redis refused a command within the last 30 s.
 */

jest.setTimeout(90_000);

/** How long /health/ready stays degraded after the last refusal (docs/operations.md). */
const REFUSAL_WINDOW_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let seq = 0;
/** A question no other test asks; letters and digits only, recognisable in a log line or a key. */
const question = (what: string) => `Secret${what}${++seq}x${Date.now() % 1e8}`;

interface Ready {
  status: string;
  details: { redis: { state: string; message?: string; refused?: Array<{ kind: string; count: number; ops: string[] }> } };
}

async function ready(svc: RunningApp): Promise<Ready> {
  const r = await timedGet(`${svc.url}/health/ready`);
  expect(r.status).toBe(200);
  return JSON.parse(r.body) as Ready;
}

async function adminClient(url: string): Promise<RedisClientType> {
  const client = createClient({ url }) as RedisClientType;
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

function refusalLines(svc: RunningApp, kind: string): LogLine[] {
  return svc.logs.filter((l) => l.context === 'RedisConnectionService' && l.msg.includes(kind));
}

function show(svc: RunningApp): string[] {
  return svc.logs.filter((l) => !l.msg.startsWith('request') && l.context !== 'RouterExplorer').map((l) => `${l.level} [${l.context ?? '-'}] ${l.msg}`);
}

describe('Redis refusing commands', () => {
  let upstream: FakeNominatim;

  beforeAll(async () => {
    upstream = new FakeNominatim({});
    await upstream.start();
  });

  afterAll(async () => {
    await upstream.stop();
  });

  async function boot(redisUrl: string): Promise<RunningApp> {
    const svc = await startApp({ REDIS_URL: redisUrl, NOMINATIM_URL: upstream.url, LOG_LEVEL: 'info' }, { captureLogs: true });
    const client = svc.app.get<RedisClientType>(REDIS_CLIENT);
    await eventually(() => client.isReady);
    return svc;
  }

  it('full Redis (OOM, noeviction): one warn line with a count per 30 s, readiness degraded until 30 s without a refusal', async () => {
    const redis = await startRedis();
    const admin = await adminClient(redis.url);
    const svc = await boot(redis.url);
    try {
      expect((await timedGet(`${svc.url}/api?q=${question('before')}`)).headers.get('x-cache')).toBe('MISS');
      expect((await ready(svc)).status).toBe('ok');

      await admin.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '1' });
      const faultAt = Date.now();
      const asked: string[] = [];
      let lastRefusedStart = 0;
      for (let i = 0; i < 15; i++) {
        const q = question('full');
        asked.push(q);
        const r = await timedGet(`${svc.url}/api?q=${q}`);
        expect([r.status, r.headers.get('x-cache')]).toEqual([200, 'BYPASS']);
        lastRefusedStart = r.start;
      }

      const health = await ready(svc);
      expect(health.status).toBe('degraded');
      expect(health.details.redis.state).toBe('refusing');
      expect(health.details.redis.message).toMatch(/OOM/);
      expect(health.details.redis.message).toMatch(/maxmemory/);
      const oom = health.details.redis.refused?.find((r) => r.kind === 'OOM');
      expect(oom?.count).toBeGreaterThanOrEqual(15);
      expect(oom?.ops).toEqual(expect.arrayContaining(['fill-lock acquire']));

      // One line for the whole burst, at warn, naming the kind; the questions appear in no line at all.
      const first = refusalLines(svc, 'OOM');
      expect(first.map((l) => l.level)).toEqual(['warn']);
      expect(first.every((l) => l.at >= faultAt) ? 'after the fault' : show(svc)).toBe('after the fault');
      for (const q of asked) expect(svc.logs.filter((l) => l.raw.includes(q)).map((l) => l.raw)).toEqual([]);

      await admin.configSet({ maxmemory: '0' });
      expect((await timedGet(`${svc.url}/api?q=${question('after')}`)).headers.get('x-cache')).toBe('MISS');
      // Still degraded: the last refusal is recent.
      expect((await ready(svc)).details.redis.state).toBe('refusing');

      let okAt = 0;
      await eventually(async () => {
        const h = await ready(svc);
        okAt = Date.now();
        return h.status === 'ok' && h.details.redis.state === 'ready';
      }, REFUSAL_WINDOW_MS + 10_000, 250);
      expect(okAt - lastRefusedStart).toBeGreaterThanOrEqual(REFUSAL_WINDOW_MS - 1000);

      // The refusals after the first line were counted and reported once, with their number.
      await eventually(() => refusalLines(svc, 'OOM').length >= 2, 5000);
      const lines = refusalLines(svc, 'OOM');
      expect(lines.length).toBeLessThanOrEqual(3);
      expect(lines[1].level).toBe('warn');
      expect(lines[1].msg).toMatch(/refused \d+ more/);
      expect(Number(/refused (\d+) more/.exec(lines[1].msg)?.[1])).toBeGreaterThanOrEqual(14);
    } finally {
      await svc.close();
      await admin.quit().catch(() => undefined);
      await redis.stop();
    }
  });

  it('an ACL user without EVAL and PUBLISH (NOPERM): answers stay MISS, one warn line, readiness degraded naming the commands', async () => {
    const redis = await startRedis({ users: ['app on >app-secret ~* &* +@all -eval -evalsha -publish'] });
    const svc = await boot(`redis://app:app-secret@127.0.0.1:${redis.port}`);
    try {
      const asked: string[] = [];
      for (let i = 0; i < 5; i++) {
        const q = question('acl');
        asked.push(q);
        const r = await timedGet(`${svc.url}/api?q=${q}`);
        // SET works: answers are stored; pacing falls back to per process, the fill notice is not sent.
        expect([r.status, r.headers.get('x-cache')]).toEqual([200, 'MISS']);
      }
      await sleep(50);
      const health = await ready(svc);
      expect(health.status).toBe('degraded');
      expect(health.details.redis.state).toBe('refusing');
      expect(health.details.redis.message).toMatch(/NOPERM/);
      const noperm = health.details.redis.refused?.find((r) => r.kind === 'NOPERM');
      expect(noperm?.ops).toEqual(expect.arrayContaining(['pacer acquire', 'fill-lock publish']));

      const lines = refusalLines(svc, 'NOPERM');
      expect(lines.map((l) => l.level)).toEqual(['warn']);
      for (const q of asked) expect(svc.logs.filter((l) => l.raw.includes(q)).map((l) => l.raw)).toEqual([]);
    } finally {
      await svc.close();
      await redis.stop();
    }
  });
});
