import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, chromium, Locator, Page } from 'playwright-core';
import { RunningApp, startApp } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { startPrefixProxy } from './support/prefix-proxy';

/** Debian's Chromium (.ci/run installs it); never a browser download. */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const UI_TIMEOUT_MS = 20_000;

/**
 * Issue 4 item 12: Swagger UI at /docs works in a real browser under the service's own security
 * headers (helmet's CSP included): "Try it out" on GET /api shows the JSON answer, a miss and then a
 * hit. The page may talk to the service only: any other request is refused and fails the test.
 */
describe('Swagger UI in headless Chromium (e2e)', () => {
  let upstream: FakeNominatim;
  let svc: RunningApp;
  let browser: Browser;
  let page: Page;
  let shotDir: string;
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const foreignRequests: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: this test needs Debian's chromium package (apt-get install -y chromium; .ci/run installs it)`);
    }
    upstream = new FakeNominatim();
    await upstream.start();
    // page.route below (which blocks foreign requests) makes Chromium bypass its own cache and send
    // Cache-Control: no-cache and Pragma: no-cache on every request, seen at the server; honoured, each
    // Try-it-out would be asked upstream again. A browser without interception sends neither.
    svc = await startApp({ NOMINATIM_URL: upstream.url, CACHE_TTL_SECONDS: '600', CLIENT_CACHE_CONTROL: 'ignore' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    const origin = new URL(svc.url).origin;
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin || url.startsWith('data:')) return route.continue();
      foreignRequests.push(url);
      return route.abort();
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // Every CSP violation the page reports, in the order it happens (read back with cspViolations()).
    await page.addInitScript(`
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__csp.push(e.violatedDirective + ' blocked ' + (e.blockedURI || '(inline)') + ' at ' + e.sourceFile + ':' + e.lineNumber);
      });
    `);
    shotDir = await mkdtemp(join(tmpdir(), 'places-cache-swagger-ui-'));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await svc?.close();
    await upstream?.stop();
  });

  const cspViolations = (): Promise<string[]> => page.evaluate<string[]>('window.__csp');

  /** The GET /api operation block (id: operations-<tag>-<operationId>). */
  const apiOperation = (): Locator => page.locator('#operations-Places-PlacesController_api');

  /** Clicks Execute and returns the live response's status and body text once it shows `expected`. */
  async function execute(expected: string): Promise<{ status: string; body: string }> {
    const op = apiOperation();
    await op.locator('button.execute').click();
    const live = op.locator('.live-responses-table .response');
    const body = live.locator('.response-col_description pre.microlight, .response-col_description .highlight-code pre').first();
    await body.filter({ hasText: expected }).waitFor();
    return { status: (await live.locator('.response-col_status').first().innerText()).trim(), body: await body.innerText() };
  }

  it('opens /docs, tries GET /api?q=berlin twice: a miss, then a hit, with no console error, CSP violation or foreign request', async () => {
    const res = await page.goto(`${svc.url}/docs`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await shows(page.locator('.swagger-ui .info .title'), 'places-cache');

    const op = apiOperation();
    await op.locator('.opblock-summary').first().click();
    await op.getByRole('button', { name: 'Try it out' }).click();
    await op.locator('tr[data-param-name="q"] input').fill('berlin');

    const miss = await execute('"cache": false');
    expect(miss.status).toBe('200');
    const first = JSON.parse(miss.body) as { cache: boolean; data: Array<{ display_name: string; name: string }> };
    expect(first.cache).toBe(false);
    expect(first.data[0].name).toBe('Berlin');
    expect(first.data[0].display_name).toContain('Berlin');
    expect(upstream.count('/search')).toBe(1);
    // The response headers panel shows what the cache did.
    await shows(op.locator('.live-responses-table .response-col_description'), 'x-cache: MISS');

    const hit = await execute('"cache": true');
    expect(hit.status).toBe('200');
    expect(JSON.parse(hit.body)).toEqual({ ...first, cache: true });
    await shows(op.locator('.live-responses-table .response-col_description'), 'x-cache: HIT');
    expect(upstream.count('/search')).toBe(1);

    // For a person to look at: the whole page, and the /api operation with its live answer.
    const full = join(shotDir, 'swagger-ui-page.png');
    const answer = join(shotDir, 'swagger-ui-api-answer.png');
    await page.screenshot({ path: full, fullPage: true });
    await op.locator('.live-responses-table').scrollIntoViewIfNeeded();
    await page.screenshot({ path: answer });
    for (const shot of [full, answer]) {
      const png = await readFile(shot);
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(png.length).toBeGreaterThan(20_000);
    }
    process.stderr.write(`Swagger UI screenshots: ${full} ${answer}\n`);

    expect(await cspViolations()).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  }, 90_000);

  /**
   * "Try it out" fills every parameter with its documented example or default and sends them all, so
   * the examples must make one valid request together: no example may select JSONP or exclude the
   * example's own answer, and /search must not get both `q` and structured fields (Nominatim's 400).
   */
  it.each([
    ['api', 'default', { data: [{ name: 'Berlin' }] }],
    ['search', 'default', [{ name: 'Berlin' }]],
    ['reverse', 'jsonv2', { name: 'Unter den Linden' }],
    ['lookup', 'json', [{ name: 'Berlin' }, { name: 'Unter den Linden' }]],
    ['status', 'json', { message: 'OK' }],
    ['details', 'default', { localname: 'Berlin' }],
  ])('Try it out on /%s with the values the UI fills in (format %s) answers 200 with the documented JSON', async (route, format, expected) => {
    if (!page.url().includes('/docs')) await page.goto(`${svc.url}/docs`);
    const op = page.locator(`#operations-Places-PlacesController_${route}`);
    if (!(await op.locator('button.execute').isVisible())) {
      if (!(await op.locator('.opblock-body').isVisible())) await op.locator('.opblock-summary').first().click();
      await op.getByRole('button', { name: 'Try it out' }).click();
    }
    if (format !== 'default') await op.locator('tr[data-param-name="format"] select').selectOption(format);
    await op.locator('button.execute').click();
    const live = op.locator('.live-responses-table .response');
    const body = live.locator('.response-col_description pre.microlight, .response-col_description .highlight-code pre').first();
    await body.waitFor();
    const status = (await live.locator('.response-col_status').first().innerText()).trim();
    const text = await body.innerText();
    expect(`${status} ${text.slice(0, 200)}`).toMatch(/^200 [[{]/);
    expect(JSON.parse(text)).toMatchObject(expected);
    expect(pageErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  }, 60_000);

  it('behind a proxy that adds a path prefix, at /docs and /docs/, Try it out asks the service under that prefix', async () => {
    const proxy = await startPrefixProxy('/places', svc.url);
    const other = await browser.newPage();
    try {
      const sent: string[] = [];
      await other.route('**/*', (route) => {
        sent.push(route.request().url());
        return new URL(route.request().url()).origin === proxy.origin ? route.continue() : route.abort();
      });
      for (const docs of ['/places/docs', '/places/docs/']) {
        await other.goto(`${proxy.origin}${docs}`);
        const op = other.locator('#operations-Places-PlacesController_api');
        await op.locator('.opblock-summary').first().click();
        await op.getByRole('button', { name: 'Try it out' }).click();
        await op.locator('tr[data-param-name="q"] input').fill('berlin');
        await op.locator('button.execute').click();
        const live = op.locator('.live-responses-table .response');
        await live.first().waitFor({ timeout: UI_TIMEOUT_MS });
        expect([docs, (await live.locator('.response-col_status').first().innerText()).trim()]).toEqual([docs, '200']);
      }
      expect(sent.filter((u) => u.includes('q=berlin'))).toEqual([`${proxy.origin}/places/api?q=berlin`, `${proxy.origin}/places/api?q=berlin`]);
      expect(sent.filter((u) => !u.startsWith(`${proxy.origin}/places/`))).toEqual([]);
    } finally {
      await other.close();
      await proxy.close();
    }
  }, 60_000);
});

/** Waits until `locator` contains `text` (fails the test with Playwright's timeout error otherwise). */
async function shows(locator: Locator, text: string): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor({ timeout: UI_TIMEOUT_MS });
}
