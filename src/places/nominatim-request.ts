/**
 * Validates and canonicalises one incoming Nominatim request the way Nominatim (5.1, Python frontend)
 * checks it, so that the gateway can answer Nominatim's own 400s itself and so that equivalent requests
 * share one cache key. Pure: no Nest, no I/O. Runs on every cache hit, so tables are built once and the
 * common (ASCII) path avoids Unicode normalisation.
 *
 * Source facts relied on (osm-search/Nominatim, src/nominatim_api/):
 * - server/falcon/server.py: parameters come from Falcon's `get_param`, which returns the LAST value of a
 *   repeated name; names are case-sensitive (`Q`, `FORMAT`, `featuretype` are unknown names, ignored).
 * - server/asgi_adaptor.py: `get` hands the value over as sent (never trimmed or folded); `get_int` =
 *   Python `int()` and `get_float` = Python `float()` without nan/inf (both skip surrounding whitespace),
 *   messages "Parameter 'x' missing." / "Parameter 'x' must be a number."; `get_bool` is false only for
 *   the exact value '0', anything else (even '', ' 0' or 'false') is true.
 * So a value is trimmed or folded below only where the function Nominatim reads it with does so too;
 * two requests share a key only when Nominatim reads them alike.
 * - v1/format.py: error bodies per content type (xml, json, else `ERROR <status>: <msg>` as text/plain);
 *   the format list order used in "Parameter 'format' must be one of: ...".
 * - v1/server_glue.py: endpoint order of checks, defaults (search jsonv2, reverse/lookup xml, status text,
 *   details json), limit clamp `max(1, min(50, limit))`, at most one polygon_* output, osm_ids parsing and
 *   LOOKUP_MAX_COUNT (50), json_callback checked last and only for JSON output.
 * - types.py: viewbox (Bbox.from_param), countrycodes (format_country), exclude_place_ids (format_excluded).
 * - core.py: "Nothing to search for." for a blank q or no structured part.
 */
import { createHash } from 'node:crypto';

export type NominatimEndpoint = 'search' | 'reverse' | 'lookup' | 'status' | 'details';
export type ResponseFormat = 'xml' | 'json' | 'jsonv2' | 'geojson' | 'geocodejson' | 'text';
/** What a successful answer holds: a list of places (search, lookup), one place (reverse, details), or the status. */
export type ResultKind = 'list' | 'single' | 'status';

export interface CanonicalRequest {
  endpoint: NominatimEndpoint;
  /** '/search', '/reverse', '/lookup', '/status', '/details' */
  upstreamPath: string;
  /** Canonical query sent upstream: allow-listed, normalised, sorted by name, percent-encoded; no email. */
  upstreamQuery: string;
  /** `places:v1:<endpoint>:<upstreamQuery>`, or `places:v1:<endpoint>:h:<sha256 base64url>` past 200 chars. */
  key: string;
  format: ResponseFormat;
  /** false for /details (debugging endpoint, passed through uncached). */
  cacheable: boolean;
  /** Hint: what a successful answer holds. */
  resultKind?: ResultKind;
  /** Hint: the Content-Type Nominatim gives a successful answer to this request (JSONP included). */
  contentType?: string;
}

export interface ErrorAnswer {
  status: number;
  contentType: string;
  body: string;
}

export type CanonicalResult = { ok: true; request: CanonicalRequest } | { ok: false; error: ErrorAnswer };

// ---------------------------------------------------------------------------------------------------------
// Limits. Nominatim has none of the guards below; they keep hostile input from costing us (or upstream)
// anything. Generous enough that no real client (geopy, leaflet-control-geocoder, osmnx, node-geocoder) is
// affected.

/** Query entries looked at, junk included. Real clients send fewer than 15. */
export const MAX_PARAMS = 64;
/** Any kept value, in UTF-16 units, before trimming (exclude_place_ids lists can legitimately be long). */
export const MAX_VALUE_LENGTH = 4096;
/** Free-text values (q and the structured fields), in characters after trimming; the same cap as /api. */
export const MAX_TEXT_LENGTH = 512;
/** Nominatim's LOOKUP_MAX_COUNT default. */
const LOOKUP_MAX_COUNT = 50;
/** Nominatim's POLYGON_OUTPUT_MAX_TYPES default. */
const POLYGON_OUTPUT_MAX_TYPES = 1;
/** server_glue.search_endpoint: `max(1, min(50, params.get_int('limit', 10)))`; docs/api/Search.md: "Maximum: 50". */
const LIMIT_MIN = 1;
const LIMIT_MAX = 50;
const LIMIT_DEFAULT = 10;
/** helpers.zoom_to_rank clamps zoom to 0..18, so every zoom outside maps onto the nearest end. */
const ZOOM_MIN = 0;
const ZOOM_MAX = 18;
const ZOOM_DEFAULT = 18;
const KEY_MAX_LENGTH = 200;
const KEY_PREFIX = 'places:v1:';

const CT_TEXT = 'text/plain; charset=utf-8';
const CT_XML = 'text/xml; charset=utf-8';
const CT_JSON = 'application/json; charset=utf-8';
const CT_JSONP = 'application/javascript; charset=utf-8';

// ---------------------------------------------------------------------------------------------------------
// Endpoint tables

type ErrorShape = 'text' | 'xml' | 'json';

interface EndpointSpec {
  readonly path: string;
  /** Nominatim's spelling of each name it reads (matched exactly: Falcon's get_param is case-sensitive) */
  readonly names: ReadonlySet<string>;
  /** in the order Nominatim lists them in its error message (registration order in v1/format.py) */
  readonly formats: readonly ResponseFormat[];
  readonly defaultFormat: ResponseFormat;
  readonly resultKind: ResultKind;
  readonly cacheable: boolean;
}

const FREE_TEXT = ['q', 'amenity', 'street', 'city', 'county', 'state', 'country', 'postalcode'] as const;
const FREE_TEXT_NAMES: ReadonlySet<string> = new Set(FREE_TEXT);
const STRUCTURED = ['amenity', 'street', 'city', 'county', 'state', 'postalcode', 'country'] as const;
const OUTPUT_DETAILS = ['addressdetails', 'extratags', 'namedetails', 'entrances', 'transliterate'];
const POLYGONS = ['polygon_geojson', 'polygon_kml', 'polygon_svg', 'polygon_text', 'polygon_threshold'];
const PLACE_FORMATS: readonly ResponseFormat[] = ['xml', 'geojson', 'geocodejson', 'json', 'jsonv2'];

function nameTable(names: readonly string[]): ReadonlySet<string> {
  return new Set(names);
}

// `email` (the gateway sends its own) and `debug` (HTML developer output that replaces the requested
// format) are deliberately absent: like any unknown name they are dropped, never forwarded, never keyed.
const SPECS: Readonly<Record<NominatimEndpoint, EndpointSpec>> = {
  search: {
    path: '/search',
    names: nameTable([
      ...FREE_TEXT,
      'format', 'json_callback', 'limit', 'accept-language', 'countrycodes', 'viewbox', 'viewboxlbrt',
      'bounded', 'layer', 'featureType', 'exclude_place_ids', 'dedupe', ...OUTPUT_DETAILS, ...POLYGONS,
    ]),
    formats: PLACE_FORMATS,
    defaultFormat: 'jsonv2',
    resultKind: 'list',
    cacheable: true,
  },
  reverse: {
    path: '/reverse',
    names: nameTable([
      'lat', 'lon', 'zoom', 'layer', 'format', 'json_callback', 'accept-language', ...OUTPUT_DETAILS, ...POLYGONS,
    ]),
    formats: PLACE_FORMATS,
    defaultFormat: 'xml',
    resultKind: 'single',
    cacheable: true,
  },
  lookup: {
    path: '/lookup',
    names: nameTable(['osm_ids', 'format', 'json_callback', 'accept-language', ...OUTPUT_DETAILS, ...POLYGONS]),
    formats: PLACE_FORMATS,
    defaultFormat: 'xml',
    resultKind: 'list',
    cacheable: true,
  },
  status: {
    path: '/status',
    names: nameTable(['format', 'json_callback']),
    formats: ['text', 'json'],
    defaultFormat: 'text',
    resultKind: 'status',
    cacheable: true,
  },
  details: {
    path: '/details',
    names: nameTable([
      'place_id', 'osmtype', 'osmid', 'class', 'format', 'json_callback', 'accept-language', 'addressdetails',
      'keywords', 'linkedplaces', 'hierarchy', 'group_hierarchy', 'polygon_geojson', 'entrances', 'transliterate',
    ]),
    formats: ['json'],
    defaultFormat: 'json',
    resultKind: 'single',
    cacheable: false,
  },
};

const FORMAT_MESSAGES: ReadonlyMap<EndpointSpec, string> = new Map(
  Object.values(SPECS).map((s) => [s, `Parameter 'format' must be one of: ${s.formats.join(', ')}`]),
);

/** DataLayer members (types.py); get_layers upper-cases each entry (and does not strip it). */
const LAYERS = new Set(['ADDRESS', 'POI', 'RAILWAY', 'NATURAL', 'MANMADE']);
/** helpers.FEATURE_TYPE_TO_RANK keys; matched case-sensitively by Nominatim. */
const FEATURE_TYPES = new Set(['country', 'state', 'city', 'settlement']);

// ---------------------------------------------------------------------------------------------------------
// Character classes (all linear, no nested quantifiers that can backtrack)

const ASCII_PRINTABLE = /^[\x20-\x7e]*$/;
/** C0/C1 controls, DEL, U+FFFD (what a decoder leaves of invalid UTF-8) and lone surrogates. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const BAD_CHARS = /[\u0000-\u001f\u007f-\u009f\ufffd]|\p{Cs}/u;
const WHITESPACE_RUN = /\s+/g;
const ASCII_DIGITS = /^[0-9]+$/;
const UNICODE_DIGIT = /\p{Nd}/u;
const UNICODE_DIGITS_G = /\p{Nd}/gu;
const PY_INT = /^[+-]?[0-9](?:_?[0-9])*$/;
const PY_FLOAT =
  /^[+-]?(?:inf|infinity|nan|(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?)$/i;
const PY_NOT_FINITE = /^[+-]?(?:inf|infinity|nan)$/i;
/** Python str.isidentifier(): XID_Start or '_', then XID_Continue. */
const IDENTIFIER = /^[\p{XID_Start}_]\p{XID_Continue}*$/u;
/** A hemisphere letter standing alone (not inside a word): N/S/E/W must stay upper-case for the coordinate parser. */
const HEMISPHERE = /(?<!\p{L})[nsew](?!\p{L})/gu;
/** Everything helpers.COORD_REGEX can consume; a q made only of these may be a bare coordinate. */
const COORDINATE_ONLY = /^[\p{Nd}\s.,+\-°′'"″NSEW[\]]*$/u;
const HAS_DIGIT = /\p{Nd}/u;

// ---------------------------------------------------------------------------------------------------------
// Public helpers

/** Trim, collapse inner whitespace to one space, NFC, case-fold (toLowerCase). */
export function normaliseText(s: string): string {
  let t = s.trim().replace(WHITESPACE_RUN, ' ').toLowerCase();
  // NFC after lower-casing too: lower-casing can (rarely) leave a non-NFC sequence.
  if (!ASCII_PRINTABLE.test(t)) t = t.normalize('NFC').toLowerCase().normalize('NFC');
  return t;
}

/**
 * `query` is what the client sent (repeated names allowed); `acceptLanguageHeader` is the request's
 * Accept-Language header.
 *
 * Names are matched exactly as Nominatim spells them (`Q`, `FORMAT` and geopy's `featuretype` are
 * unknown names there, so they are dropped like any other). A repeated name takes its LAST value, as
 * Falcon's `get_param` does for Nominatim.
 */
export function canonicaliseNominatim(
  endpoint: NominatimEndpoint,
  query: URLSearchParams,
  acceptLanguageHeader?: string,
): CanonicalResult {
  const spec = Object.prototype.hasOwnProperty.call(SPECS, endpoint) ? SPECS[endpoint] : undefined;
  if (spec === undefined) return { ok: false, error: { status: 404, contentType: CT_TEXT, body: 'Not found.' } };

  // Collect: last value wins; unknown names are dropped without looking at their values.
  const raw = new Map<string, string>();
  let entries = 0;
  let tooMany = false;
  for (const [name, value] of query) {
    if (++entries > MAX_PARAMS) {
      tooMany = true;
      break;
    }
    if (spec.names.has(name)) raw.set(name, value);
  }

  // 1. format, checked first by every endpoint while the error shape is still plain text.
  const rawFormat = raw.get('format');
  // parse_format: the value as sent (`%20json` is an unknown format there).
  const fmt = rawFormat === undefined ? spec.defaultFormat : (rawFormat as ResponseFormat);
  if (!spec.formats.includes(fmt)) return fail('text', FORMAT_MESSAGES.get(spec) as string);
  const shape: ErrorShape = fmt === 'xml' ? 'xml' : fmt === 'text' ? 'text' : 'json';

  // 2. our guards, shaped like Nominatim's errors for the requested format.
  if (tooMany) return fail(shape, 'Too many parameters.');
  const p = new Map<string, string>();
  for (const [name, value] of raw) {
    if (value.length > MAX_VALUE_LENGTH) return fail(shape, `Parameter '${name}' is too long.`);
    if (BAD_CHARS.test(value)) return fail(shape, `Parameter '${name}' contains invalid characters.`);
    if (FREE_TEXT_NAMES.has(name) && tooLongText(value.trim())) return fail(shape, `Parameter '${name}' is too long.`);
    // Kept as sent: each reader below trims or folds only as Nominatim's reader of that parameter does.
    p.set(name, value);
  }

  const out = new Out();
  out.set('format', fmt);
  if (spec.names.has('accept-language')) {
    const language = acceptLanguage(p.get('accept-language'), acceptLanguageHeader);
    if (language !== undefined) out.set('accept-language', language);
  }

  let error: string | undefined;
  switch (spec.path) {
    case '/search':
      error = search(p, raw, fmt, out);
      break;
    case '/reverse':
      error = reverse(p, fmt, out);
      break;
    case '/lookup':
      error = lookup(p, fmt, out);
      break;
    case '/details':
      error = details(p, out);
      break;
    default:
      break; // status: format only
  }
  if (error !== undefined) return fail(shape, error);

  // Last check of every successful JSON answer (build_response); /details may still answer 404 first,
  // so there the callback is passed on unchecked.
  let contentType = fmt === 'xml' ? CT_XML : fmt === 'text' ? CT_TEXT : CT_JSON;
  const callback = p.get('json_callback');
  if (callback !== undefined && contentType === CT_JSON) {
    if (spec.path !== '/details' && !validCallback(callback)) return fail('json', 'Invalid json_callback value');
    out.set('json_callback', callback);
    contentType = CT_JSONP;
  }

  const upstreamQuery = out.encode();
  let key = `${KEY_PREFIX}${endpoint}:${upstreamQuery}`;
  if (key.length > KEY_MAX_LENGTH) {
    key = `${KEY_PREFIX}${endpoint}:h:${createHash('sha256').update(upstreamQuery).digest('base64url')}`;
  }
  return {
    ok: true,
    request: {
      endpoint,
      upstreamPath: spec.path,
      upstreamQuery,
      key,
      format: fmt,
      cacheable: spec.cacheable,
      resultKind: spec.resultKind,
      contentType,
    },
  };
}

/**
 * The tutorial route GET /api?q=…: q required, non-blank after trim, ≤ 512 characters after trim, else 400
 * JSON `{"statusCode":400,"error":"Bad Request","message":"…"}`. A valid q maps to exactly the same
 * CanonicalRequest as `/search?q=<q>&format=json`. Other parameters of /api are ignored.
 */
export function canonicaliseApi(query: URLSearchParams, acceptLanguageHeader?: string): CanonicalResult {
  const all = query.getAll('q');
  const q = all.length > 0 ? all[all.length - 1] : undefined;
  if (q === undefined) return apiFail('q is required');
  const tooLong = `q must be at most ${MAX_TEXT_LENGTH} characters long`;
  if (q.length > MAX_VALUE_LENGTH) return apiFail(tooLong);
  if (BAD_CHARS.test(q)) return apiFail('q contains invalid characters');
  const trimmed = q.trim();
  if (trimmed === '') return apiFail('q must not be blank');
  if (tooLongText(trimmed)) return apiFail(tooLong);
  const result = canonicaliseNominatim('search', new URLSearchParams([['q', q], ['format', 'json']]), acceptLanguageHeader);
  // The checks above leave the search rules nothing to reject; this keeps /api to its own error shape anyway.
  return result.ok ? result : apiFail('q is invalid');
}

// ---------------------------------------------------------------------------------------------------------
// Endpoints. Each returns Nominatim's error message, or undefined and fills `out`. The order of checks is
// the order in which server_glue.py reads the parameters, so the same message wins as upstream.

function search(p: Map<string, string>, raw: Map<string, string>, fmt: ResponseFormat, out: Out): string | undefined {
  const geometryError = geometry(p, fmt, out);
  if (geometryError !== undefined) return geometryError;

  // Details that only from_kwargs validates (later, see below).
  const countries = countryCodes(p.get('countrycodes'));
  if (countries !== '') out.set('countrycodes', countries);
  if (bool(p.get('bounded'), false)) out.set('bounded', '1');
  if (!bool(p.get('dedupe'), true)) out.set('dedupe', '0');

  const limit = p.get('limit');
  let limitValue = LIMIT_DEFAULT;
  if (limit !== undefined) {
    const n = pyInt(limit);
    if (n === undefined) return mustBeNumber('limit');
    limitValue = clampInt(n, LIMIT_MIN, LIMIT_MAX);
  }
  out.set('limit', String(limitValue));

  // featureType, when present at all, replaces the layer parameter (which is then not even parsed).
  const featureType = p.get('featureType');
  if (featureType !== undefined) {
    // Unknown values (other case included: Nominatim compares case-sensitively) all behave like ''.
    out.set('featureType', FEATURE_TYPES.has(featureType) ? featureType : '');
  } else {
    const layerError = layers(p.get('layer'), out);
    if (layerError !== undefined) return layerError;
  }

  outputDetails(p, out, false);

  // Free text: q, or the structured fields. As in Nominatim, a field counts when its untrimmed value is
  // non-empty, so `city=%20` still conflicts with q.
  const q = raw.get('q');
  let structured = false;
  for (const name of STRUCTURED) {
    const rawValue = raw.get(name);
    if (rawValue === undefined || rawValue === '') continue;
    structured = true;
    if (q === undefined) out.set(name, freeText(p.get(name) as string));
  }
  if (q !== undefined && structured) {
    return (
      'Structured query parameters(amenity, street, city, county, state, postalcode, country)' +
      " cannot be used together with 'q' parameter."
    );
  }

  // Nominatim validates exclude_place_ids and viewbox only where SearchDetails.from_kwargs runs: always for
  // structured search, never for an empty q (answers []), and not for a q that is a bare coordinate
  // (answered by reverse). There the raw values are passed on and upstream decides.
  let canonicalQ: string | undefined;
  let validated = true;
  if (q !== undefined) {
    canonicalQ = q === '' ? '' : searchText(p.get('q') as string);
    out.set('q', canonicalQ);
    validated = q !== '' && !(HAS_DIGIT.test(canonicalQ) && COORDINATE_ONLY.test(canonicalQ));
  }

  const excluded = p.get('exclude_place_ids');
  if (excluded !== undefined) {
    const ids = placeIds(excluded);
    if (ids === undefined) {
      if (validated) return "Parameter 'excluded' only takes place IDs.";
      out.set('exclude_place_ids', excluded);
    } else if (ids !== '') {
      out.set('exclude_place_ids', ids);
    }
  }

  // `viewbox` wins unless empty, then the legacy `viewboxlbrt`.
  const viewbox = p.get('viewbox') || p.get('viewboxlbrt');
  if (viewbox) {
    const box = bbox(viewbox);
    if (box.error !== undefined) {
      if (validated) return box.error;
      out.set('viewbox', viewbox);
    } else {
      out.set('viewbox', box.value);
    }
  }

  // A whitespace-only q, or no structured part at all (core.py search / search_address).
  if ((q !== undefined && q !== '' && canonicalQ === '') || (q === undefined && !structured)) {
    return 'Nothing to search for.';
  }
  return undefined;
}

function reverse(p: Map<string, string>, fmt: ResponseFormat, out: Out): string | undefined {
  // Point(params.get_float('lon'), params.get_float('lat')): lon is read first. Out-of-range coordinates
  // are valid requests (Nominatim answers 200 "Unable to geocode").
  for (const name of ['lon', 'lat']) {
    const value = p.get(name);
    if (value === undefined) return `Parameter '${name}' missing.`;
    const n = pyFloat(value);
    if (n === undefined) return mustBeNumber(name);
    out.set(name, floatString(n));
  }

  const geometryError = geometry(p, fmt, out);
  if (geometryError !== undefined) return geometryError;

  const zoom = p.get('zoom');
  let zoomValue = ZOOM_DEFAULT;
  if (zoom !== undefined) {
    const n = pyInt(zoom);
    if (n === undefined) return mustBeNumber('zoom');
    zoomValue = clampInt(n, ZOOM_MIN, ZOOM_MAX);
  }
  out.set('zoom', String(zoomValue));

  const layerError = layers(p.get('layer'), out);
  if (layerError !== undefined) return layerError;

  outputDetails(p, out, true);
  return undefined;
}

function lookup(p: Map<string, string>, fmt: ResponseFormat, out: Out): string | undefined {
  const geometryError = geometry(p, fmt, out);
  if (geometryError !== undefined) return geometryError;

  // Entries that are not [NWRnwr]<digits> are ignored silently; duplicates count towards the maximum.
  const ids = new Set<string>();
  let count = 0;
  const rawIds = p.get('osm_ids');
  if (rawIds) {
    for (const entry of rawIds.split(',')) {
      // lookup_endpoint: `oid.strip()` per entry, type letter in 'RNWrnw', then `oid[1:].isdigit()`.
      const oid = pyStrip(entry);
      if (oid.length < 2) continue;
      const type = oid[0].toUpperCase();
      if (type !== 'N' && type !== 'W' && type !== 'R') continue;
      const id = digitString(oid.slice(1));
      if (id === undefined) continue;
      count++;
      ids.add(type + id);
    }
  }
  if (count > LOOKUP_MAX_COUNT) return 'Too many object IDs.';
  // Order is kept: Nominatim answers in the order asked, and clients match results by position.
  if (ids.size > 0) out.set('osm_ids', [...ids].join(','));

  outputDetails(p, out, true);
  return undefined;
}

function details(p: Map<string, string>, out: Out): string | undefined {
  let placeId = '0';
  const rawPlaceId = p.get('place_id');
  if (rawPlaceId !== undefined) {
    const n = pyInt(rawPlaceId);
    if (n === undefined) return mustBeNumber('place_id');
    placeId = n;
  }
  if (placeId !== '0') {
    out.set('place_id', placeId);
  } else {
    const osmtype = p.get('osmtype');
    if (osmtype === undefined) return "Missing ID parameter 'place_id' or 'osmtype'.";
    const rawOsmId = p.get('osmid');
    if (rawOsmId === undefined) return "Parameter 'osmid' missing.";
    const osmid = pyInt(rawOsmId);
    if (osmid === undefined) return mustBeNumber('osmid');
    // Nominatim's OsmID takes N, W or R (case-sensitive) and fails any other type with a 500: refused here.
    if (osmtype !== 'N' && osmtype !== 'W' && osmtype !== 'R') return `Illegal OSM type '${osmtype}'. Must be one of N, W, R.`;
    out.set('osmtype', osmtype);
    out.set('osmid', osmid);
    const cls = p.get('class');
    if (cls !== undefined) out.set('class', cls);
  }
  for (const name of ['addressdetails', 'keywords', 'linkedplaces', 'hierarchy', 'group_hierarchy', 'polygon_geojson', 'entrances', 'transliterate']) {
    const value = p.get(name);
    if (value !== undefined) out.set(name, bool(value, false) ? '1' : '0');
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Shared parameter groups

/** parse_geometry_details: counts the polygon outputs, then reads polygon_threshold. */
function geometry(p: Map<string, string>, fmt: ResponseFormat, out: Out): string | undefined {
  // geojson/geocodejson read only polygon_geojson; the other three are ignored there.
  const names =
    fmt === 'geojson' || fmt === 'geocodejson'
      ? ['polygon_geojson']
      : ['polygon_geojson', 'polygon_text', 'polygon_kml', 'polygon_svg'];
  let selected: string | undefined;
  let count = 0;
  for (const name of names) {
    if (bool(p.get(name), false)) {
      selected = name;
      count++;
    }
  }
  if (count > POLYGON_OUTPUT_MAX_TYPES) return 'Too many polygon output options selected.';

  const threshold = p.get('polygon_threshold');
  let thresholdValue = 0;
  if (threshold !== undefined) {
    const n = pyFloat(threshold);
    if (n === undefined) return mustBeNumber('polygon_threshold');
    thresholdValue = n;
  }
  if (selected !== undefined) {
    out.set(selected, '1');
    // Simplification only applies to an output geometry, and only when positive.
    if (thresholdValue > 0) out.set('polygon_threshold', floatString(thresholdValue));
  }
  return undefined;
}

/** addressdetails (default 0 for search, 1 for reverse/lookup), extratags, namedetails always explicit. */
function outputDetails(p: Map<string, string>, out: Out, addressDefault: boolean): void {
  out.set('addressdetails', bool(p.get('addressdetails'), addressDefault) ? '1' : '0');
  out.set('extratags', bool(p.get('extratags'), false) ? '1' : '0');
  out.set('namedetails', bool(p.get('namedetails'), false) ? '1' : '0');
  // Newer Nominatim versions; false is their default, so only a true value is forwarded.
  if (bool(p.get('entrances'), false)) out.set('entrances', '1');
  if (bool(p.get('transliterate'), false)) out.set('transliterate', '1');
}

/**
 * server_glue.get_layers: `getattr(DataLayer, s.upper())` for each comma-separated entry, not stripped.
 * Nominatim crashes (500) on an unknown name (` poi` included); we answer a 400 instead of sending it upstream.
 */
function layers(value: string | undefined, out: Out): string | undefined {
  if (value === undefined) return undefined;
  const set = new Set<string>();
  for (const entry of value.split(',')) {
    const name = entry.toUpperCase();
    if (!LAYERS.has(name)) return "Parameter 'layer' must be a comma-separated list of: address, poi, railway, natural, manmade.";
    set.add(name.toLowerCase());
  }
  out.set('layer', [...set].sort().join(','));
  return undefined;
}

/** asgi_adaptor.get_bool: only the exact value '0' is false (' 0' is true); absent gives the default. */
function bool(value: string | undefined, fallback: boolean): boolean {
  return value === undefined ? fallback : value !== '0';
}

/**
 * types.format_country: entries of exactly two characters (not stripped: ` de` is ignored), lower-cased;
 * others ignored. Sorted and de-duplicated: the list is a filter, its order does not matter.
 */
function countryCodes(value: string | undefined): string {
  if (!value) return '';
  const set = new Set<string>();
  for (const cc of value.split(',')) {
    if (cc.length >= 2 && cc.length <= 4 && codePointCount(cc) === 2) set.add(cc.toLowerCase());
  }
  return [...set].sort().join(',');
}

/**
 * format_excluded (5.1): entries stripped, empty ones ignored, the rest must be place IDs (digits).
 * OSM IDs (N123, W…, R…) are accepted too: newer Nominatim versions take them, an older one answers its
 * own 400. Returns the sorted, de-duplicated list, or undefined when an entry is neither.
 */
function placeIds(value: string): string | undefined {
  const numeric = new Set<string>();
  const osm = new Set<string>();
  for (const entry of value.split(',')) {
    // format_excluded strips each entry.
    const id = pyStrip(entry);
    if (id === '') continue;
    const digits = digitString(id);
    if (digits !== undefined) {
      numeric.add(digits);
      continue;
    }
    const type = id[0].toUpperCase();
    const osmDigits = id.length > 1 && (type === 'N' || type === 'W' || type === 'R') ? digitString(id.slice(1)) : undefined;
    if (osmDigits === undefined) return undefined;
    osm.add(type + osmDigits);
  }
  return [...[...numeric].sort(compareDigits), ...[...osm].sort(compareOsmIds)].join(',');
}

/** Bbox.from_param: four floats, clamped to the world, any two opposite corners; written min/min/max/max. */
function bbox(value: string): { value: string; error?: undefined } | { value?: undefined; error: string } {
  const parts = value.split(',');
  if (parts.length !== 4) return { error: 'Bounding box parameter needs 4 coordinates.' };
  const c: number[] = [];
  for (const part of parts) {
    const n = pyFloatOrInfinite(part);
    if (n === undefined || !Number.isFinite(n)) return { error: 'Bounding box parameter needs to be numbers.' };
    c.push(n);
  }
  const x1 = Math.min(180, Math.max(-180, c[0]));
  const x2 = Math.min(180, Math.max(-180, c[2]));
  const y1 = Math.min(90, Math.max(-90, c[1]));
  const y2 = Math.min(90, Math.max(-90, c[3]));
  if (x1 === x2 || y1 === y2) return { error: 'Bounding box with invalid parameters.' };
  return {
    value: [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)].map(floatString).join(','),
  };
}

/**
 * server_glue.get_accepted_languages: the parameter if non-empty, else the header (absent -> omitted, so
 * upstream's DEFAULT_LANGUAGE applies). The value is keyed as the language list Nominatim derives from it.
 */
function acceptLanguage(param: string | undefined, header: string | undefined): string | undefined {
  if (param) return languageList(param);
  // The header is not a parameter: oversized or broken ones are ignored rather than answered with a 400.
  if (header && header.length <= MAX_VALUE_LENGTH && !BAD_CHARS.test(header)) return languageList(header);
  return undefined;
}

/** localization.Locales.from_accept_languages: `\s*([a-z_-]+)(?:;\s*q\s*=\s*([01](?:\.\d+)?))?\s*`, re.I. */
const LANGUAGE_RANGE = /^\s*([a-z_-]+)(?:;\s*q\s*=\s*([01](?:\.\p{Nd}+)?))?\s*$/iu;

/**
 * The list Locales.from_accept_languages builds (case kept: it looks names up as `name:<lang>`, so `DE`
 * is not `de`), written back comma-separated: Nominatim reads that list back as the same list. A value
 * in which no part parses is kept as sent (Nominatim then localises nothing, unlike an absent one).
 */
function languageList(value: string): string {
  const candidates: Array<[string, number]> = [];
  for (const desc of value.split(',')) {
    const m = LANGUAGE_RANGE.exec(desc);
    if (m) candidates.push([m[1], m[2] === undefined ? 1 : Number(asciiDigits(m[2]))]);
  }
  if (candidates.length === 0) return value;
  candidates.sort((a, b) => b[1] - a[1]);
  const languages: string[] = [];
  for (const [lid] of candidates) {
    languages.push(lid);
    const dash = lid.indexOf('-');
    if (dash !== -1 && candidates.every((c) => c[0] !== lid.slice(0, dash))) languages.push(lid.slice(0, dash));
  }
  return languages.join(',');
}

/** Free text of a structured field; a value of spaces only still counts upstream, kept as one space. */
function freeText(rawValue: string): string {
  const t = normaliseText(rawValue);
  return t === '' ? ' ' : t;
}

/**
 * q: normaliseText, except that a lone n/s/e/w next to a number goes back to upper case: Nominatim's
 * coordinate syntax ("N 52.5 E 13.4", "52.5N 13.4E") is case-sensitive, and case does not matter to
 * the search itself.
 */
function searchText(rawValue: string): string {
  const t = normaliseText(rawValue);
  return HAS_DIGIT.test(t) ? t.replace(HEMISPHERE, (c) => c.toUpperCase()) : t;
}

/** build_response: each dot-separated part must be a Python identifier. */
function validCallback(value: string): boolean {
  if (value.length > 256) return false;
  for (const part of value.split('.')) if (!IDENTIFIER.test(part)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Numbers, parsed like Python's int() and float() (underscores between digits, any Unicode decimal digit)

/** Python int() (asgi_adaptor.get_int): returns the canonical decimal string (sign, no leading zeros), any size. */
function pyInt(value: string): string | undefined {
  const s = asciiDigits(pyStrip(value));
  if (!PY_INT.test(s)) return undefined;
  const negative = s[0] === '-';
  const digits = s.replace(/^[+-]/, '').replace(/_/g, '').replace(/^0+(?=.)/, '');
  return negative && digits !== '0' ? `-${digits}` : digits;
}

/** Python float() without nan/inf (get_float rejects those): a finite number or undefined. */
export function pyFloat(value: string): number | undefined {
  const n = pyFloatOrInfinite(value);
  return n !== undefined && Number.isFinite(n) ? n : undefined;
}

function pyFloatOrInfinite(value: string): number | undefined {
  const s = asciiDigits(pyStrip(value));
  if (!PY_FLOAT.test(s)) return undefined;
  if (PY_NOT_FINITE.test(s)) return Number.NaN;
  const n = Number(s.replace(/_/g, ''));
  return Number.isNaN(n) ? undefined : n;
}

/**
 * The whitespace Python's int(), float() and str.strip() skip. JavaScript's trim() also drops U+FEFF,
 * which Python keeps (`int('\ufeff1')` fails); the C0/C1 separators Python also skips are refused earlier.
 */
const PY_SPACE_RUN = /^[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

function pyStrip(value: string): string {
  return value.replace(PY_SPACE_RUN, '');
}

/** Shortest round-trip form; Python's float() reads it back to the same value. */
function floatString(n: number): string {
  return n === 0 ? '0' : String(n);
}

/** Clamp a canonical integer string without converting huge values. */
function clampInt(n: string, min: number, max: number): number {
  if (n.length > 15) return n[0] === '-' ? min : max;
  return Math.min(max, Math.max(min, Number(n)));
}

/** str.isdigit() then int(): digits only (any script), as a canonical string without leading zeros. */
function digitString(value: string): string | undefined {
  if (ASCII_DIGITS.test(value)) return value.replace(/^0+(?=.)/, '');
  if (value === '' || ASCII_PRINTABLE.test(value)) return undefined;
  const s = asciiDigits(value);
  return ASCII_DIGITS.test(s) ? s.replace(/^0+(?=.)/, '') : undefined;
}

/** Replaces every Unicode decimal digit by its ASCII digit (Python's int()/float() accept them all). */
function asciiDigits(s: string): string {
  if (ASCII_PRINTABLE.test(s)) return s;
  return s.replace(UNICODE_DIGITS_G, (d) => String(unicodeDigitValue(d.codePointAt(0) as number)));
}

/** Decimal digits come in runs of ten starting at zero; the value is the offset in the run. */
function unicodeDigitValue(cp: number): number {
  let start = cp;
  while (start > 0 && cp - start < 100 && UNICODE_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}

function compareDigits(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function compareOsmIds(a: string, b: string): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : compareDigits(a.slice(1), b.slice(1));
}

function codePointCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

/** More than MAX_TEXT_LENGTH characters (code points); the UTF-16 length is an upper bound for the cheap test. */
function tooLongText(s: string): boolean {
  return s.length > MAX_TEXT_LENGTH && codePointCount(s) > MAX_TEXT_LENGTH;
}

// ---------------------------------------------------------------------------------------------------------
// Output

/** The canonical parameters: set by name, encoded sorted by name. */
class Out {
  private readonly values = new Map<string, string>();

  set(name: string, value: string): void {
    this.values.set(name, value);
  }

  encode(): string {
    const names = [...this.values.keys()].sort();
    let s = '';
    for (const name of names) {
      if (s !== '') s += '&';
      s += `${encodeURIComponent(name)}=${encodeURIComponent(this.values.get(name) as string)}`;
    }
    return s;
  }
}

function mustBeNumber(name: string): string {
  return `Parameter '${name}' must be a number.`;
}

/** v1/format.py _format_error, byte for byte (Nominatim does not escape; we do, which only matters for '"\<&>'). */
function fail(shape: ErrorShape, msg: string, status = 400): CanonicalResult {
  if (shape === 'xml') {
    const m = msg.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    return {
      ok: false,
      error: {
        status,
        contentType: CT_XML,
        body:
          '<?xml version="1.0" encoding="UTF-8" ?>\n' +
          '                   <error>\n' +
          `                     <code>${status}</code>\n` +
          `                     <message>${m}</message>\n` +
          '                   </error>\n' +
          '                ',
      },
    };
  }
  if (shape === 'json') {
    const m = JSON.stringify(msg).slice(1, -1);
    return { ok: false, error: { status, contentType: CT_JSON, body: `{"error":{"code":${status},"message":"${m}"}}` } };
  }
  return { ok: false, error: { status, contentType: CT_TEXT, body: `ERROR ${status}: ${msg}` } };
}

function apiFail(message: string): CanonicalResult {
  return {
    ok: false,
    error: { status: 400, contentType: CT_JSON, body: JSON.stringify({ statusCode: 400, error: 'Bad Request', message }) },
  };
}
