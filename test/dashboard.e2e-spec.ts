import { existsSync } from 'node:fs';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { RedisConnectionService } from '../src/cache/redis-connection.service';
import { eventually, RunningApp, startApp } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { startPrefixProxy } from './support/prefix-proxy';
import { rawGet } from './support/raw-http';
import { RedisProcess, startRedis } from './support/redis-server';

/** Debian's Chromium (.ci/run installs it); never a browser download. */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const TOKEN = 'dashboard-test-token-0123456789';
const TILES = ['requests', 'hit-ratio', 'upstream', 'queue', 'hit-latency', 'miss-latency', 'redis', 'l1-entries', 'l1-bytes'];

jest.setTimeout(120_000);

/**
 * Issue 21, /dashboard: the page in headless Chromium, behind METRICS_TOKEN, loading nothing from
 * another host; its charts draw and its numbers move once traffic flows.
 */
describe('/dashboard in headless Chromium (e2e)', () => {
  let upstream: FakeNominatim;
  let redis: RedisProcess;
  let svc: RunningApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const foreign: string[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: this test needs Debian's chromium package (.ci/run installs it)`);
    upstream = new FakeNominatim();
    await upstream.start();
    redis = await startRedis();
    svc = await startApp({ NOMINATIM_URL: upstream.url, REDIS_URL: redis.url, METRICS_TOKEN: TOKEN, NOMINATIM_MAX_RPS: '50' });
    await eventually(() => svc.app.get(RedisConnectionService).state === 'ready');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 1400 }, httpCredentials: { username: 'ops', password: TOKEN } });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const origin = new URL(svc.url).origin;
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin || url.startsWith('data:')) return route.continue();
      foreign.push(url);
      return route.abort();
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await svc?.close();
    await upstream?.stop();
    await redis?.stop();
  });

  const tile = (name: string) => page.locator(`#tile-${name}`).innerText();
  /** A digest of what each chart's canvas shows. */
  const canvases = () =>
    page.evaluate<Array<{ inked: number; hitColoured: number }>>(`
      [...document.querySelectorAll('.chart canvas')].map((canvas) => {
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        let hitColoured = 0; // the hit series' colour, #2e7d32
        for (let i = 0; i < pixels.length; i += 4) {
          if (pixels[i + 3] !== 0) inked++;
          if (pixels[i + 3] > 128 && Math.abs(pixels[i] - 46) < 30 && Math.abs(pixels[i + 1] - 125) < 30 && Math.abs(pixels[i + 2] - 50) < 30) hitColoured++;
        }
        return { inked, hitColoured };
      })
    `);

  it('is protected like /metrics: 401 with a Basic challenge without the token; the bearer token works too', async () => {
    const refused = await rawGet(`${svc.url}/dashboard`);
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toMatch(/^Basic realm="places-cache dashboard"/);
    expect((await rawGet(`${svc.url}/dashboard/data`)).status).toBe(401);
    const wrong = await rawGet(`${svc.url}/dashboard`, { Authorization: `Basic ${Buffer.from('ops:wrong-token-000000').toString('base64')}` });
    expect(wrong.status).toBe(401);
    const bearer = await rawGet(`${svc.url}/dashboard/data`, { Authorization: `Bearer ${TOKEN}` });
    expect(bearer.status).toBe(200);
    expect(JSON.parse(bearer.body.toString('utf8'))).toMatchObject({ sampleSeconds: 2, redis: 'ready' });
  });

  it('draws its charts from local resources, and the numbers move after traffic', async () => {
    await page.goto(`${svc.url}/dashboard`);
    await page.waitForFunction(`document.querySelectorAll('.chart .uplot').length === 6`);
    await eventually(async () => (await tile('redis')) === 'ready', 20_000, 200);
    // Two samples make the first point: the tiles show numbers for an idle service.
    await eventually(async () => (await tile('l1-entries')) !== '–', 20_000, 200);
    const idle = Object.fromEntries(await Promise.all(TILES.map(async (t) => [t, await tile(t)] as const)));
    expect(idle['l1-entries']).toBe('0');
    expect(idle.requests).toBe('0.00');
    expect(idle.upstream).toBe('0.00 (50.00)');
    expect(idle['hit-ratio']).toBe('–');
    const before = await canvases();

    // Traffic: 10 misses, then hits of the same questions for a few seconds.
    const questions = Array.from({ length: 10 }, (_, i) => `/search?q=dash${i}&format=json`);
    for (const q of questions) expect((await rawGet(`${svc.url}${q}`)).headers['x-cache']).toBe('MISS');
    const until = Date.now() + 5000;
    let hits = 0;
    while (Date.now() < until) {
      await Promise.all(questions.map(async (q) => expect((await rawGet(`${svc.url}${q}`)).headers['x-cache']).toBe('HIT')));
      hits += questions.length;
    }

    await eventually(async () => Number(await tile('l1-entries')) === 10, 20_000, 200);
    await eventually(async () => Number(await tile('requests')) > 0 && (await tile('hit-ratio')) !== '–', 20_000, 200);
    const moved = Object.fromEntries(await Promise.all(TILES.map(async (t) => [t, await tile(t)] as const)));
    expect(Number(moved.requests)).toBeGreaterThan(0);
    expect(Number(moved['hit-ratio'].replace(' %', ''))).toBeGreaterThan(50);
    expect(moved['hit-latency']).toMatch(/^\d+\.\d\d \/ \d+\.\d\d ms$/);
    expect(moved['l1-bytes']).toMatch(/^\d+(\.\d)? (KiB|MiB)$/);
    expect(hits).toBeGreaterThan(0);

    const after = await canvases();
    expect(after).toHaveLength(6);
    for (const c of after) expect(c.inked).toBeGreaterThan(500);
    // The requests chart's hit line has left the zero line it was drawn along while idle: more of it.
    expect(after[0].hitColoured).toBeGreaterThan(before[0].hitColoured * 1.5);

    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('works behind a proxy that adds a path prefix, at /dashboard and /dashboard/: every request stays under the prefix', async () => {
    const proxy = await startPrefixProxy('/ops', svc.url);
    const other = await context.newPage();
    other.setDefaultTimeout(20_000);
    try {
      const sent: string[] = [];
      await other.route('**/*', (route) => {
        sent.push(route.request().url());
        return new URL(route.request().url()).origin === proxy.origin ? route.continue() : route.abort();
      });
      for (const path of ['/ops/dashboard', '/ops/dashboard/']) {
        await other.goto(`${proxy.origin}${path}`);
        await other.locator('.chart .uplot').nth(5).waitFor();
        await eventually(async () => (await other.locator('#tile-redis').innerText()) === 'ready', 20_000, 200);
      }
      expect(sent.filter((u) => u.endsWith('/dashboard/data')).length).toBeGreaterThan(1);
      expect(sent.filter((u) => !u.startsWith(`${proxy.origin}/ops/`))).toEqual([]);
    } finally {
      await other.close();
      await proxy.close();
    }
  }, 60_000);
});
