import { type RedisClientType } from 'redis';
import { REDIS_CLIENT } from '../src/cache/cache.constants';
import { eventually, LogLine, RunningApp, startApp, startE2e, useFake } from './support/app-harness';
import { RedisProcess, startRedis } from './support/redis-server';
import { timedGet } from './support/traffic';

/*
 * A Redis that is reachable (PING works) but refuses the service's commands: full with
 * `maxmemory-policy noeviction` (OOM), an ACL user without EVAL or PUBLISH (NOPERM). The service keeps
 * answering; operators are told: one warn line per kind of refusal and 30 s (with a count, never a
 * question), and /health/ready `degraded` while Redis refused a command within the last 30 s.
 * And a node that became a read-only replica (a failover behind a DNS name): READONLY makes the
 * service reconnect (following the name) and skip Redis until it reaches a master.
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

function refusalLines(svc: RunningApp, kind: string): LogLine[] {
  return svc.logs.filter((l) => l.context === 'RedisConnectionService' && l.msg.includes(kind));
}

function show(svc: RunningApp): string[] {
  return svc.logs.filter((l) => !l.msg.startsWith('request') && l.context !== 'RouterExplorer').map((l) => `${l.level} [${l.context ?? '-'}] ${l.msg}`);
}

describe('Redis refusing commands', () => {
  const upstream = useFake();

  async function boot(redisUrl: string): Promise<RunningApp> {
    const svc = await startApp({ REDIS_URL: redisUrl, NOMINATIM_URL: upstream.url, LOG_LEVEL: 'info' }, { captureLogs: true });
    const client = svc.app.get<RedisClientType>(REDIS_CLIENT);
    await eventually(() => client.isReady);
    return svc;
  }

  it('full Redis (OOM, noeviction): one warn line with a count per 30 s, readiness degraded until 30 s without a refusal', async () => {
    const { redis, probe: admin, stop } = await startE2e({ upstream, probe: true });
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
      // Counted by kind for alerting (places_redis_errors_total mixes them with timeouts).
      const metrics = (await timedGet(`${svc.url}/metrics`)).body;
      expect(Number(/^places_redis_refusals_total\{kind="OOM"\} (\d+)$/m.exec(metrics)?.[1])).toBe(oom?.count);
      // ... and no other component (pacer, rate limits, fill lock) adds a line of its own for it.
      const warned = svc.logs.filter((l) => l.at >= faultAt && l.level === 'warn');
      expect(warned.map((l) => `[${l.context}] ${l.msg}`)).toEqual([expect.stringMatching(/^\[RedisConnectionService\] Redis refused [^:]+: OOM /)]);
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
      await stop();
    }
  });

  it('an idle Redis that is full (noeviction) reads degraded at once, from INFO memory, without a request; a Redis that evicts does not', async () => {
    const { redis, probe: admin, stop } = await startE2e({ upstream, probe: true });
    const svc = await boot(redis.url);
    try {
      expect((await timedGet(`${svc.url}/api?q=${question('stored')}`)).headers.get('x-cache')).toBe('MISS');
      expect((await ready(svc)).status).toBe('ok');
      await admin.configSet({ 'maxmemory-policy': 'allkeys-lru', maxmemory: '1' });
      expect((await ready(svc)).status).toBe('ok');

      await admin.configSet({ 'maxmemory-policy': 'noeviction' });
      const health = await ready(svc);
      expect([health.status, health.details.redis.state]).toEqual(['degraded', 'full']);
      expect(health.details.redis.message).toMatch(/maxmemory.*noeviction/);
      // Told by the probe alone: nothing was refused, nothing logged.
      expect(health.details.redis.refused).toBeUndefined();
      expect(svc.logs.filter((l) => l.level === 'warn')).toEqual([]);

      await admin.configSet({ maxmemory: '0' });
      expect((await ready(svc)).status).toBe('ok');
    } finally {
      await svc.close();
      await stop();
    }
  });

  it('an ACL user without INFO: readiness cannot tell a full Redis, and reads ok (INFO refused is no refusal of the service)', async () => {
    const { redis, stop } = await startE2e({ upstream, redis: { users: ['app on >app-secret ~* &* +@all -info'] } });
    const svc = await boot(`redis://app:app-secret@127.0.0.1:${redis.port}`);
    try {
      await sleep(200);
      const health = await ready(svc);
      expect([health.status, health.details.redis.state]).toEqual(['ok', 'ready']);
      expect(Number(/^places_redis_refusals_total\{kind="NOPERM"\} (\d+)$/m.exec((await timedGet(`${svc.url}/metrics`)).body)?.[1] ?? 0)).toBe(0);
    } finally {
      await svc.close();
      await stop();
    }
  });

  it('an ACL user without EVAL and PUBLISH (NOPERM): answers stay MISS, one warn line, readiness degraded naming the commands', async () => {
    const { redis, stop } = await startE2e({ upstream, redis: { users: ['app on >app-secret ~* &* +@all -eval -evalsha -publish'] } });
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
      // the pacer and the rate limits going per process are told by that line, not by lines of their own
      const warned = svc.logs.filter((l) => l.level === 'warn' && /NOPERM/.test(l.msg));
      expect(warned.map((l) => `[${l.context}] ${l.msg}`)).toEqual([expect.stringMatching(/^\[RedisConnectionService\] Redis refused [^:]+: NOPERM .*pacing and rate limits count per process/)]);
      for (const q of asked) expect(svc.logs.filter((l) => l.raw.includes(q)).map((l) => l.raw)).toEqual([]);
    } finally {
      await svc.close();
      await stop();
    }
  });

  it('an ACL user without the channels (&places:v1:*): the refused subscriptions make readiness degraded, are counted, and are retried until allowed', async () => {
    const { redis, probe: admin, stop } = await startE2e({ upstream, probe: true, redis: { users: ['app on >app-secret ~* resetchannels +@all'] } });
    const svc = await boot(`redis://app:app-secret@127.0.0.1:${redis.port}`);
    try {
      // No request at all: only the two subscriptions at start-up are refused.
      await eventually(async () => (await ready(svc)).status === 'degraded', 5000, 100);
      const health = await ready(svc);
      expect(health.details.redis.state).toBe('refusing');
      expect(health.details.redis.message).toMatch(/NOPERM/);
      const noperm = health.details.redis.refused?.find((r) => r.kind === 'NOPERM');
      expect(noperm?.ops).toEqual(expect.arrayContaining(['fill-lock subscribe', 'purge subscribe']));
      const metrics = (await timedGet(`${svc.url}/metrics`)).body;
      expect(Number(/^places_redis_refusals_total\{kind="NOPERM"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);

      // The operator grants the channels: the service subscribes without a restart or a reconnection.
      await admin.sendCommand(['ACL', 'SETUSER', 'app', '&places:v1:*']);
      const subscribers = async () => (await admin.sendCommand<Array<string | number>>(['PUBSUB', 'NUMSUB', 'places:v1:filled', 'places:v1:purge'])).filter((_, i) => i % 2 === 1);
      await eventually(async () => (await subscribers()).every((n) => Number(n) === 1), 20_000, 250);
    } finally {
      await svc.close();
      await stop();
    }
  });

  describe('a node that turns into a read-only replica (REPLICAOF: a failover, maintenance)', () => {
    let other: RedisProcess;

    beforeAll(async () => {
      other = await startRedis();
    });

    afterAll(async () => {
      await other.stop();
    });

    /** Connections the node accepted so far (INFO stats): the app reconnecting shows here. */
    async function connectionsTo(admin: RedisClientType): Promise<number> {
      return Number(/total_connections_received:(\d+)/.exec(await admin.info('stats'))?.[1]);
    }

    async function readOnlyErrors(admin: RedisClientType): Promise<number> {
      return Number(/errorstat_READONLY:count=(\d+)/.exec(await admin.info('errorstats'))?.[1] ?? 0);
    }

    it('skips Redis at once, logs it once, reports read_only, reconnects until the node is a master, then caches again', async () => {
      const { redis, probe: admin, stop } = await startE2e({ upstream, probe: true });
      const svc = await boot(redis.url);
      try {
        expect((await timedGet(`${svc.url}/api?q=${question('primary')}`)).headers.get('x-cache')).toBe('MISS');
        const connectionsBefore = await connectionsTo(admin);

        await admin.replicaOf(other.host, other.port);
        const demotedAt = Date.now();
        for (let i = 0; i < 6; i++) {
          const r = await timedGet(`${svc.url}/api?q=${question('replica')}`);
          expect([r.status, r.headers.get('x-cache')]).toEqual([200, 'BYPASS']);
        }
        // one READONLY at most from the cache: after it nothing is sent but the reconnections and their
        // role check (HELLO names a replica, and one write to the probe's own key tells it is read-only)
        const reconnections = (await connectionsTo(admin)) - connectionsBefore;
        expect(await readOnlyErrors(admin)).toBeLessThanOrEqual(1 + reconnections);

        const health = await ready(svc);
        expect(health.status).toBe('degraded');
        expect(health.details.redis.state).toBe('read_only');
        expect(health.details.redis.message).toMatch(/read-only replica/);
        expect((await timedGet(`${svc.url}/metrics`)).body).toMatch(/^places_redis_connected 0$/m);

        // It keeps trying: each attempt is a new connection (a DNS name is resolved again), logged once.
        await sleep(2500);
        expect(await connectionsTo(admin)).toBeGreaterThanOrEqual(connectionsBefore + 2);
        const warned = svc.logs.filter((l) => l.at >= demotedAt && l.level === 'warn' && l.context === 'RedisConnectionService');
        expect(warned.length === 1 && /read-only replica/.test(warned[0].msg) ? 'one line' : show(svc)).toBe('one line');
        expect(svc.logs.filter((l) => l.at >= demotedAt && /Redis connection ended|Redis connected/.test(l.msg)).map((l) => l.msg)).toEqual([]);

        await admin.sendCommand(['REPLICAOF', 'NO', 'ONE']);
        const promotedAt = Date.now();
        const q = question('promoted');
        await eventually(async () => (await timedGet(`${svc.url}/api?q=${question('probe')}`)).headers.get('x-cache') === 'MISS', 5000, 100);
        expect(Date.now() - promotedAt).toBeLessThan(3000);
        expect((await timedGet(`${svc.url}/api?q=${q}`)).headers.get('x-cache')).toBe('MISS');
        // stored in Redis (the key holds the question, case-folded)
        expect((await admin.keys('places:v1:*')).filter((k) => k.toLowerCase().includes(q.toLowerCase()))).toHaveLength(1);
        expect((await ready(svc)).status).toBe('ok');
        expect(svc.logs.some((l) => l.at >= promotedAt && l.level === 'info' && /writable again/.test(l.msg)) ? 'logged' : show(svc)).toBe('logged');
      } finally {
        await svc.close();
        await admin.sendCommand(['REPLICAOF', 'NO', 'ONE']).catch(() => undefined);
        await stop();
      }
    });

    it('caches again when the replica goes away and a master answers at its address (the name moved meanwhile)', async () => {
      const { redis, probe: admin, stop } = await startE2e({ upstream, probe: true });
      const svc = await boot(redis.url);
      try {
        await admin.replicaOf(other.host, other.port);
        expect((await timedGet(`${svc.url}/api?q=${question('demoted')}`)).headers.get('x-cache')).toBe('BYPASS');
        await eventually(async () => (await ready(svc)).details.redis.state === 'read_only', 3000);
        await redis.kill();
        await sleep(300);
        await redis.restart(); // a new, empty master on the same address
        await eventually(async () => (await timedGet(`${svc.url}/api?q=${question('back')}`)).headers.get('x-cache') === 'MISS', 5000, 100);
        expect((await ready(svc)).status).toBe('ok');
      } finally {
        await svc.close();
        await stop();
      }
    });

    it('a replica that HELLO cannot ask (Redis 5, a renamed command): reconnected once a second, not at every write, and logged once', async () => {
      // `rename-command HELLO ""` answers HELLO as Redis 5 does: ERR unknown command.
      const { redis, probe: admin, stop } = await startE2e({ upstream, probe: true, redis: { args: ['--rename-command', 'HELLO', ''] } });
      const svc = await boot(redis.url);
      try {
        expect((await timedGet(`${svc.url}/api?q=${question('nohello')}`)).headers.get('x-cache')).toBe('MISS');
        const connectionsBefore = await connectionsTo(admin);
        await admin.replicaOf(other.host, other.port);
        const demotedAt = Date.now();
        // Misses for 2.5 s: each one would write (the fill lock) if the node were taken for a master.
        while (Date.now() - demotedAt < 2500) {
          const r = await timedGet(`${svc.url}/api?q=${question('nohello')}`);
          expect(r.status).toBe(200);
          await sleep(50);
        }
        expect((await ready(svc)).details.redis.state).toBe('read_only');
        // at once, then once a second: 4 at most in 2.5 s (and the admin's INFO adds none)
        expect((await connectionsTo(admin)) - connectionsBefore).toBeLessThanOrEqual(4);
        const lines = svc.logs.filter((l) => l.at >= demotedAt && l.context === 'RedisConnectionService');
        expect(lines.length === 1 && /read-only replica/.test(lines[0].msg) ? 'one line' : show(svc)).toBe('one line');

        await admin.sendCommand(['REPLICAOF', 'NO', 'ONE']);
        await eventually(async () => (await timedGet(`${svc.url}/api?q=${question('nohello')}`)).headers.get('x-cache') === 'MISS', 5000, 100);
        expect((await ready(svc)).status).toBe('ok');
      } finally {
        await svc.close();
        await admin.sendCommand(['REPLICAOF', 'NO', 'ONE']).catch(() => undefined);
        await stop();
      }
    });

    it('sees a REDIS_URL that points at a replica from the start before the cache writes to it', async () => {
      const { redis, probe: admin, stop } = await startE2e({ upstream, probe: true, redis: { args: ['--replicaof', '127.0.0.1', String(other.port)] } });
      const before = await connectionsTo(admin);
      const svc = await boot(redis.url);
      try {
        await eventually(async () => (await ready(svc)).details.redis.state === 'read_only', 3000);
        const r = await timedGet(`${svc.url}/api?q=${question('fromstart')}`);
        expect([r.status, r.headers.get('x-cache')]).toEqual([200, 'BYPASS']);
        // HELLO names a replica, which may take writes (replica-read-only no): one write to the role
        // probe's own key per connection tells, and nothing else is written.
        expect(await readOnlyErrors(admin)).toBeLessThanOrEqual((await connectionsTo(admin)) - before);
      } finally {
        await svc.close();
        await stop();
      }
    });

    it('uses a replica that takes writes (replica-read-only no) as it did a master', async () => {
      const { redis, stop } = await startE2e({ upstream, redis: { args: ['--replicaof', '127.0.0.1', String(other.port), '--replica-read-only', 'no'] } });
      const svc = await boot(redis.url);
      try {
        await eventually(async () => (await ready(svc)).details.redis.state === 'ready', 3000);
        const r = await timedGet(`${svc.url}/api?q=${question('writable')}`);
        expect([r.status, r.headers.get('x-cache')]).toEqual([200, 'MISS']);
        expect(svc.logs.filter((l) => l.msg.includes('read-only replica'))).toEqual([]);
      } finally {
        await svc.close();
        await stop();
      }
    });
  });
});
