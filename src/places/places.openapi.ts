import { applyDecorators, type Type } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiHeader,
  ApiOperation,
  ApiProduces,
  ApiResponse,
  getSchemaPath,
  type HeaderObject,
  type ReferenceObject,
} from '@nestjs/swagger';
import { ApiQueryModel } from '../common/api-query-model';
import { ApiAnswerDto } from './dto/api-answer.dto';
import { ApiQueryDto } from './dto/api-query.dto';
import { DetailsQueryDto } from './dto/details-query.dto';
import { GatewayErrorDto, NominatimErrorDto } from '../common/dto/error.dto';
import { GeocodeJsonDto, GeoJsonFeatureCollectionDto } from './dto/geojson.dto';
import { LookupQueryDto } from './dto/lookup-query.dto';
import { PlaceDetailsDto } from './dto/place-details.dto';
import { NominatimPlaceDto, NominatimPlaceV2Dto, UnableToGeocodeDto } from './dto/place.dto';
import { ReverseQueryDto } from './dto/reverse-query.dto';
import { SearchQueryDto } from './dto/search-query.dto';
import { StatusQueryDto } from './dto/status-query.dto';
import { StatusDto } from './dto/status.dto';
import { EXAMPLES } from './openapi-examples';

/**
 * The OpenAPI description of the place routes, kept out of the controller so that it stays thin. The
 * controller works on raw req/res (the shared canonicaliser validates), so parameters are described
 * from the documentation-only DTOs in ./dto, whose JSDoc the Swagger plugin turns into the text.
 */

type Headers = Record<string, HeaderObject | ReferenceObject>;

const REQUEST_ID: Headers = {
  'X-Request-Id': {
    description:
      "The request's id, also in the gateway's log line: the client's own `X-Request-Id` when it is 1–128 " +
      'characters of `A-Z a-z 0-9 _ . : @ -`, else a generated UUID.',
    schema: { type: 'string' },
  },
};

/** What every answer of a place route says about the cache (src/places/answer-writer.ts). */
const CACHE_HEADERS: Headers = {
  'X-Cache': {
    description:
      '`HIT`: a fresh cached copy. `MISS`: Nominatim was asked (and the answer stored). `STALE`: an expired ' +
      'copy, served because Nominatim is failing (stale-if-error) or while it is asked again in the background ' +
      '(stale-while-revalidate). `BYPASS`: the shared cache (Redis) is unavailable; Nominatim was asked.',
    schema: { type: 'string', enum: ['HIT', 'MISS', 'STALE', 'BYPASS'] },
  },
  'Cache-Status': {
    description:
      'RFC 9211, e.g. `places-cache; hit; ttl=3542`, `places-cache; fwd=uri-miss; fwd-status=200; stored; ttl=3600`, ' +
      '`places-cache; fwd=stale; fwd-status=503; ttl=-20; detail=stale-if-error`, ' +
      '`places-cache; fwd=bypass; fwd-status=200; detail=shared-cache-unavailable`.',
    schema: { type: 'string' },
  },
  Age: {
    description: 'Seconds since the copy was fetched from Nominatim; `0` for one fetched for this request (`MISS`, `BYPASS`).',
    schema: { type: 'integer', minimum: 0 },
  },
  'Cache-Control': {
    description:
      '`public, max-age=<the copy\'s freshness lifetime>` for a cached answer (0 for a stale one): max-age minus `Age` ' +
      'is the freshness left; `no-store` for one that is not cached: /details, and Nominatim\'s own error answers passed through.',
    schema: { type: 'string' },
  },
  Vary: { description: '`Accept-Language, Accept-Encoding`.', schema: { type: 'string' } },
  ...REQUEST_ID,
};

const RETRY_AFTER: Headers = {
  'Retry-After': { description: 'Seconds to wait before asking again.', schema: { type: 'integer', minimum: 1 } },
};

const NO_STORE: Headers = {
  'Cache-Control': { description: '`no-store`: errors are never cached.', schema: { type: 'string' } },
  ...REQUEST_ID,
};

const ref = (model: new () => unknown) => ({ $ref: getSchemaPath(model) });
const listOf = (model: new () => unknown) => ({ type: 'array' as const, items: ref(model) });

function gatewayError(status: number, description: string, example: object, headers: Headers = {}) {
  return ApiResponse({
    status,
    description,
    headers: { ...headers, ...NO_STORE },
    content: { 'application/json': { schema: ref(GatewayErrorDto), example } },
  });
}

/** The gateway's own failures, on every place route. */
const GATEWAY_ERRORS = [
  ApiExtraModels(GatewayErrorDto),
  gatewayError(414, 'The request target is longer than MAX_URL_BYTES (default 4096 bytes).', {
    statusCode: 414,
    error: 'URI Too Long',
    message: 'The request target is longer than 4096 bytes',
  }),
  gatewayError(
    429,
    'This client exceeded its rate limit (RATE_LIMIT_* settings; cache hits have a higher allowance than misses).',
    { statusCode: 429, error: 'Too Many Requests', message: 'Rate limit exceeded; try again later' },
    RETRY_AFTER,
  ),
  gatewayError(
    502,
    'Nominatim failed (5xx, a redirect, network error: `upstream_error`), answered 200 with something that is not the format ' +
      'asked for or a 4xx that is not Nominatim\'s error, such as a web server\'s HTML 404 (`upstream_invalid`), or answered more than UPSTREAM_MAX_BYTES (`upstream_too_large`), and no stale ' +
      'copy was available. Nothing was cached. Retry-After only when Nominatim answered 503 with one (maintenance): ' +
      'nothing is sent to it until then.',
    {
      statusCode: 502,
      error: 'Bad Gateway',
      code: 'upstream_error',
      message: 'Nominatim request failed: status 500',
    },
    RETRY_AFTER,
  ),
  gatewayError(
    503,
    'Nominatim cannot be asked now: too many uncached requests are waiting for the 1 request/second budget ' +
      '(`upstream_queue_full`), or Nominatim answered 429/403 (or 503 with Retry-After) and the gateway is cooling down ' +
      '(`upstream_refused`, `upstream_cooldown`); no stale copy was available.',
    {
      statusCode: 503,
      error: 'Service Unavailable',
      code: 'upstream_queue_full',
      message: 'Too many uncached requests are waiting for Nominatim (at most 1 request/second); try again later',
    },
    RETRY_AFTER,
  ),
  gatewayError(504, 'Nominatim did not answer within UPSTREAM_TIMEOUT_MS and no stale copy was available.', {
    statusCode: 504,
    error: 'Gateway Timeout',
    code: 'upstream_timeout',
    message: 'Nominatim did not answer within 10000 ms',
  }),
];

const ACCEPT_LANGUAGE = ApiHeader({
  name: 'Accept-Language',
  required: false,
  description: 'Preferred languages for names, when no `accept-language` parameter is given; part of the cache key.',
});

const CLIENT_REQUEST_ID = ApiHeader({
  name: 'X-Request-Id',
  required: false,
  description: 'Your id for this request (1–128 of `A-Z a-z 0-9 _ . : @ -`); echoed back and logged.',
});

/** Nominatim's 400 for an invalid request, in the shape of the requested format; the gateway answers it itself. */
const NOMINATIM_BAD_REQUEST = applyDecorators(
  ApiExtraModels(NominatimErrorDto),
  ApiResponse({
    status: 400,
    description:
      'Invalid request, answered by the gateway exactly as Nominatim would (nothing invalid is sent upstream): ' +
      'JSON formats get `{"error":{"code":400,"message":…}}`, xml an `<error>` document, an unknown `format` ' +
      'plain text `ERROR 400: …`.',
    headers: NO_STORE,
    content: {
      'application/json': { schema: ref(NominatimErrorDto), example: EXAMPLES.nominatimError },
      'text/xml': { schema: { type: 'string' }, example: EXAMPLES.nominatimErrorXml },
      'text/plain': { schema: { type: 'string' }, example: EXAMPLES.formatError },
    },
  }),
);

const PASS_THROUGH =
  'Answers are Nominatim\'s own bytes, status and Content-Type; identical requests (after normalising names, ' +
  'order, case and spacing) share one cache entry. Also served at the old name `{path}.php`.';

/** GET /api — the tutorial contract `{cache, data}`. */
export function ApiDocs(): MethodDecorator {
  return applyDecorators(
    ApiOperation({
      summary: 'Search places, answered as {cache, data}',
      description:
        'The tutorial contract: Nominatim\'s `/search?q=<q>&format=json` result array in `data`, and whether it came ' +
        'from the cache in `cache`. The first request for a question misses (`cache: false`) and asks Nominatim; ' +
        'the same question within the TTL (CACHE_TTL_SECONDS) is a hit (`cache: true`). Case, surrounding and ' +
        'repeated spaces do not matter. Errors are JSON `{statusCode, error, message, code?}`.',
    }),
    ApiQueryModel(ApiQueryDto),
    ACCEPT_LANGUAGE,
    CLIENT_REQUEST_ID,
    ApiResponse({
      status: 200,
      description: 'The results (`data: []` when nothing matches).',
      type: ApiAnswerDto,
      headers: CACHE_HEADERS,
      example: EXAMPLES.api,
    }),
    gatewayError(400, '`q` is missing, blank, longer than 512 characters or contains control characters.', {
      statusCode: 400,
      error: 'Bad Request',
      message: 'q is required',
    }),
    ...GATEWAY_ERRORS,
  );
}

/** What a place route's 200 shows besides the formats all three share. */
interface PlacesAnswer {
  description: string;
  /** /reverse answers one place (or its "Unable to geocode"), /search and /lookup a list. */
  one: boolean;
  /** The JSON answer when nothing matches, if it is not an empty list or collection. */
  noMatch?: new () => unknown;
  jsonExamples: Record<string, { summary: string; value: unknown }>;
  xmlExample?: string;
  jsonpExample?: string;
}

/**
 * GET /search, /reverse and /lookup: one route each, answering places in the same Nominatim formats
 * (jsonv2, json, GeoJSON, GeocodeJSON, XML, JSONP) with the same headers and errors; only the text, the
 * query, whether it is one place or a list, and the examples differ.
 */
function placeRouteDocs(operation: { summary: string; description: string }, query: Type<unknown>, answer: PlacesAnswer): MethodDecorator {
  const place = answer.one ? ref : listOf;
  const noMatch = answer.noMatch === undefined ? [] : [answer.noMatch];
  return applyDecorators(
    ApiExtraModels(NominatimPlaceDto, NominatimPlaceV2Dto, GeoJsonFeatureCollectionDto, GeocodeJsonDto, ...noMatch),
    ApiOperation(operation),
    ApiQueryModel(query),
    ACCEPT_LANGUAGE,
    CLIENT_REQUEST_ID,
    ApiProduces('application/json', 'text/xml', 'application/javascript'),
    ApiResponse({
      status: 200,
      description: answer.description,
      headers: CACHE_HEADERS,
      content: {
        'application/json': {
          schema: {
            anyOf: [
              place(NominatimPlaceV2Dto),
              place(NominatimPlaceDto),
              ref(GeoJsonFeatureCollectionDto),
              ref(GeocodeJsonDto),
              ...noMatch.map(ref),
            ],
          },
          examples: answer.jsonExamples,
        },
        'text/xml': { schema: { type: 'string' }, example: answer.xmlExample },
        'application/javascript': { schema: { type: 'string' }, example: answer.jsonpExample },
      },
    }),
    NOMINATIM_BAD_REQUEST,
    ...GATEWAY_ERRORS,
  );
}

/** GET /search (also /search.php and /). */
export function SearchDocs(): MethodDecorator {
  return placeRouteDocs(
    {
      summary: 'Search places (Nominatim /search)',
      description:
        'Nominatim\'s search, cached. Give `q` (free form) or structured fields, never both. ' +
        PASS_THROUGH.replace('{path}', '/search') +
        ' `/` is a further alias. `email` and `debug` are not forwarded (the gateway identifies itself).',
    },
    SearchQueryDto,
    {
      description:
        'A list of places in the requested format (`[]` or an empty collection when nothing matches): jsonv2 ' +
        '(default) and json arrays, a GeoJSON or GeocodeJSON FeatureCollection, XML `searchresults`, or JSONP ' +
        'with `json_callback`.',
      one: false,
      jsonExamples: {
        jsonv2: { summary: 'format=jsonv2 (default)', value: EXAMPLES.searchJsonV2 },
        json: { summary: 'format=json', value: EXAMPLES.searchJson },
        geojson: { summary: 'format=geojson', value: EXAMPLES.searchGeoJson },
        geocodejson: { summary: 'format=geocodejson', value: EXAMPLES.searchGeocodeJson },
      },
      xmlExample: EXAMPLES.searchXml,
      jsonpExample: EXAMPLES.searchJsonp,
    },
  );
}

/** GET /reverse (also /reverse.php). */
export function ReverseDocs(): MethodDecorator {
  return placeRouteDocs(
    {
      summary: 'Place at a coordinate (Nominatim /reverse)',
      description: "Nominatim's reverse geocoding, cached. " + PASS_THROUGH.replace('{path}', '/reverse'),
    },
    ReverseQueryDto,
    {
      description:
        'One place in the requested format (XML `reversegeocode` by default), or `{"error":"Unable to geocode"}` ' +
        '(still 200) when nothing is near.',
      one: true,
      noMatch: UnableToGeocodeDto,
      jsonExamples: {
        jsonv2: { summary: 'format=jsonv2', value: EXAMPLES.reverseJsonV2 },
        nomatch: { summary: 'nothing near', value: EXAMPLES.unableToGeocode },
      },
      xmlExample: EXAMPLES.reverseXml,
    },
  );
}

/** GET /lookup (also /lookup.php). */
export function LookupDocs(): MethodDecorator {
  return placeRouteDocs(
    {
      summary: 'Places by OSM id (Nominatim /lookup)',
      description: "Nominatim's lookup of up to 50 OSM objects, cached. " + PASS_THROUGH.replace('{path}', '/lookup'),
    },
    LookupQueryDto,
    {
      description: 'The places found, in the order asked (XML `searchresults` by default, as for /search; `[]` when none).',
      one: false,
      jsonExamples: { json: { summary: 'format=json&osm_ids=N2,W200', value: EXAMPLES.lookupJson } },
    },
  );
}

/** GET /status (also /status.php). */
export function StatusDocs(): MethodDecorator {
  return applyDecorators(
    ApiExtraModels(StatusDto),
    ApiOperation({
      summary: "Nominatim's status (Nominatim /status)",
      description:
        "Nominatim's own status, cached for STATUS_TTL_SECONDS. An upstream `ERROR` (500) is a 502 here. " +
        'For the gateway\'s health see the health endpoints. Also served at `/status.php`.',
    }),
    ApiQueryModel(StatusQueryDto),
    CLIENT_REQUEST_ID,
    ApiProduces('text/plain', 'application/json'),
    ApiResponse({
      status: 200,
      description: '`OK` as text, or the JSON status.',
      headers: CACHE_HEADERS,
      content: {
        'text/plain': { schema: { type: 'string' }, example: 'OK' },
        'application/json': { schema: ref(StatusDto), example: EXAMPLES.status },
      },
    }),
    NOMINATIM_BAD_REQUEST,
    ...GATEWAY_ERRORS,
  );
}

/** GET /details (also /details.php). */
export function DetailsDocs(): MethodDecorator {
  return applyDecorators(
    ApiExtraModels(PlaceDetailsDto, NominatimErrorDto),
    ApiOperation({
      summary: 'Details of one place (Nominatim /details, not cached)',
      description:
        "Nominatim's debugging view of a place, passed through and never cached (`X-Cache: MISS`, " +
        '`Cache-Control: no-store`). Nominatim\'s usage policy discourages using it in applications. Also served at ' +
        '`/details.php`.',
    }),
    ApiQueryModel(DetailsQueryDto),
    ACCEPT_LANGUAGE,
    CLIENT_REQUEST_ID,
    ApiResponse({
      status: 200,
      description: 'The place.',
      headers: CACHE_HEADERS,
      content: { 'application/json': { schema: ref(PlaceDetailsDto), example: EXAMPLES.details } },
    }),
    NOMINATIM_BAD_REQUEST,
    ApiResponse({
      status: 404,
      description: 'No such place (Nominatim\'s answer, passed through).',
      headers: CACHE_HEADERS,
      content: { 'application/json': { schema: ref(NominatimErrorDto), example: EXAMPLES.detailsNotFound } },
    }),
    ...GATEWAY_ERRORS,
  );
}
