import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { RedisClientType } from 'redis';
import { toEntryLine } from '../src/cli/cache-entry-line';
import { importEntries } from '../src/cli/import.command';
import { CachePurgeService, PURGE_CHANNEL } from '../src/places/cache/cache-purge.service';
import { canonicaliseRoute, findRoute } from '../src/places/place-routes';
import { PlacesCacheService } from '../src/places/cache/places-cache.service';
import { eventually, RunningApp, useE2e } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';

jest.setTimeout(60_000);

const TOKEN = 'test-admin-token-0123456789abcdef';
const AUTH = { Authorization: `Bearer ${TOKEN}` };
/** Fresh for 1 s, no stale-while-revalidate, then kept for stale-if-error. */
const TTL_MS = 1000;
/** Long enough for a purge and a second request to happen while the first waits on Nominatim. */
const LATENCY_MS = 1500;

interface Answer {
  status: number;
  xCache: string | null;
  cacheStatus: string | null;
  body: string;
}

async function ask(svc: RunningApp, target: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${svc.url}${target}`, { headers });
  return { status: res.status, xCache: res.headers.get('x-cache'), cacheStatus: res.headers.get('cache-status'), body: await res.text() };
}

function keyOf(target: string): string {
  const [path, query = ''] = target.split('?');
  const result = canonicaliseRoute(findRoute(path)!, query, '*');
  if (!result.ok) throw new Error(`not a valid question: ${target}`);
  return result.request.key;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * docs/security.md: after a purge "the next request on any instance is a miss"; only a fetch that
 * succeeds after the purge may answer (new data). A flight that read the entry before the purge and
 * then fails upstream must not hand the purged copy (stale-if-error) to anyone, on any instance.
 */
describe(`${CachePurgeService.name}: a purge while a flight holds the purged copy`, () => {
  let upstream: FakeNominatim;
  let probe: RedisClientType;
  let a: RunningApp;
  let b: RunningApp;

  useE2e({ probe: true }, async (e2e) => {
    ({ fake: upstream, probe } = e2e);
    const env = {
      // The shared pacer cannot keep the harness's 1000 requests/s (see admin.e2e-spec.ts).
      NOMINATIM_MAX_RPS: '10',
      UPSTREAM_TIMEOUT_MS: '5000',
      CACHE_TTL_SECONDS: String(TTL_MS / 1000),
      STALE_WHILE_REVALIDATE_SECONDS: '0',
      STALE_IF_ERROR_SECONDS: '600',
      ADMIN_TOKEN: TOKEN,
    };
    a = await e2e.startApp(env);
    b = await e2e.startApp(env);
    await eventually(async () => Number((await probe.pubSubNumSub(PURGE_CHANNEL))[PURGE_CHANNEL]) === 2);
  });

  beforeEach(async () => {
    upstream.reset();
    await probe.flushDb();
    for (const s of [a, b]) s.app.get(PlacesCacheService).l1.clear();
  });

  /**
   * Stores `target` through `svc`, lets it expire (past TTL, within stale-if-error), makes Nominatim
   * slow and failing, and starts one request on `flightOn` (with `headers`): a miss in flight on Nominatim.
   * Its answer comes wrapped: an async function would otherwise wait for it.
   */
  async function flightOverExpiredCopy(svc: RunningApp, flightOn: RunningApp, target: string, headers: Record<string, string> = {}): Promise<{ first: Promise<Answer> }> {
    const stored = await ask(svc, target);
    expect([stored.status, stored.xCache]).toEqual([200, 'MISS']);
    expect(await probe.exists(keyOf(target))).toBe(1);
    await sleep(TTL_MS + 300);
    upstream.latencyMs = LATENCY_MS;
    upstream.failAll({ status: 500 });
    const first = ask(flightOn, target, headers);
    await eventually(() => upstream.count() === 2, 5_000, 5);
    return { first };
  }

  /**
   * Purges through `path` on `purgeOn` (answered `expected`) while `first` is in flight, then asks
   * `target` on `joinOn`: both answers, and what is left, are checked by expectNoPurgedCopy.
   */
  async function purgeThenAsk(first: Promise<Answer>, purgeOn: RunningApp, path: string, expected: object, joinOn: RunningApp, target: string): Promise<void> {
    const purged = await fetch(`${purgeOn.url}${path}`, { method: 'DELETE', headers: AUTH });
    expect(purged.status).toBe(200);
    expect(await purged.json()).toEqual(expected);
    const second = ask(joinOn, target);
    const answers = await Promise.all([first, second]);
    // The second joined the first's flight: one upstream call for both (the other one stored the copy).
    expect(upstream.count()).toBe(2);
    await expectNoPurgedCopy(answers, target);
  }

  /** Neither answer is the purged copy; nothing of it is left, and a later failure finds nothing either. */
  async function expectNoPurgedCopy(answers: Answer[], target: string): Promise<void> {
    for (const r of answers) {
      expect({ status: r.status, xCache: r.xCache }).toEqual({ status: 502, xCache: expect.not.stringMatching(/STALE/) as unknown });
      expect(r.cacheStatus ?? '').not.toContain('stale-if-error');
    }
    expect(await probe.exists(keyOf(target))).toBe(0);
    upstream.latencyMs = 0;
    for (const s of [a, b]) {
      expect(s.app.get(PlacesCacheService).l1.get(keyOf(target), Date.now())).toBeUndefined();
      const later = await ask(s, target);
      expect([later.status, later.cacheStatus ?? '']).toEqual([502, expect.not.stringContaining('stale-if-error')]);
    }
  }

  it('a request that came after the purge joins the flight and gets a 5xx, not the purged copy (one instance)', async () => {
    const target = '/search?q=Lisbon&format=json';
    const { first } = await flightOverExpiredCopy(a, a, target);
    const expected = { key: keyOf(target), deleted: 1, l1Deleted: 1, complete: true };
    await purgeThenAsk(first, a, '/admin/cache/question?path=/search&q=Lisbon&format=json', expected, a, target);
  });

  it('a prefix purge on instance A keeps the flight on instance B from serving the purged copy', async () => {
    const target = '/search?q=Porto&format=json';
    const { first } = await flightOverExpiredCopy(a, b, target);
    const expected = { prefix: 'places:v1:search:', deleted: 1, l1Deleted: 1, complete: true };
    await purgeThenAsk(first, a, `/admin/cache/prefix?prefix=${encodeURIComponent('places:v1:search:')}`, expected, b, target);
  });

  it('a no-cache request (Fills.directed) whose upstream call fails after a purge gets a 5xx, not the purged copy', async () => {
    const target = '/search?q=Faro&format=json';
    // no-cache reads L1 (the copy) but may not use it; its own flight goes upstream.
    const { first } = await flightOverExpiredCopy(a, a, target, { 'Cache-Control': 'no-cache' });
    const expected = { key: keyOf(target), deleted: 1, l1Deleted: 1, complete: true };
    await purgeThenAsk(first, a, `/admin/cache?key=${encodeURIComponent(keyOf(target))}`, expected, a, target);
  });

  it('an import during the flight: the failed upstream call answers with the imported copy, not a 5xx', async () => {
    const target = '/search?q=Braga&format=json';
    const { first } = await flightOverExpiredCopy(a, b, target);
    // The import command publishes each key it writes on the purge channel, so that every instance
    // drops its L1 copy: instance B takes it as a purge of the copy its flight holds.
    const key = keyOf(target);
    const exported = toEntryLine(key, (await probe.get(key))!, await probe.pTTL(key), Date.now())!;
    const now = Date.now();
    const body = '[{"place_id":4242,"display_name":"Braga (imported)"}]';
    const line = { ...exported, body, empty: false, storedAt: new Date(now).toISOString(), freshUntil: new Date(now + 60_000).toISOString(), expiresAt: new Date(now + 600_000).toISOString() };
    const dir = mkdtempSync(join(tmpdir(), 'purge-race-'));
    try {
      writeFileSync(join(dir, 'entries.ndjson'), `${JSON.stringify(line)}\n`);
      const report = new PassThrough();
      const code = await importEntries(a.app, join(dir, 'entries.ndjson'), report);
      expect({ code, report: String(report.read()) }).toEqual({ code: 0, report: expect.stringContaining('1 imported') as unknown });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const second = ask(b, target);
    const answers = await Promise.all([first, second]);
    expect(upstream.count()).toBe(2);
    // Fresh: a hit found late (Cache-Status says so), not an expired copy.
    for (const r of answers) expect({ status: r.status, xCache: r.xCache, cacheStatus: r.cacheStatus, body: r.body }).toEqual({ status: 200, xCache: 'HIT', cacheStatus: expect.stringMatching(/^places-cache; hit; ttl=\d+$/) as unknown, body });
    // Nominatim still fails: the imported copy (fresh) is what every instance answers with.
    upstream.latencyMs = 0;
    for (const s of [a, b]) expect(await ask(s, target)).toMatchObject({ status: 200, xCache: 'HIT', body });
  });
});
