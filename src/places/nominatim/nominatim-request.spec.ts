import {
  CanonicalRequest,
  canonicaliseApi,
  canonicaliseNominatim,
  ErrorAnswer,
  MAX_PARAMS,
  NominatimEndpoint,
  normaliseText,
} from './nominatim-request';

// Bodies copied from real Nominatim 5.1.0 answers (/work/shared/nominatim-samples), byte for byte.
const MISSING_Q_JSON = '{"error":{"code":400,"message":"Nothing to search for."}}';
const MISSING_Q_XML =
  '<?xml version="1.0" encoding="UTF-8" ?>\n' +
  '                   <error>\n' +
  '                     <code>400</code>\n' +
  '                     <message>Nothing to search for.</message>\n' +
  '                   </error>\n' +
  '                ';
const Q_AND_STRUCTURED_JSON =
  '{"error":{"code":400,"message":"Structured query parameters(amenity, street, city, county, state, postalcode, country)' +
  ' cannot be used together with \'q\' parameter."}}';
const BAD_LIMIT_JSON = '{"error":{"code":400,"message":"Parameter \'limit\' must be a number."}}';
const TWO_POLYGONS_JSON = '{"error":{"code":400,"message":"Too many polygon output options selected."}}';

const JSON_CT = 'application/json; charset=utf-8';
const XML_CT = 'text/xml; charset=utf-8';
const TEXT_CT = 'text/plain; charset=utf-8';

function ok(endpoint: NominatimEndpoint, query: string, header?: string): CanonicalRequest {
  const result = canonicaliseNominatim(endpoint, new URLSearchParams(query), header);
  if (!result.ok) throw new Error(`expected ${endpoint}?${query} to be valid, got ${result.error.status} ${result.error.body}`);
  return result.request;
}

function err(endpoint: NominatimEndpoint, query: string, header?: string): ErrorAnswer {
  const result = canonicaliseNominatim(endpoint, new URLSearchParams(query), header);
  if (result.ok) throw new Error(`expected ${endpoint}?${query} to be rejected, got ${result.request.upstreamQuery}`);
  return result.error;
}

const q = (endpoint: NominatimEndpoint, query: string, header?: string) => ok(endpoint, query, header).upstreamQuery;
const jsonError = (message: string) => ({ status: 400, contentType: JSON_CT, body: `{"error":{"code":400,"message":"${message}"}}` });
const xmlError = (message: string) => ({
  status: 400,
  contentType: XML_CT,
  body: MISSING_Q_XML.replace('Nothing to search for.', message),
});
const textError = (message: string) => ({ status: 400, contentType: TEXT_CT, body: `ERROR 400: ${message}` });

describe(canonicaliseNominatim.name, () => {
  describe('canonical form and key', () => {
    it('writes the defaults explicitly, sorted by name, and keys on the query', () => {
      const r = ok('search', 'q=Berlin');
      expect(r).toEqual({
        endpoint: 'search',
        upstreamPath: '/search',
        upstreamQuery: 'addressdetails=0&extratags=0&format=jsonv2&limit=10&namedetails=0&q=berlin',
        key: 'places:v1:search:addressdetails=0&extratags=0&format=jsonv2&limit=10&namedetails=0&q=berlin',
        format: 'jsonv2',
        cacheable: true,
        resultKind: 'list',
        contentType: JSON_CT,
      });
    });

    it('ignores the order of parameters', () => {
      expect(ok('search', 'format=json&q=Berlin&limit=5').key).toBe(ok('search', 'limit=5&q=Berlin&format=json').key);
    });

    it('hashes the key when it would exceed 200 characters, and only then', () => {
      const short = ok('search', `q=${'a'.repeat(100)}`);
      expect(short.key).toBe(`places:v1:search:${short.upstreamQuery}`);
      const long = ok('search', `q=${'a'.repeat(300)}`);
      expect(long.key).toMatch(/^places:v1:search:h:[A-Za-z0-9_-]{43}$/);
      expect(long.upstreamQuery).toContain(`q=${'a'.repeat(300)}`);
      expect(ok('search', `q=${'A'.repeat(300)}`).key).toBe(long.key);
      expect(ok('search', `q=${'a'.repeat(301)}`).key).not.toBe(long.key);
    });

    it('percent-encodes values with encodeURIComponent', () => {
      expect(q('search', 'q=Unter+den+Linden+1%2C+Berlin&format=json')).toBe(
        'addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=unter%20den%20linden%201%2C%20berlin',
      );
      expect(q('search', 'q=Zürich')).toContain('q=z%C3%BCrich');
    });

    it('drops unknown names, email and debug: never forwarded, never in the key', () => {
      const plain = ok('search', 'q=Berlin&format=json');
      const junk = ok('search', 'q=Berlin&format=json&email=me@example.com&debug=1&foo=bar&polygon=1&EMAIL=x&__proto__=1');
      expect(junk.key).toBe(plain.key);
      expect(junk.upstreamQuery).not.toMatch(/email|debug|foo|proto/);
    });

    it('matches names exactly as Nominatim spells them; other spellings are unknown names, dropped', () => {
      // Falcon's get_param is case-sensitive: Q, FORMAT, LAT and geopy's featuretype are not read.
      expect(err('search', 'Q=Berlin&format=json')).toEqual(jsonError('Nothing to search for.'));
      expect(ok('search', 'q=Berlin&FORMAT=xml').key).toBe(ok('search', 'q=Berlin').key);
      expect(ok('search', 'q=Berlin&FORMAT=xml').format).toBe('jsonv2');
      expect(err('reverse', 'LAT=52.5&lon=13.4&format=json')).toEqual(jsonError("Parameter 'lat' missing."));
      expect(q('search', 'q=Berlin&format=json&featuretype=country')).toBe(q('search', 'q=Berlin&format=json'));
      expect(q('search', 'q=Berlin&format=json&featureType=country')).toContain('featureType=country');
      expect(q('search', 'q=x&Accept-Language=de')).not.toContain('accept-language');
    });

    it('takes the last value of a repeated name (Falcon get_param)', () => {
      expect(ok('search', 'q=Paris&q=Berlin').key).toBe(ok('search', 'q=Berlin').key);
      expect(ok('search', 'q=Berlin&format=xml&format=json').format).toBe('json');
      expect(ok('search', 'q=Berlin&limit=abc&limit=5').upstreamQuery).toContain('limit=5');
    });
  });

  describe('free text', () => {
    it('shares one key across case, surrounding and inner whitespace', () => {
      const key = ok('search', 'q=San Francisco').key;
      expect(ok('search', 'q=%20%20san%20%20%20FRANCISCO%20').key).toBe(key);
      expect(ok('search', 'q=SAN\u00a0\u2003francisco').key).toBe(key);
    });

    it('keeps the Unicode form as sent: Nominatim reads a decomposed accent as no accent', () => {
      // Its ICU normalisation (settings/icu_tokenizer.yaml) deletes a combining mark (U+0308) but keeps the
      // composed letter: 'zu\u0308rich' becomes 'zurich', 'z\u00fcrich' stays 'z\u00fcrich', and
      // ICUToken.rematch ranks names by that normalised text. Composing it would ask another question.
      expect(ok('search', 'q=Zu\u0308rich').key).not.toBe(ok('search', 'q=Z\u00fcrich').key);
      expect(q('search', 'q=Zu\u0308rich')).toContain('q=zu%CC%88rich');
      expect(ok('search', 'city=ZU\u0308RICH').key).toBe(ok('search', 'city=zu\u0308rich').key);
      expect(ok('search', 'city=ZU\u0308RICH').key).not.toBe(ok('search', 'city=z\u00fcrich').key);
    });

    it('keeps a lone N/S/E/W beside numbers as written: Nominatim reads only upper case as a coordinate', () => {
      // helpers.COORD_REGEX: "N 52.5 E 13.4" is a coordinate search, "n 52.5 e 13.4" a text search.
      expect(q('search', 'q=N 52.5 E 13.4')).toContain('q=N%2052.5%20E%2013.4');
      expect(q('search', 'q=n 52.5 e 13.4')).toContain('q=n%2052.5%20e%2013.4');
      expect(ok('search', 'q=52.5n, 13.4e').key).not.toBe(ok('search', 'q=52.5N, 13.4E').key);
      expect(ok('search', 'q=52.5N,  13.4E').key).toBe(ok('search', 'q=52.5N, 13.4E').key);
      expect(q('search', 'q=New York 5th')).toContain('q=new%20york%205th');
      // Inside a word, or with an accent on it, a letter is no hemisphere: folded as the rest.
      expect(q('search', 'q=Rue N\u0303 5')).toContain(`q=${encodeURIComponent('rue n\u0303 5')}`);
      expect(q('search', 'q=5 Nord')).toContain('q=5%20nord');
    });

    it('keeps a [class=type] category as written: Nominatim takes it so (OSM tags are case-sensitive)', () => {
      expect(q('search', 'q=[Amenity=Restaurant] BERLIN')).toContain(`q=${encodeURIComponent('[Amenity=Restaurant] berlin')}`);
      expect(ok('search', 'q=[amenity=restaurant] Berlin').key).not.toBe(ok('search', 'q=[Amenity=Restaurant] Berlin').key);
      expect(ok('search', 'q=Pub [amenity=pub]').key).toBe(ok('search', 'q=PUB  [amenity=pub]').key);
      expect(q('search', 'q=[Not A Category] Berlin')).toContain(`q=${encodeURIComponent('[not a category] berlin')}`);
    });

    it('does not fold a Kelvin sign into a category: [\u212A=x] is text to Nominatim, [k=x] a category', () => {
      // U+212A lower-cases to an ASCII k; helpers.CATEGORY_REGEX is ASCII-only.
      expect(ok('search', `q=${encodeURIComponent('[\u212A=shop] Berlin')}`).key).not.toBe(ok('search', 'q=[k=shop] Berlin').key);
      expect(q('search', `q=${encodeURIComponent('[\u212A=Shop] BERLIN')}`)).toContain(`q=${encodeURIComponent('[\u212A=shop] berlin')}`);
    });

    it('normalises the structured fields and drops empty ones', () => {
      expect(q('search', 'city=Berlin&street=Unter%20den%20Linden&format=json&state=')).toBe(
        'addressdetails=0&city=berlin&extratags=0&format=json&limit=10&namedetails=0&street=unter%20den%20linden',
      );
    });
  });

  describe('defaults and clamping', () => {
    it('treats limit absent as limit=10 and clamps to 1..50 like Nominatim', () => {
      const key = ok('search', 'q=x').key;
      expect(ok('search', 'q=x&limit=10').key).toBe(key);
      expect(q('search', 'q=x&limit=0')).toContain('limit=1&');
      expect(q('search', 'q=x&limit=-7')).toContain('limit=1&');
      expect(ok('search', 'q=x&limit=50').key).toBe(ok('search', 'q=x&limit=51').key);
      expect(q('search', 'q=x&limit=99999999999999999999999999')).toContain('limit=50&');
    });

    it('parses limit like Python int(): whitespace, sign, underscores, any decimal digits', () => {
      expect(q('search', 'q=x&limit=%207%20')).toContain('limit=7&');
      expect(q('search', 'q=x&limit=%2B007')).toContain('limit=7&');
      expect(q('search', 'q=x&limit=1_2')).toContain('limit=12&');
      expect(q('search', 'q=x&limit=\u0663')).toContain('limit=3&');
      expect(q('search', 'q=x&limit=\uff11\uff15')).toContain('limit=15&');
    });

    it('uses the format defaults of each endpoint', () => {
      expect(ok('search', 'q=x').format).toBe('jsonv2');
      expect(ok('reverse', 'lat=1&lon=2').format).toBe('xml');
      expect(ok('lookup', 'osm_ids=N1').format).toBe('xml');
      expect(ok('status', '').format).toBe('text');
      expect(ok('details', 'place_id=1').format).toBe('json');
      expect(ok('search', 'q=x').key).toBe(ok('search', 'q=x&format=jsonv2').key);
      expect(ok('reverse', 'lat=1&lon=2').key).toBe(ok('reverse', 'lat=1&lon=2&format=xml').key);
    });

    it('defaults addressdetails to 0 for search and 1 for reverse and lookup', () => {
      expect(ok('search', 'q=x').key).toBe(ok('search', 'q=x&addressdetails=0').key);
      expect(ok('reverse', 'lat=1&lon=2').key).toBe(ok('reverse', 'lat=1&lon=2&addressdetails=1').key);
      expect(ok('lookup', 'osm_ids=N1').key).toBe(ok('lookup', 'osm_ids=N1&addressdetails=1').key);
    });

    it('reads booleans like get_bool: only 0 is false', () => {
      for (const v of ['1', 'true', 'false', 'no', '', 'yes']) {
        expect(q('search', `q=x&extratags=${v}`)).toContain('extratags=1');
      }
      expect(q('search', 'q=x&extratags=0')).toContain('extratags=0');
      // get_bool compares the value as sent: ' 0' is true in Nominatim.
      expect(q('search', 'q=x&extratags=%200%20')).toContain('extratags=1');
      expect(q('search', 'q=x&addressdetails=%200')).toContain('addressdetails=1');
      expect(ok('search', 'q=x&addressdetails=%200').key).not.toBe(ok('search', 'q=x&addressdetails=0').key);
    });

    it('keeps values as sent where Nominatim reads them so (format, featureType, json_callback, layer)', () => {
      expect(err('search', 'q=Berlin&format=%20json')).toEqual({
        status: 400,
        contentType: 'text/plain; charset=utf-8',
        body: "ERROR 400: Parameter 'format' must be one of: xml, geojson, geocodejson, json, jsonv2",
      });
      expect(q('search', 'q=x&featureType=%20city')).toContain('featureType=&');
      expect(err('search', 'q=x&format=json&json_callback=%20cb')).toEqual(jsonError('Invalid json_callback value'));
      // Python's int() and float() skip surrounding whitespace, so these still merge.
      expect(ok('search', 'q=x&limit=%205%20').key).toBe(ok('search', 'q=x&limit=5').key);
      expect(ok('reverse', 'lat=%2052.5&lon=13.4%20').key).toBe(ok('reverse', 'lat=52.5&lon=13.4').key);
    });

    it('omits other parameters at their default value', () => {
      const key = ok('search', 'q=x').key;
      expect(ok('search', 'q=x&dedupe=1&bounded=0&polygon_geojson=0&polygon_threshold=0.5&entrances=0').key).toBe(key);
      expect(q('search', 'q=x&dedupe=0&bounded=1&entrances=1')).toBe(
        'addressdetails=0&bounded=1&dedupe=0&entrances=1&extratags=0&format=jsonv2&limit=10&namedetails=0&q=x',
      );
    });
  });

  describe('accept-language', () => {
    it('comes from the parameter, else the header, as the list Locales.from_accept_languages reads; absent is omitted', () => {
      // Case is kept (names are looked up as name:<lang>); weights order the list; a region adds its language.
      expect(q('search', 'q=x&accept-language=%20en%3Bq%3D0.5,%20DE-de')).toContain('accept-language=DE-de%2CDE%2Cen&');
      expect(q('search', 'q=x', 'en-US,en;q=0.9')).toContain('accept-language=en-US%2Cen&');
      expect(q('search', 'q=x&accept-language=fr', 'en')).toContain('accept-language=fr&');
      expect(q('search', 'q=x')).not.toContain('accept-language');
    });

    it('merges only what Nominatim reads as the same list', () => {
      expect(ok('search', 'q=x&accept-language=de%20,%20en').key).toBe(ok('search', 'q=x&accept-language=de,en').key);
      expect(ok('search', 'q=x&accept-language=en;q=0.1,de').key).toBe(ok('search', 'q=x&accept-language=de,en').key);
      // 'd e' is no language at all there (nothing localised), 'DE' another name tag than 'de'.
      expect(ok('search', 'q=x&accept-language=d%20e').key).not.toBe(ok('search', 'q=x&accept-language=de').key);
      expect(q('search', 'q=x&accept-language=d%20e')).toContain('accept-language=d%20e&');
      expect(ok('search', 'q=x&accept-language=DE').key).not.toBe(ok('search', 'q=x&accept-language=de').key);
    });

    it('gives the header and the parameter one key', () => {
      expect(ok('search', 'q=x', 'en').key).toBe(ok('search', 'q=x&accept-language=en').key);
      expect(ok('search', 'q=x', 'en').key).not.toBe(ok('search', 'q=x').key);
    });

    it('reads a header with tabs around its commas (RFC 9110 OWS), as Nominatim\'s \\s does', () => {
      // Ignoring it gave the default-language answer, under the key of a request without the header.
      expect(q('search', 'q=x', 'de,\ten;q=0.5')).toContain('accept-language=de%2Cen&');
      expect(ok('search', 'q=x', 'de,\ten').key).toBe(ok('search', 'q=x', 'de, en').key);
    });

    it('keys a header with a tab that names no language as its parameter would be (import reads the key back)', () => {
      const key = ok('search', 'q=x', '*,\t*').key;
      const back = canonicaliseNominatim('search', new URLSearchParams(key.slice('places:v1:search:'.length)));
      expect(back.ok ? back.request.key : back.error.body).toBe(key);
    });

    it('falls back to the header when the parameter is empty, and ignores a broken header', () => {
      expect(q('search', 'q=x&accept-language=', 'de')).toContain('accept-language=de&');
      expect(q('search', 'q=x', 'de\u0000')).not.toContain('accept-language');
      expect(q('search', 'q=x', 'x'.repeat(5000))).not.toContain('accept-language');
    });
  });

  describe('Nominatim 400s', () => {
    it('answers a missing query in the requested format, byte for byte', () => {
      expect(err('search', 'format=json')).toEqual({ status: 400, contentType: JSON_CT, body: MISSING_Q_JSON });
      expect(err('search', 'format=xml')).toEqual({ status: 400, contentType: XML_CT, body: MISSING_Q_XML });
      expect(err('search', '')).toEqual({ status: 400, contentType: JSON_CT, body: MISSING_Q_JSON });
      expect(err('search', 'format=geojson&city=')).toEqual(jsonError('Nothing to search for.'));
      expect(err('search', 'q=%20%20&format=json')).toEqual(jsonError('Nothing to search for.'));
    });

    it('rejects q together with structured fields', () => {
      expect(err('search', 'q=Berlin&city=Berlin&format=json')).toEqual({
        status: 400,
        contentType: JSON_CT,
        body: Q_AND_STRUCTURED_JSON,
      });
      expect(err('search', 'q=Berlin&city=%20&format=json').body).toBe(Q_AND_STRUCTURED_JSON);
      expect(ok('search', 'q=Berlin&city=').key).toBe(ok('search', 'q=Berlin').key);
    });

    it('rejects numbers Nominatim cannot parse', () => {
      expect(err('search', 'q=Berlin&limit=abc&format=json')).toEqual({ status: 400, contentType: JSON_CT, body: BAD_LIMIT_JSON });
      expect(err('search', 'q=Berlin&limit=&format=json').body).toBe(BAD_LIMIT_JSON);
      expect(err('search', 'q=Berlin&limit=1.5&format=json').body).toBe(BAD_LIMIT_JSON);
      expect(err('search', 'q=Berlin&limit=1__0&format=json').body).toBe(BAD_LIMIT_JSON);
      expect(err('search', 'q=Berlin&limit=abc&format=xml')).toEqual(xmlError("Parameter 'limit' must be a number."));
      expect(err('search', 'q=x&polygon_threshold=abc')).toEqual(jsonError("Parameter 'polygon_threshold' must be a number."));
    });

    it('rejects more than one polygon output, except where the format ignores them', () => {
      expect(err('search', 'q=Berlin&polygon_geojson=1&polygon_kml=1&format=json')).toEqual({
        status: 400,
        contentType: JSON_CT,
        body: TWO_POLYGONS_JSON,
      });
      expect(err('search', 'q=x&polygon_svg=false&polygon_text=yes').body).toBe(TWO_POLYGONS_JSON);
      expect(q('search', 'q=x&format=geojson&polygon_geojson=1&polygon_kml=1')).toBe(
        'addressdetails=0&extratags=0&format=geojson&limit=10&namedetails=0&polygon_geojson=1&q=x',
      );
      expect(q('search', 'q=x&polygon_kml=1&polygon_geojson=0&polygon_threshold=0.01')).toContain(
        'polygon_kml=1&polygon_threshold=0.01&',
      );
    });

    it('answers an unknown format as plain text, listing the formats of the endpoint', () => {
      const placeFormats = "Parameter 'format' must be one of: xml, geojson, geocodejson, json, jsonv2";
      expect(err('search', 'q=x&format=html')).toEqual(textError(placeFormats));
      expect(err('search', 'q=x&format=JSON')).toEqual(textError(placeFormats));
      expect(err('search', 'q=x&format=')).toEqual(textError(placeFormats));
      expect(err('reverse', 'lat=1&lon=2&format=text')).toEqual(textError(placeFormats));
      expect(err('lookup', 'format=csv')).toEqual(textError(placeFormats));
      expect(err('status', 'format=xml')).toEqual(textError("Parameter 'format' must be one of: text, json"));
      expect(err('details', 'place_id=1&format=xml')).toEqual(textError("Parameter 'format' must be one of: json"));
    });

    it('checks in Nominatim order, so the same message wins', () => {
      expect(err('search', 'format=bad&limit=abc').body).toMatch(/^ERROR 400: Parameter 'format'/);
      expect(err('search', 'q=x&limit=abc&polygon_kml=1&polygon_svg=1').body).toBe(TWO_POLYGONS_JSON);
      expect(err('search', 'q=x&city=y&limit=abc').body).toBe(BAD_LIMIT_JSON);
      expect(err('search', 'exclude_place_ids=x&viewbox=1').body).toBe(
        jsonError("Parameter 'excluded' only takes place IDs.").body,
      );
      expect(err('search', 'viewbox=1').body).toBe(jsonError('Bounding box parameter needs 4 coordinates.').body);
      // core.py's search gives up on a blank q before SearchDetails reads the rest; search_address after.
      expect(err('search', 'q=%20&viewbox=1&exclude_place_ids=x').body).toBe(jsonError('Nothing to search for.').body);
      expect(err('search', 'city=%20&viewbox=1').body).toBe(jsonError('Bounding box parameter needs 4 coordinates.').body);
      expect(err('reverse', 'format=json')).toEqual(jsonError("Parameter 'lon' missing."));
    });

    it('validates viewbox like Bbox.from_param and writes it corner-independent', () => {
      expect(err('search', 'q=x&viewbox=1,2,3')).toEqual(jsonError('Bounding box parameter needs 4 coordinates.'));
      expect(err('search', 'q=x&viewbox=a,b,c,d')).toEqual(jsonError('Bounding box parameter needs to be numbers.'));
      expect(err('search', 'q=x&viewbox=inf,1,2,3')).toEqual(jsonError('Bounding box parameter needs to be numbers.'));
      expect(err('search', 'q=x&viewbox=1,2,1,3')).toEqual(jsonError('Bounding box with invalid parameters.'));
      expect(err('search', 'q=x&viewbox=181,0,200,1')).toEqual(jsonError('Bounding box with invalid parameters.'));
      const key = ok('search', 'q=x&viewbox=13.3,52.4,13.5,52.6').key;
      expect(ok('search', 'q=x&viewbox=13.5,52.6,13.3,52.4').key).toBe(key);
      expect(ok('search', 'q=x&viewbox=13.50,%2052.60,1_3.3,52.4').key).toBe(key);
      expect(ok('search', 'q=x&viewboxlbrt=13.3,52.4,13.5,52.6').key).toBe(key);
      expect(q('search', 'q=x&viewbox=-200,-100,200,100')).toContain('viewbox=-180%2C-90%2C180%2C90');
    });

    it('validates exclude_place_ids and sorts them', () => {
      expect(q('search', 'q=x&exclude_place_ids=3,%201,,2,01')).toContain('exclude_place_ids=1%2C2%2C3&');
      expect(err('search', 'q=x&exclude_place_ids=1,abc')).toEqual(jsonError("Parameter 'excluded' only takes place IDs."));
      expect(q('search', 'q=x&exclude_place_ids=w7,5')).toContain('exclude_place_ids=5%2CW7&');
      expect(ok('search', 'q=x&exclude_place_ids=,').key).toBe(ok('search', 'q=x').key);
    });

    it('answers an unknown layer with a 400 (Nominatim itself fails with 500)', () => {
      const message = "Parameter 'layer' must be a comma-separated list of: address, poi, railway, natural, manmade.";
      expect(err('search', 'q=x&layer=foo')).toEqual(jsonError(message));
      expect(err('reverse', 'lat=1&lon=2&layer=address,')).toEqual(xmlError(message));
      expect(q('search', 'q=x&layer=POI,address,poi')).toContain('layer=address%2Cpoi&');
      // get_layers does not strip the entries: ' address' is no layer there.
      expect(err('search', 'q=x&layer=poi,%20address')).toEqual(jsonError(message));
    });

    it('rejects an invalid json_callback, checked last and only for JSON output', () => {
      expect(err('search', 'q=x&format=json&json_callback=1cb')).toEqual(jsonError('Invalid json_callback value'));
      expect(err('search', 'q=x&json_callback=a..b')).toEqual(jsonError('Invalid json_callback value'));
      expect(err('search', 'q=x&json_callback=')).toEqual(jsonError('Invalid json_callback value'));
      expect(err('search', 'json_callback=1cb').body).toBe(MISSING_Q_JSON);
      const jsonp = ok('search', 'q=x&format=json&json_callback=my.cb_1');
      expect(jsonp.upstreamQuery).toContain('json_callback=my.cb_1');
      expect(jsonp.contentType).toBe('application/javascript; charset=utf-8');
      expect(jsonp.key).not.toBe(ok('search', 'q=x&format=json').key);
      expect(ok('search', 'q=x&format=xml&json_callback=1cb').key).toBe(ok('search', 'q=x&format=xml').key);
    });

    it('accepts a long json_callback: build_response checks only that each part is an identifier', () => {
      const long = `ns.${'cb'.repeat(200)}`;
      expect(ok('search', `q=x&format=json&json_callback=${long}`).jsonCallback).toBe(long);
    });
  });

  describe('Nominatim leniencies', () => {
    it('lets an empty q through (Nominatim answers []) without validating the details', () => {
      expect(q('search', 'q=&format=json')).toBe('addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=');
      expect(q('search', 'q=&viewbox=junk')).toContain('viewbox=junk');
    });

    it('passes details on unvalidated for a bare coordinate q (Nominatim answers it by reverse)', () => {
      expect(q('search', 'q=52.5,13.4&viewbox=junk')).toContain('q=52.5%2C13.4&viewbox=junk');
      expect(err('search', 'q=berlin 52.5,13.4&viewbox=junk')).toEqual(jsonError('Bounding box parameter needs 4 coordinates.'));
    });

    it('keeps out-of-range coordinates valid (Nominatim answers 200 "Unable to geocode")', () => {
      expect(q('reverse', 'lat=200&lon=0&format=json')).toBe(
        'addressdetails=1&extratags=0&format=json&lat=200&lon=0&namedetails=0&zoom=18',
      );
    });

    it('keeps /lookup without ids valid (Nominatim answers [])', () => {
      expect(q('lookup', 'format=json')).toBe('addressdetails=1&extratags=0&format=json&namedetails=0');
      expect(q('lookup', 'osm_ids=x1,N,%20&format=json')).toBe('addressdetails=1&extratags=0&format=json&namedetails=0');
    });

    it('keeps country codes of two characters only, lower-cased, sorted', () => {
      expect(q('search', 'q=x&countrycodes=FR,de,%20DE,xyz,d')).toContain('countrycodes=de%2Cfr&');
      // format_country does not strip: ' it' has three characters and is ignored.
      expect(ok('search', 'q=x&countrycodes=%20it').key).toBe(ok('search', 'q=x').key);
      expect(ok('search', 'q=x&countrycodes=xyz').key).toBe(ok('search', 'q=x').key);
    });

    it('treats featureType case-sensitively: every unknown value behaves like an empty one', () => {
      expect(q('search', 'q=x&featureType=city&layer=poi')).toContain('featureType=city&');
      expect(q('search', 'q=x&featureType=city&layer=poi')).not.toContain('layer');
      expect(ok('search', 'q=x&featureType=City').key).toBe(ok('search', 'q=x&featureType=').key);
      expect(ok('search', 'q=x&featureType=foo').key).toBe(ok('search', 'q=x&featureType=').key);
      expect(ok('search', 'q=x&featureType=foo').key).not.toBe(ok('search', 'q=x').key);
    });
  });

  describe('/reverse', () => {
    it('canonicalises coordinates and zoom', () => {
      const key = ok('reverse', 'lat=52.5163&lon=13.3777&format=json').key;
      expect(ok('reverse', 'lon=13.37770&lat=%2052.51630&format=json&zoom=18').key).toBe(key);
      expect(q('reverse', 'lat=-0&lon=1e1&zoom=25')).toBe('addressdetails=1&extratags=0&format=xml&lat=0&lon=10&namedetails=0&zoom=18');
      expect(q('reverse', 'lat=1&lon=2&zoom=-3')).toContain('zoom=0');
    });

    it('answers missing or non-numeric coordinates like Nominatim, lon first', () => {
      expect(err('reverse', '')).toEqual(xmlError("Parameter 'lon' missing."));
      expect(err('reverse', 'lon=1&format=json')).toEqual(jsonError("Parameter 'lat' missing."));
      expect(err('reverse', 'lat=abc&lon=1&format=jsonv2')).toEqual(jsonError("Parameter 'lat' must be a number."));
      expect(err('reverse', 'lat=nan&lon=1&format=json')).toEqual(jsonError("Parameter 'lat' must be a number."));
      expect(err('reverse', 'lat=1e999&lon=1&format=json')).toEqual(jsonError("Parameter 'lat' must be a number."));
      expect(err('reverse', 'lat=1&lon=2&zoom=1.5&format=json')).toEqual(jsonError("Parameter 'zoom' must be a number."));
      expect(err('reverse', 'lat=1&lon=2&polygon_svg=1&polygon_text=1&format=json').body).toBe(TWO_POLYGONS_JSON);
    });
  });

  describe('/lookup', () => {
    it('parses osm_ids like Nominatim, keeping duplicates and the order asked (one answer per id, in that order)', () => {
      expect(q('lookup', 'osm_ids=w200,%20n2,N02,x1,R,N&format=json')).toBe(
        'addressdetails=1&extratags=0&format=json&namedetails=0&osm_ids=W200%2CN2%2CN2',
      );
      expect(ok('lookup', 'osm_ids=N2,N2').key).not.toBe(ok('lookup', 'osm_ids=N2').key);
      expect(ok('lookup', 'osm_ids=N2,N3,n2').upstreamQuery).toContain('osm_ids=N2%2CN3%2CN2');
      expect(ok('lookup', 'osm_ids=W200,N2').key).not.toBe(ok('lookup', 'osm_ids=N2,W200').key);
      expect(ok('lookup', 'osm_ids=n2, W200').key).toBe(ok('lookup', 'osm_ids=N2,w200').key);
    });

    it('rejects more than 50 ids, duplicates counted', () => {
      const ids = (n: number) => Array.from({ length: n }, () => 'N1').join(',');
      expect(ok('lookup', `osm_ids=${ids(50)}`).upstreamQuery).toContain('osm_ids=N1');
      expect(err('lookup', `osm_ids=${ids(51)}&format=json`)).toEqual(jsonError('Too many object IDs.'));
    });
  });

  describe('/status and /details', () => {
    it('keys /status on its format only', () => {
      const r = ok('status', 'foo=1');
      expect(r).toMatchObject({ upstreamPath: '/status', upstreamQuery: 'format=text', contentType: TEXT_CT, cacheable: true });
      expect(q('status', 'format=json&json_callback=cb')).toBe('format=json&json_callback=cb');
      expect(q('status', 'format=text&json_callback=cb')).toBe('format=text');
    });

    it('passes /details through uncached, checking the ids like Nominatim', () => {
      expect(ok('details', 'place_id=0123&debug=1&linkedplaces=0')).toMatchObject({
        upstreamPath: '/details',
        upstreamQuery: 'format=json&linkedplaces=0&place_id=123',
        cacheable: false,
        resultKind: 'single',
      });
      expect(q('details', 'osmtype=W&osmid=200&class=highway')).toBe('class=highway&format=json&osmid=200&osmtype=W');
      expect(err('details', '')).toEqual(jsonError("Missing ID parameter 'place_id' or 'osmtype'."));
      expect(err('details', 'place_id=0&osmtype=N')).toEqual(jsonError("Parameter 'osmid' missing."));
      expect(err('details', 'osmtype=N&osmid=x')).toEqual(jsonError("Parameter 'osmid' must be a number."));
      // Nominatim answers these with a 500 (its OsmID raises ValueError): they are not sent to it.
      expect(err('details', 'osmtype=X&osmid=1')).toEqual(jsonError("Illegal OSM type 'X'. Must be one of N, W, R."));
      expect(err('details', 'osmtype=n&osmid=1')).toEqual(jsonError("Illegal OSM type 'n'. Must be one of N, W, R."));
      expect(err('details', 'osmtype=&osmid=1')).toEqual(jsonError("Illegal OSM type ''. Must be one of N, W, R."));
      expect(JSON.parse(err('details', 'osmtype=%22%5C&osmid=1').body as string)).toEqual({
        error: { code: 400, message: `Illegal OSM type '"\\'. Must be one of N, W, R.` },
      });
      expect(err('details', 'place_id=abc')).toEqual(jsonError("Parameter 'place_id' must be a number."));
    });
  });

  describe('hostile input', () => {
    it(`rejects more than ${MAX_PARAMS} parameters`, () => {
      const many = Array.from({ length: MAX_PARAMS + 1 }, (_, i) => `x${i}=1`).join('&');
      expect(err('search', `q=x&${many}`)).toEqual(jsonError('Too many parameters.'));
      expect(err('search', `format=xml&${many}`)).toEqual(xmlError('Too many parameters.'));
      expect(ok('search', `q=x&${many.split('&').slice(0, MAX_PARAMS - 1).join('&')}`).upstreamQuery).toContain('q=x');
    });

    it('rejects control characters, U+FFFD and lone surrogates in kept values', () => {
      expect(err('search', 'q=a%00b')).toEqual(jsonError("Parameter 'q' contains invalid characters."));
      expect(err('search', 'q=a%0Ab&format=xml')).toEqual(xmlError("Parameter 'q' contains invalid characters."));
      expect(err('search', 'q=a%FFb')).toEqual(jsonError("Parameter 'q' contains invalid characters."));
      const loneSurrogate = new URLSearchParams([['q', 'a\ud800b']]);
      const result = canonicaliseNominatim('search', loneSurrogate);
      expect(result).toEqual({ ok: false, error: jsonError("Parameter 'q' contains invalid characters.") });
      expect(ok('search', 'q=x&junk=%00%FF').key).toBe(ok('search', 'q=x').key);
    });

    it('caps value lengths', () => {
      expect(ok('search', `q=${'a'.repeat(512)}`).upstreamQuery).toContain('a'.repeat(512));
      expect(ok('search', `q=${'\u{1F600}'.repeat(512)}`).upstreamQuery).toContain('q=%F0%9F%98%80');
      expect(err('search', `q=${'a'.repeat(513)}`)).toEqual(jsonError("Parameter 'q' is too long."));
      expect(err('search', `city=${'a'.repeat(513)}`)).toEqual(jsonError("Parameter 'city' is too long."));
      expect(err('search', `q=x&exclude_place_ids=${'1,'.repeat(2100)}`)).toEqual(
        jsonError("Parameter 'exclude_place_ids' is too long."),
      );
    });

    it('never throws on random input, and what it accepts is a fixed point', () => {
      let seed = 42;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
      const names = [
        'q', 'Q', 'city', 'street', 'format', 'limit', 'viewbox', 'viewboxlbrt', 'exclude_place_ids', 'countrycodes',
        'layer', 'featureType', 'polygon_geojson', 'polygon_kml', 'polygon_threshold', 'lat', 'lon', 'zoom', 'osm_ids',
        'place_id', 'osmtype', 'osmid', 'json_callback', 'accept-language', 'addressdetails', 'dedupe', 'email', 'junk',
      ];
      const pieces = [
        '', ' ', '0', '1', '-', '+', '.', ',', '_', 'e', 'N', 'w', 'inf', 'nan', '9'.repeat(30), '1e400', '52.5',
        'json', 'xml', 'geojson', 'text', 'poi', 'city', 'Berlin', 'ü', 'u\u0308', '\u0000', '\u001f', '\ufffd',
        '\ud800', '\udc00', '\u{1F600}', '\u00a0', '°', '[', ']', '=', '&', '%', 'İ', '\u0663', 'cb', '1cb',
      ];
      const formats = ['json', 'jsonv2', 'xml', 'geojson', 'geocodejson', 'text'];
      const endpoints: NominatimEndpoint[] = ['search', 'reverse', 'lookup', 'status', 'details'];
      let accepted = 0;
      for (let i = 0; i < 3000; i++) {
        const params = new URLSearchParams();
        const count = Math.floor(random() * 8);
        for (let j = 0; j < count; j++) {
          let value = '';
          const len = Math.floor(random() * 5);
          for (let k = 0; k < len; k++) value += pick(pieces);
          params.append(pick(names), value);
        }
        if (random() < 0.5) params.append('format', pick(formats));
        const endpoint = pick(endpoints);
        const header = random() < 0.3 ? pick(pieces) + pick(pieces) : undefined;
        const result = canonicaliseNominatim(endpoint, params, header);
        if (result.ok) {
          accepted++;
          const r = result.request;
          expect(r.key.length).toBeLessThanOrEqual(200);
          expect(r.key.startsWith(`places:v1:${endpoint}:`)).toBe(true);
          expect(r.upstreamQuery).not.toMatch(/(^|&)(email|junk|debug)=/);
          const again = canonicaliseNominatim(endpoint, new URLSearchParams(r.upstreamQuery));
          expect(again.ok && again.request.key).toBe(r.key);
        } else {
          expect([400, 404]).toContain(result.error.status);
          expect([JSON_CT, XML_CT, TEXT_CT]).toContain(result.error.contentType);
          expect(result.error.body.length).toBeGreaterThan(0);
        }
      }
      expect(accepted).toBeGreaterThan(100);
    });
  });
});

describe(canonicaliseApi.name, () => {
  const nestError = (message: string) => ({
    ok: false,
    error: { status: 400, contentType: JSON_CT, body: JSON.stringify({ statusCode: 400, error: 'Bad Request', message }) },
  });

  it('maps a valid q to exactly the /search?format=json request', () => {
    const api = canonicaliseApi(new URLSearchParams('q=San%20Francisco'));
    expect(api).toEqual(canonicaliseNominatim('search', new URLSearchParams('q=San%20Francisco&format=json')));
    expect(api.ok && api.request.key).toBe(
      'places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=san%20francisco',
    );
    expect(canonicaliseApi(new URLSearchParams('q=%20SAN%20%20francisco'), 'de')).toEqual(
      canonicaliseNominatim('search', new URLSearchParams('format=json&q=san+francisco'), 'de'),
    );
  });

  it('ignores the other parameters of /api', () => {
    expect(canonicaliseApi(new URLSearchParams('q=Berlin&format=xml&limit=3&city=x'))).toEqual(
      canonicaliseApi(new URLSearchParams('q=Berlin')),
    );
  });

  it('answers a missing, blank, too long or broken q with a Nest-shaped 400', () => {
    expect(canonicaliseApi(new URLSearchParams(''))).toEqual(nestError('q is required'));
    expect(canonicaliseApi(new URLSearchParams('q=%20%20'))).toEqual(nestError('q must not be blank'));
    expect(canonicaliseApi(new URLSearchParams(`q=${'a'.repeat(513)}`))).toEqual(
      nestError('q must be at most 512 characters long'),
    );
    expect(canonicaliseApi(new URLSearchParams(`q=%20${'a'.repeat(512)}%20`)).ok).toBe(true);
    expect(canonicaliseApi(new URLSearchParams('q=a%07'))).toEqual(nestError('q contains invalid characters'));
  });
});

describe(normaliseText.name, () => {
  it('trims, collapses whitespace and lower-cases, in the Unicode form sent', () => {
    expect(normaliseText('  San \t  FRANCISCO\n')).toBe('san francisco');
    expect(normaliseText('ZU\u0308RICH')).toBe('zu\u0308rich');
    expect(normaliseText('Z\u00dcRICH')).toBe('z\u00fcrich');
    expect(normaliseText('\u3000東京\u3000')).toBe('東京');
    expect(normaliseText('')).toBe('');
  });

  it('takes whitespace as Python does: U+FEFF is none (Nominatim deletes it inside a word)', () => {
    expect(normaliseText('\ufeffBer\ufefflin\ufeff')).toBe('\ufeffber\ufefflin\ufeff');
    expect(normaliseText('\u00a0Ber\u2003\u2003lin\u3000')).toBe('ber lin');
    // Not blank to Nominatim either: searched, not "Nothing to search for."
    expect(q('search', 'q=%EF%BB%BF&format=json')).toContain('q=%EF%BB%BF');
  });

  it('is idempotent', () => {
    for (const s of ['İstanbul', 'ΣΊΣΥΦΟΣ', 'A\u030a\u0301', 'ǅ', '  x  y ', '\ufeff x']) {
      expect(normaliseText(normaliseText(s))).toBe(normaliseText(s));
    }
  });
});
