import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { createClient } from 'redis';
import { eventually } from './support/app-harness';
import { AppProcess, spawnApp } from './support/app-process';
import { BuiltApp, buildApp } from './support/build-app';
import { FakeNominatim } from './support/fake-nominatim';
import { freePort, RedisProcess, startRedis } from './support/redis-server';

// The e2e project's testTimeout is not applied per project by Jest 30; these tests spawn processes and wait.
jest.setTimeout(60_000);

interface App extends AppProcess {
  url: string;
  port: number;
}

/** The fields of the app's log lines these tests look at. */
interface Logged {
  level: string;
  msg: string;
  context?: string;
  reqId?: string;
  status?: number;
  code?: number;
}

/** TCP connect to the port: true when it is refused (nothing listens any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/**
 * SIGTERM to the real process (issue 4, item 7): it stops accepting, lets the running request finish,
 * closes Redis, flushes its logs and exits 0 within SHUTDOWN_TIMEOUT_MS — well under Heroku's 30 s.
 */
describe('graceful shutdown (e2e, the app as its own process)', () => {
  let build: BuiltApp;
  let upstream: FakeNominatim;
  let redis: RedisProcess;
  let control: ReturnType<typeof createClient>;
  const running = new Set<App>();

  beforeAll(async () => {
    [build, redis] = await Promise.all([buildApp(), startRedis()]);
    upstream = new FakeNominatim({ latencyMs: 1500 });
    await upstream.start();
    control = createClient({ url: redis.url, name: 'shutdown-test-control' });
    control.on('error', () => undefined);
    await control.connect();
  }, 120_000);

  afterAll(async () => {
    await control?.quit().catch(() => undefined);
    await upstream?.stop();
    await redis?.stop();
    build?.remove();
  });

  afterEach(async () => {
    // A failed test must not leave its app running.
    await Promise.all([...running].map((app) => app.stop()));
    running.clear();
    upstream.reset();
  });

  /** The app's own connections to the private Redis (ours is named). */
  const appRedisClients = async (): Promise<number> => {
    const list = (await control.sendCommand(['CLIENT', 'LIST'])) as string;
    return list.split('\n').filter((l) => l.trim() !== '' && !l.includes('name=shutdown-test-control')).length;
  };

  /** Starts the built app on `port` (it is not waited for: see startReady). */
  function launch(env: Record<string, string>, port: number, nodeFlags: string[] = []): App {
    const spawned = spawnApp(build, {
      nodeFlags,
      env: {
        PORT: String(port),
        LOG_LEVEL: 'info',
        REDIS_URL: redis.url,
        NOMINATIM_URL: upstream.url,
        // The shared pacer's start guard is 5% of the interval: 10/s leaves it 5 ms (1000/s: 0.05 ms).
        NOMINATIM_MAX_RPS: '10',
        RATE_LIMIT_ENABLED: 'false',
        ...env,
      },
    });
    const app: App = Object.assign(spawned, { port, url: `http://127.0.0.1:${port}` });
    running.add(app);
    return app;
  }

  /** The app on a free port, once it reports Redis ready. */
  async function startReady(env: Record<string, string>): Promise<App> {
    const app = launch(env, await freePort());
    const redisReady = async () => {
      const res = await fetch(`${app.url}/health/ready`).catch(() => null);
      if (res === null) return false;
      const body = (await res.json()) as { details: { redis: { state: string } } };
      return body.details.redis.state === 'ready';
    };
    await app.until(redisReady, 'Redis ready on /health/ready', 30_000);
    return app;
  }

  const lines = (app: App) => app.lines<Logged>();

  it('finishes the running miss, refuses new connections, closes Redis, flushes its logs and exits 0', async () => {
    const app = await startReady({ SHUTDOWN_TIMEOUT_MS: '10000' });
    expect(await appRedisClients()).toBeGreaterThanOrEqual(2);

    let settled = false;
    const inflight = fetch(`${app.url}/api?q=Berlin`, { headers: { 'X-Request-Id': 'in-flight-1' } }).finally(() => (settled = true));
    await eventually(() => upstream.count('/search') === 1);
    app.child.kill('SIGTERM');

    // The port closes at once: while the request is still waiting for Nominatim (1.5 s).
    await eventually(() => refused(app.port), 10_000, 20);
    expect(settled).toBe(false);

    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('MISS');
    expect(res.headers.get('x-request-id')).toBe('in-flight-1');
    const body = (await res.json()) as { cache: boolean; data: Array<{ display_name: string }> };
    expect(body.data[0].display_name).toContain('Berlin');

    // Exit 0 is the shutdown sequence's own: past SHUTDOWN_TIMEOUT_MS the running request would have
    // been cut off (logged, checked below), and hooks that outlast the grace after it end in exit 1.
    const { code, signal } = await app.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(await appRedisClients()).toBe(0);
    expect(upstream.count()).toBe(1);

    // Every line made it to stdout before the exit, the last ones included.
    const logged = lines(app);
    const msgs = logged.map((l) => l.msg);
    expect(msgs).toContain('SIGTERM received: shutting down');
    expect(msgs.some((m) => /^Stopped accepting connections; letting \d+ open connection\(s\) finish \(at most 10000 ms\)$/.test(m))).toBe(true);
    expect(msgs.some((m) => /^HTTP server drained in \d+ ms$/.test(m))).toBe(true);
    expect(msgs.filter((m) => m.includes('cut off'))).toEqual([]);
    expect(logged.find((l) => l.reqId === 'in-flight-1')).toMatchObject({ msg: 'request', status: 200 });
    expect(logged[logged.length - 1]).toMatchObject({ context: 'Shutdown', msg: 'Exiting with code 0', code: 0 });
    expect(msgs.filter((m) => /exit/i.test(m))).toEqual(['Exiting with code 0']);
    expect(logged.filter((l) => l.level === 'error')).toEqual([]);
    expect(app.stderr()).toBe('');
  });

  it('ends a failed start (the port taken) with one exit line: the reason on stderr, no "Exiting" line after it', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const app = launch({}, port);
      const { code } = await app.exited;
      expect(code).toBe(1);
      // One line naming the variables, no stack trace.
      expect(app.stderr()).toBe(`places-cache could not start: cannot listen on 127.0.0.1:${port} (HOST, PORT): listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
      expect(app.stdout()).not.toContain('Exiting with code');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('ends a start on a HOST that is not this machine\'s with one line naming HOST', async () => {
    // An address of TEST-NET-1 (RFC 5737), on no interface here: bind fails, and no packet is sent.
    const app = launch({ HOST: '192.0.2.1' }, 0);
    const { code } = await app.exited;
    expect(code).toBe(1);
    expect(app.stderr()).toBe('places-cache could not start: cannot listen on 192.0.2.1:0 (HOST, PORT): listen EADDRNOTAVAIL: address not available 192.0.2.1\n');
  });

  it('with WEB_CONCURRENCY, a failed start (the port taken) stops the group at once with 1, not after restarting workers', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const startedAt = Date.now();
      const app = launch({ WEB_CONCURRENCY: '2' }, port);
      const { code, at } = await app.exited;
      expect(code).toBe(1);
      // Each worker failed once, as it would again: no replacement started, no crash loop reported.
      const failures = app.stderr().split('\n').filter((l) => l.startsWith('places-cache could not start: '));
      expect(failures.length).toBeGreaterThanOrEqual(1);
      expect(failures.length).toBeLessThanOrEqual(2);
      expect(failures[0]).toMatch(/EADDRINUSE/);
      const cluster = lines(app).filter((l) => l.context === 'Cluster').map((l) => l.msg);
      expect(cluster.filter((m) => /died unexpectedly|died \d+ times/.test(m))).toEqual([]);
      expect(cluster.filter((m) => /^Worker \d+ could not start; stopping the group$/.test(m))).toHaveLength(1);
      expect(cluster.at(-1)).toBe('All workers stopped; exiting with code 1');
      expect(at - startedAt).toBeLessThan(15_000);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('with WEB_CONCURRENCY, SIGTERM while the workers still start stops the group with 0', async () => {
    const app = launch({ WEB_CONCURRENCY: '2' }, await freePort());
    // Sent as soon as the primary has forked: the workers are still loading the app (a second or so),
    // before any handler of theirs is in place: the signal the primary relays ends them as they are.
    await app.until(() => lines(app).some((l) => l.msg === 'WEB_CONCURRENCY=2: starting 2 workers sharing one port'), 'the workers forked', 30_000, 10);
    const signalledAt = Date.now();
    app.child.kill('SIGTERM');
    const { code, signal, at } = await app.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(at - signalledAt).toBeLessThan(10_000);
    expect(lines(app).at(-1)).toMatchObject({ context: 'Cluster', msg: 'All workers stopped; exiting with code 0' });
  });

  it('with WEB_CONCURRENCY, SIGTERM while a worker builds the app (its stop handler not yet in place) still stops the group with 0', async () => {
    // A preload (inherited by the workers) holds NestFactory.create for 3 s and says so: the worker is
    // past main.js's first lines (its repeated-signal guard in place) but Nest's shutdown hook is not yet.
    const preload = join(dirname(build.main), 'slow-nest-create.js');
    writeFileSync(
      preload,
      `const cluster = require('node:cluster');
      if (cluster.isWorker) {
        const { NestFactory } = require('@nestjs/core');
        const create = NestFactory.create;
        NestFactory.create = async function (...args) {
          process.stderr.write('building the app\\n');
          await new Promise((resolve) => setTimeout(resolve, 3000));
          return create.apply(this, args);
        };
      }`,
    );
    const app = launch({ WEB_CONCURRENCY: '2', SHUTDOWN_TIMEOUT_MS: '1000' }, await freePort(), ['--require', preload]);
    await app.until(() => app.stderr().split('building the app').length === 3, 'both workers building the app', 30_000, 10);
    const signalledAt = Date.now();
    app.child.kill('SIGTERM');
    const { code, signal, at } = await app.exited;
    // Not swallowed: no worker goes on to listen and waits to be killed (1 s + 2 s + 3 s later, code 1).
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(at - signalledAt).toBeLessThan(3_000);
    expect(lines(app).at(-1)).toMatchObject({ context: 'Cluster', msg: 'All workers stopped; exiting with code 0' });
  });

  it('with WEB_CONCURRENCY, a replacement worker whose start fails once is replaced again: the running group is not stopped', async () => {
    // A preload (inherited by the workers): a worker that finds `crash` crashes (exit 3) once it runs; one
    // that finds `fail-start` as it starts exits 1 before listening (a transient failure: the file is taken).
    const dir = dirname(build.main);
    const preload = join(dir, 'crash-then-fail-start.js');
    writeFileSync(
      preload,
      `const cluster = require('node:cluster');
      const fs = require('node:fs');
      const take = (name) => { try { fs.unlinkSync(${JSON.stringify(dir)} + '/' + name); return true; } catch { return false; } };
      if (cluster.isWorker) {
        if (take('fail-start')) process.exit(1);
        setInterval(() => take('crash') && process.exit(3), 20).unref();
      }`,
    );
    const app = launch({ WEB_CONCURRENCY: '2' }, await freePort(), ['--require', preload]);
    const listening = () => lines(app).filter((l) => l.msg.startsWith('places-cache listening')).length;
    await app.until(() => listening() === 2, 'two workers listening', 30_000);
    writeFileSync(join(dir, 'fail-start'), '');
    writeFileSync(join(dir, 'crash'), '');
    // The crashed worker's replacement fails to start; the one after it serves beside the worker that never stopped.
    await app.until(() => listening() === 3, 'a third worker listening', 30_000);
    const cluster = lines(app).filter((l) => l.context === 'Cluster').map((l) => l.msg);
    expect(cluster.filter((m) => m.includes('died unexpectedly'))).toHaveLength(2);
    expect(cluster.filter((m) => m.includes('could not start'))).toEqual([]);
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    app.child.kill('SIGTERM');
    expect(await app.exited).toMatchObject({ code: 0, signal: null });
  });

  it('exits 0 in time when Redis is frozen at shutdown (QUIT is not waited for forever)', async () => {
    const app = await startReady({ SHUTDOWN_TIMEOUT_MS: '2000', REDIS_OP_TIMEOUT_MS: '200' });
    await redis.pause();
    try {
      app.child.kill('SIGTERM');
      // It exits while Redis is still frozen (resumed only after), and with 0: a QUIT waited for past
      // the shutdown's grace would have ended in exit 1 (guardProcessExit), one waited for forever in none.
      const { code, signal } = await app.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
    } finally {
      await redis.resume();
    }
    await eventually(async () => (await appRedisClients()) === 0);
    expect(lines(app).map((l) => l.msg)).toContain('Exiting with code 0');
  });

  it('cuts off a request still running at SHUTDOWN_TIMEOUT_MS, and still exits 0 in time', async () => {
    upstream.latencyMs = 8000;
    const app = await startReady({ SHUTDOWN_TIMEOUT_MS: '1000', UPSTREAM_TIMEOUT_MS: '9000' });
    const inflight = fetch(`${app.url}/api?q=Zurich`).then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    await eventually(() => upstream.count('/search') === 1);
    const signalledAt = Date.now();
    app.child.kill('SIGTERM');

    const { code, signal, at } = await app.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(at - signalledAt).toBeGreaterThanOrEqual(900);
    // Cut off, not waited for: it exited before the upstream (8 s) had answered.
    expect(upstream.requests[0].answeredAtHr).toBeUndefined();
    // The connection was closed under it: no answer at all (Heroku's router would answer 503 itself).
    expect(await inflight).toBe('fetch failed');
    expect(await appRedisClients()).toBe(0);
    expect(lines(app).map((l) => l.msg)).toContain('Requests still running after 1000 ms (SHUTDOWN_TIMEOUT_MS) were cut off');
  });
});
