import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, startApp } from './support/app-harness';
import { AppProcess, spawnApp } from './support/app-process';
import { buildApp, BuiltApp } from './support/build-app';
import { FakeNominatim, FakeRequest, mostInFlight } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { startRedisCluster } from './support/redis-cluster';
import { RedisProcess, startRedis } from './support/redis-server';
import { Stall, stalledDuring, watchEventLoop } from './support/traffic';

/**
 * Issue 21, the command line: the built `cli.js` run as a child process against real redis-servers
 * and the fake Nominatim, beside a running app instance where the claim is about a fleet.
 */
jest.setTimeout(120_000);

// 2/s: the pacer spaces starts by 500 ms plus a 25 ms guard, which also covers the difference in the
// way to the fake between the CLI's process and the app's.
const MAX_RPS = 2;
const MIN_GAP_MS = 1000 / MAX_RPS;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('command line: warm, export, import (e2e)', () => {
  let built: BuiltApp;
  let fake: FakeNominatim;
  let redisA: RedisProcess;
  let redisB: RedisProcess;
  let dir: string;
  const children = new Set<AppProcess>();

  beforeAll(async () => {
    // A replica of redisA is started below: no 5 s wait (redis's default) before the master sends it the data.
    [built, redisA, redisB] = await Promise.all([buildApp(), startRedis({ args: ['--repl-diskless-sync-delay', '0'] }), startRedis()]);
    fake = new FakeNominatim();
    await fake.start();
    dir = mkdtempSync(join(tmpdir(), 'places-cache-cli-'));
  });

  afterAll(async () => {
    await Promise.all([...children].map((c) => c.stop()));
    await fake?.stop();
    await Promise.all([redisA?.stop(), redisB?.stop()]);
    built?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (redis: RedisProcess | null, extra: Record<string, string> = {}): Record<string, string> => ({
    NOMINATIM_URL: fake.url,
    NOMINATIM_USER_AGENT: 'places-cache-cli-e2e/1.0 (cli@places-cache.test)',
    NOMINATIM_MAX_RPS: String(MAX_RPS),
    CACHE_TTL_SECONDS: '3600',
    ...(redis ? { REDIS_URL: redis.url } : {}),
    ...extra,
  });

  function start(args: string[], childEnv: Record<string, string>, stdin?: string): { child: AppProcess; done: Promise<Run> } {
    const child = spawnApp(built, { script: 'cli.js', args, env: childEnv, input: stdin ?? '' });
    children.add(child);
    const done = child.exited.then(({ code }): Run => {
      children.delete(child);
      return { code, stdout: child.stdout(), stderr: child.stderr() };
    });
    return { child, done };
  }
  const cli = (args: string[], childEnv: Record<string, string>, stdin?: string) => start(args, childEnv, stdin).done;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const entryKeys = async (redis: RedisProcess): Promise<string[]> => {
    const c = createClient({ url: redis.url });
    await c.connect();
    try {
      return (await c.keys('places:v1:*')).filter((k) => /^places:v1:(search|reverse|lookup|status):/.test(k)).sort();
    } finally {
      await c.quit();
    }
  };
  const withClient = async <T>(redis: RedisProcess, fn: (c: ReturnType<typeof createClient>) => Promise<T>): Promise<T> => {
    const c = createClient({ url: redis.url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.quit();
    }
  };
  /**
   * Upstream arrivals closer than the pacer allows. The pacer spaces the starts of the calls (here in
   * two processes: the CLI and the app); the fake stamps their arrivals, which also carry the way there:
   * a process not scheduled for a moment (the CLI child, or this one, where the app and the fake run)
   * delays one arrival and shortens the gap after it. So a gap may fall short by a scheduling hiccup
   * (a fifth of the interval at most, this process's own stalls given back), while the span of all the
   * arrivals must hold the full interval between each two: two unshared 2/s pacers would send at 4/s.
   */
  const pacingProblems = (requests: FakeRequest[], stalls: Stall[]): string[] => {
    const close = requests
      .slice(1)
      .map((r, i) => ({ gap: r.startedAtHr - requests[i].startedAtHr, stalled: stalledDuring(stalls, requests[i].arrivedAt - MIN_GAP_MS, r.arrivedAt) }))
      .filter(({ gap, stalled }) => gap + stalled < MIN_GAP_MS * 0.8)
      .map(({ gap, stalled }) => `${gap.toFixed(1)} ms apart (${stalled.toFixed(0)} ms stalled)`);
    const span = requests[requests.length - 1].startedAtHr - requests[0].startedAtHr;
    const needed = (requests.length - 1) * MIN_GAP_MS;
    return span >= needed - MIN_GAP_MS * 0.2 ? close : [...close, `${requests.length} arrivals in ${span.toFixed(0)} ms (at least ${needed} ms paced)`];
  };

  it('--help for each command, with examples; usage errors and failures in one line with a non-zero exit', async () => {
    for (const command of ['warm', 'export', 'import']) {
      const r = await cli([command, '--help'], env(null));
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`node dist/cli.js ${command}`);
      expect(r.stdout).toContain('Examples:');
    }
    const main = await cli(['--help'], env(null));
    expect(main.stdout).toMatch(/warm FILE\|-[\s\S]*export FILE\|-[\s\S]*import FILE\|-/);

    const unknown = await cli(['frob'], env(null));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toEqual([expect.stringContaining('unknown command "frob"')]);

    const missing = await cli(['warm', join(dir, 'nope.txt')], env(redisA));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toEqual([`places-cache: cannot read ${join(dir, 'nope.txt')}: no such file`]);

    const noRedis = await cli(['export', '-'], env(null, { REDIS_URL: 'redis://127.0.0.1:1' }));
    expect(noRedis.code).toBe(1);
    expect(noRedis.stderr.trim().split('\n')).toEqual(['places-cache: cannot reach Redis at redis://127.0.0.1:1 (no connection within 5 s)']);

    // A REDIS_URL that leads to a read-only replica is said so at once, not taken for no Redis at all.
    const replica = await startRedis({ args: ['--replicaof', redisA.host, String(redisA.port)] });
    try {
      const readOnly = await cli(['import', '-'], env(replica));
      expect(readOnly.code).toBe(1);
      expect(readOnly.stderr.trim().split('\n')).toEqual([`places-cache: Redis at ${replica.url} is a read-only replica: point REDIS_URL at its master`]);
    } finally {
      await replica.stop();
    }

    const badConfig = await cli(['export', '-'], env(redisA, { NOMINATIM_MAX_RPS: 'fast' }));
    expect(badConfig.code).toBe(1);
    expect(badConfig.stderr.trim().split('\n')).toHaveLength(1);
    expect(badConfig.stderr).toContain('NOMINATIM_MAX_RPS');
  });

  it('warm asks each question once at the pacer rate, even beside a running instance sending misses; reports bad lines; skips what is cached', async () => {
    const questions = ['Berlin', 'Zürich', 'Paris', '/reverse?lat=52.52&lon=13.40&format=json', 'London', 'Wien', 'Madrid', 'Roma'];
    const path = file('warm.txt', `# capitals\n${questions.slice(0, 4).join('\n')}\n\n/nowhere?q=x\n${questions.slice(4).join('\n')}\n`);
    const app = await startApp({ REDIS_URL: redisA.url, NOMINATIM_URL: fake.url, NOMINATIM_MAX_RPS: String(MAX_RPS), REDIS_OP_TIMEOUT_MS: '2000' });
    try {
      await eventually(() => app.app.get(RedisConnectionService).state === 'ready');
      const before = fake.requests.length;
      const lag = watchEventLoop();
      // LOG_LEVEL warn: a fall back to per-process pacing would be logged (and fail the test below).
      const warming = cli(['warm', '--every', '0.3', path], env(redisA, { LOG_LEVEL: 'warn' }));
      // Once the warm-up asks upstream, the running instance's own misses share the fleet-wide pacer with it.
      await eventually(() => fake.requests.slice(before).some((q) => q.query.get('q') === 'berlin'), 60_000);
      const misses = await Promise.all(['Oslo', 'Lisboa', 'Praha'].map((q) => rawGet(`${app.url}/search?q=${q}&format=json`)));
      expect(misses.map((m) => m.status)).toEqual([200, 200, 200]);
      const r = await warming;
      lag.stop();

      const upstream = fake.requests.slice(before);
      expect(upstream).toHaveLength(questions.length + 3);
      expect(pacingProblems(upstream, lag.stalls)).toEqual([]);
      expect(r.stderr).not.toContain('pacing per process');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('line 7: /nowhere is not a Nominatim endpoint');
      expect(r.stderr).toMatch(/^warm: \d+\/11 lines \(\d+%\) asked \d+, cached \d+, failed \d+, [\d.]+\/s, ETA \S+$/m);
      expect(r.stderr).toMatch(/warm: done in \S+: 9 questions, asked 8, already cached 0, failed 1$/m);
      expect(await entryKeys(redisA)).toHaveLength(questions.length + 3);

      // The running instance now answers every warmed question from the cache.
      const hit = await rawGet(`${app.url}/api?q=Paris`);
      expect(hit.headers['x-cache']).toBe('HIT');

      const again = await cli(['warm', path], env(redisA));
      expect(again.stderr).toMatch(/9 questions, asked 0, already cached 8, failed 1$/m);
      expect(fake.requests.length - before).toBe(questions.length + 3);
    } finally {
      await app.close();
    }
  });

  it('a warm-up stopped half way continues where it stopped when run again', async () => {
    const questions = Array.from({ length: 10 }, (_, i) => `Resume town ${i}`);
    const path = file('resume.txt', `${questions.join('\n')}\n`);
    const keysBefore = (await entryKeys(redisA)).length;
    const before = fake.requests.length;
    // The question in flight when the first run is killed keeps its fill lock for the lease (queue wait
    // plus upstream timeout, plus 1 s), and the second run waits that out: 21 s at the defaults, 5 s
    // with these (still ample for one question at a time at 2/s against the fake).
    const leased = { UPSTREAM_QUEUE_MAX_WAIT_MS: '2000', UPSTREAM_TIMEOUT_MS: '2000' };
    const first = start(['warm', '--concurrency', '1', path], env(redisA, leased));
    await eventually(() => fake.requests.length - before >= 4, 30_000);
    await first.child.stop();
    await first.done;
    const stored = (await entryKeys(redisA)).length - keysBefore;
    expect(stored).toBeGreaterThanOrEqual(3);
    expect(stored).toBeLessThan(10);

    const askedBefore = fake.requests.length;
    const second = await cli(['warm', path], env(redisA, leased));
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(new RegExp(`10 questions, asked ${10 - stored}, already cached ${stored}, failed 0$`, 'm'));
    expect(fake.requests.length - askedBefore).toBe(10 - stored);
    expect((await entryKeys(redisA)).length - keysBefore).toBe(10);
  });

  it('a variable set to nothing is unset, as for the service: REDIS_URL= is no Redis, LOG_LEVEL= the command\'s default', async () => {
    const noUrl = await cli(['export', '-'], env(null, { REDIS_URL: '' }));
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^places-cache: REDIS_URL is not set: /)]);

    // The command's default is `error`: an export says its one summary line and nothing at info level.
    const unset = await cli(['export', '-'], env(redisA));
    expect(unset.code).toBe(0);
    expect(unset.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^export: \d+ entries written to/)]);
    const untimed = (text: string) => text.replace(/ in [\d.]+ s/, ' in N s');
    for (const blank of ['', ' ']) {
      const r = await cli(['export', '-'], env(redisA, { LOG_LEVEL: blank }));
      expect([blank, r.code, untimed(r.stderr)]).toEqual([blank, 0, untimed(unset.stderr)]);
    }
  });

  it('export then import into another Redis round-trips every entry byte for byte with its remaining TTL, and serves hits with nothing asked upstream', async () => {
    const keys = await entryKeys(redisA);
    expect(keys.length).toBeGreaterThanOrEqual(20);
    const out = join(dir, 'export.ndjson');
    const exported = await cli(['export', out], env(redisA));
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain(`export: ${keys.length} entries written to ${out}`);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.key).sort()).toEqual(keys);
    const paris = lines.find((l) => String(l.request).startsWith('/search?') && String(l.request).endsWith('&q=paris'));
    expect(paris).toMatchObject({ status: 200, headers: { 'content-type': expect.stringContaining('json') }, empty: false });
    expect(Object.keys(paris!)).toEqual(['key', 'request', 'status', 'headers', 'body', 'storedAt', 'freshUntil', 'expiresAt', 'empty']);

    // Standard output too (the same lines), piped as an operator would.
    const piped = await cli(['export', '-'], env(redisA));
    // expiresAt is the clock plus the PTTL read, a few ms apart from one export to the next.
    const withoutExpiry = (text: string) =>
      text
        .trim()
        .split('\n')
        .map((l) => l.replace(/"expiresAt":"[^"]+"/, ''))
        .sort();
    expect(withoutExpiry(piped.stdout)).toEqual(withoutExpiry(readFileSync(out, 'utf8')));

    const importStarted = performance.now();
    const imported = await cli(['import', '-'], env(redisB), readFileSync(out, 'utf8'));
    const importMs = performance.now() - importStarted;
    expect(imported.code).toBe(0);
    expect(imported.stderr).toContain(`import: ${keys.length} imported, 0 expired (skipped), 0 older than the cached copy (kept the cached one), 0 bad lines`);

    const [a, b] = await Promise.all(
      [redisA, redisB].map((r) => withClient(r, (c) => Promise.all(keys.map(async (k) => ({ value: await c.get(k), pttl: await c.pTTL(k) }))))),
    );
    for (let i = 0; i < keys.length; i++) {
      expect(b[i].value).toBe(a[i].value);
      // What it had left: the export reads the clock before the TTLs; the import computes each TTL just
      // before sending its batch, so Redis may start it a little later, within the import's duration.
      expect(b[i].pttl).toBeLessThanOrEqual(a[i].pttl + importMs);
      expect(b[i].pttl).toBeGreaterThan(a[i].pttl - 30_000);
    }

    // An app on the second Redis answers from it, asking nothing upstream, bytes identical.
    const app = await startApp({ REDIS_URL: redisB.url, NOMINATIM_URL: fake.url });
    try {
      await eventually(() => app.app.get(RedisConnectionService).state === 'ready');
      const before = fake.requests.length;
      for (const line of lines.filter((l) => typeof l.request === 'string')) {
        const res = await rawGet(`${app.url}${String(line.request)}`);
        expect(res.headers['x-cache']).toBe('HIT');
        expect(res.body.toString('utf8')).toBe(line.body);
      }
      expect(fake.requests.length).toBe(before);
    } finally {
      await app.close();
    }
  });

  it('export reads a read-only replica (sparing the master), the same entries, and says so; import and warm still refuse it', async () => {
    const keys = await entryKeys(redisA);
    expect(keys.length).toBeGreaterThan(0);
    const replica = await startRedis({ args: ['--replicaof', redisA.host, String(redisA.port)] });
    try {
      await eventually(async () => (await entryKeys(replica)).length === keys.length, 10_000, 100);
      const fromMaster = await cli(['export', '-'], env(redisA));
      const fromReplica = await cli(['export', '-'], env(replica));
      expect([fromReplica.code, fromReplica.stderr.trim().split('\n')]).toEqual([0, [expect.stringMatching(/^export: \d+ entries written to standard output in [\d.]+ s, read from a read-only replica/)]]);
      const keysOf = (text: string) => text.trim().split('\n').map((l) => (JSON.parse(l) as { key: string }).key).sort();
      expect(keysOf(fromReplica.stdout)).toEqual(keysOf(fromMaster.stdout));
      expect(keysOf(fromReplica.stdout)).toEqual(keys);

      const warmed = await cli(['warm', '-'], env(replica), '/search?q=berlin\n');
      expect([warmed.code, warmed.stderr.trim()]).toEqual([1, `places-cache: Redis at ${replica.url} is a read-only replica: point REDIS_URL at its master`]);
    } finally {
      await replica.stop();
    }
  });

  it('export to a reader that goes away (export - | head) ends with exit 1 and one line naming standard output', async () => {
    expect((await entryKeys(redisA)).length).toBeGreaterThan(0);
    const { child, done } = start(['export', '-'], env(redisA));
    // Closed before the command has connected to Redis: its first write finds no reader (EPIPE).
    child.child.stdout!.destroy();
    const run = await done;
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^places-cache: cannot write standard output: .*EPIPE/) as unknown]);
  });

  it('import into a running instance: its L1 copy is dropped, a newer cached copy is kept, expired and bad lines are skipped and reported', async () => {
    const app = await startApp({ REDIS_URL: redisB.url, NOMINATIM_URL: fake.url });
    try {
      await eventually(() => app.app.get(RedisConnectionService).state === 'ready');
      const url = `${app.url}/search?q=berlin&format=json`;
      await rawGet(url);
      expect((await rawGet(url)).headers['x-cache']).toBe('HIT'); // now in this instance's L1
      const key = 'places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=berlin';
      const expiredKey = key.replace('q=berlin', 'q=expired');
      const now = Date.now();
      const entry = (body: string, storedAt: number, expiresIn: number) =>
        JSON.stringify({
          key,
          request: null,
          status: 200,
          headers: { 'content-type': 'application/json; charset=utf-8' },
          body,
          storedAt: new Date(storedAt).toISOString(),
          freshUntil: new Date(storedAt + 3_600_000).toISOString(),
          expiresAt: new Date(now + expiresIn).toISOString(),
          empty: body === '[]',
        });
      const newer = '[{"place_id":1,"display_name":"Berlin, imported"}]';
      const path = file(
        'import.ndjson',
        [
          entry(newer, now, 600_000),
          'not json at all',
          JSON.stringify({ key: 'places:v1:pacer:next', status: 200 }),
          entry('[]', now - 10_000, -1000).replace(key, expiredKey),
          entry('[{"old":true}]', now - 60_000, 600_000),
        ].join('\n'),
      );
      const r = await cli(['import', path], env(redisB));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('line 2: not JSON');
      expect(r.stderr).toContain('line 3: key is not a places-cache entry key');
      expect(r.stderr).toContain('import: 1 imported, 1 expired (skipped), 1 older than the cached copy (kept the cached one), 2 bad lines');

      // The running instance serves the imported answer, not the copy its L1 held.
      await eventually(async () => (await rawGet(url)).body.toString('utf8') === newer, 10_000);
      expect(await withClient(redisB, (c) => c.exists(expiredKey))).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('import refuses, by line number (a bare CR breaks no line), every entry the service would never have stored, and writes none of them', async () => {
    const now = Date.now();
    const json = (q: string) => `places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=${q}`;
    const entry = (key: string, fields: Record<string, unknown> = {}) =>
      JSON.stringify({
        key,
        request: null,
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: '[]',
        storedAt: new Date(now).toISOString(),
        freshUntil: new Date(now + 3_600_000).toISOString(),
        expiresAt: new Date(now + 600_000).toISOString(),
        empty: true,
        ...fields,
      });
    const hostile = [
      entry(json('error'), { status: 500, body: '{"error":"boom"}' }),
      entry(json('html'), { headers: { 'content-type': 'text/html' }, body: '<script>alert(1)</script>' }),
      entry(json('notmodified'), { status: 304 }),
      entry(json('euro'), { headers: { 'content-type': 'application/json; charset=€' } }),
      entry('places:v1:search:q=raw'),
      entry(json('date'), { storedAt: '1' }),
      entry(json('broken'), { body: '[{"name":' }),
    ];
    // A bare CR inside a line is part of it (JSON whitespace here), not a line break: the numbers hold.
    const text = ['', entry(json('fine')), ...hostile].join('\n').replace('"status"', '\r"status"');
    const r = await cli(['import', file('hostile.ndjson', text)], env(redisB));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'line 3: status must be 200 (the service stores no other answer)',
      'line 4: not an answer the service stores under this key: Content-Type text/html where application/json was expected',
      'line 5: status must be 200 (the service stores no other answer)',
      'line 6: headers: content-type must be 1-200 visible ASCII characters (spaces and tabs inside)',
      'line 7: key is not canonical (not the key the service makes for its request)',
      expect.stringMatching(/^line 8: storedAt is not a date-time as export writes it/),
      'line 9: not an answer the service stores under this key: invalid JSON (9 bytes)',
      expect.stringMatching(/^import: 1 imported, 0 expired \(skipped\), 0 older than the cached copy \(kept the cached one\), 7 bad lines/),
    ]);
    const written = await withClient(redisB, (c) => Promise.all(['fine', 'error', 'html', 'notmodified', 'euro', 'date', 'broken'].map((q) => c.exists(json(q)))));
    expect(written).toEqual([1, 0, 0, 0, 0, 0, 0]);
    expect(await withClient(redisB, (c) => c.exists('places:v1:search:q=raw'))).toBe(0);
  });

  it('warm, export and import work on a Redis Cluster (REDIS_CLUSTER_NODES): canonical keys in the file, the service reads what import wrote', async () => {
    const cluster = await startRedisCluster();
    try {
      const clusterEnv = env(null, { REDIS_CLUSTER_NODES: cluster.seeds });
      const warmed = await cli(['warm', '-'], clusterEnv, 'kiel\n');
      expect(warmed.stderr).toContain('asked 1, already cached 0, failed 0');
      expect(warmed.code).toBe(0);

      // The lines name the canonical key and request, as on one Redis (the Redis name carries a hash tag).
      const key = 'places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=kiel';
      const exported = await cli(['export', '-'], clusterEnv);
      expect(exported.code).toBe(0);
      const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string; request: string });
      expect(lines).toEqual([expect.objectContaining({ key, request: `/search?${key.slice('places:v1:search:'.length)}` })]);
      // A prefix that reaches into the question finds it too.
      const byPrefix = await cli(['export', '-', '--prefix', key.slice(0, -2)], clusterEnv);
      expect(byPrefix.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { key: string }).key)).toEqual([key]);

      // Into an emptied cluster: written where the service looks for it, and served from there.
      for (const m of await cluster.masters()) {
        const c = createClient({ url: `redis://127.0.0.1:${m.port}` });
        await c.connect();
        try {
          for (const name of await cluster.keysOn(m.port, 'places:v1:*')) await c.del(name);
        } finally {
          await c.quit();
        }
      }
      const imported = await cli(['import', '-'], clusterEnv, exported.stdout);
      expect(imported.stderr).toContain('import: 1 imported, 0 expired (skipped), 0 older than the cached copy (kept the cached one), 0 bad lines');
      expect(imported.code).toBe(0);
      const app = await startApp({ REDIS_CLUSTER_NODES: cluster.seeds, NOMINATIM_URL: fake.url });
      try {
        await eventually(() => app.app.get(RedisConnectionService).state === 'ready');
        const before = fake.requests.length;
        const res = await rawGet(`${app.url}${lines[0].request}`);
        expect(res.headers['x-cache']).toBe('HIT');
        expect(fake.requests.length).toBe(before);
      } finally {
        await app.close();
      }
    } finally {
      await cluster.stop();
    }
  });

  it('export --prefix exports only the keys under it (one endpoint)', async () => {
    // A search and a reverse at least: the prefix has something to leave out.
    const warmed = await cli(['warm', file('prefix.txt', 'Prefix town\n/reverse?lat=48.85&lon=2.35&format=json\n')], env(redisA));
    expect(warmed.code).toBe(0);
    const all = await cli(['export', '-'], env(redisA));
    const keysOf = (text: string) => text.trim().split('\n').map((l) => (JSON.parse(l) as { key: string }).key);
    const reverse = keysOf(all.stdout).filter((k) => k.startsWith('places:v1:reverse:'));
    expect(reverse.length).toBeGreaterThanOrEqual(1);
    expect(keysOf(all.stdout).length).toBeGreaterThan(reverse.length);
    const byPrefix = await cli(['export', '-', '--prefix', 'places:v1:reverse:'], env(redisA));
    expect(byPrefix.code).toBe(0);
    expect(keysOf(byPrefix.stdout).sort()).toEqual(reverse.sort());
  });

  it('warm --every SECONDS: a progress line that often (off a terminal), not every 5 s', async () => {
    // Five questions at the pacer's 2/s take two seconds or more: --every 0.3 reports several times
    // within them, the default 5 s only once (the first report comes at once).
    const path = file('every.txt', `${Array.from({ length: 5 }, (_, i) => `Every town ${i}`).join('\n')}\n`);
    const r = await cli(['warm', '--every', '0.3', path], env(redisA));
    expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/5 questions, asked 5, already cached 0, failed 0$/m)]);
    const progress = r.stderr.split('\n').filter((l) => /^warm: \d+\/5 lines \(\d+%\) asked/.test(l));
    expect(progress.length).toBeGreaterThanOrEqual(2);
  });

  it('warm --concurrency N keeps N questions in flight at once, 1 with --concurrency 1', async () => {
    // A slow upstream and a fast pacer: the questions in flight, not the pacer, bound the overlap.
    fake.latencyMs = 1500;
    try {
      for (const n of [3, 1]) {
        const path = file(`concurrency-${n}.txt`, `${Array.from({ length: 6 }, (_, i) => `Concurrency ${n} town ${i}`).join('\n')}\n`);
        const before = fake.requests.length;
        const r = await cli(['warm', '--concurrency', String(n), path], env(redisA, { NOMINATIM_MAX_RPS: '50' }));
        expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/6 questions, asked 6, already cached 0, failed 0$/m)]);
        const sent = fake.requests.slice(before);
        expect(sent).toHaveLength(6);
        expect(mostInFlight(sent)).toBe(n);
      }
    } finally {
      fake.latencyMs = 0;
    }
  });

  it('warm: a question written twice (in any spelling) is asked once and counted once as asked, then as cached', async () => {
    // In flight together (a slow upstream, --concurrency 2): the second line joins the first's call.
    fake.latencyMs = 500;
    try {
      const path = file('twice.txt', 'Twice town\n  twice   TOWN \n');
      const before = fake.requests.length;
      const r = await cli(['warm', '--concurrency', '2', path], env(redisA));
      expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/2 questions, asked 1, already cached 1, failed 0$/m)]);
      expect(fake.requests.length - before).toBe(1);
    } finally {
      fake.latencyMs = 0;
    }
  });
});
