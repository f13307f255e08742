import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FrontDoor } from '../src/http/front-door.service';
import { RunningApp, startApp } from './support/app-harness';
import { FakeNominatim, FakeRequest } from './support/fake-nominatim';
import { rawRequest, RawReply } from './support/raw-socket';

/**
 * Issue 4, item 11: hostile input never crashes the process, never reaches Nominatim unvalidated and
 * never changes the upstream host or path. Requests are written byte for byte on a socket (fetch would
 * refuse or repair most of them). The generator is seeded: FUZZ_SEED=<n> replays a run.
 */

const REQUESTS = 3000;
const CONCURRENCY = 24;
const TIME_BUDGET_MS = 45_000;
const MAX_URL_BYTES = 4096;
jest.setTimeout(60_000);

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** What Nominatim may be sent, per path: the gateway's allow-list, written out independently here. */
const OUTPUT = ['format', 'json_callback', 'accept-language', 'addressdetails', 'extratags', 'namedetails', 'entrances', 'transliterate'];
const POLYGON = ['polygon_geojson', 'polygon_kml', 'polygon_svg', 'polygon_text', 'polygon_threshold'];
const ALLOWED: Record<string, Set<string>> = {
  '/search': new Set([
    ...OUTPUT, ...POLYGON, 'q', 'amenity', 'street', 'city', 'county', 'state', 'country', 'postalcode', 'limit',
    'countrycodes', 'viewbox', 'bounded', 'layer', 'featureType', 'exclude_place_ids', 'dedupe',
  ]),
  '/reverse': new Set([...OUTPUT, ...POLYGON, 'lat', 'lon', 'zoom', 'layer']),
  '/lookup': new Set([...OUTPUT, ...POLYGON, 'osm_ids']),
  '/status': new Set(['format', 'json_callback']),
  '/details': new Set([
    'place_id', 'osmtype', 'osmid', 'class', 'format', 'json_callback', 'accept-language', 'addressdetails', 'keywords',
    'linkedplaces', 'hierarchy', 'group_hierarchy', 'polygon_geojson', 'entrances', 'transliterate',
  ]),
};
// eslint-disable-next-line no-control-regex -- looking for control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\ufffd]/;
/** An upstream request target: origin-form, only unreserved characters, sub-delims and %XX escapes. */
const CLEAN_TARGET = /^\/[a-z]+\?(?:[A-Za-z0-9\-._~!$'()*+,;=:@/?&]|%[0-9A-F]{2})*$|^\/[a-z]+$/;

/** mulberry32: small, seeded, good enough to pick cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  private readonly rnd: () => number;

  constructor(seed: number) {
    this.rnd = prng(seed);
  }

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  chance(p: number): boolean {
    return this.rnd() < p;
  }

  /** Percent-encoded junk: invalid UTF-8, overlong forms, surrogates, controls, broken escapes. */
  hostileEncoded(): string {
    return this.pick([
      '%C3%28', '%FF', '%FE%FF', '%C0%AF', '%C0%80', '%E0%80%AF', '%ED%A0%80', '%ED%BF%BF', '%F4%90%80%80', '%F8%88%80%80%80',
      '%00', '%0D%0A', '%0A', '%0D', '%09', '%1B%5B31m', '%7F', '%C2%85', '%C2%9F', '%E2%80%AE', '%EF%BB%BF', '%EF%BF%BD',
      '%', '%%', '%G1', '%2', '%u0041', '%25', '%252e%252e', '%2e%2e%2f', '..%2F..%2Fadmin', '%2F%2Fevil.example',
      '%26format%3Dxml', '%3D', '%23frag', '%3F', '+', '%20', '%E2%80%8B', '%F0%9F%92%A9', '%CC%81', 'Z%C3%BCrich',
    ]);
  }

  hugeNumber(): string {
    return this.pick([
      '1e309', '-1e309', '1e-400', '99999999999999999999999999999999', '-99999999999999999999999', '0x10', '0o7', '0b1',
      '1_000', '1__0', '_1', 'NaN', 'nan', 'inf', '-Infinity', '+.5', '.', '-', '--1', '1e', '٣', '١٢', '𝟗', '0'.repeat(3000) + '1',
      '9'.repeat(400), '1.7976931348623157e308', '4.9e-324', '-0', '00000000042', '1,2', '1;2', '1 2', ' 42 ',
    ]);
  }

  value(): string {
    switch (this.int(9)) {
      case 0:
        return this.hostileEncoded();
      case 1:
        return this.hugeNumber();
      case 2:
        return Array.from({ length: 1 + this.int(4) }, () => this.hostileEncoded()).join(this.pick(['', 'a', ' ', '%20']));
      case 3:
        return 'x'.repeat(this.pick([513, 1000, 4097, 3000]));
      case 4:
        return this.pick(['berlin', 'Paris', 'N%2052.5%20E%2013.4', '52.52', '13.40', 'json', 'xml', 'jsonv2', 'geojson', 'N240109189,W1,R2']);
      case 5:
        return this.pick(['', '=', '&', '==', 'a=b', 'foo;bar', 'alert(1)', 'callback.x', '__proto__', '{"$gt":""}', '<script>', "'; DROP TABLE x;--"]);
      case 6:
        return this.pick(['-90', '90.0000001', '180', '-180.5', '0', '18', '19', '-1', '50', '51', '1000000']);
      case 7:
        return `${this.pick(['N', 'W', 'R', 'X', 'n'])}${this.hugeNumber()}`;
      default:
        return encodeURIComponent(String.fromCharCode(...Array.from({ length: 1 + this.int(8) }, () => this.int(0x3000))));
    }
  }

  name(): string {
    const known = [...new Set(Object.values(ALLOWED).flatMap((s) => [...s]))];
    return this.chance(0.7)
      ? this.pick(known)
      : this.pick([
          'email', 'debug', 'path', 'url', 'host', 'Q', 'FORMAT', 'Accept-Language', 'q[]', 'q%5B%5D', '__proto__', 'constructor',
          'hasOwnProperty', 'toString', '', '%00', 'q%00', 'q%0D%0AHost:%20evil', '%FF', 'key', 'prefix', 'polygon_Kml',
        ]);
  }

  query(): string {
    const parts: string[] = [];
    const n = this.chance(0.05) ? 64 + this.int(400) : this.int(8);
    const repeated = this.chance(0.1) ? this.name() : undefined;
    for (let i = 0; i < n; i++) parts.push(`${repeated ?? this.name()}=${this.value()}`);
    if (this.chance(0.1)) parts.push(this.pick(['&', '&&', '=', 'q', 'q=', '=x', '&=&']));
    return parts.join('&');
  }

  /** Free text that is valid but tries to smuggle syntax: it must reach Nominatim inside q, encoded. */
  text(): string {
    return this.pick([
      'Berlin', 'zürich', 'N 52.5 E 13.4', '%26format%3Dxml%26host%3Devil.example', '..%2F..%2Fadmin', '%3Cscript%3E', "o'brien",
      'a%3Db%26c%3Dd', '%2F%2Fevil.example%2Fsearch', 'http%3A%2F%2Fevil.example%2F', '%E2%80%AE', '%F0%9F%92%A9', '東京', 'x+y',
      '%25%30%30', '%2B', '%23', '%3F', 'Berlin'.repeat(80), encodeURIComponent(String.fromCharCode(...Array.from({ length: 12 }, () => 0x20 + this.int(0x2fff)))),
    ]);
  }

  /** A question an honest client could send, with hostile but acceptable values: these reach upstream. */
  plausible(): string {
    const endpoint = this.pick(['/search', '/search', '/reverse', '/lookup', '/status', '/api', '/details']);
    const parts: string[] = [];
    if (endpoint === '/search' || endpoint === '/api') parts.push(`q=${this.text()}`);
    if (endpoint === '/reverse') parts.push(`lat=${this.pick(['52.52', '-90', '90', '1e1', '٣'])}`, `lon=${this.pick(['13.40', '180', '-180', '0.0000001'])}`);
    if (endpoint === '/lookup') parts.push(`osm_ids=${this.pick(['N240109189', 'W1,R2,n3', 'N١٢', 'R' + '9'.repeat(40), 'X1,N2'])}`);
    if (endpoint === '/details') parts.push(this.pick(['place_id=1', 'osmtype=N&osmid=1', 'place_id=' + '9'.repeat(30)]));
    for (let i = this.int(5); i > 0; i--) {
      parts.push(
        this.pick([
          `limit=${this.hugeNumber()}`, `format=${this.pick(['json', 'jsonv2', 'xml', 'geojson', 'geocodejson'])}`,
          `accept-language=${this.text()}`, `countrycodes=${this.pick(['de,fr', 'xx,', 'üü', '1,2,3'])}`,
          `viewbox=${this.pick(['1,2,3,4', '-200,-100,200,100', '1e308,0,0,1'])}`, `json_callback=${this.pick(['cb', 'a.b', 'x'])}`,
          `addressdetails=${this.pick(['1', '0', 'false', ''])}`, `zoom=${this.hugeNumber()}`, `layer=${this.pick(['poi', 'address,POI'])}`,
          `exclude_place_ids=${this.pick(['1,2', 'N1,3', ''])}`, `polygon_threshold=${this.pick(['0.1', '1e5'])}`, `email=evil%40evil.example`,
          `debug=1`, `Q=${this.text()}`, `featureType=${this.pick(['city', 'City', 'x'])}`, `dedupe=0`, `bounded=1`,
        ]),
      );
    }
    return `${endpoint}?${parts.join('&')}`;
  }

  path(): string {
    return this.chance(0.6)
      ? this.pick(['/search', '/reverse', '/lookup', '/status', '/details', '/api', '/', '/search.php', '/reverse.php', '/lookup.php', '/status.php'])
      : this.pick([
          '/search/../admin/cache', '/search/..%2Fadmin', '/%2e%2e/admin/cache', '/%2E%2E/%2e%2e/etc/passwd', '//evil.example/search',
          '///search', '/./search', '/SEARCH', '/Search.PHP', '/search/', '/search//', '/search;x=1', '/search%00', '/search%2f',
          '\\search', '/search\\..\\admin', '/api/..', '/docs/../admin/cache', '/docs/%2e%2e/admin/cache/prefix', '/admin/cache',
          '/admin/cache/prefix', '/admin/cache/question', '/metrics/../search', '/health/../../search', '/%73earch', '/search%20',
          '/search%09', '/search.', '/search~', '/.env', '/../../../../etc/passwd', '/search#', '/%', '/%ZZ', '/%C0%AE%C0%AE/',
        ]);
  }

  target(port: number, evilPort: number): string {
    const pq = this.chance(0.3) ? this.plausible() : `${this.path()}${this.chance(0.85) ? `?${this.query()}` : ''}`;
    switch (this.int(14)) {
      case 0:
        return `http://evil.example${pq}`;
      case 1:
        return `http://127.0.0.1:${evilPort}${pq}`;
      case 2:
        return `https://127.0.0.1:${port}${pq}`;
      case 3:
        return `http://evil.example:80/${pq}`;
      case 4:
        return `${pq}${this.pick(['#fragment', '#', '#/../admin', '?', '??'])}`;
      default:
        return pq;
    }
  }

  /** The whole request head, sometimes broken in ways only a socket can send. */
  request(port: number, evilPort: number): Buffer {
    const method = this.chance(0.85)
      ? this.pick(['GET', 'GET', 'GET', 'HEAD'])
      : this.pick(['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'FOO', 'get', 'CONNECT']);
    let target = this.target(port, evilPort);
    if (method === 'CONNECT') target = this.pick([`evil.example:443`, `127.0.0.1:${evilPort}`]);
    if (method === 'OPTIONS' && this.chance(0.3)) target = '*';
    if (this.chance(0.05)) target += '&q=' + 'A'.repeat(this.pick([MAX_URL_BYTES, 10_000, 20_000]));
    const headers: string[] = [];
    if (!this.chance(0.05)) headers.push(`Host: ${this.pick([`127.0.0.1:${port}`, 'evil.example', `127.0.0.1:${evilPort}`, '', 'a b', 'evil.example:80@127.0.0.1'])}`);
    if (this.chance(0.05)) headers.push('Host: evil.example');
    if (this.chance(0.3)) headers.push(`Accept-Language: ${this.pick(['de', '*', 'en;q=0.5, de', 'x'.repeat(5000), 'ü', '\u00ff\u00fe', 'de\u0085', ''])}`);
    if (this.chance(0.2)) headers.push(`X-Forwarded-For: ${this.pick(['1.2.3.4', 'evil.example', '1.2.3.4, 5.6.7.8', ',,,', 'x'.repeat(2000)])}`);
    if (this.chance(0.2)) headers.push(`X-Request-Id: ${this.pick(['abc', 'a'.repeat(500), '../../x', '%0d%0aSet-Cookie: x=1', 'ü'])}`);
    if (this.chance(0.1)) headers.push(`Authorization: ${this.pick(['Bearer x', 'Bearer ' + 'a'.repeat(3000), 'Basic Og==', 'Bearer'])}`);
    if (this.chance(0.1)) headers.push(`Accept-Encoding: ${this.pick(['gzip', 'gzip;q=0', 'br, gzip;q=0.000', '*', 'x'.repeat(1000)])}`);
    if (this.chance(0.1)) headers.push(`Origin: ${this.pick(['http://evil.example', 'null', ''])}`);
    if (this.chance(0.05)) headers.push(`X-Big: ${'b'.repeat(this.pick([8000, 17_000, 40_000]))}`);
    if (this.chance(0.03)) for (let i = 0; i < 3000; i++) headers.push(`X-Many-${i}: ${i}`);
    if (this.chance(0.03)) headers.push('Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==');
    if (this.chance(0.05)) headers.push(this.pick(['Content-Length: 5', 'Transfer-Encoding: chunked', 'Content-Length: -1', 'Content-Length: abc', 'Expect: 100-continue']));
    headers.push(headers.some((h) => h.startsWith('Upgrade')) ? 'Connection: close, Upgrade' : 'Connection: close');
    let head = `${method} ${target} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`;
    // Raw bytes a client cannot put in a URL through fetch: controls, CR/LF, spaces, non-ASCII, NUL.
    if (this.chance(0.08)) {
      const junk = this.pick(['\r\n', '\n', '\r', '\0', '\t', ' ', '\x1b', '\x7f', '\xff', '\xc3\xa9', 'é', 'HTTP/1.1\r\nHost: evil\r\n\r\nGET /']);
      const at = 4 + this.int(Math.max(1, target.length));
      head = head.slice(0, at) + junk + head.slice(at);
    }
    const body = head.includes('Content-Length: 5') ? 'hello' : head.includes('Transfer-Encoding: chunked') ? '5\r\nhello\r\n0\r\n\r\n' : '';
    return Buffer.from(head + body, 'latin1');
  }
}

function problemsOf(r: FakeRequest, upstreamPort: number): string[] {
  const problems: string[] = [];
  const allowed = ALLOWED[r.path];
  if (r.method !== 'GET') problems.push(`method ${r.method}`);
  if (allowed === undefined) problems.push(`path ${r.path}`);
  if (r.headers.host !== `127.0.0.1:${upstreamPort}`) problems.push(`host ${r.headers.host}`);
  if (!CLEAN_TARGET.test(r.rawUrl)) problems.push(`target not canonical: ${r.rawUrl.slice(0, 200)}`);
  if (r.rawUrl.length > 3 * MAX_URL_BYTES) problems.push(`target of ${r.rawUrl.length} bytes`);
  const seen = new Set<string>();
  for (const [name, value] of r.query) {
    if (allowed !== undefined && !allowed.has(name)) problems.push(`parameter ${JSON.stringify(name)}`);
    if (seen.has(name)) problems.push(`repeated parameter ${name}`);
    seen.add(name);
    if (CONTROL.test(value) || CONTROL.test(name)) problems.push(`control or replacement character in ${name}=${JSON.stringify(value.slice(0, 80))}`);
  }
  return problems;
}

describe(`${FrontDoor.name} under hostile input (fuzz, seed ${SEED})`, () => {
  let upstream: FakeNominatim;
  let svc: RunningApp;
  let port: number;
  /** Stands for any other host: input must never make the gateway talk to it. */
  let evil: http.Server;
  let evilPort: number;
  let evilHits = 0;

  beforeAll(async () => {
    upstream = new FakeNominatim();
    await upstream.start();
    evil = http.createServer((_req, res) => {
      evilHits++;
      res.end('evil');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    evilPort = (evil.address() as AddressInfo).port;
    // In-memory mode: hundreds of distinct misses must not wait on the shared (Redis) pacer's slots
    // (its queue would answer 503). Input meets the same front door, canonicaliser and controller;
    // Redis only ever sees canonical keys. Rate limiting runs, with identities taken from the junk
    // X-Forwarded-For values, and limits too high to refuse anything.
    svc = await startApp({
      NOMINATIM_URL: upstream.url,
      RATE_LIMIT_ENABLED: 'true',
      TRUST_PROXY: 'true',
      RATE_LIMIT_MISSES: '1000000',
      RATE_LIMIT_HITS: '1000000',
      ADMIN_TOKEN: 'fuzz-admin-token-0123456789',
      MAX_URL_BYTES: String(MAX_URL_BYTES),
      NOMINATIM_MAX_RPS: '1000',
      LOG_LEVEL: 'silent',
    });
    port = Number(new URL(svc.url).port);
  });

  afterAll(async () => {
    await svc.close();
    await new Promise((r) => evil.close(r));
    await upstream.stop();
  });

  it('answers the URL and header size limits with 414 and 431', async () => {
    const host = `Host: 127.0.0.1:${port}\r\nConnection: close\r\n`;
    const atLimit = `/search?q=${'a'.repeat(MAX_URL_BYTES - '/search?q='.length)}`;
    const overLimit = `${atLimit}a`;
    expect((await rawRequest(port, `GET ${atLimit} HTTP/1.1\r\n${host}\r\n`)).status).toBe(400); // q too long, but not 414
    const tooLong = await rawRequest(port, `GET ${overLimit} HTTP/1.1\r\n${host}\r\n`);
    expect(tooLong.status).toBe(414);
    expect(JSON.parse(tooLong.raw.toString('utf8').split('\r\n\r\n')[1])).toEqual({
      statusCode: 414,
      error: 'URI Too Long',
      message: `The request target is longer than ${MAX_URL_BYTES} bytes`,
    });
    expect((await rawRequest(port, `GET /search?q=${'a'.repeat(30_000)} HTTP/1.1\r\n${host}\r\n`)).status).toBe(431);
    expect((await rawRequest(port, `GET /search?q=x HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`)).status).toBe(431);
    expect(upstream.count()).toBe(0);
  });

  it('keeps the upstream host and path whatever the request target says', async () => {
    upstream.reset();
    const targets = [
      `http://evil.example/search?q=Berlin`,
      `http://127.0.0.1:${evilPort}/search?q=Paris`,
      `//127.0.0.1:${evilPort}/search?q=Rome`,
      `/search?q=Madrid&host=127.0.0.1:${evilPort}&url=http://evil.example/&path=/admin`,
    ];
    const statuses: number[] = [];
    for (const t of targets) {
      statuses.push((await rawRequest(port, `GET ${t} HTTP/1.1\r\nHost: 127.0.0.1:${evilPort}\r\nConnection: close\r\n\r\n`)).status);
    }
    expect(statuses).toEqual([200, 200, 404, 200]);
    expect(evilHits).toBe(0);
    for (const r of upstream.requests) expect(problemsOf(r, Number(new URL(upstream.url).port))).toEqual([]);
  });

  it(`survives ${REQUESTS} generated hostile requests: only 2xx/4xx, nothing invalid upstream`, async () => {
    upstream.reset();
    const gen = new Gen(SEED);
    const requests = Array.from({ length: REQUESTS }, () => gen.request(port, evilPort));
    const replies: Array<{ request: Buffer; reply: RawReply }> = [];
    const deadline = Date.now() + TIME_BUDGET_MS;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length && Date.now() < deadline) {
          const request = requests[next++];
          replies.push({ request, reply: await rawRequest(port, request) });
        }
      }),
    );
    expect(replies.length).toBe(REQUESTS);

    const bad = replies.filter(({ reply }) => reply.status < 200 || reply.status >= 500 || reply.error !== undefined);
    const shown = bad.slice(0, 5).map(({ request, reply }) => ({
      request: request.toString('latin1').slice(0, 150) + ' … ' + request.toString('latin1').slice(-250),
      status: reply.status,
      error: reply.error,
      answer: reply.raw.toString('latin1').slice(0, 300),
    }));
    expect(shown).toEqual([]);

    const upstreamPort = Number(new URL(upstream.url).port);
    const invalid = upstream.requests.map((r) => ({ target: r.rawUrl.slice(0, 200), problems: problemsOf(r, upstreamPort) })).filter((r) => r.problems.length > 0);
    expect(invalid.slice(0, 5)).toEqual([]);
    expect(evilHits).toBe(0);
    // The run covered valid questions and every kind of refusal (the checks above are not vacuous).
    const statuses = new Set(replies.map(({ reply }) => reply.status));
    expect([200, 400, 404, 405, 414, 431].filter((s) => !statuses.has(s))).toEqual([]);
    if (process.env.FUZZ_VERBOSE) {
      const byStatus: Record<number, number> = {};
      for (const { reply } of replies) byStatus[reply.status] = (byStatus[reply.status] ?? 0) + 1;
      console.log({ seed: SEED, byStatus, upstream: upstream.count() });
    }
    expect(upstream.count()).toBeGreaterThan(100);

    // Still alive and still caching.
    const after = await rawRequest(port, `GET /search?q=Berlin HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    expect(after.status).toBe(200);
  }, TIME_BUDGET_MS + 30_000);
});
