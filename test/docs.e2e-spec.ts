import { MAX_TEXT_LENGTH } from '../src/places/nominatim/nominatim-request';
import { RunningApp, startApp } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { openApiProblems, resolveRef, schemaMismatches } from './support/openapi-check';

jest.setTimeout(30_000);

type Obj = Record<string, unknown>;
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  deprecated?: boolean;
  schema: Obj;
}
interface Media {
  schema?: Obj;
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface Response {
  description: string;
  headers?: Record<string, { schema: Obj; description?: string }>;
  content?: Record<string, Media>;
}
interface Operation {
  summary?: string;
  description?: string;
  operationId: string;
  parameters: Parameter[];
  responses: Record<string, Response>;
}
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Obj> };
  [key: string]: unknown;
}

const PLACE_ROUTES = ['/api', '/search', '/reverse', '/lookup', '/status', '/details'];
const ALIASES = ['/', '/search.php', '/reverse.php', '/lookup.php', '/status.php', '/details.php'];
const OUTPUT_DETAILS = ['addressdetails', 'extratags', 'namedetails', 'entrances', 'transliterate'];
const POLYGONS = ['polygon_geojson', 'polygon_kml', 'polygon_svg', 'polygon_text', 'polygon_threshold'];
/** The allow-list of src/places/nominatim/nominatim-request.ts (SPECS), endpoint by endpoint. */
const NOMINATIM_PARAMETERS: Record<string, string[]> = {
  '/search': [
    'q', 'amenity', 'street', 'city', 'county', 'state', 'country', 'postalcode', 'format', 'json_callback', 'limit',
    'accept-language', 'countrycodes', 'viewbox', 'viewboxlbrt', 'bounded', 'layer', 'featureType',
    'exclude_place_ids', 'dedupe', ...OUTPUT_DETAILS, ...POLYGONS,
  ],
  '/reverse': ['lat', 'lon', 'zoom', 'layer', 'format', 'json_callback', 'accept-language', ...OUTPUT_DETAILS, ...POLYGONS],
  '/lookup': ['osm_ids', 'format', 'json_callback', 'accept-language', ...OUTPUT_DETAILS, ...POLYGONS],
  '/status': ['format', 'json_callback'],
  '/details': [
    'place_id', 'osmtype', 'osmid', 'class', 'format', 'json_callback', 'accept-language', 'addressdetails', 'keywords',
    'linkedplaces', 'hierarchy', 'group_hierarchy', 'polygon_geojson', 'entrances', 'transliterate',
  ],
};
const CACHE_HEADERS = ['X-Cache', 'Cache-Status', 'Age', 'Cache-Control', 'X-Request-Id'];
const PLACE_FORMATS = ['xml', 'json', 'jsonv2', 'geojson', 'geocodejson'];

/** The OpenAPI document (/docs-json) and the Swagger UI (/docs), issue 2 item 7. */
describe('OpenAPI document and Swagger UI (e2e)', () => {
  let upstream: FakeNominatim;
  let svc: RunningApp;
  let doc: Doc;

  const op = (path: string): Operation => doc.paths[path].get;
  const param = (path: string, name: string): Parameter => {
    const found = op(path).parameters.find((p) => p.in === 'query' && p.name === name);
    if (found === undefined) throw new Error(`GET ${path} documents no query parameter ${name}`);
    return found;
  };
  const schemaOf = (path: string, status: number, type = 'application/json'): Obj => {
    const media = op(path).responses[String(status)]?.content?.[type];
    if (media?.schema === undefined) throw new Error(`GET ${path} ${status} documents no ${type} schema`);
    return media.schema;
  };
  const component = (name: string): Obj => {
    const schema = doc.components.schemas[name];
    if (schema === undefined) throw new Error(`no components.schemas.${name}`);
    return schema;
  };

  beforeAll(async () => {
    upstream = new FakeNominatim();
    await upstream.start();
    svc = await startApp({ NOMINATIM_URL: upstream.url, UPSTREAM_TIMEOUT_MS: '300' });
    const res = await fetch(`${svc.url}/docs-json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = (await res.json()) as Doc;
  });

  afterAll(async () => {
    await svc?.close();
    await upstream?.stop();
  });

  beforeEach(() => upstream.reset());

  describe('/docs-json', () => {
    it('is a valid OpenAPI 3.0 document', () => {
      expect(doc.openapi).toMatch(/^3\.0\.\d+$/);
      expect(openApiProblems(doc)).toEqual([]);
    });

    it('describes every place route once, under its main path (aliases excluded)', () => {
      for (const path of PLACE_ROUTES) {
        expect(Object.keys(doc.paths[path] ?? {})).toEqual(['get']);
        expect(op(path).summary).toEqual(expect.any(String));
        expect(op(path).description).toEqual(expect.any(String));
      }
      for (const alias of ALIASES) expect(doc.paths[alias]).toBeUndefined();
      expect(op('/search').description).toContain('/search.php');
    });

    it('gives every parameter and response of the place routes a description', () => {
      const missing: string[] = [];
      for (const path of PLACE_ROUTES) {
        for (const p of op(path).parameters) if (!p.description) missing.push(`${path} ${p.in}:${p.name}`);
        for (const [code, r] of Object.entries(op(path).responses)) if (!r.description) missing.push(`${path} ${code}`);
      }
      expect(missing).toEqual([]);
    });

    it('documents q of /api: required, at most 512 characters', () => {
      expect(op('/api').parameters.filter((p) => p.in === 'query').map((p) => p.name)).toEqual(['q']);
      const q = param('/api', 'q');
      expect(q.required).toBe(true);
      expect(q.schema).toMatchObject({ type: 'string', minLength: 1, maxLength: 512 });
      expect(MAX_TEXT_LENGTH).toBe(512);
      expect(q.description).toContain('512');
    });

    it('documents /api answers: 200 {cache, data} with the cache headers, and the error shape for 400/429/502/503/504', () => {
      const responses = op('/api').responses;
      expect(Object.keys(responses)).toEqual(expect.arrayContaining(['200', '400', '429', '502', '503', '504']));

      expect(schemaOf('/api', 200)).toEqual({ $ref: '#/components/schemas/ApiAnswerDto' });
      const answer = component('ApiAnswerDto');
      expect(answer.required).toEqual(['cache', 'data']);
      expect(answer.properties).toMatchObject({
        cache: { type: 'boolean' },
        data: { type: 'array', items: { $ref: '#/components/schemas/NominatimPlaceDto' } },
      });
      const place = component('NominatimPlaceDto');
      expect(place.required).toEqual(
        expect.arrayContaining(['place_id', 'licence', 'osm_type', 'osm_id', 'lat', 'lon', 'class', 'type', 'display_name', 'boundingbox']),
      );
      expect(place.properties).toMatchObject({
        osm_type: { enum: ['node', 'way', 'relation'] },
        lat: { type: 'string' },
        boundingbox: { type: 'array', items: { type: 'string' } },
        address: { type: 'object', additionalProperties: { type: 'string' } },
      });

      expect(Object.keys(responses['200'].headers ?? {})).toEqual(expect.arrayContaining(CACHE_HEADERS));
      expect(responses['200'].headers?.['X-Cache'].schema).toEqual({ type: 'string', enum: ['HIT', 'MISS', 'STALE', 'BYPASS'] });

      const error = component('GatewayErrorDto');
      expect(error.required).toEqual(['statusCode', 'error', 'message']);
      expect(Object.keys(error.properties as Obj)).toEqual(['statusCode', 'error', 'message', 'code']);
      for (const status of [400, 429, 502, 503, 504]) {
        expect(schemaOf('/api', status)).toEqual({ $ref: '#/components/schemas/GatewayErrorDto' });
        expect(responses[String(status)].headers).toHaveProperty('X-Request-Id');
      }
      expect(responses['429'].headers).toHaveProperty('Retry-After');
      expect(responses['503'].headers).toHaveProperty('Retry-After');
    });

    it("documents exactly Nominatim's parameters on each Nominatim route", () => {
      for (const [path, names] of Object.entries(NOMINATIM_PARAMETERS)) {
        const documented = op(path).parameters.filter((p) => p.in === 'query').map((p) => p.name);
        expect({ path, names: [...documented].sort() }).toEqual({ path, names: [...names].sort() });
      }
      expect(op('/search').parameters.filter((p) => p.in === 'header').map((p) => p.name)).toEqual(['Accept-Language', 'X-Request-Id']);
    });

    it('documents values and defaults: format, limit, booleans, reverse and status', () => {
      const format = param('/search', 'format');
      expect([...(format.schema.enum as string[])].sort()).toEqual([...PLACE_FORMATS].sort());
      expect(format.schema.default).toBe('jsonv2');
      expect(format.description).toContain('jsonv2');
      expect(param('/search', 'limit').schema).toMatchObject({ type: 'integer', default: 10, minimum: 1, maximum: 50 });
      expect(param('/search', 'addressdetails').schema).toMatchObject({ enum: [0, 1], default: 0 });
      expect(param('/search', 'dedupe').schema).toMatchObject({ enum: [0, 1], default: 1 });
      expect(param('/search', 'featureType').schema.enum).toEqual(expect.arrayContaining(['country', 'state', 'city', 'settlement']));
      expect(param('/search', 'q').schema).toMatchObject({ type: 'string', maxLength: 512 });
      expect(param('/search', 'viewboxlbrt').deprecated).toBe(true);

      expect(param('/reverse', 'lat').required).toBe(true);
      expect(param('/reverse', 'lon').required).toBe(true);
      expect(param('/reverse', 'zoom').schema).toMatchObject({ default: 18, minimum: 0, maximum: 18 });
      expect(param('/reverse', 'format').schema.default).toBe('xml');
      expect(param('/reverse', 'addressdetails').schema.default).toBe(1);
      expect(param('/lookup', 'format').schema.default).toBe('xml');
      expect(param('/status', 'format').schema).toMatchObject({ default: 'text' });
      expect([...(param('/status', 'format').schema.enum as string[])].sort()).toEqual(['json', 'text']);
      expect(param('/details', 'osmtype').schema.enum).toEqual(['N', 'W', 'R']);
    });

    it("documents the Nominatim routes' answers per format, Nominatim's 400 shapes and the gateway's errors", () => {
      const search = op('/search').responses;
      expect(Object.keys(search['200'].content ?? {})).toEqual(['application/json', 'text/xml', 'application/javascript']);
      expect(Object.keys(search['200'].content?.['application/json'].examples ?? {})).toEqual(['jsonv2', 'json', 'geojson', 'geocodejson']);
      expect(search['200'].content?.['text/xml'].example).toMatch(/^<\?xml[\s\S]*<searchresults/);
      expect(Object.keys(search['400'].content ?? {})).toEqual(['application/json', 'text/xml', 'text/plain']);
      expect(schemaOf('/search', 400)).toEqual({ $ref: '#/components/schemas/NominatimErrorDto' });
      expect(component('NominatimErrorDto').properties).toEqual({ error: { $ref: '#/components/schemas/NominatimErrorDetailDto' } });
      expect(component('NominatimErrorDetailDto')).toMatchObject({ required: ['code', 'message'] });
      for (const path of ['/search', '/reverse', '/lookup', '/status', '/details']) {
        expect(Object.keys(op(path).responses)).toEqual(expect.arrayContaining(['200', '400', '429', '502', '503', '504']));
        expect(Object.keys(op(path).responses['200'].headers ?? {})).toEqual(expect.arrayContaining(CACHE_HEADERS));
        expect(schemaOf(path, 504)).toEqual({ $ref: '#/components/schemas/GatewayErrorDto' });
      }
      expect(Object.keys(op('/status').responses['200'].content ?? {})).toEqual(['text/plain', 'application/json']);
      expect(schemaOf('/details', 404)).toEqual({ $ref: '#/components/schemas/NominatimErrorDto' });
    });

    it('shows examples that match their own schemas', () => {
      const problems: string[] = [];
      for (const path of PLACE_ROUTES) {
        for (const [code, response] of Object.entries(op(path).responses)) {
          for (const [type, media] of Object.entries(response.content ?? {})) {
            if (media.schema === undefined) continue;
            const examples = media.examples ? Object.values(media.examples).map((e) => e.value) : media.example !== undefined ? [media.example] : [];
            for (const ex of examples) {
              problems.push(...schemaMismatches(ex, media.schema as never, doc as never, true).map((m) => `${path} ${code} ${type}: ${m}`));
            }
          }
        }
      }
      expect(problems).toEqual([]);
    });

    it('builds with the other controllers too (health, metrics, admin when ADMIN_TOKEN is set)', async () => {
      const withAdmin = await startApp({ NOMINATIM_URL: upstream.url, ADMIN_TOKEN: 'docs-test-token-0123456789abcdef' });
      try {
        const res = await fetch(`${withAdmin.url}/docs-json`);
        expect(res.status).toBe(200);
        const full = (await res.json()) as Doc;
        expect(openApiProblems(full)).toEqual([]);
        expect(Object.keys(full.paths)).toEqual(expect.arrayContaining([...PLACE_ROUTES, '/health/live', '/health/ready', '/metrics']));
        expect(Object.keys(full.paths).some((p) => p.startsWith('/admin'))).toBe(true);
        expect(Object.keys(doc.paths).some((p) => p.startsWith('/admin'))).toBe(false);
      } finally {
        await withAdmin.close();
      }
    });

    it("documents /metrics' 401 with the content type and shape the guard really sends", async () => {
      const guarded = await startApp({ NOMINATIM_URL: upstream.url, METRICS_TOKEN: 'docs-test-token-0123456789abcdef' });
      try {
        const res = await fetch(`${guarded.url}/metrics`);
        expect(res.status).toBe(401);
        const type = (res.headers.get('content-type') ?? '').split(';')[0];
        const body: unknown = await res.json();
        const content = op('/metrics').responses['401'].content ?? {};
        expect(Object.keys(content)).toEqual([type]);
        expect(schemaMismatches(body, content[type].schema as never, doc as never, true)).toEqual([]);
      } finally {
        await guarded.close();
      }
    });
  });

  describe('real answers match the document', () => {
    /** Fetches `target` and returns the problems: undocumented status, Content-Type or headers, and body mismatches. */
    async function conformance(route: string, target: string, init?: RequestInit): Promise<{ status: number; problems: string[]; body: string }> {
      const res = await fetch(`${svc.url}${target}`, init);
      const body = await res.text();
      const problems: string[] = [];
      const response = op(route).responses[String(res.status)];
      if (response === undefined) return { status: res.status, body, problems: [`${target}: status ${res.status} is not documented`] };
      const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
      const media = response.content?.[type];
      if (media === undefined) problems.push(`${target}: ${res.status} ${type} is not documented`);
      for (const name of Object.keys(response.headers ?? {})) {
        if (name === 'Age' && res.headers.get('x-cache') !== 'HIT' && res.headers.get('x-cache') !== 'STALE') continue;
        if (name === 'Retry-After') continue;
        if (!res.headers.has(name)) problems.push(`${target}: documented header ${name} missing`);
      }
      if (media?.schema !== undefined && type.endsWith('json')) {
        problems.push(...schemaMismatches(JSON.parse(body), media.schema as never, doc as never, true).map((m) => `${target}: ${m}`));
      }
      return { status: res.status, body, problems };
    }

    it('/api: a miss, a hit (Age), and a 400', async () => {
      for (const expected of [200, 200]) {
        const r = await conformance('/api', '/api?q=Berlin');
        expect(r.status).toBe(expected);
        expect(r.problems).toEqual([]);
      }
      const bad = await conformance('/api', '/api');
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body)).toEqual({ statusCode: 400, error: 'Bad Request', message: 'q is required' });
      expect(bad.problems).toEqual([]);
    });

    it('/api: Nominatim failing (502) and too slow (504), with the documented code', async () => {
      upstream.failNext(1, { status: 500 });
      const failed = await conformance('/api', '/api?q=z%C3%BCrich');
      expect(failed.status).toBe(502);
      expect(failed.problems).toEqual([]);
      expect(JSON.parse(failed.body)).toMatchObject({ statusCode: 502, error: 'Bad Gateway', code: 'upstream_error' });

      upstream.failNext(1, 'timeout');
      const slow = await conformance('/api', '/api?q=paris');
      expect(slow.status).toBe(504);
      expect(slow.problems).toEqual([]);
      expect(JSON.parse(slow.body)).toMatchObject({ statusCode: 504, error: 'Gateway Timeout', code: 'upstream_timeout' });
    });

    it('/search in every format, with all output details, and its 400s', async () => {
      for (const target of [
        '/search?q=berlin',
        '/search?q=berlin&format=json&addressdetails=1&extratags=1&namedetails=1',
        '/search?q=berlin&format=jsonv2&addressdetails=1&extratags=1&namedetails=1&polygon_geojson=1',
        '/search?q=berlin&format=geojson&addressdetails=1',
        '/search?q=berlin&format=geocodejson&addressdetails=1',
        '/search?city=berlin&street=unter%20den%20linden&format=json',
        '/search?q=berlin&format=xml',
        '/search?q=berlin&format=json&json_callback=handleResults',
        '/search?q=atlantis%20nowhere&format=json',
      ]) {
        const r = await conformance('/search', target);
        expect({ target, status: r.status }).toEqual({ target, status: 200 });
        expect(r.problems).toEqual([]);
      }
      for (const target of ['/search?format=json', '/search?format=xml', '/search?q=x&format=nope', '/search?q=berlin&city=berlin&format=json']) {
        const r = await conformance('/search', target);
        expect({ target, status: r.status }).toEqual({ target, status: 400 });
        expect(r.problems).toEqual([]);
      }
    });

    it('/reverse, /lookup, /status and /details', async () => {
      const cases: Array<[string, string, number]> = [
        ['/reverse', '/reverse?lat=52.5163&lon=13.3777&format=jsonv2', 200],
        ['/reverse', '/reverse?lat=52.5163&lon=13.3777&format=json&extratags=1&namedetails=1', 200],
        ['/reverse', '/reverse?lat=52.5163&lon=13.3777', 200],
        ['/reverse', '/reverse?lat=-70&lon=0&format=json', 200],
        ['/reverse', '/reverse?lon=0&format=json', 400],
        ['/lookup', '/lookup?osm_ids=N2,W200&format=json', 200],
        ['/lookup', '/lookup?osm_ids=N2&format=geojson', 200],
        ['/status', '/status', 200],
        ['/status', '/status?format=json', 200],
        ['/details', '/details?osmtype=N&osmid=2&addressdetails=1', 200],
        ['/details', '/details?osmtype=N&osmid=999999', 404],
      ];
      for (const [route, target, status] of cases) {
        const r = await conformance(route, target);
        expect({ target, status: r.status }).toEqual({ target, status });
        expect(r.problems).toEqual([]);
      }
    });
  });

  describe('/docs', () => {
    it('serves the Swagger UI page and its assets', async () => {
      const res = await fetch(`${svc.url}/docs`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await res.text();
      expect(html).toContain('<div id="swagger-ui"></div>');
      const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
      expect(scripts).toEqual(['./docs/swagger-ui-bundle.js', './docs/swagger-ui-standalone-preset.js', './docs/swagger-ui-init.js']);
      for (const src of scripts) {
        const asset = await fetch(new URL(src, `${svc.url}/docs`));
        expect({ src, status: asset.status }).toEqual({ src, status: 200 });
        expect(asset.headers.get('content-type')).toMatch(/javascript/);
        await asset.arrayBuffer();
      }
      const init = await (await fetch(`${svc.url}/docs/swagger-ui-init.js`)).text();
      expect(init).toContain('"/api"');
      expect(init).toContain('ApiAnswerDto');
    });

    it('serves the document as YAML too', async () => {
      const res = await fetch(`${svc.url}/docs-yaml`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^openapi: 3\.0\.\d+\n/);
    });
  });

  it('resolves every schema the place routes use', () => {
    for (const name of ['ApiAnswerDto', 'NominatimPlaceDto', 'NominatimPlaceV2Dto', 'GeoJsonFeatureCollectionDto', 'GeocodeJsonDto', 'StatusDto', 'PlaceDetailsDto']) {
      expect(resolveRef(doc as never, `#/components/schemas/${name}`)).toEqual(expect.objectContaining({ type: 'object' }));
    }
  });
});
