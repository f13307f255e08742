/**
 * Nominatim's parameters as its v1 API defines them: endpoints, names, formats, defaults and limits,
 * and the shapes of a canonical request. Sources: see nominatim-request.ts.
 */

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
  /** `places:v1:<endpoint>:<upstreamQuery>`, or `places:v1:<endpoint>:h:<sha256 base64url>` past 200 chars (answer-keys.ts). */
  key: string;
  format: ResponseFormat;
  /** false for /details (debugging endpoint, passed through uncached). */
  cacheable: boolean;
  /** Hint: what a successful answer holds. */
  resultKind?: ResultKind;
  /** Hint: the Content-Type Nominatim gives a successful answer to this request (JSONP included). */
  contentType?: string;
  /** With JSONP: the json_callback as sent upstream, which a successful answer calls. */
  jsonCallback?: string;
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
export const LOOKUP_MAX_COUNT = 50;
/** Nominatim's POLYGON_OUTPUT_MAX_TYPES default. */
export const POLYGON_OUTPUT_MAX_TYPES = 1;
/** server_glue.search_endpoint: `max(1, min(50, params.get_int('limit', 10)))`; docs/api/Search.md: "Maximum: 50". */
export const LIMIT_MIN = 1;
export const LIMIT_MAX = 50;
export const LIMIT_DEFAULT = 10;
/** helpers.zoom_to_rank clamps zoom to 0..18, so every zoom outside maps onto the nearest end. */
export const ZOOM_MIN = 0;
export const ZOOM_MAX = 18;
export const ZOOM_DEFAULT = 18;

export const CT_TEXT = 'text/plain; charset=utf-8';
export const CT_XML = 'text/xml; charset=utf-8';
export const CT_JSON = 'application/json; charset=utf-8';
export const CT_JSONP = 'application/javascript; charset=utf-8';

// ---------------------------------------------------------------------------------------------------------
// Endpoint tables

export type ErrorShape = 'text' | 'xml' | 'json';

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
export const FREE_TEXT_NAMES: ReadonlySet<string> = new Set(FREE_TEXT);
export const STRUCTURED = ['amenity', 'street', 'city', 'county', 'state', 'postalcode', 'country'] as const;
export const OUTPUT_DETAILS = ['addressdetails', 'extratags', 'namedetails', 'entrances', 'transliterate'];
export const POLYGONS = ['polygon_geojson', 'polygon_kml', 'polygon_svg', 'polygon_text', 'polygon_threshold'];
export const PLACE_FORMATS: readonly ResponseFormat[] = ['xml', 'geojson', 'geocodejson', 'json', 'jsonv2'];

function nameTable(names: readonly string[]): ReadonlySet<string> {
  return new Set(names);
}

// `email` (the gateway sends its own) and `debug` (HTML developer output that replaces the requested
// format) are deliberately absent: like any unknown name they are dropped, never forwarded, never keyed.
export const SPECS: Readonly<Record<NominatimEndpoint, EndpointSpec>> = {
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

export const FORMAT_MESSAGES: ReadonlyMap<EndpointSpec, string> = new Map(
  Object.values(SPECS).map((s) => [s, `Parameter 'format' must be one of: ${s.formats.join(', ')}`]),
);

/** DataLayer members (types.py); get_layers upper-cases each entry (and does not strip it). */
export const LAYERS = new Set(['ADDRESS', 'POI', 'RAILWAY', 'NATURAL', 'MANMADE']);
/** helpers.FEATURE_TYPE_TO_RANK keys; matched case-sensitively by Nominatim. */
export const FEATURE_TYPES = new Set(['country', 'state', 'city', 'settlement']);
