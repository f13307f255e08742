/**
 * Nominatim's "nothing found" answers in each format: cacheable, but for a shorter time (a place
 * added to OpenStreetMap today should show up soon).
 *
 *   json, jsonv2 (/search, /lookup)         []
 *   geojson, geocodejson (/search, /lookup)  {"type":"FeatureCollection", … ,"features":[]}
 *   /reverse in any JSON format              {"error":"Unable to geocode"}
 *   xml (/search, /lookup)                   <searchresults … /> or <searchresults …></searchresults>
 *   xml (/reverse)                           <reversegeocode …><error>Unable to geocode</error></reversegeocode>
 *   json_callback                            callback(<any of the JSON ones>)
 *
 * The length of an answer says nothing: Nominatim echoes the query in an empty answer (XML's
 * querystring and more_url, geocodejson's query), so one can be kilobytes. Nor does finding `[]` or
 * `<place` anywhere in it, since the echoed query may hold those very characters. What decides is the
 * structure, and only its ends: this runs on every upstream answer that is stored, and a found place
 * can be megabytes, so it parses no large body and reads an XML one only up to the root's first child.
 *
 * The upstream client has already checked that a 200 is valid JSON (or JSONP around it) or
 * well-formed XML; anything else here is not taken for empty.
 */
export function isEmptyAnswer(body: Buffer): boolean {
  let start = skipSpace(body, startsWithBom(body) ? 3 : 0);
  let end = trimEnd(body, start, body.length);
  if (start >= end) return false;
  if (body[start] === LT) return isEmptyXml(body, start, end);
  if (body[start] !== OPEN_BRACKET && body[start] !== OPEN_BRACE) {
    // JSONP: the callback's name (which cannot hold a parenthesis) and its `(` come first.
    const open = body.indexOf(OPEN_PAREN, start);
    if (open < 0 || open >= end) return false;
    if (body[end - 1] === SEMICOLON) end = trimEnd(body, start, end - 1);
    if (body[end - 1] !== CLOSE_PAREN) return false;
    start = skipSpace(body, open + 1);
    end = trimEnd(body, start, end - 1);
    if (start >= end) return false;
  }
  return isEmptyJson(body, start, end);
}

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const OPEN_PAREN = 0x28;
const CLOSE_PAREN = 0x29;
const SEMICOLON = 0x3b;

/** Longer than `{"error":"Unable to geocode"}` with any whitespace Nominatim could put in it. */
const SMALL_OBJECT_BYTES = 128;
/** How much of each end of a JSON object is read: the keys that matter, with room for whitespace. */
const WINDOW_BYTES = 64;

const UNABLE_TO_GEOCODE_JSON = /^\{\s*"error"\s*:\s*"Unable to geocode"\s*\}$/;
const FEATURE_COLLECTION_HEAD = /^\{\s*"type"\s*:\s*"FeatureCollection"\s*[,}]/;
/**
 * The object's last member is `"features": []`. Read backwards from the document's end every one of
 * these characters is structure, not string content (a string cannot end a JSON document), and the
 * `,` or `{` before the key's opening quote makes it the whole key, not the tail of a longer one.
 */
const NO_FEATURES_TAIL = /[{,]\s*"features"\s*:\s*\[\s*\]\s*\}$/;

function isEmptyJson(body: Buffer, start: number, end: number): boolean {
  if (body[start] === OPEN_BRACKET) return skipSpace(body, start + 1) === end - 1 && body[end - 1] === CLOSE_BRACKET;
  if (body[start] !== OPEN_BRACE) return false;
  if (end - start <= SMALL_OBJECT_BYTES && UNABLE_TO_GEOCODE_JSON.test(body.toString('utf8', start, end))) return true;
  return (
    FEATURE_COLLECTION_HEAD.test(body.toString('latin1', start, Math.min(end, start + WINDOW_BYTES))) &&
    NO_FEATURES_TAIL.test(body.toString('latin1', Math.max(start, end - WINDOW_BYTES), end))
  );
}

const LIST_ROOT = 'searchresults';
const REVERSE_ROOT = 'reversegeocode';
const UNABLE_TO_GEOCODE_XML = /^<error>\s*Unable to geocode\s*<\/error>/;

/**
 * The root element has no child (or, for /reverse, only the error). XML does not allow `<` inside an
 * attribute value, so the first `<` after the root's own is its first child or its end tag, however
 * long the echoed query in its attributes.
 */
function isEmptyXml(body: Buffer, start: number, end: number): boolean {
  const root = skipProlog(body, start, end);
  if (root < 0) return false;
  const name = /^<([A-Za-z_][\w.-]*)[\s/>]/.exec(body.toString('latin1', root, Math.min(end, root + 32)))?.[1];
  if (name !== LIST_ROOT && name !== REVERSE_ROOT) return false;

  const next = body.indexOf(LT, root + 1);
  const tagEnd = trimEnd(body, root, next < 0 ? end : next);
  if (body[tagEnd - 1] !== GT) return false;
  // A self-closing root: nothing inside it, whatever follows (only comments or processing instructions can).
  if (body[tagEnd - 2] === SLASH) return name === LIST_ROOT;
  if (next < 0) return false;
  const child = body.toString('latin1', next, Math.min(end, next + 64));
  if (child.startsWith(`</${name}`)) return name === LIST_ROOT;
  return name === REVERSE_ROOT && UNABLE_TO_GEOCODE_XML.test(child);
}

/** Where the root element starts, past the XML declaration, comments and processing instructions; -1 if not found. */
function skipProlog(body: Buffer, at: number, end: number): number {
  for (;;) {
    if (body[at] !== LT) return -1;
    const second = body[at + 1];
    let close: number;
    if (second === 0x3f /* ? */) close = after(body, '?>', at + 2);
    else if (body.toString('latin1', at, at + 4) === '<!--') close = after(body, '-->', at + 4);
    else if (second === 0x21 /* ! */) return -1; // a DOCTYPE: not Nominatim's
    else return at;
    if (close < 0 || close > end) return -1;
    at = skipSpace(body, close);
  }
}

/** Just past the next `marker` from `from`; -1 if there is none. */
function after(body: Buffer, marker: string, from: number): number {
  const at = body.indexOf(marker, from);
  return at < 0 ? -1 : at + marker.length;
}

function startsWithBom(body: Buffer): boolean {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
}

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function skipSpace(body: Buffer, at: number): number {
  while (isSpace(body[at])) at++;
  return at;
}

/** `end` moved back over trailing whitespace, not before `start`. */
function trimEnd(body: Buffer, start: number, end: number): number {
  while (end > start && isSpace(body[end - 1])) end--;
  return end;
}
