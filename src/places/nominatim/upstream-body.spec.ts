import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicaliseNominatim, NominatimEndpoint } from './nominatim-request';
import { upstreamBodyProblem, upstreamErrorProblem } from './upstream-body';

const fixture = (name: string) => readFileSync(join(__dirname, '..', '..', '..', 'test', 'fixtures', 'nominatim', name));
const CT_JSON = 'application/json; charset=utf-8';
const CT_XML = 'text/xml; charset=utf-8';
const CT_TEXT = 'text/plain; charset=utf-8';
const CT_JSONP = 'application/javascript; charset=utf-8';

/** The request as the gateway canonicalises it, so the expectations are the ones the client uses. */
function request(endpoint: NominatimEndpoint, query: string) {
  const c = canonicaliseNominatim(endpoint, new URLSearchParams(query));
  if (!c.ok) throw new Error(`not a valid request: ${c.error.body}`);
  return c.request;
}

describe('upstreamBodyProblem', () => {
  it.each([
    ['search', 'q=Berlin&format=json', CT_JSON, 'search-q-json.json'],
    ['search', 'q=Berlin&format=jsonv2', CT_JSON, 'search-q-jsonv2-addressdetails.json'],
    ['search', 'q=Berlin&format=geojson', CT_JSON, 'search-q-geojson.json'],
    ['search', 'q=Berlin&format=geocodejson', CT_JSON, 'search-q-geocodejson.json'],
    ['search', 'q=Berlin&format=xml', CT_XML, 'search-q-xml.xml'],
    ['search', 'q=Atlantis&format=json', CT_JSON, 'search-noresult-json.json'],
    ['reverse', 'lat=52.5163&lon=13.3777&format=json', CT_JSON, 'reverse-json.json'],
    ['reverse', 'lat=-70&lon=0&format=json', CT_JSON, 'reverse-nomatch-json.json'],
    ['reverse', 'lat=52.5163&lon=13.3777&format=xml', CT_XML, 'reverse-xml.xml'],
    ['lookup', 'osm_ids=N2,W200&format=json', CT_JSON, 'lookup-json.json'],
    ['lookup', 'osm_ids=N2,W200&format=xml', CT_XML, 'search-q-xml.xml'],
    ['status', '', CT_TEXT, 'status-text.txt'],
    ['status', 'format=json', CT_JSON, 'status-json.json'],
  ] as const)('accepts the recorded 200 of %s?%s', (endpoint, query, contentType, file) => {
    expect(upstreamBodyProblem(request(endpoint, query), contentType, fixture(file))).toBeNull();
  });

  it('accepts JSONP around JSON, as Nominatim sends it for json_callback', () => {
    const req = request('search', 'q=Berlin&format=json&json_callback=my.cb_1');
    expect(req.contentType).toBe(CT_JSONP);
    expect(upstreamBodyProblem(req, CT_JSONP, Buffer.from(`my.cb_1(${fixture('search-q-json.json').toString()})`))).toBeNull();
    expect(upstreamBodyProblem(req, CT_JSONP, Buffer.from('my.cb_1([{"place_id":1}'))).toBe('JSONP that is not a call of json_callback');
    expect(upstreamBodyProblem(req, CT_JSONP, Buffer.from('my.cb_1([{"place_id":1})'))).toBe('invalid JSON (24 bytes)');
    expect(upstreamBodyProblem(req, CT_JSON, fixture('search-q-json.json'))).toBe(
      'Content-Type application/json where application/javascript was expected',
    );
  });

  // Python's str.isidentifier() allows these (connector punctuation, a combining mark, U+00B7 in
  // XID_Continue); Nominatim calls them as sent.
  it.each(['a\u203Fb', 'a\u0301', 'a\u00B7b', 'ns.a\u203Fb'])('accepts JSONP calling the callback %s that the request asked for', (callback) => {
    const req = request('search', `q=Berlin&format=json&json_callback=${encodeURIComponent(callback)}`);
    expect(req).toMatchObject({ contentType: CT_JSONP, jsonCallback: callback });
    expect(upstreamBodyProblem(req, CT_JSONP, Buffer.from(`${callback}(${fixture('search-q-json.json').toString()})`))).toBeNull();
  });

  const NOT_A_CALL = 'JSONP that is not a call of json_callback';
  it.each([
    ['another callback', 'b\u203Fa([])', NOT_A_CALL],
    ['the callback as a prefix of another', 'a\u203Fbc([])', NOT_A_CALL],
    ['a space before the call', ' a\u203Fb([])', NOT_A_CALL],
    ['the call not closed', 'a\u203Fb([]', NOT_A_CALL],
    ['the callback alone', 'a\u203Fb', NOT_A_CALL],
    ['JSON without the call', '[]', NOT_A_CALL],
    ['nothing inside the call', 'a\u203Fb()', 'invalid JSON (7 bytes)'],
    ['text that is not JSON inside the call', 'a\u203Fb(alert(1))', 'invalid JSON (15 bytes)'],
  ])('refuses JSONP with %s', (_what, body, problem) => {
    const req = request('search', `q=Berlin&format=json&json_callback=${encodeURIComponent('a\u203Fb')}`);
    expect(upstreamBodyProblem(req, CT_JSONP, Buffer.from(body))).toBe(problem);
  });

  it('expects no callback where Nominatim writes none (not JSON)', () => {
    expect(request('search', 'q=Berlin&format=xml&json_callback=cb').jsonCallback).toBeUndefined();
  });

  it('matches the media type without regard to case or parameters', () => {
    expect(upstreamBodyProblem(request('search', 'q=x&format=json'), 'Application/JSON', Buffer.from('[]'))).toBeNull();
  });

  const json = request('search', 'q=Berlin&format=json');
  const xml = request('search', 'q=Berlin&format=xml');
  it.each([
    ['an HTML page with a 200', json, 'text/html; charset=utf-8', '<html><body>Service temporarily unavailable</body></html>', 'Content-Type text/html where application/json was expected'],
    ['no Content-Type', json, '', '[]', 'Content-Type (none) where application/json was expected'],
    ['truncated JSON', json, CT_JSON, fixture('search-q-json.json').subarray(0, 200).toString(), 'invalid JSON (200 bytes)'],
    ['an empty body', json, CT_JSON, '', 'empty body'],
    ['an object where a list is due', json, CT_JSON, '{"error":"overloaded"}', 'JSON that is not an array'],
    ['a list where one place is due', request('reverse', 'lat=1&lon=2&format=json'), CT_JSON, '[]', 'JSON that is not an object'],
    ['a string where GeoJSON is due', request('search', 'q=x&format=geojson'), CT_JSON, '"ok"', 'JSON that is not an object'],
    ['JSON where XML is due', xml, CT_XML, '[]', 'malformed XML (text outside the root element at character 0)'],
    ['malformed XML', xml, CT_XML, '<searchresults><place></searchresults>', 'malformed XML (</searchresults> closes <place> at character 22)'],
    ['truncated XML', xml, CT_XML, fixture('search-q-xml.xml').subarray(0, 500).toString(), 'malformed XML (unterminated'],
    ['XML as HTML', xml, 'text/html', fixture('search-q-xml.xml').toString(), 'Content-Type text/html where text/xml was expected'],
    ['a portal\'s XHTML page as XML', xml, CT_XML, '<?xml version="1.0"?><html><body>Log in</body></html>', 'XML whose root element is <html>'],
    ['an object store\'s error as XML', xml, CT_XML, '<Error><Code>AccessDenied</Code></Error>', 'XML whose root element is <Error>'],
    ['the text status as HTML', request('status', ''), 'text/html', 'OK', 'Content-Type text/html where text/plain was expected'],
    ['a truncated text status', request('status', ''), CT_TEXT, 'O', 'a text status other than OK'],
    ['an empty text status', request('status', 'format=text'), CT_TEXT, '', 'a text status other than OK'],
    ['the text status with a newline', request('status', ''), CT_TEXT, 'OK\n', 'a text status other than OK'],
    ['an error as a 200 text status', request('status', ''), CT_TEXT, 'ERROR: Database connection failed', 'a text status other than OK'],
  ])('refuses %s', (_what, req, contentType, body, problem) => {
    expect(upstreamBodyProblem(req, contentType, Buffer.from(body))).toContain(problem);
  });

  it.each([
    ['a start tag with a 1.5 MB name', xml, CT_XML, `<${'a'.repeat(1_500_000)}`],
    ['a 1.5 MB attribute name', xml, CT_XML, `<searchresults ${'a'.repeat(1_500_000)}`],
    ['an end tag with a 1.5 MB name', xml, CT_XML, `<searchresults></${'a'.repeat(1_500_000)}>`],
    ['a well-formed root with a 1.5 MB name', xml, CT_XML, `<${'a'.repeat(1_500_000)}/>`],
    ['a 1.5 MB undefined entity', xml, CT_XML, `<searchresults>&${'a'.repeat(1_500_000)};</searchresults>`],
    ['1.5 MB of text', json, CT_JSON, `[${'a'.repeat(1_500_000)}`],
    ['a 10 kB Content-Type', json, `application/${'x'.repeat(10_000)}`, '[]'],
    ['a Content-Type that is not a media type', json, 'Musterstraße 12', '[]'],
  ])('keeps the problem short for %s', (_what, req, contentType, body) => {
    const problem = upstreamBodyProblem(req, contentType, Buffer.from(body));
    expect(problem).not.toBeNull();
    expect(problem?.length).toBeLessThan(200);
    expect(problem).not.toContain('a'.repeat(33));
    expect(problem).not.toContain('xxx');
    expect(problem).not.toContain('Muster');
  });

  it('names no part of the body (the problem is logged and sent to clients)', () => {
    const secret = 'Musterstraße 12, 10117 Berlin';
    const problem = upstreamBodyProblem(json, CT_JSON, Buffer.from(`[{"display_name":"${secret}"`));
    expect(problem).not.toBeNull();
    expect(problem).not.toContain('Muster');
  });
});

describe('upstreamErrorProblem', () => {
  it.each([
    ['search', 'q=x&format=json', CT_JSON, 'search-missing-q-json.json'],
    ['search', 'q=x&format=jsonv2', CT_JSON, 'search-q-and-structured-json.json'],
    ['search', 'q=x&format=geojson', CT_JSON, 'search-bad-limit-json.json'],
    ['search', 'q=x&format=xml', CT_XML, 'search-missing-q-xml.xml'],
  ] as const)("accepts Nominatim's recorded 400 for %s?%s", (endpoint, query, contentType, file) => {
    expect(upstreamErrorProblem(request(endpoint, query), 400, contentType, fixture(file))).toBeNull();
  });

  // Nominatim 5.1 (server/asgi_adaptor.py raise_error, v1/format.py _format_error): an error raised before
  // parse_format knows the format is text/plain, `ERROR <status>: <message>`, whatever the format asked for.
  it.each([
    ['search', 'q=x&format=json'],
    ['search', 'q=x&format=jsonv2'],
    ['search', 'q=x&format=geojson'],
    ['search', 'q=x&format=geocodejson'],
    ['reverse', 'lat=1&lon=2&format=xml'],
    ['status', 'format=text'],
    ['status', 'format=json'],
    ['details', 'osmtype=N&osmid=1'],
  ] as const)("accepts Nominatim's text error for %s?%s", (endpoint, query) => {
    const body = Buffer.from("ERROR 400: Parameter 'format' must be one of: xml, json, jsonv2, geojson, geocodejson");
    expect(upstreamErrorProblem(request(endpoint, query), 400, CT_TEXT, body)).toBeNull();
  });

  it("accepts /details' 404 and /status's JSON error, as Nominatim writes them", () => {
    expect(upstreamErrorProblem(request('details', 'osmtype=N&osmid=1'), 404, CT_JSON, Buffer.from('{"error":{"code":404,"message":"No place with that OSM ID found."}}'))).toBeNull();
    expect(upstreamErrorProblem(request('status', 'format=json'), 400, CT_JSON, Buffer.from('{"error":{"code":400,"message":"x"}}'))).toBeNull();
  });

  it.each([
    ["a proxy's plain 404 (Go's)", 'search', 'q=x&format=json', 404, '404 page not found\n'],
    ["a framework's route 404 (a wrong path in NOMINATIM_URL)", 'reverse', 'lat=1&lon=2&format=xml', 404, 'Not Found'],
    ["a proxy's plain 404 for the text status", 'status', 'format=text', 404, '404 page not found\n'],
    ['an empty text body', 'search', 'q=x&format=geojson', 400, ''],
    ["Nominatim's text of another status", 'search', 'q=x&format=json', 404, 'ERROR 400: Nothing to search for.'],
  ] as const)('rejects %s', (_what, endpoint, query, status, body) => {
    expect(upstreamErrorProblem(request(endpoint, query), status, CT_TEXT, Buffer.from(body))).toBe(`a ${status} whose text is not Nominatim's error`);
  });

  it("accepts Nominatim's unescaped messages (only how the body begins is checked)", () => {
    expect(upstreamErrorProblem(request('search', 'q=x&format=json'), 400, CT_JSON, Buffer.from('{"error":{"code":400,"message":"Bad "value""}}'))).toBeNull();
    expect(upstreamErrorProblem(request('search', 'q=x&format=xml'), 400, CT_XML, Buffer.from('<?xml version="1.0" encoding="UTF-8" ?>\n <error><message>a & b</message></error>'))).toBeNull();
  });

  it.each([
    ['an HTML 404 (a wrong path in NOMINATIM_URL)', 'q=x&format=json', 404, 'text/html; charset=iso-8859-1', '<html><body>Not Found</body></html>', 'a 404 with Content-Type text/html where Nominatim\'s errors are application/json or text/plain'],
    ["a proxy's HTML 407", 'q=x&format=xml', 407, 'text/html', '<html/>', 'a 407 with Content-Type text/html where Nominatim\'s errors are text/xml or text/plain'],
    ['no Content-Type', 'q=x&format=json', 404, '', '', 'a 404 with Content-Type (none)'],
    ["an API gateway's JSON", 'q=x&format=jsonv2', 404, CT_JSON, '{"message":"no Route matched"}', "a 404 whose JSON is not Nominatim's error"],
    ['an empty JSON body', 'q=x&format=json', 404, CT_JSON, '', "a 404 whose JSON is not Nominatim's error"],
    ["an object store's XML", 'q=x&format=xml', 404, CT_XML, '<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>', "a 404 whose XML is not Nominatim's error"],
  ])('rejects %s', (_what, query, status, contentType, body, problem) => {
    expect(upstreamErrorProblem(request('search', query), status, contentType, Buffer.from(body))).toContain(problem);
  });
});
