import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { createClient, RedisClientType } from 'redis';
import { AppProcess, npmStartFlags, spawnApp } from './support/app-process';
import { BuiltApp, buildApp } from './support/build-app';
import { FakeNominatim } from './support/fake-nominatim';
import { parsePrometheus, sampleValue } from './support/prometheus';
import { freePort, RedisProcess, startRedis } from './support/redis-server';
import { seedTypical, typicalApiPath } from './support/typical-answers';

jest.setTimeout(600_000);

const ANSWERS = 20_000;
const MB = 1024 * 1024;

interface Running extends AppProcess {
  url: string;
}

/**
 * Issue 18, failure 7: the process's memory follows L1_MAX_BYTES. 20,000 distinct typical answers
 * (0.5-1.5 KB of JSON, in Redis as the service stores them) are asked once each, half by clients that
 * take gzip, through the service started as `npm start` starts it with the default L1, and through the
 * same service with L1 off (the baseline, in the same test): the default one stays under 300 MB RSS,
 * and what it holds more than the baseline is what its L1 counts, within the allocator's slack.
 */
describe('L1 memory (e2e, the app as its own process)', () => {
  let build: BuiltApp;
  let redis: RedisProcess;
  let client: RedisClientType;
  let upstream: FakeNominatim;
  const running = new Set<AppProcess>();

  beforeAll(async () => {
    [build, redis] = await Promise.all([buildApp(), startRedis()]);
    upstream = new FakeNominatim({ latencyMs: 0 });
    await upstream.start();
    client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    await seedTypical(client, 0, ANSWERS, { ttlSeconds: 86_400, keepSeconds: 86_400, compressMinBytes: 256 });
  }, 180_000);

  afterAll(async () => {
    await Promise.all([...running].map((app) => app.stop()));
    await client?.quit().catch(() => undefined);
    await upstream?.stop();
    await redis?.stop();
    build?.remove();
  });

  /** `withRedis` false: REDIS_URL unset, answers kept in process only (L1 and the memory store). */
  async function start(env: Record<string, string>, withRedis = true): Promise<Running> {
    const port = await freePort();
    // The node flags `npm start` runs the service with, so that this test measures what production runs.
    const spawned = spawnApp(build, {
      nodeFlags: npmStartFlags(),
      env: {
        NODE_ENV: 'production',
        PORT: String(port),
        ...(withRedis ? { REDIS_URL: redis.url } : {}),
        NOMINATIM_URL: upstream.url,
        LOG_LEVEL: 'warn',
        RATE_LIMIT_HITS: '100000000',
        RATE_LIMIT_MISSES: '1000000',
        ...env,
      },
    });
    const app: Running = Object.assign(spawned, { url: `http://127.0.0.1:${port}` });
    running.add(app);
    const ready = withRedis ? /^places_redis_connected 1$/m : /^places_l1_bytes /m;
    const connected = async () => ready.test(await fetch(`${app.url}/metrics`).then((r) => r.text(), () => ''));
    await app.until(connected, `${ready.source} on /metrics`, 60_000);
    return app;
  }

  async function stop(app: Running): Promise<void> {
    await app.stop('SIGTERM');
    running.delete(app);
  }

  /** Every answer once, on 8 keep-alive connections; every other one with Accept-Encoding: gzip. */
  async function askAll(url: string): Promise<Record<string, number>> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const outcomes: Record<string, number> = {};
    let next = 0;
    const worker = async () => {
      while (next < ANSWERS) {
        const i = next++;
        const headers: Record<string, string> = i % 2 === 0 ? { 'Accept-Encoding': 'gzip' } : {};
        const cache = await new Promise<string>((resolve, reject) => {
          http
            .get(`${url}${typicalApiPath(i)}`, { agent, headers }, (res) => {
              res.resume();
              res.on('end', () => resolve(`${res.statusCode} ${String(res.headers['x-cache'])}`));
            })
            .on('error', reject);
        });
        outcomes[cache] = (outcomes[cache] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    agent.destroy();
    return outcomes;
  }

  async function memory(url: string): Promise<{ rss: number; heap: number; external: number; l1Bytes: number; l1Entries: number; l1Hits: number }> {
    // Let the process settle (pending GC work, freed sockets) as a long-running one would.
    await new Promise((r) => setTimeout(r, 3000));
    const samples = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    const value = (name: string, labels: Record<string, string> = {}) => {
      const v = sampleValue(samples, name, labels);
      if (v === undefined) throw new Error(`/metrics has no ${name}`);
      return v;
    };
    return {
      rss: value('places_process_resident_memory_bytes'),
      heap: value('places_nodejs_heap_size_used_bytes'),
      external: value('places_nodejs_external_memory_bytes'),
      l1Bytes: value('places_l1_bytes'),
      l1Entries: value('places_l1_entries'),
      l1Hits: sampleValue(samples, 'places_cache_outcomes_total', { outcome: 'hit', tier: 'l1' }) ?? 0,
    };
  }

  it('warns at start-up when L1_MAX_BYTES is more than half the heap npm start gives node', async () => {
    const quiet = await start({});
    const large = await start({ L1_MAX_BYTES: String(200 * MB) });
    try {
      expect(large.output()).toContain('L1_MAX_BYTES (200 MiB) is more than half the V8 heap limit');
      expect(quiet.output()).not.toContain('L1_MAX_BYTES');
    } finally {
      await Promise.all([stop(quiet), stop(large)]);
    }
  });

  it('20,000 distinct answers: under 300 MB RSS with the default L1, and no more above L1 off than the L1 counts', async () => {
    const measure = async (env: Record<string, string>) => {
      const app = await start(env);
      try {
        const outcomes = await askAll(app.url);
        expect(outcomes).toEqual({ '200 HIT': ANSWERS });
        // and once more: with the L1 on, these are L1 hits
        const mem = await memory(app.url);
        return mem;
      } finally {
        await stop(app);
      }
    };
    const off = await measure({ L1_MAX_BYTES: '0' });
    const on = await measure({});
    const report = {
      off: { rssMB: Math.round(off.rss / MB), heapMB: Math.round(off.heap / MB), externalMB: Math.round(off.external / MB) },
      on: { rssMB: Math.round(on.rss / MB), heapMB: Math.round(on.heap / MB), externalMB: Math.round(on.external / MB), l1MB: Math.round(on.l1Bytes / MB), entries: on.l1Entries },
    };
    process.stderr.write(`L1 memory: ${JSON.stringify(report)}\n`);
    expect(off.l1Entries).toBe(0);
    // All of them in the default L1 (typical answers fit 20k times over in it)...
    expect(on.l1Entries).toBe(ANSWERS);
    // ...the process under the bound issue 18 sets...
    expect(on.rss).toBeLessThanOrEqual(300 * 1000 * 1000);
    // ...and what it holds above L1 off is what the L1 counts, with room for the allocators' slack
    // (V8's heap grows in pages and keeps free space; malloc arenas) of at most as much again, plus 48 MB.
    expect(on.rss - off.rss).toBeLessThanOrEqual(2 * on.l1Bytes + 48 * MB);
  });
  it('without Redis, answers of a megabyte: the memory store standing in for Redis keeps to L1_MAX_BYTES too', async () => {
    // Incompressible (random) answers of ~1 MB, each a question of its own: with the memory store
    // bounded by entries alone, every one of them stayed in the process (~1 MB each, 300 MB in all).
    const QUESTIONS = 300;
    const L1 = 16 * MB;
    upstream.setHandler((_req, res) => {
      const name = randomBytes(750_000).toString('base64');
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(`[{"place_id":1,"licence":"Data © OpenStreetMap contributors","display_name":"${name}"}]`);
    });
    const app = await start({ L1_MAX_BYTES: String(L1), NOMINATIM_MAX_RPS: '1000' }, false);
    try {
      const before = await memory(app.url);
      for (let i = 0; i < QUESTIONS; i++) {
        const res = await fetch(`${app.url}/search?q=${encodeURIComponent(`large ${i}`)}&format=json`);
        const body = await res.text();
        expect([i, res.status, res.headers.get('x-cache'), body.length > 1_000_000]).toEqual([i, 200, 'MISS', true]);
      }
      // The last answers are still kept: asked again, a hit.
      expect((await fetch(`${app.url}/search?q=${encodeURIComponent(`large ${QUESTIONS - 1}`)}&format=json`)).headers.get('x-cache')).toBe('HIT');
      const after = await memory(app.url);
      process.stderr.write(`no Redis, large answers: RSS ${Math.round(before.rss / MB)} -> ${Math.round(after.rss / MB)} MB, external ${Math.round(before.external / MB)} -> ${Math.round(after.external / MB)} MB\n`);
      // Both in-process copies within L1_MAX_BYTES each, plus the allocators' slack.
      expect(after.rss - before.rss).toBeLessThanOrEqual(2 * L1 + 96 * MB);
    } finally {
      upstream.setHandler(null);
      await stop(app);
    }
  });
});
