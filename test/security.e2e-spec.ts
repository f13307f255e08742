import { RunningApp, startApp, useFake } from './support/app-harness';

// The e2e project's testTimeout is not applied per project by Jest 30; these tests spawn processes and wait.
jest.setTimeout(60_000);

/** helmet headers and CORS on every kind of answer (issue 4, security item 8). */
describe('security headers and CORS (e2e)', () => {
  const upstream = useFake();

  beforeEach(() => upstream.reset());

  /** What helmet (with our CSP) sets, on every answer whatever path produced it. */
  const HELMET: Record<string, string> = {
    'content-security-policy':
      "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';" +
      "img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'",
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'cross-origin',
    'origin-agent-cluster': '?1',
    'referrer-policy': 'no-referrer',
    'strict-transport-security': 'max-age=31536000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-dns-prefetch-control': 'off',
    'x-download-options': 'noopen',
    'x-frame-options': 'SAMEORIGIN',
    'x-permitted-cross-domain-policies': 'none',
    'x-xss-protection': '0',
  };
  const EXPOSED = 'X-Cache, Cache-Status, Age, X-Request-Id, Retry-After';

  const pick = (res: Response, names: string[]) => Object.fromEntries(names.map((n) => [n, res.headers.get(n)]));

  describe('default configuration (CORS for any origin)', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: upstream.url, MAX_URL_BYTES: '512' });
    });

    afterAll(() => svc.close());

    it('sets the helmet headers on misses, hits, every kind of error, health, metrics and the docs', async () => {
      upstream.failNext(1, { status: 500 });
      const cases: Array<[string, number, string?]> = [
        ['/api?q=Upstream%20down', 502],
        ['/api?q=Berlin', 200, 'MISS'],
        ['/api?q=Berlin', 200, 'HIT'],
        ['/search?q=San%20Francisco&format=jsonv2', 200, 'MISS'],
        ['/search?q=San%20Francisco&format=jsonv2', 200, 'HIT'],
        ['/api', 400],
        ['/reverse?lat=abc&lon=1', 400],
        ['/nothing/here', 404],
        [`/api?q=${'x'.repeat(600)}`, 414],
        ['/health/ready', 200],
        ['/metrics', 200],
        ['/docs', 200],
        ['/docs/', 200],
        ['/docs-json', 200],
      ];
      for (const [path, status, xCache] of cases) {
        const res = await fetch(`${svc.url}${path}`, { headers: { Origin: 'https://maps.example' } });
        const label = `${path.slice(0, 40)} → ${status}`;
        expect([label, res.status, res.headers.get('x-cache') ?? undefined]).toEqual([label, status, xCache]);
        expect([label, pick(res, Object.keys(HELMET))]).toEqual([label, HELMET]);
        expect([label, res.headers.get('x-powered-by')]).toEqual([label, null]);
        expect([label, res.headers.get('access-control-allow-origin')]).toEqual([label, '*']);
        expect([label, res.headers.get('access-control-expose-headers')]).toEqual([label, EXPOSED]);
        await res.arrayBuffer();
      }
    });

    it('ignores letter case and one trailing slash in a place path, as Express does, and no more', async () => {
      const places = ['/search/?q=Ghent', '/SEARCH?q=Ghent', '/Search.PHP/?q=Ghent', '/api/?q=Ghent', '/status/'];
      for (const path of places) {
        const res = await fetch(`${svc.url}${path}`);
        expect([path, res.status, res.headers.get('x-cache')]).toEqual([path, 200, expect.stringMatching(/^(MISS|HIT)$/)]);
        await res.arrayBuffer();
      }
      const upstreamCalls = upstream.count();
      // `//` is not `/` with a trailing slash (Express would route it to `/`): every one is an unknown path.
      const unknown = ['//', '//?q=Ghent', '///', '/search//?q=Ghent', '/status//', '/api//?q=Ghent', '/SEARCH.php//', '//search?q=Ghent', '/nothing/here'];
      for (const path of unknown) {
        for (const method of ['GET', 'HEAD']) {
          const res = await fetch(`${svc.url}${path}`, { method });
          expect([method, path, res.status, res.headers.get('x-cache')]).toEqual([method, path, 404, null]);
          expect([method, path, res.headers.get('content-type')]).toEqual([method, path, 'application/json; charset=utf-8']);
          const body = await res.text();
          if (method === 'GET') expect(JSON.parse(body)).toEqual({ statusCode: 404, error: 'Not Found', message: `Cannot GET ${path}` });
        }
      }
      expect(upstream.count()).toBe(upstreamCalls);
    });

    it('keeps upgrade-insecure-requests out of the CSP (Swagger UI on plain HTTP) and serves Swagger UI from its own origin', async () => {
      const res = await fetch(`${svc.url}/docs/`);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).not.toContain('upgrade-insecure-requests');
      const html = await res.text();
      expect(html).toContain('swagger-ui');
      // Every script the page loads is same-origin, as script-src 'self' requires.
      const scripts = [...html.matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1]);
      expect(scripts.length).toBeGreaterThan(0);
      for (const src of scripts) expect(src).not.toMatch(/^(https?:)?\/\//);
      expect(html).not.toMatch(/<script>(?!\s*<\/script>)/);
    });

    it('answers a preflight for GET from any origin, without touching the upstream', async () => {
      const res = await fetch(`${svc.url}/search?q=Berlin`, {
        method: 'OPTIONS',
        headers: {
          Origin: 'https://any-site.example',
          'Access-Control-Request-Method': 'GET',
          'Access-Control-Request-Headers': 'x-request-id, accept-language',
        },
      });
      expect(res.status).toBe(204);
      expect(pick(res, ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age'])).toEqual({
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET,HEAD,OPTIONS',
        'access-control-allow-headers': 'x-request-id, accept-language',
        'access-control-max-age': '86400',
      });
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(await res.text()).toBe('');
      expect(upstream.count()).toBe(0);
    });

    it('does not allow methods other than GET/HEAD, and a POST is not answered from the cache', async () => {
      const preflight = await fetch(`${svc.url}/api?q=Berlin`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://any-site.example', 'Access-Control-Request-Method': 'DELETE' },
      });
      expect(preflight.headers.get('access-control-allow-methods')).toBe('GET,HEAD,OPTIONS');
      const post = await fetch(`${svc.url}/api?q=Berlin`, { method: 'POST', headers: { Origin: 'https://any-site.example' } });
      expect(post.status).toBe(404);
      expect(post.headers.get('x-cache')).toBeNull();
      expect(post.headers.get('x-content-type-options')).toBe('nosniff');
      expect(post.headers.get('access-control-allow-origin')).toBe('*');
    });
  });

  describe('CORS_ORIGINS restricts the allowed origins', () => {
    let svc: RunningApp;

    beforeAll(async () => {
      svc = await startApp({ NOMINATIM_URL: upstream.url, CORS_ORIGINS: 'https://app.example, https://admin.example' });
    });

    afterAll(() => svc.close());

    it('answers a preflight from a listed origin with that origin, and Vary: Origin', async () => {
      const res = await fetch(`${svc.url}/api?q=Berlin`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://admin.example', 'Access-Control-Request-Method': 'GET' },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('https://admin.example');
      expect(res.headers.get('vary')).toContain('Origin');
      expect(res.headers.get('access-control-allow-methods')).toBe('GET,HEAD,OPTIONS');
    });

    it('gives an unlisted origin no Access-Control-Allow-Origin (the browser blocks it), on preflights and answers', async () => {
      const preflight = await fetch(`${svc.url}/api?q=Berlin`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' },
      });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      for (const expected of ['MISS', 'HIT']) {
        const res = await fetch(`${svc.url}/api?q=Bern`, { headers: { Origin: 'https://evil.example' } });
        expect(res.status).toBe(200);
        expect(res.headers.get('x-cache')).toBe(expected);
        expect(res.headers.get('access-control-allow-origin')).toBeNull();
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        await res.arrayBuffer();
      }
    });

    it('allows a listed origin on misses and hits, exposes the cache headers, and keeps Vary: Origin for shared caches', async () => {
      for (const expected of ['MISS', 'HIT']) {
        const res = await fetch(`${svc.url}/search?q=Zurich&format=json`, { headers: { Origin: 'https://app.example' } });
        expect(res.status).toBe(200);
        expect(res.headers.get('x-cache')).toBe(expected);
        expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
        expect(res.headers.get('access-control-expose-headers')).toBe(EXPOSED);
        // A CDN must not hand app.example's answer (with its Allow-Origin) to another origin.
        expect(res.headers.get('vary')?.split(/,\s*/)).toEqual(expect.arrayContaining(['Origin', 'Accept-Language', 'Accept-Encoding']));
        await res.arrayBuffer();
      }
    });
  });
});
