import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeNominatim } from '../../../test/support/fake-nominatim';
import { isEmptyAnswer } from './empty-answer';

const FIXTURES = join(__dirname, '../../../test/fixtures/nominatim');
const recorded = (file: string): string => readFileSync(join(FIXTURES, file), 'utf8');
const empty = (body: string): boolean => isEmptyAnswer(Buffer.from(body));

const LICENCE = 'Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright';

/**
 * 2,000 characters of query, echoed in the answer: everything JSON or XML escapes, and the very text
 * that empty answers are made of.
 */
const TRICKY = `Atlantis "Nowhere" \\ it's <b>&amp; [] "features":[]} {"error":"Unable to geocode"} ></searchresults> /> <place \n\tZürich `;
const LONG_Q = TRICKY.repeat(Math.ceil(2000 / TRICKY.length)).slice(0, 2000);

/** Attribute values as ElementTree escapes them (Nominatim 5.x), or as htmlspecialchars(ENT_QUOTES) does inside single quotes. */
function xmlAttr(value: string, quote: '"' | "'"): string {
  const s = value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, '&#10;').replace(/\t/g, '&#09;');
  return quote === '"' ? s.replace(/"/g, '&quot;') : s.replace(/'/g, '&#039;');
}

/** The real place element of the recorded XML search for Berlin. */
const XML_PLACE = /<place [^>]*\/>/.exec(recorded('search-q-xml.xml'))![0];

/** A /search answer in XML, shaped like the recorded one: the query echoed in querystring and more_url. */
function xmlSearch(q: string, inner: string | null, quote: '"' | "'" = '"'): string {
  const attr = (name: string, value: string): string => ` ${name}=${quote}${xmlAttr(value, quote)}${quote}`;
  const moreUrl = `http://nominatim.test/search?q=${encodeURIComponent(q)}&addressdetails=1&limit=20&exclude_place_ids=&format=xml`;
  const root = `<searchresults${attr('timestamp', 'Sat, 05 Dec 2026 13:30:49 +00:00')}${attr('attribution', LICENCE)}${attr('querystring', q)}${attr('more_url', moreUrl)}`;
  return `<?xml version="1.0" encoding="UTF-8" ?>\n${root}${inner === null ? ' />' : `>${inner}</searchresults>`}`;
}

/** The recorded geocodejson answer for Berlin with `query` echoed instead, and its features or none. */
function geocodejson(query: string, withFeatures: boolean): string {
  const real = recorded('search-q-geocodejson.json').replace('"query":"Berlin"', `"query":${JSON.stringify(query)}`);
  return withFeatures ? real : real.replace(/"features":\[.*\]\}$/s, '"features":[]}');
}

const EMPTY_GEOJSON = `{"type":"FeatureCollection","licence":${JSON.stringify(LICENCE)},"features":[]}`;
const REVERSE_XML_ERROR =
  `<?xml version="1.0" encoding="UTF-8" ?>\n<reversegeocode timestamp="Sat, 05 Dec 2026 13:30:49 +00:00" attribution="${LICENCE}" ` +
  'querystring="lat=-70.0&amp;lon=0.0&amp;format=xml"><error>Unable to geocode</error></reversegeocode>';

/** A recorded JSON answer with the last place's display_name (or name) set to `text`, re-serialised in the same key order. */
function withLastName(file: string, text: string): string {
  const value = JSON.parse(recorded(file)) as unknown;
  const last = (Array.isArray(value) ? value : (value as { features: Array<{ properties: object }> }).features.map((f) => f.properties)).at(-1) as Record<string, unknown>;
  if ('geocoding' in last) (last.geocoding as Record<string, unknown>).label = text;
  else last.display_name = text;
  return JSON.stringify(value);
}

describe('isEmptyAnswer', () => {
  describe('a "no result" answer, however long the query it echoes', () => {
    it.each([
      ['json/jsonv2 /search (recorded)', recorded('param-featureType-country.json')],
      ['json /lookup (recorded)', recorded('lookup-missing-ids-json.json')],
      ['json /reverse (recorded)', recorded('reverse-bad-lat-json.json')],
      ['geojson /search, /lookup (no query echoed)', EMPTY_GEOJSON],
      ['geocodejson /search, 2,000-character query', geocodejson(LONG_Q, false)],
      ['geocodejson /lookup (no query)', geocodejson('', false).replace(',"query":""', '')],
      ['xml /search, 2,000-character query, self-closing root', xmlSearch(LONG_Q, null)],
      ['xml /search, 2,000-character query, root with an end tag', xmlSearch(LONG_Q, '')],
      ['xml /search, 2,000-character query, attributes in single quotes', xmlSearch(LONG_Q, '', "'")],
      ['xml /lookup', '<?xml version="1.0" encoding="UTF-8" ?>\n<searchresults timestamp="x" attribution="y" querystring="" />'],
      ['xml /reverse', REVERSE_XML_ERROR],
      ['JSONP json', 'cb([])'],
      ['JSONP json, spaced and ended with a semicolon', ' my.cb( [ ] ); \n'],
      ['JSONP /reverse', 'handle({"error":"Unable to geocode"})'],
      ['JSONP geocodejson, 2,000-character query', `a.b(${geocodejson(LONG_Q, false)})`],
      ['json with whitespace', ' [\n] \n'],
    ])('%s', (_name, body) => {
      expect(empty(body)).toBe(true);
    });
  });

  describe('an answer with places, even one whose text spells out an empty answer', () => {
    it.each([
      ['json (recorded)', recorded('search-q-json.json')],
      ['jsonv2 (recorded)', recorded('search-q-jsonv2-addressdetails.json')],
      ['json /lookup (recorded)', recorded('lookup-json.json')],
      ['json /reverse (recorded)', recorded('reverse-json.json')],
      ['geojson (recorded)', recorded('search-q-geojson.json')],
      ['geocodejson (recorded)', recorded('search-q-geocodejson.json')],
      ['xml /search (recorded)', recorded('search-q-xml.xml')],
      ['xml /reverse (recorded)', recorded('reverse-xml.xml')],
      ['json whose last name is "[]"', withLastName('search-q-json.json', '[]')],
      ['geojson whose last name ends in "features":[]}', withLastName('search-q-geojson.json', '"features":[]}')],
      ['geocodejson whose last label ends in "features":[]}', withLastName('search-q-geocodejson.json', 'x","features":[]}')],
      ['geocodejson with a query that spells out an empty answer', geocodejson(LONG_Q, true)],
      ['a /reverse place named "Unable to geocode"', '{"error_code":1,"display_name":"Unable to geocode"}'],
      ['xml /search with a 2,000-character query', xmlSearch(LONG_Q, XML_PLACE)],
      ['xml /search with a query in single quotes', xmlSearch(LONG_Q, XML_PLACE, "'")],
      ['JSONP json', `cb(${recorded('search-q-json.json')})`],
      ['JSONP geocodejson', `cb(${geocodejson(LONG_Q, true)})`],
    ])('%s', (_name, body) => {
      expect(empty(body)).toBe(false);
    });
  });

  it.each([
    ['nothing', ''],
    ['the status text', 'OK'],
    ['a JSON string', '"[]"'],
    ['JSONP around a string', 'cb("[]")'],
    ['a truncated array', '['],
    ['a truncated FeatureCollection', EMPTY_GEOJSON.slice(0, -1)],
    ['an object whose last key is features, not a FeatureCollection', '{"type":"Feature","features":[]}'],
    ['a truncated XML search', xmlSearch(LONG_Q, '').slice(0, 200)],
    ['another XML root', '<?xml version="1.0"?>\n<html><body /></html>'],
    ['the error of a 400 in XML', recorded('search-missing-q-xml.xml')],
  ])('does not take %s for empty', (_name, body) => {
    expect(empty(body)).toBe(false);
  });

  describe('what the fake Nominatim sends', () => {
    const fake = new FakeNominatim({ fixtures: false });
    const send = (path: string, query: Record<string, string>): string => {
      const res = fake.buildResponse({ method: 'GET', path, query: new URLSearchParams(query), headers: { host: 'nominatim.test' } });
      expect(res.status).toBe(200);
      return res.body.toString();
    };
    const formats = ['json', 'jsonv2', 'geojson', 'geocodejson', 'xml'];
    const asked = formats.flatMap((format) => [
      [format, '', { format }],
      ...(format === 'xml' ? [] : [[format, ' with json_callback', { format, json_callback: 'handle.results' }]]),
    ]) as Array<[string, string, Record<string, string>]>;

    it.each(asked)('%s%s: empty for nothing found, not for places', (_format, _callback, params) => {
      expect(empty(send('/search', { ...params, q: LONG_Q }))).toBe(true);
      expect(empty(send('/reverse', { ...params, lat: '-70', lon: '0' }))).toBe(true);
      expect(empty(send('/lookup', { ...params, osm_ids: 'N999999' }))).toBe(true);
      expect(empty(send('/search', { ...params, q: 'Berlin' }))).toBe(false);
      expect(empty(send('/reverse', { ...params, lat: '52.5163', lon: '13.3777' }))).toBe(false);
      expect(empty(send('/lookup', { ...params, osm_ids: 'N2,W200' }))).toBe(false);
    });
  });

  it('reads only the ends of a large answer: nothing parsed, nothing much decoded', () => {
    const fake = new FakeNominatim({ fixtures: false, padTo: 2_000_000 });
    const large: Buffer[] = ['json', 'geojson', 'geocodejson', 'xml'].map((format) => {
      const res = fake.buildResponse({ method: 'GET', path: '/search', query: new URLSearchParams({ q: 'Berlin', format }), headers: {} });
      return Buffer.from(res.body);
    });
    const parse = jest.spyOn(JSON, 'parse');
    const decode = jest.spyOn(Buffer.prototype, 'toString');
    try {
      for (const body of large) {
        expect(body.length).toBeGreaterThan(2_000_000);
        expect(isEmptyAnswer(body)).toBe(false);
      }
      expect(parse).not.toHaveBeenCalled();
      // bytes decoded by each toString() call on one of the large bodies
      const decoded = decode.mock.calls.flatMap((args, i) => {
        const buf = decode.mock.contexts[i] as Buffer;
        if (!large.includes(buf)) return [];
        const [, from = 0, to = buf.length] = args as [string?, number?, number?];
        return [Math.min(to, buf.length) - from];
      });
      expect(decoded.length).toBeGreaterThan(0);
      expect(Math.max(...decoded)).toBeLessThanOrEqual(128);
    } finally {
      parse.mockRestore();
      decode.mockRestore();
    }
  });
});
