import http from 'node:http';
import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, RunningApp, startApp } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { RedisProcess, startRedis } from './support/redis-server';

/**
 * Issue 5: the front door answers hits itself, outside Express/Nest, writing all headers at once.
 * Whatever the pipeline gives a miss, a hit must give too: the same status, the same header names in
 * the same order, the same values but those that describe the cache or the moment (X-Request-Id, Date,
 * Age, X-Cache, Cache-Status, Cache-Control's max-age), and the same bytes (/api's `cache` flag apart).
 */
interface Wire {
  status: number;
  /** header names in the order they came, lower-cased */
  names: string[];
  headers: Record<string, string>;
  body: Buffer;
}

function send(url: string, method = 'GET', headers: Record<string, string> = {}): Promise<Wire> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const names: string[] = [];
        const values: Record<string, string> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i].toLowerCase();
          names.push(name);
          values[name] = res.rawHeaders[i + 1];
        }
        resolve({ status: res.statusCode ?? 0, names, headers: values, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** What must not differ between a miss and the hit that follows it. */
function comparable(w: Wire, api: boolean) {
  const perAnswer = new Set(['x-request-id', 'date', 'age', 'x-cache', 'cache-status', ...(api ? ['content-length'] : [])]);
  return {
    status: w.status,
    names: w.names.filter((n) => n !== 'age'),
    headers: Object.fromEntries(
      Object.entries(w.headers)
        .filter(([n]) => !perAnswer.has(n))
        .map(([n, v]) => [n, n === 'cache-control' ? v.replace(/max-age=\d+/, 'max-age=N') : v]),
    ),
    body: api ? w.body.toString('latin1').replace('{"cache":false,', '{"cache":true,') : w.body.toString('latin1'),
  };
}

async function missThenHit(base: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<[Wire, Wire]> {
  const miss = await send(`${base}${path}`, method, headers);
  const hit = await send(`${base}${path}`, method, headers);
  return [miss, hit];
}

function expectSameAnswer(miss: Wire, hit: Wire, api: boolean): void {
  expect(miss.headers['x-cache']).toBe('MISS');
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(hit.headers.age).toMatch(/^\d+$/);
  expect(hit.names.indexOf('age')).toBe(hit.names.indexOf('cache-status') + 1);
  expect(comparable(hit, api)).toEqual(comparable(miss, api));
  if (api) expect(Number(hit.headers['content-length'])).toBe(hit.body.length);
}

/** Redis MONITOR on its own connection: every command the server runs, as the line it prints. */
async function monitor(port: number): Promise<{ lines: string[]; stop: () => void }> {
  const socket = net.connect(port, '127.0.0.1');
  const lines: string[] = [];
  let rest = '';
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('data', () => resolve()); // +OK
    socket.write('MONITOR\r\n');
  });
  socket.on('data', (chunk: Buffer) => {
    const text = rest + chunk.toString('utf8');
    const parts = text.split('\r\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { lines, stop: () => socket.destroy() };
}

/** GET commands Redis ran since `before` (INFO commandstats; a hit's read of an answer is one GET). */
async function redisReads(redis: RedisProcess, before: Record<string, number>): Promise<number> {
  return ((await redis.commandCalls()).get ?? 0) - (before.get ?? 0);
}

jest.setTimeout(60_000);

describe('hit path (e2e): a hit answers like the miss before it', () => {
  let fake: FakeNominatim;
  let redis: RedisProcess;
  const apps: RunningApp[] = [];

  const boot = async (env: Record<string, string>): Promise<string> => {
    const app = await startApp({ REDIS_URL: redis.url, NOMINATIM_URL: fake.url, ...env });
    apps.push(app);
    await eventually(() => app.app.get(RedisConnectionService).state === 'ready');
    return app.url;
  };

  beforeAll(async () => {
    fake = new FakeNominatim();
    await fake.start();
    redis = await startRedis();
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await fake.stop();
    await redis.stop();
  });

  describe('from memory (L1), CORS for any origin', () => {
    let url: string;
    beforeAll(async () => {
      url = await boot({ RATE_LIMIT_ENABLED: 'true' });
    });

    it.each([
      ['/search?q=Berlin&format=json', false],
      ['/search.php?q=M%C3%BCnchen&format=xml', false],
      ['/reverse?lat=52.5170365&lon=13.3888599&format=geojson', false],
      ['/lookup?osm_ids=N2,R3', false],
      ['/status', false],
      ['/api?q=Paris', true],
    ])('GET %s', async (path, api) => {
      const [miss, hit] = await missThenHit(url, path);
      expect(miss.status).toBe(200);
      expectSameAnswer(miss, hit, api);
    });

    it('gzip to a client that takes it, Origin and X-Request-Id as sent', async () => {
      const headers = { 'Accept-Encoding': 'gzip, deflate', Origin: 'https://app.example', 'X-Request-Id': 'trace-42' };
      const path = '/search?q=Springfield&format=geojson';
      const [miss, hit] = await missThenHit(url, path, 'GET', headers);
      expect(hit.headers['content-encoding']).toBe('gzip');
      expect(hit.headers['x-request-id']).toBe('trace-42');
      expectSameAnswer(miss, hit, false);
      // The gzip bytes are the answer: the same bytes a client that takes no gzip gets.
      const plain = await send(`${url}${path}`);
      expect(plain.headers['x-cache']).toBe('HIT');
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.body.length).toBeGreaterThanOrEqual(1024); // COMPRESS_MIN_BYTES: worth compressing
      expect(gunzipSync(hit.body)).toEqual(plain.body);
      expect(gunzipSync(miss.body)).toEqual(plain.body);
    });

    it('gzip of /api: the {"cache":false,…} and {"cache":true,…} wrappers compressed', async () => {
      const path = '/api?q=Springfield';
      const miss = await send(`${url}${path}`, 'GET', { 'Accept-Encoding': 'gzip' });
      const hit = await send(`${url}${path}`, 'GET', { 'Accept-Encoding': 'gzip' });
      const plain = await send(`${url}${path}`);
      expect([miss.headers['x-cache'], miss.headers['content-encoding']]).toEqual(['MISS', 'gzip']);
      expect([hit.headers['x-cache'], hit.headers['content-encoding']]).toEqual(['HIT', 'gzip']);
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.body.length).toBeGreaterThanOrEqual(1024); // COMPRESS_MIN_BYTES: worth compressing
      expect(gunzipSync(hit.body)).toEqual(plain.body);
      expect(gunzipSync(miss.body).toString()).toBe(plain.body.toString().replace('{"cache":true,', '{"cache":false,'));
    });

    it('HEAD', async () => {
      const [miss, hit] = await missThenHit(url, '/search?q=Kraków&format=jsonv2', 'HEAD');
      expect(hit.body).toHaveLength(0);
      expectSameAnswer(miss, hit, false);
    });
  });

  describe('identical misses at once (the front door lets one through to Nest, the others follow it)', () => {
    let url: string;
    beforeAll(async () => {
      url = await boot({ RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MISSES: '1000' });
    });
    afterEach(() => fake.reset());

    it('one upstream call; the followers get what a joined fill gives: a collapsed MISS with the same headers', async () => {
      fake.latencyMs = 200;
      const before = fake.count();
      const answers = await Promise.all(Array.from({ length: 30 }, () => send(`${url}/api?q=S%C3%A3o%20Paulo`)));
      expect(fake.count() - before).toBe(1);
      const statuses = answers.map((a) => a.headers['cache-status']);
      expect(statuses.filter((c) => c.endsWith('; collapsed'))).toHaveLength(29);
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.headers['x-cache']).toBe('MISS');
        expect(comparable(a, true)).toEqual(comparable(answers[0], true));
      }
    });

    it('an upstream failure reaches every follower as it reaches the first (one call, the same 502)', async () => {
      fake.failAll({ status: 500, body: 'boom' });
      // Slow enough that all ten are in flight before the failure comes back (else a late one is a new question).
      fake.latencyMs = 300;
      const before = fake.count();
      const answers = await Promise.all(Array.from({ length: 10 }, () => send(`${url}/search?q=Golden%20Gate%20Bridge&format=json`)));
      fake.latencyMs = 0;
      expect(fake.count() - before).toBe(1);
      for (const a of answers) {
        expect(a.status).toBe(502);
        expect(a.body.toString()).toBe(answers[0].body.toString());
      }
    });
  });

  describe('identical hits at once for a key only Redis has (another instance filled it)', () => {
    it('one Redis GET for all of them; each is a HIT with the same bytes', async () => {
      const filler = await boot({});
      const path = '/search?q=Ouagadougou&format=json';
      expect((await send(`${filler}${path}`)).headers['x-cache']).toBe('MISS');
      const url = await boot({});
      const watch = await monitor(redis.port);
      try {
        const answers = await Promise.all(Array.from({ length: 40 }, () => send(`${url}${path}`)));
        const first = answers[0].body.toString();
        for (const a of answers) {
          expect(a.status).toBe(200);
          expect(a.headers['x-cache']).toBe('HIT');
          expect(a.body.toString()).toBe(first);
        }
        // The MONITOR line of a command comes before its reply; the answers came after the GET's reply.
        await eventually(() => watch.lines.some((l) => l.includes('"GET"')));
        const gets = watch.lines.filter((l) => l.includes('"GET"') && l.includes('q=ouagadougou'));
        expect(gets).toHaveLength(1);
      } finally {
        watch.stop();
      }
    });

    it('an answer too large for L1: at most one Redis read per request (those at once share one), and all are HITs', async () => {
      const filler = await boot({});
      fake.padTo = 8000;
      const path = '/search?q=Berlin&format=jsonv2&limit=3';
      try {
        expect((await send(`${filler}${path}`)).headers['x-cache']).toBe('MISS');
      } finally {
        fake.padTo = null;
      }
      // Less than any entry's fixed part and key (l1-memory.ts): even a compressed answer cannot fit.
      const url = await boot({ L1_MAX_BYTES: '512' });
      const before = fake.count();
      const gets = await redis.commandCalls();
      const answers = await Promise.all(Array.from({ length: 10 }, () => send(`${url}${path}`)));
      expect(fake.count()).toBe(before);
      // Nothing for L1 to keep: a request is served by another's read only while that read runs (one flight).
      const reads = await redisReads(redis, gets);
      expect(reads).toBeGreaterThanOrEqual(1);
      expect(reads).toBeLessThanOrEqual(10);
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.headers['x-cache']).toBe('HIT');
        expect(a.body.length).toBeGreaterThanOrEqual(8000);
      }
    });
  });

  describe('from Redis (L2, no L1)', () => {
    it('GET /search and /api', async () => {
      const url = await boot({ L1_MAX_BYTES: '0' });
      for (const [path, api] of [['/search?q=Reykjav%C3%ADk&format=json', false], ['/api?q=Moscow', true]] as const) {
        const [miss, hit] = await missThenHit(url, path);
        expectSameAnswer(miss, hit, api);
        // Each hit is one Redis read: nothing is kept in memory.
        for (let i = 1; i <= 3; i++) {
          const gets = await redis.commandCalls();
          const again = await send(`${url}${path}`);
          expect([path, i, again.headers['x-cache'], await redisReads(redis, gets)]).toEqual([path, i, 'HIT', 1]);
        }
      }
    });
  });

  describe('CORS restricted to listed origins (Vary: Origin)', () => {
    it('GET from a listed origin', async () => {
      const url = await boot({ CORS_ORIGINS: 'https://a.example,https://b.example' });
      const [miss, hit] = await missThenHit(url, '/search?q=Tokyo&format=json', 'GET', { Origin: 'https://b.example' });
      expect(hit.headers['access-control-allow-origin']).toBe('https://b.example');
      expect(hit.headers.vary).toBe('Origin, Accept-Language, Accept-Encoding');
      expectSameAnswer(miss, hit, false);
    });
  });
});
