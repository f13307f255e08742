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
import { answerKey } from '../../cache/answer-keys';
import { CanonicalResult, CT_JSON, CT_JSONP, CT_TEXT, CT_XML, ErrorShape, FEATURE_TYPES, FORMAT_MESSAGES, FREE_TEXT_NAMES, LIMIT_DEFAULT, LIMIT_MAX, LIMIT_MIN, LOOKUP_MAX_COUNT, MAX_PARAMS, MAX_TEXT_LENGTH, MAX_VALUE_LENGTH, NominatimEndpoint, ResponseFormat, SPECS, STRUCTURED, ZOOM_DEFAULT, ZOOM_MAX, ZOOM_MIN } from './nominatim-params';
import { BAD_CHARS, clampInt, COORDINATE_ONLY, digitString, floatString, HAS_DIGIT, pyFloat, pyInt, pyStrip, tooLongText } from './python-values';
import { acceptLanguage, bbox, bool, countryCodes, freeText, geometry, layers, mustBeNumber, Out, outputDetails, placeIds, searchText, validCallback } from './parameter-groups';
import { apiFail, fail } from './nominatim-errors';
export type { CanonicalRequest, CanonicalResult, ErrorAnswer, NominatimEndpoint, ResponseFormat, ResultKind } from './nominatim-params';
export { MAX_PARAMS, MAX_TEXT_LENGTH, MAX_VALUE_LENGTH } from './nominatim-params';
export { normaliseText } from './python-values';

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
    if (FREE_TEXT_NAMES.has(name) && tooLongText(pyStrip(value))) return fail(shape, `Parameter '${name}' is too long.`);
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
  let jsonCallback: string | undefined;
  if (callback !== undefined && contentType === CT_JSON) {
    if (spec.path !== '/details' && !validCallback(callback)) return fail('json', 'Invalid json_callback value');
    out.set('json_callback', callback);
    contentType = CT_JSONP;
    jsonCallback = callback;
  }

  const upstreamQuery = out.encode();
  const key = answerKey(endpoint, upstreamQuery);
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
      jsonCallback,
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
  const trimmed = pyStrip(q);
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

  const limitError = clampedInt(p, 'limit', LIMIT_DEFAULT, LIMIT_MIN, LIMIT_MAX, out);
  if (limitError !== undefined) return limitError;

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
    // A whitespace-only q: core.py's search strips it and gives up before it reads anything else.
    if (q !== '' && canonicalQ === '') return 'Nothing to search for.';
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

  // No structured part at all: search_address checks the other parameters first (from_kwargs).
  if (q === undefined && !structured) return 'Nothing to search for.';
  return undefined;
}

/**
 * An integer parameter Nominatim reads with a default and then clamps (limit, zoom): written as the
 * value it will use, so every spelling of one value shares a key. Returns the 400 text of a non-number.
 */
function clampedInt(p: Map<string, string>, name: string, dflt: number, min: number, max: number, out: Out): string | undefined {
  const raw = p.get(name);
  let value = dflt;
  if (raw !== undefined) {
    const n = pyInt(raw);
    if (n === undefined) return mustBeNumber(name);
    value = clampInt(n, min, max);
  }
  out.set(name, String(value));
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

  const zoomError = clampedInt(p, 'zoom', ZOOM_DEFAULT, ZOOM_MIN, ZOOM_MAX, out);
  if (zoomError !== undefined) return zoomError;

  const layerError = layers(p.get('layer'), out);
  if (layerError !== undefined) return layerError;

  outputDetails(p, out, true);
  return undefined;
}

function lookup(p: Map<string, string>, fmt: ResponseFormat, out: Out): string | undefined {
  const geometryError = geometry(p, fmt, out);
  if (geometryError !== undefined) return geometryError;

  // Entries that are not [NWRnwr]<digits> are ignored silently. Duplicates are kept: Nominatim's
  // LookupCollector answers once per id asked (N2,N2 gives two places), and clients match by position.
  const ids: string[] = [];
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
      ids.push(type + id);
    }
  }
  if (ids.length > LOOKUP_MAX_COUNT) return 'Too many object IDs.';
  // Order is kept too: Nominatim answers in the order asked.
  if (ids.length > 0) out.set('osm_ids', ids.join(','));

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
