import { CanonicalRequest } from './nominatim-request';
import { shortName, xmlRoot } from './xml-well-formed';

/** What a 200 from Nominatim must be, for the request that asked for it. */
type Expectation = Pick<CanonicalRequest, 'format' | 'contentType' | 'resultKind' | 'jsonCallback'>;

const MEDIA_TYPE_BY_FORMAT: Record<CanonicalRequest['format'], string> = {
  json: 'application/json',
  jsonv2: 'application/json',
  geojson: 'application/json',
  geocodejson: 'application/json',
  xml: 'text/xml',
  text: 'text/plain',
};

const STATUS_OK = Buffer.from('OK');

/**
 * The root elements of Nominatim's XML answers: `searchresults` (search, and lookup as Nominatim 5
 * answers it), `reversegeocode`, and `lookupresults` (lookup in the PHP versions). A well-formed
 * document with any other root (a portal's XHTML page, an object store's <Error>) is not an answer.
 */
const XML_ROOTS: ReadonlySet<string> = new Set(['searchresults', 'reversegeocode', 'lookupresults']);

/** type/subtype (RFC 9110 tokens), short enough to quote in a problem; anything else is not quoted. */
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9a-z-]{1,40}\/[!#$%&'*+.^_`|~0-9a-z-]{1,40}$/;

/**
 * Why a 200 answer from Nominatim is not what the request asked for, or null when it is: the
 * Content-Type Nominatim sends for that format, and a body of that format (JSON that parses, with
 * the top level the endpoint answers with; well-formed XML with one of Nominatim's root elements; a call of the json_callback asked for,
 * around JSON; exactly `OK` for the text status). A proxy's HTML error page, a truncated body or a
 * captive portal's answer must never be cached under the question's key.
 * The problem is short and quotes no more of the answer than a media type or an XML name cut short:
 * it is logged and sent to the client.
 */
export function upstreamBodyProblem(req: Expectation, contentType: string, body: Buffer): string | null {
  const jsonp = req.contentType !== undefined && mediaType(req.contentType) === 'application/javascript';
  const expected = jsonp ? 'application/javascript' : MEDIA_TYPE_BY_FORMAT[req.format];
  const got = mediaType(contentType);
  if (got !== expected) return `Content-Type ${quotable(got)} where ${expected} was expected`;

  // Only /status answers text: 'OK' with a 200 (its 'ERROR: …' comes with a 500, which is not checked).
  if (req.format === 'text') return body.equals(STATUS_OK) ? null : 'a text status other than OK';
  const text = body.toString('utf8');
  if (req.format === 'xml') {
    const xml = xmlRoot(text);
    if ('problem' in xml) return `malformed XML (${xml.problem})`;
    return XML_ROOTS.has(xml.root) ? null : `XML whose root element is <${shortName(xml.root)}>`;
  }
  let json = text;
  if (jsonp) {
    const argument = jsonpArgument(text, req.jsonCallback);
    if (argument === undefined) return 'JSONP that is not a call of json_callback';
    json = argument;
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return body.length === 0 ? 'empty body' : `invalid JSON (${body.length} bytes)`;
  }
  const shape = expectedShape(req);
  if (shape === 'array' && !Array.isArray(value)) return 'JSON that is not an array';
  if (shape === 'object' && (value === null || typeof value !== 'object' || Array.isArray(value))) return 'JSON that is not an object';
  return null;
}

/** How Nominatim's own errors begin (v1/format.py error_format_func; the PHP versions' templates alike). */
const JSON_ERROR = /^\s*\{\s*"error"\s*:/;
const XML_ERROR = /^\s*(?:<\?xml[^>]*\?>\s*)?<error[\s>]/;

/**
 * Why a 4xx (one Nominatim may send: not 429 nor 403, see upstream-verdict.ts) is not Nominatim's own
 * error, or null when it may be. Nominatim writes its errors in the media type of the format asked for
 * (`{"error":{"code":…,"message":…}}` in JSON, an `<error>` document in XML), or, for an error raised
 * before the format is known, as text/plain `ERROR <status>: <message>` (Nominatim 5.1
 * server/asgi_adaptor.py raise_error, v1/format.py _format_error; the PHP versions never sent text);
 * never as HTML for the formats the gateway asks for (HTML only comes with `debug`, which is never
 * sent). A web server's HTML 404 (a wrong path in NOMINATIM_URL), a proxy's 407/413 page, or a plain
 * text 404 (a proxy's "404 page not found", a framework's "Not Found" for a path it has no route for)
 * fails here. Its messages are not escaped, so only how the body begins is checked.
 */
export function upstreamErrorProblem(req: Pick<CanonicalRequest, 'format'>, status: number, contentType: string, body: Buffer): string | null {
  const formatType = MEDIA_TYPE_BY_FORMAT[req.format];
  const got = mediaType(contentType);
  const start = body.subarray(0, 256).toString('utf8');
  if (got === 'text/plain') return start.startsWith(`ERROR ${status}: `) ? null : `a ${status} whose text is not Nominatim's error`;
  if (got !== formatType) return `a ${status} with Content-Type ${quotable(got)} where Nominatim's errors are ${formatType}${formatType === 'text/plain' ? '' : ' or text/plain'}`;
  if (formatType === 'text/xml') return XML_ERROR.test(start) ? null : `a ${status} whose XML is not Nominatim's error`;
  return JSON_ERROR.test(start) ? null : `a ${status} whose JSON is not Nominatim's error`;
}

/** The JSON top level of a successful answer: json/jsonv2 lists are arrays; a single place, GeoJSON and the status are objects. */
function expectedShape(req: Expectation): 'array' | 'object' | undefined {
  if (req.resultKind === undefined) return undefined;
  if (req.resultKind === 'list' && (req.format === 'json' || req.format === 'jsonv2')) return 'array';
  return 'object';
}

/** What `callback(…)` is called with: build_response writes exactly f"{jsonp}({output})", the callback as sent. */
function jsonpArgument(text: string, callback: string | undefined): string | undefined {
  if (callback === undefined || text.length < callback.length + 2) return undefined;
  if (!text.startsWith(`${callback}(`) || !text.endsWith(')')) return undefined;
  return text.slice(callback.length + 1, -1);
}

function quotable(mediaType: string): string {
  if (mediaType === '') return '(none)';
  return MEDIA_TYPE.test(mediaType) ? mediaType : '(not a media type)';
}

function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}
