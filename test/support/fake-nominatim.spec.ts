import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeNominatim, FakeRequest, loadFixtures, mostInFlight } from './fake-nominatim';
import { measure, stalledDuring, watchEventLoop } from './traffic';

const FIXTURE_DIR = join(__dirname, '..', 'fixtures', 'nominatim');
const JSON_CT = 'application/json; charset=utf-8';
const XML_CT = 'text/xml; charset=utf-8';

function fixtureHeaders(header: string | undefined): Record<string, string> {
  if (!header) return {};
  const [name, ...value] = header.split(':');
  return { [name.trim()]: value.join(':').trim() };
}

async function getJson(url: string, init?: RequestInit): Promise<unknown> {
  const res = await fetch(url, init);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(JSON_CT);
  return res.json();
}

/** Status of a GET, with the body read so the connection is free again. */
async function statusOf(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

type Place = { place_id: number; display_name: string; name: string; lat: string; lon: string; osm_type: string; osm_id: number };

describe(FakeNominatim.name, () => {
  let fake: FakeNominatim;
  let url: string;

  beforeAll(async () => {
    fake = new FakeNominatim();
    url = await fake.start();
  });

  afterAll(async () => {
    await fake.stop();
  });

  afterEach(() => {
    fake.reset();
  });

  it('listens on a random loopback port', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fake.url).toBe(url);
  });

  describe('recorded fixtures', () => {
    const fixtures = loadFixtures();

    it('indexes every file of test/fixtures/nominatim', () => {
      const files = readdirSync(FIXTURE_DIR).filter((f) => f !== 'INDEX.md').sort();
      expect(fixtures.map((f) => f.file).sort()).toEqual(files);
    });

    it.each(fixtures.map((f) => [f.file, f] as const))('answers %s byte for byte', async (file, f) => {
      const res = await fetch(url + f.request, { headers: fixtureHeaders(f.header) });
      expect(res.status).toBe(f.status);
      expect(res.headers.get('content-type')).toBe(f.contentType);
      const body = Buffer.from(await res.arrayBuffer());
      expect(body.toString('utf8')).toBe(readFileSync(join(FIXTURE_DIR, file), 'utf8'));
      expect(body.equals(readFileSync(join(FIXTURE_DIR, file)))).toBe(true);
    });

    it.each(fixtures.map((f) => [f.file, f] as const))('renders %s from the gazetteer too', async (file, f) => {
      fake.fixtures = false;
      const res = await fetch(url + f.request, { headers: fixtureHeaders(f.header) });
      // Only the XML timestamp and the host in more_url can differ from the recording; the param-* files
      // were recorded from another import of the same extract, whose place_ids start two higher.
      const normalise = (s: string): string =>
        s.replace(/timestamp="[^"]+"/, 'timestamp="T"').replace(/http:\/\/127\.0\.0\.1:\d+/g, 'http://HOST');
      const recorded = readFileSync(join(FIXTURE_DIR, file), 'utf8');
      const want = file.startsWith('param-') ? recorded.replace(/"place_id":(\d+)/g, (_m, id: string) => `"place_id":${Number(id) - 2}`) : recorded;
      expect(res.status).toBe(f.status);
      expect(res.headers.get('content-type')).toBe(f.contentType);
      expect(normalise(await res.text())).toBe(normalise(want));
    });

    it('finds a recording whatever the parameter order, encoding or .php alias', async () => {
      const want = readFileSync(join(FIXTURE_DIR, 'search-structured-json.json'), 'utf8');
      const res = await fetch(`${url}/search.php?format=json&street=Unter+den+Linden&city=Berlin`);
      await expect(res.text()).resolves.toBe(want);
    });

    it('does not use the no-header recording when a language is asked for', async () => {
      const body = (await getJson(`${url}/search?q=Berlin&format=json`, { headers: { 'Accept-Language': 'en' } })) as Place[];
      expect(body[0].display_name).toBe('Berlin, 10117, Germany');
    });
  });

  describe('gazetteer search', () => {
    it.each([
      ['東京都', '東京都, 日本'],
      ['Москва', 'Москва, Центральный федеральный округ, Россия'],
      ['São Paulo', 'São Paulo, Região Sudeste, Brasil'],
      ['kraków', 'Kraków, województwo małopolskie, 31-005, Polska'],
      ['Reykjavík', 'Reykjavík, Höfuðborgarsvæðið, 101, Ísland'],
      ['zurich', 'Zürich, Bezirk Zürich, Zürich, 8001, Schweiz/Suisse/Svizzera/Svizra'],
      ['SAN FRANCISCO', 'San Francisco, California, United States'],
    ])('finds %s case-insensitively', async (q, displayName) => {
      const body = (await getJson(`${url}/search?q=${encodeURIComponent(q)}`)) as Place[];
      expect(body[0].display_name).toBe(displayName);
    });

    it('keeps the Nominatim shape: strings for coordinates, seven-decimal bounding boxes', async () => {
      const [place] = (await getJson(`${url}/search?q=Reykjavik&format=jsonv2`)) as Array<Record<string, unknown>>;
      expect(Object.keys(place)).toEqual([
        'place_id', 'licence', 'osm_type', 'osm_id', 'lat', 'lon', 'category', 'type', 'place_rank',
        'importance', 'addresstype', 'name', 'display_name', 'boundingbox',
      ]);
      expect(place).toMatchObject({ lat: '64.145981', lon: '-21.9422367', boundingbox: ['63.9859810', '64.3059810', '-22.1022367', '-21.7822367'] });
    });

    it('narrows by the comma-separated context', async () => {
      const body = (await getJson(`${url}/search?q=${encodeURIComponent('Springfield, Missouri')}&format=json`)) as Place[];
      expect(body.map((p) => p.display_name)).toEqual(['Springfield, Greene County, Missouri, United States']);
    });

    it('answers structured queries', async () => {
      const body = (await getJson(`${url}/search?street=Bahnhofstrasse&city=Z%C3%BCrich&format=json`)) as Place[];
      expect(body.map((p) => p.name)).toEqual(['Bahnhofstrasse']);
    });

    it('applies limit, clamped to 1..50', async () => {
      await expect(getJson(`${url}/search?q=springfield&format=json`)).resolves.toHaveLength(3);
      await expect(getJson(`${url}/search?q=springfield&limit=2&format=json`)).resolves.toHaveLength(2);
      await expect(getJson(`${url}/search?q=springfield&limit=0&format=json`)).resolves.toHaveLength(1);
      const xml = await (await fetch(`${url}/search?q=springfield&limit=500&format=xml`)).text();
      // Nominatim asks for limit + min(limit, 10) rows to deduplicate: 50 + 10.
      expect(xml).toContain('&amp;limit=60&amp;');
    });

    it('adds address, extratags and namedetails on request', async () => {
      const [place] = (await getJson(
        `${url}/search?q=Moscow&format=json&addressdetails=1&extratags=1&namedetails=1`,
      )) as Array<Record<string, unknown>>;
      expect(place.address).toEqual({
        city: 'Москва', state: 'Москва', region: 'Центральный федеральный округ', country: 'Россия', country_code: 'ru',
      });
      expect(place.extratags).toEqual({ capital: 'yes', population: '13010112' });
      expect(place.namedetails).toMatchObject({ name: 'Москва', 'name:en': 'Moscow' });
    });

    it('localises with accept-language, from the parameter or the header', async () => {
      const byParam = (await getJson(`${url}/search?q=Munich&accept-language=en&format=json`)) as Place[];
      const byHeader = (await getJson(`${url}/search?q=Munich&format=json`, { headers: { 'Accept-Language': 'en-GB,en;q=0.8' } })) as Place[];
      const native = (await getJson(`${url}/search?q=Munich&format=json`)) as Place[];
      expect(byParam[0].display_name).toBe('Munich, Bavaria, 80331, Germany');
      expect(byHeader[0].display_name).toBe('Munich, Bavaria, 80331, Germany');
      expect(native[0].display_name).toBe('München, Bayern, 80331, Deutschland');
    });

    it.each([
      ['json', JSON_CT, '[]'],
      ['jsonv2', JSON_CT, '[]'],
      ['geojson', JSON_CT, '{"type":"FeatureCollection","licence":"Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright","features":[]}'],
      ['geocodejson', JSON_CT, '{"type":"FeatureCollection","geocoding":{"version":"0.1.0","attribution":"Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright","licence":"ODbL","query":"Nowhere"},"features":[]}'],
    ])('answers no match in %s with the empty shape', async (format, contentType, body) => {
      const res = await fetch(`${url}/search?q=Nowhere&format=${format}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(contentType);
      await expect(res.text()).resolves.toBe(body);
    });

    it('answers no match in xml with an empty searchresults element', async () => {
      const res = await fetch(`${url}/search?q=Nowhere&format=xml`);
      expect(res.headers.get('content-type')).toBe(XML_CT);
      await expect(res.text()).resolves.toMatch(
        /^<\?xml version="1.0" encoding="UTF-8" \?>\n<searchresults timestamp="\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+00:00" attribution="[^"]+" querystring="Nowhere" more_url="http:\/\/127\.0\.0\.1:\d+\/search\?q=Nowhere&amp;addressdetails=1&amp;limit=20&amp;exclude_place_ids=&amp;format=xml" \/>$/,
      );
    });

    it('renders non-ASCII names in XML', async () => {
      const xml = await (await fetch(`${url}/search?q=${encodeURIComponent('Kraków')}&format=xml&addressdetails=1`)).text();
      expect(xml).toContain('display_name="Kraków, województwo małopolskie, 31-005, Polska"');
      expect(xml).toContain('<state>województwo małopolskie</state>');
    });
  });

  describe('errors', () => {
    it.each([
      ['/search?format=json', 'Nothing to search for.'],
      ['/search?q=Zürich&street=x&format=json', "Structured query parameters(amenity, street, city, county, state, postalcode, country) cannot be used together with 'q' parameter."],
      ['/search?q=Paris&limit=ten', "Parameter 'limit' must be a number."],
      ['/search?q=Paris&polygon_text=1&polygon_svg=1', 'Too many polygon output options selected.'],
      ['/reverse?lat=x&lon=1&format=json', "Parameter 'lat' must be a number."],
    ])('%s → 400 %s', async (path, message) => {
      const res = await fetch(url + encodeURI(path));
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe(JSON_CT);
      await expect(res.text()).resolves.toBe(`{"error":{"code":400,"message":"${message}"}}`);
    });

    it('formats errors as XML for format=xml, with the recorded whitespace', async () => {
      const res = await fetch(`${url}/search?q=Paris&limit=abc&format=xml`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe(XML_CT);
      const recorded = readFileSync(join(FIXTURE_DIR, 'search-missing-q-xml.xml'), 'utf8');
      await expect(res.text()).resolves.toBe(recorded.replace('Nothing to search for.', "Parameter 'limit' must be a number."));
    });

    it('rejects an unknown format in plain text', async () => {
      const res = await fetch(`${url}/search?q=Paris&format=html`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      await expect(res.text()).resolves.toBe("ERROR 400: Parameter 'format' must be one of: xml, geojson, geocodejson, json, jsonv2");
    });

    it('answers 404 for unknown paths', async () => {
      const res = await fetch(`${url}/nope`);
      expect(res.status).toBe(404);
      await expect(res.text()).resolves.toBe('Not Found');
    });
  });

  describe('reverse, lookup, status, details', () => {
    it('reverse answers the nearest place within the zoom level', async () => {
      const street = (await getJson(`${url}/reverse?lat=47.372&lon=8.5394&format=json`)) as Place;
      expect(street.display_name).toBe('Bahnhofstrasse, Lindenhof, Zürich, Bezirk Zürich, Zürich, 8001, Schweiz/Suisse/Svizzera/Svizra');
      const city = (await getJson(`${url}/reverse?lat=47.372&lon=8.5394&zoom=10&format=json`)) as Place;
      expect(city.name).toBe('Zürich');
      const country = (await getJson(`${url}/reverse?lat=52.52&lon=13.4&zoom=3&format=json`)) as Place;
      expect(country.display_name).toBe('Deutschland');
    });

    it.each(['lat=0&lon=-150', 'lat=-91&lon=0', 'lat=10&lon=181'])('reverse %s → Unable to geocode', async (q) => {
      await expect(getJson(`${url}/reverse?${q}&format=json`)).resolves.toEqual({ error: 'Unable to geocode' });
    });

    it('reverse without a match says so in XML too', async () => {
      const xml = await (await fetch(`${url}/reverse?lat=0&lon=-150&format=xml`)).text();
      expect(xml).toMatch(/querystring="lat=0\.0&amp;lon=-150\.0&amp;format=xml"><error>Unable to geocode<\/error><\/reversegeocode>$/);
    });

    it('lookup answers the known ids in request order and skips the others', async () => {
      const body = (await getJson(`${url}/lookup?osm_ids=R3,N999,w200,N2&format=json`)) as Place[];
      expect(body.map((p) => `${p.osm_type}/${p.osm_id}`)).toEqual(['relation/3', 'way/200', 'node/2']);
      await expect(getJson(`${url}/lookup?osm_ids=&format=json`)).resolves.toEqual([]);
    });

    it('status answers text by default and JSON on request', async () => {
      const text = await fetch(`${url}/status.php`);
      expect(text.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      await expect(text.text()).resolves.toBe('OK');
      await expect(getJson(`${url}/status?format=json`)).resolves.toMatchObject({ status: 0, message: 'OK' });
    });

    it('details answers by OSM id, 404 when unknown', async () => {
      await expect(getJson(`${url}/details?osmtype=W&osmid=200`)).resolves.toMatchObject({ place_id: 100006, localname: 'Unter den Linden' });
      const res = await fetch(`${url}/details?osmtype=N&osmid=424242`);
      expect(res.status).toBe(404);
      await expect(res.text()).resolves.toBe('{"error":{"code":404,"message":"No place with that OSM ID found."}}');
    });
  });

  describe('benchmark sizing', () => {
    it('padTo grows a search answer to about that many bytes with distinct results', async () => {
      fake.padTo = 5 * 1024;
      const res = await fetch(`${url}/search?q=Berlin&format=json`);
      const text = await res.text();
      const places = JSON.parse(text) as Place[];
      expect(Buffer.byteLength(text)).toBeGreaterThanOrEqual(5 * 1024);
      expect(Buffer.byteLength(text)).toBeLessThan(5 * 1024 + 500);
      expect(new Set(places.map((p) => p.place_id)).size).toBe(places.length);
    });

    it('resultCount fixes the number of results', async () => {
      fake.resultCount = 7;
      await expect(getJson(`${url}/search?q=Zürich&format=jsonv2`)).resolves.toHaveLength(7);
      await expect(getJson(`${url}/search?q=Nowhere&format=jsonv2`)).resolves.toHaveLength(0);
    });
  });

  describe('failures and latency', () => {
    it('failNext fails the next n requests, then answers normally', async () => {
      fake.failNext(2, { status: 503 });
      const first = await fetch(`${url}/search?q=Paris`);
      await expect(first.text()).resolves.toBe('503 Service Unavailable');
      await expect(statusOf(`${url}/status`)).resolves.toBe(503);
      const third = await fetch(`${url}/status`);
      expect([first.status, third.status]).toEqual([503, 200]);
      await expect(third.text()).resolves.toBe('OK');
    });

    it('sends the given body and headers, e.g. 429 with Retry-After', async () => {
      fake.failNext(1, { status: 429, headers: { 'Retry-After': '7' }, body: { error: 'slow down' } });
      const res = await fetch(`${url}/search?q=Paris`);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('7');
      expect(res.headers.get('content-type')).toBe(JSON_CT);
      await expect(res.json()).resolves.toEqual({ error: 'slow down' });
    });

    it('failAll keeps failing until cleared; failNext goes first', async () => {
      fake.failAll({ status: 403, body: 'blocked' });
      fake.failNext(1, { status: 500 });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push(await statusOf(`${url}/status`));
      fake.failAll(null);
      statuses.push(await statusOf(`${url}/status`));
      expect(statuses).toEqual([500, 403, 403, 200]);
    });

    it('reset destroys the connection', async () => {
      fake.failNext(1, 'reset');
      await expect(fetch(`${url}/search?q=Paris`)).rejects.toThrow('fetch failed');
      await expect(statusOf(`${url}/status`)).resolves.toBe(200);
    });

    it('timeout never answers, and stop() still closes promptly', async () => {
      const other = new FakeNominatim();
      const base = await other.start();
      other.failAll('timeout');
      // Settled only by stop(); observed right away so the rejection is never unhandled.
      const pending = fetch(`${base}/search?q=Paris`).then(
        (r) => `answered ${r.status}`,
        (err: Error) => err.message,
      );
      const timedOut = fetch(`${base}/status`, { signal: AbortSignal.timeout(200) });
      await expect(timedOut).rejects.toThrow();
      const stopped = await measure(() => other.stop());
      // The held request is cut, not waited for; nor is a keep-alive timeout (Node's: 5 s).
      expect(stopped.ownMs < 5000 / 2 ? 'at once' : stopped.detail).toBe('at once');
      await expect(pending).resolves.toBe('fetch failed');
      expect(other.count()).toBe(2);
    });

    it('latencyMs delays every answer', async () => {
      fake.latencyMs = 150;
      const started = performance.now();
      await expect(fetch(`${url}/status`).then((r) => r.text())).resolves.toBe('OK');
      expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    });

    it('builds the answer on arrival, counts latencyMs from arrival, and records when the answer went out', async () => {
      const built: number[] = [];
      const build = fake.buildResponse.bind(fake);
      const spy = jest.spyOn(fake, 'buildResponse').mockImplementation((entry) => {
        built.push(performance.now());
        return build(entry);
      });
      const lag = watchEventLoop();
      try {
        fake.latencyMs = 150;
        const res = await fetch(`${url}/search?q=Berlin&format=json`);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        const [entry] = fake.requests;
        // Built while the delay ran (right on arrival), not after it: its cost is not added to the delay.
        expect(built).toHaveLength(1);
        const builtAfter = built[0] - entry.startedAtHr;
        expect(builtAfter - stalledDuring(lag.stalls, entry.arrivedAt, entry.arrivedAt + builtAfter)).toBeLessThan(150);
        expect(built[0]).toBeLessThan(entry.answeredAtHr!);
        expect(entry.answeredAtHr! - entry.startedAtHr).toBeGreaterThanOrEqual(150);
      } finally {
        lag.stop();
        spy.mockRestore();
      }
    });

    it('latencyFn decides the delay per request', async () => {
      fake.latencyFn = (req) => (req.path === '/reverse' ? 200 : 0);
      const fast = await measure(() => fetch(`${url}/status`).then((r) => r.text()));
      const slow = await measure(() => fetch(`${url}/reverse?lat=52.5&lon=13.4`).then((r) => r.text()));
      expect(fast.ownMs < 150 ? 'no delay' : fast.detail).toBe('no delay');
      expect(slow.ms).toBeGreaterThanOrEqual(195);
    });

    it('setHandler overrides everything and can delegate to the normal answer', async () => {
      fake.failAll({ status: 500 });
      fake.setHandler((_req, res, entry) => {
        const normal = fake.buildResponse(entry);
        res.writeHead(299, { ...normal.headers, 'X-Fake': 'yes' });
        res.end(normal.body);
      });
      const res = await fetch(`${url}/status`);
      expect(res.status).toBe(299);
      expect(res.headers.get('x-fake')).toBe('yes');
      await expect(res.text()).resolves.toBe('OK');
      fake.setHandler(null);
      fake.failAll(null);
      await expect(statusOf(`${url}/status`)).resolves.toBe(200);
    });
  });

  describe('request log', () => {
    it('records method, path, query, raw URL, headers, user agent and arrival times', async () => {
      const before = Date.now();
      await fetch(`${url}/search?q=${encodeURIComponent('São Paulo')}&format=json`, {
        headers: { 'User-Agent': 'places-cache-test/1.0 (ops@example.org)' },
      }).then((r) => r.text());
      await fetch(`${url}/reverse?lat=1&lon=2`).then((r) => r.text());

      expect(fake.requests).toHaveLength(2);
      const [search, reverse] = fake.requests;
      expect(search).toMatchObject({
        method: 'GET',
        path: '/search',
        rawUrl: '/search?q=S%C3%A3o%20Paulo&format=json',
        userAgent: 'places-cache-test/1.0 (ops@example.org)',
      });
      expect(search.query.get('q')).toBe('São Paulo');
      expect(search.headers['user-agent']).toBe('places-cache-test/1.0 (ops@example.org)');
      expect(search.arrivedAt).toBeGreaterThanOrEqual(before);
      expect(reverse.startedAtHr).toBeGreaterThan(search.startedAtHr);
      expect(fake.count()).toBe(2);
      expect(fake.count('/search')).toBe(1);
      expect(fake.count('/lookup')).toBe(0);
    });

    it('logs failed and held requests too, and reset() clears the log and failure modes', async () => {
      fake.failNext(1, { status: 500 });
      fake.failAll({ status: 503 });
      await fetch(`${url}/status`).then((r) => r.text());
      expect(fake.count('/status')).toBe(1);
      fake.reset();
      expect(fake.requests).toEqual([]);
      await expect(statusOf(`${url}/status`)).resolves.toBe(200);
    });
  });

  describe('standalone', () => {
    it('prints its URL, serves with the given latency and exits on SIGTERM', async () => {
      const child = spawn(process.execPath, ['-r', '@swc-node/register', join(__dirname, 'fake-nominatim.ts'), '--port', '0', '--latency', '50'], {
        cwd: join(__dirname, '..', '..'),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        const printed = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes('\n')) resolve(out.trim());
          });
          child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
        });
        expect(printed).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        const started = performance.now();
        await expect(fetch(`${printed}/status`).then((r) => r.text())).resolves.toBe('OK');
        expect(performance.now() - started).toBeGreaterThanOrEqual(45);
      } finally {
        child.kill('SIGTERM');
      }
      await expect(exited).resolves.toBe(0);
    }, 20_000);
  });
});

describe(mostInFlight.name, () => {
  const held = (startedAtHr: number, answeredAtHr?: number) => ({ startedAtHr, answeredAtHr }) as FakeRequest;

  it('counts requests held at the same time, not one after another', () => {
    expect(mostInFlight([])).toBe(0);
    expect(mostInFlight([held(0, 10), held(10, 20), held(20, 30)])).toBe(1);
    expect(mostInFlight([held(0, 100), held(1, 101), held(2, 102), held(150, 160)])).toBe(3);
    expect(mostInFlight([held(5, 50), held(0, 10), held(40, 60)])).toBe(2);
  });

  it('does not count a request that has not been answered', () => {
    expect(mostInFlight([held(0, 100), held(1), held(2)])).toBe(1);
  });
});
