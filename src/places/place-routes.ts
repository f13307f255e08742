import { canonicaliseApi, canonicaliseNominatim, CanonicalResult, NominatimEndpoint } from './nominatim/nominatim-request';
import { pyFloat } from './nominatim/python-values';
import { snapReverseQuery } from './nominatim/reverse-snap';

export type PlaceRoute = { variant: 'api' } | { variant: 'raw'; endpoint: NominatimEndpoint };

/** Every path that answers places, with Nominatim's aliases (clients still call the old .php names). */
export const PLACE_ROUTES: ReadonlyMap<string, PlaceRoute> = new Map<string, PlaceRoute>([
  ['/api', { variant: 'api' }],
  ['/', { variant: 'raw', endpoint: 'search' }],
  ['/search', { variant: 'raw', endpoint: 'search' }],
  ['/search.php', { variant: 'raw', endpoint: 'search' }],
  ['/reverse', { variant: 'raw', endpoint: 'reverse' }],
  ['/reverse.php', { variant: 'raw', endpoint: 'reverse' }],
  ['/lookup', { variant: 'raw', endpoint: 'lookup' }],
  ['/lookup.php', { variant: 'raw', endpoint: 'lookup' }],
  ['/status', { variant: 'raw', endpoint: 'status' }],
  ['/status.php', { variant: 'raw', endpoint: 'status' }],
  ['/details', { variant: 'raw', endpoint: 'details' }],
  ['/details.php', { variant: 'raw', endpoint: 'details' }],
]);

/** The paths documented as aliases of the main ones (for Nest's router: without the leading slash). */
export const ALIAS_PATHS: string[] = [...PLACE_ROUTES.keys()].filter((p) => p === '/' || p.endsWith('.php')).map((p) => p.slice(1));

/**
 * Exact match first (the hit path), then Express's leniencies: one trailing slash, other letter case.
 * `//` is not `/` with a trailing slash (Express would route it to `/`): no path has an empty segment.
 */
export function findRoute(path: string): PlaceRoute | undefined {
  const exact = PLACE_ROUTES.get(path);
  if (exact !== undefined) return exact;
  const trimmed = path.length > 2 && path.endsWith('/') ? path.slice(0, -1) : path;
  return PLACE_ROUTES.get(trimmed.toLowerCase());
}

/** Splits a request target into path and query without a full URL parse (hot path). */
export function splitTarget(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** `reverseSnapMeters` (REVERSE_SNAP_METERS): above 0, a reverse question is asked for its cell's centre. */
export function canonicaliseRoute(
  route: PlaceRoute,
  query: string,
  acceptLanguage: string | undefined,
  reverseSnapMeters = 0,
): CanonicalResult {
  const params = new URLSearchParams(query);
  if (reverseSnapMeters > 0 && route.variant === 'raw' && route.endpoint === 'reverse') snapReverseQuery(params, reverseSnapMeters, pyFloat);
  return route.variant === 'api'
    ? canonicaliseApi(params, acceptLanguage)
    : canonicaliseNominatim(route.endpoint, params, acceptLanguage);
}
