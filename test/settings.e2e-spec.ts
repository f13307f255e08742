import type { ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { createClient, commandOptions, RedisClientType } from 'redis';
import { eventually, RunningApp, startApp, useFake } from './support/app-harness';
import { parsePrometheus } from './support/prometheus';
import { rawGet } from './support/raw-http';
import { rawRequest } from './support/raw-socket';
import { RedisProcess, startRedis } from './support/redis-server';

/*
 * What single settings of the README's configuration table promise, each checked through what a client,
 * Nominatim (the fake's recorded requests) or Redis sees.
 */

jest.setTimeout(60_000);

interface Health {
  status: string;
  details: Record<string, { status: string; state?: string; coolDownRemainingSeconds?: number; message?: string; responseTimeMs?: number }>;
}

async function health(svc: RunningApp, which: 'ready' | 'upstream'): Promise<Health> {
  return (await (await fetch(`${svc.url}/health/${which}`)).json()) as Health;
}

/** Until the app's Redis connection is ready (seen through /health/ready). */
async function redisReady(svc: RunningApp): Promise<void> {
  await eventually(async () => (await health(svc, 'ready')).details.redis.state === 'ready');
}

/** A client of `redis` for the test's own look at what the app stored. */
async function probeOf(redis: RedisProcess): Promise<RedisClientType> {
  const client: RedisClientType = createClient({ url: redis.url, socket: redis.tls ? { tls: true, rejectUnauthorized: false } : {} });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The answer entries Redis holds (README: keys are places:v1:<endpoint>:<canonical query>). */
async function answerKeys(client: RedisClientType, match = 'places:v1:*'): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of client.scanIterator({ MATCH: match })) keys.push(key);
  return keys.filter((k) => /^places:v1:(search|reverse|lookup|status|details):/.test(k));
}

describe('settings (e2e): what the README configuration table promises', () => {
  const fake = useFake();

  beforeEach(() => fake.reset());

  describe('TRUST_PROXY unset (false, the default)', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: fake.url, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MISSES: '3', RATE_LIMIT_HITS: '4' });
    });

    afterAll(() => svc.close());

    it('takes no client identity from X-Forwarded-For: a new one on every request slips past neither limit', async () => {
      let n = 0;
      // What a client spoofing its way past a per-client limit would send: a new address every time.
      const spoofed = () => ({ 'X-Forwarded-For': `198.51.100.${++n}` });
      const status = async (path: string) => (await rawGet(`${svc.url}${path}`, spoofed())).status;

      // Misses: RATE_LIMIT_MISSES=3 for this one connection address, whatever the header says.
      const misses = [];
      for (const q of ['Berlin', 'Paris', 'Rome', 'Oslo']) misses.push(await status(`/search?q=${q}&format=json`));
      expect(misses).toEqual([200, 200, 200, 429]);
      // Hits: RATE_LIMIT_HITS=4, counted by the front door, the same way.
      const hits = [];
      for (let i = 0; i < 5; i++) hits.push(await status('/search?q=Berlin&format=json'));
      expect(hits).toEqual([200, 200, 200, 200, 429]);
      expect(fake.count()).toBe(3);
    });
  });

  describe('MAX_URL_BYTES above 16 KiB (Node\'s own limit on the request line and headers)', () => {
    const MAX = 40_000;
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: fake.url, MAX_URL_BYTES: String(MAX) });
    });

    afterAll(() => svc.close());

    it('accepts a target of MAX_URL_BYTES with ordinary headers, and answers 414 one byte past it', async () => {
      const port = Number(new URL(svc.url).port);
      const head = `Host: 127.0.0.1:${port}\r\nUser-Agent: ${'u'.repeat(200)}\r\nAccept-Language: de,en;q=0.8\r\nConnection: close\r\n\r\n`;
      // Parameters Nominatim ignores: dropped by the canonicaliser, so the question is /search?q=Berlin.
      const base = '/search?format=json&q=Berlin';
      let atLimit = base;
      for (let i = 0; atLimit.length < MAX; i++) {
        const name = `&x${i}=`;
        atLimit += name + 'a'.repeat(Math.min(4000, MAX - atLimit.length - name.length));
      }
      expect(atLimit.length).toBe(MAX);
      const ok = await rawRequest(port, `GET ${atLimit} HTTP/1.1\r\n${head}`);
      expect(ok.status).toBe(200);
      const over = await rawRequest(port, `GET ${atLimit}a HTTP/1.1\r\n${head}`);
      expect(over.status).toBe(414);
      expect(fake.count()).toBe(1);
    });
  });

  describe('COMPRESS_MIN_BYTES', () => {
    const MIN = 3000;
    let redis: RedisProcess;
    let probe: RedisClientType;
    let svc: RunningApp;

    /** A JSON answer of exactly `bytes` bytes, very compressible, naming the question. */
    const answerOf = (q: string, bytes: number): string => {
      const head = `[{"place_id":1,"display_name":"${q} `;
      return `${head}${'x'.repeat(bytes - head.length - 3)}"}]`;
    };
    const sizes = new Map<string, number>();

    beforeAll(async () => {
      redis = await startRedis();
      probe = await probeOf(redis);
      svc = await startApp({ REDIS_URL: redis.url, NOMINATIM_URL: fake.url, COMPRESS_MIN_BYTES: String(MIN) });
      await redisReady(svc);
    });

    beforeEach(() => {
      fake.setHandler((_req, res: ServerResponse, entry) => {
        const q = entry.query.get('q') ?? '';
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(answerOf(q, sizes.get(q) ?? 100));
      });
    });

    afterAll(async () => {
      await svc.close();
      await probe.quit();
      await redis.stop();
    });

    /** What Redis holds for a question's answer, as bytes. */
    const stored = async (q: string): Promise<Buffer> => {
      const [key] = await answerKeys(probe, `places:v1:search:*q=${q}*`);
      expect(key).toBeDefined();
      return (await probe.get(commandOptions({ returnBuffers: true }), key))!;
    };

    /** The gzip stream inside a stored entry (the value itself, or base64 in it), decompressed; null if none. */
    const gunzipped = (value: Buffer): Buffer | null => {
      if (value[0] === 0x1f && value[1] === 0x8b) return gunzipSync(value);
      for (const [run] of value.toString('latin1').matchAll(/[A-Za-z0-9+/]{16,}={0,2}/g)) {
        const bytes = Buffer.from(run, 'base64');
        if (bytes[0] === 0x1f && bytes[1] === 0x8b) return gunzipSync(bytes);
      }
      return null;
    };

    it.each([
      ['exactly COMPRESS_MIN_BYTES', MIN, true],
      ['well over it', 4 * MIN, true],
      ['one byte under it', MIN - 1, false],
    ])('an answer of %s (%i bytes): stored gzip-compressed and served gzip: %s', async (_what, bytes, compressed) => {
      const q = `size${bytes}`;
      sizes.set(q, bytes);
      const miss = await rawGet(`${svc.url}/search?q=${q}&format=json`, { 'Accept-Encoding': 'gzip' });
      expect([miss.status, miss.headers['x-cache']]).toEqual([200, 'MISS']);
      const body = Buffer.from(answerOf(q, bytes));

      const value = await stored(q);
      if (compressed) {
        // Stored as gzip: the answer's bytes come back out of it, and it takes less room than they do.
        expect(gunzipped(value)).toEqual(body);
        expect(value.length).toBeLessThan(body.length / 2);
        expect(value.includes(body)).toBe(false);
      } else {
        expect(gunzipped(value)).toBeNull();
        // The answer as it is (or as a JSON string, escaped).
        expect(value.includes(body) || value.includes(JSON.stringify(body.toString()).slice(1, -1))).toBe(true);
      }

      const hit = await rawGet(`${svc.url}/search?q=${q}&format=json`, { 'Accept-Encoding': 'gzip' });
      expect(hit.headers['x-cache']).toBe('HIT');
      for (const answer of [miss, hit]) {
        expect(answer.headers['content-encoding']).toBe(compressed ? 'gzip' : undefined);
        expect(compressed ? gunzipSync(answer.body) : answer.body).toEqual(body);
      }
      // A client that does not take gzip gets the bytes as they are.
      const plain = await rawGet(`${svc.url}/search?q=${q}&format=json`);
      expect([plain.headers['content-encoding'], plain.body]).toEqual([undefined, body]);
    });
  });

  describe('NOMINATIM_EMAIL', () => {
    const targets = [
      '/search?q=Berlin&format=json&email=client%40elsewhere.example',
      '/api?q=Paris',
      '/reverse?lat=52.5170365&lon=13.3888599&format=json',
      '/lookup?osm_ids=R62422&format=json',
      '/status?format=json',
      '/details?osmtype=R&osmid=62422&format=json',
    ];

    it.each([
      ['set: sent as email= on every upstream request (the client\'s own email= never)', 'ops@places.example', ['ops@places.example']],
      ['unset: no email= upstream, even when the client sends one', undefined, []],
    ])('%s', async (_what, email, expected) => {
      const svc = await startApp({ NOMINATIM_URL: fake.url, NOMINATIM_EMAIL: email });
      try {
        for (const target of targets) await (await fetch(`${svc.url}${target}`)).arrayBuffer();
      } finally {
        await svc.close();
      }
      expect(fake.requests.map((r) => r.path)).toEqual(['/search', '/search', '/reverse', '/lookup', '/status', '/details']);
      for (const r of fake.requests) expect([r.path, r.query.getAll('email')]).toEqual([r.path, expected]);
    });
  });

  describe('Retry-After of an upstream 429', () => {
    /** Answers the next request 429 with the Retry-After `header()` gives at that moment, then normally. */
    const refuseOnce = (header: () => string) => {
      let refused = false;
      fake.setHandler((_req, res: ServerResponse, entry) => {
        if (refused) {
          const normal = fake.buildResponse(entry);
          res.writeHead(normal.status, normal.headers).end(normal.body);
          return;
        }
        refused = true;
        res.writeHead(429, { 'Content-Type': 'text/plain', 'Retry-After': header() }).end('Too Many Requests');
      });
    };
    const DATE_AHEAD_S = 30;

    it.each([
      [`an HTTP date ${DATE_AHEAD_S} s ahead: a cool-down until then`, () => new Date(Date.now() + DATE_AHEAD_S * 1000).toUTCString(), DATE_AHEAD_S - 5, DATE_AHEAD_S],
      ['86400 seconds: a cool-down of 10 minutes at most', () => '86400', 600, 600],
      ['an HTTP date two hours ahead: 10 minutes at most', () => new Date(Date.now() + 7200_000).toUTCString(), 600, 600],
    ])('%s', async (_what, header, atLeast, atMost) => {
      const svc = await startApp({ NOMINATIM_URL: fake.url });
      try {
        refuseOnce(header);
        const refused = await rawGet(`${svc.url}/search?q=Berlin&format=json`);
        expect([refused.status, JSON.parse(refused.body.toString()).code]).toEqual([503, 'upstream_refused']);
        const seconds = Number(refused.headers['retry-after']);
        // Not the 5 s back-off used when Retry-After says nothing usable.
        expect([atLeast <= seconds, seconds <= atMost]).toEqual([true, true]);

        // During the cool-down nothing goes upstream; callers are told how long it lasts.
        const cooling = await rawGet(`${svc.url}/search?q=Paris&format=json`);
        expect([cooling.status, JSON.parse(cooling.body.toString()).code]).toEqual([503, 'upstream_cooldown']);
        expect(Number(cooling.headers['retry-after'])).toBeLessThanOrEqual(seconds);
        expect(Number(cooling.headers['retry-after'])).toBeGreaterThanOrEqual(atLeast - 1);
        const upstream = (await health(svc, 'upstream')).details.upstream;
        expect(upstream.state).toBe('cooling_down');
        expect(upstream.coolDownRemainingSeconds).toBeLessThanOrEqual(seconds);
        expect(upstream.coolDownRemainingSeconds).toBeGreaterThanOrEqual(atLeast - 1);
        expect(fake.count()).toBe(1);
      } finally {
        await svc.close();
      }
    });
  });

  describe('the start-up warning about the public server', () => {
    const warning = (svc: RunningApp) => svc.logs.filter((l) => l.level === 'warn' && /NOMINATIM_USER_AGENT/.test(l.msg));

    it.each([
      ['warns with the public server and the default User-Agent', { NOMINATIM_URL: undefined, NOMINATIM_USER_AGENT: undefined }, 1],
      ['is quiet with the public server and an identifying User-Agent', { NOMINATIM_URL: undefined, NOMINATIM_USER_AGENT: 'acme-geo/2.0 (ops@acme.example)' }, 0],
      ['is quiet with the default User-Agent towards another Nominatim', { NOMINATIM_URL: 'http://127.0.0.1:9', NOMINATIM_USER_AGENT: undefined }, 0],
    ])('%s', async (_what, env, warnings) => {
      // Started only, never asked a question: nothing is sent to the public server.
      const svc = await startApp({ ...env, LOG_LEVEL: 'warn' }, { captureLogs: true });
      try {
        expect(warning(svc)).toHaveLength(warnings);
        const upstreamCalls = parsePrometheus(await (await fetch(`${svc.url}/metrics`)).text()).filter((s) => s.name === 'places_upstream_requests_total');
        expect(upstreamCalls).toEqual([]);
      } finally {
        await svc.close();
      }
    });
  });

  describe('REDIS_TLS_URL beside REDIS_URL', () => {
    let plain: RedisProcess;
    let secure: RedisProcess;

    beforeAll(async () => {
      [plain, secure] = await Promise.all([startRedis(), startRedis({ tls: true, password: 'tls-only-secret' })]);
    });

    afterAll(async () => {
      await Promise.all([plain.stop(), secure.stop()]);
    });

    it('wins: the cache lives in the TLS Redis, the other one is never written', async () => {
      const svc = await startApp({ REDIS_URL: plain.url, REDIS_TLS_URL: secure.url, NOMINATIM_URL: fake.url });
      try {
        await redisReady(svc);
        expect((await rawGet(`${svc.url}/api?q=Tallinn`)).headers['x-cache']).toBe('MISS');
        expect((await rawGet(`${svc.url}/api?q=Tallinn`)).headers['x-cache']).toBe('HIT');
      } finally {
        await svc.close();
      }
      const [tlsProbe, plainProbe] = await Promise.all([probeOf(secure), probeOf(plain)]);
      try {
        expect(await answerKeys(tlsProbe, 'places:v1:search:*tallinn*')).toHaveLength(1);
        expect(await answerKeys(plainProbe)).toEqual([]);
        expect(await plainProbe.dbSize()).toBe(0);
      } finally {
        await Promise.all([tlsProbe.quit(), plainProbe.quit()]);
      }
    });
  });
});
