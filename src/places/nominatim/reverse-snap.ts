/**
 * Opt-in reverse snapping (REVERSE_SNAP_METERS): a reverse question is moved to the centre of a grid
 * cell about that many metres wide, before it is keyed and before it is asked upstream, so that points
 * a few metres apart (a moving device) share one entry.
 *
 * The grid is in metres, not a geohash: geohash cells come in fixed steps (about 4.9 km, 1.2 km, 153 m,
 * 38 m, 4.8 m…), so a chosen size could only be met within a factor of 5, and their width in metres
 * shrinks with the cosine of the latitude. Here rows are `meters` high everywhere, and each row is cut
 * into cells `meters` wide at the row's centre latitude, so a cell is about meters × meters anywhere
 * (the poles' rows are one cell). The centre is what upstream is asked for: at most about
 * 0.71 × meters from the point asked.
 */

/** Metres per degree of latitude (mean Earth radius 6 371 008.8 m). */
const METERS_PER_DEGREE = (6_371_008.8 * Math.PI) / 180;
/** Nominatim answers coordinates to 7 decimals; more would only spread keys. */
const DECIMALS = 7;

export interface Point {
  lat: number;
  lon: number;
}

/** The centre of the cell holding (lat, lon); a point outside the world is returned unchanged. */
export function snapPoint(point: Point, meters: number): Point {
  const { lat, lon } = point;
  if (!(meters > 0) || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) return point;
  const dLat = meters / METERS_PER_DEGREE;
  const rows = Math.max(1, Math.round(180 / dLat));
  const rowHeight = 180 / rows;
  const row = Math.min(rows - 1, Math.floor((lat + 90) / rowHeight));
  const centreLat = -90 + (row + 0.5) * rowHeight;
  const rowWidthMeters = 360 * METERS_PER_DEGREE * Math.cos((centreLat * Math.PI) / 180);
  const cols = Math.max(1, Math.round(rowWidthMeters / meters));
  const colWidth = 360 / cols;
  const col = Math.min(cols - 1, Math.floor((lon + 180) / colWidth));
  const centreLon = -180 + (col + 0.5) * colWidth;
  return { lat: round(centreLat), lon: round(centreLon) };
}

function round(n: number): number {
  const r = Number(n.toFixed(DECIMALS));
  return r === 0 ? 0 : r;
}

/**
 * Rewrites the last `lat` and `lon` of a reverse query to their cell's centre, when both parse as
 * Nominatim reads them (`parse`); anything else is left for validation to answer as Nominatim would.
 */
export function snapReverseQuery(params: URLSearchParams, meters: number, parse: (value: string) => number | undefined): void {
  if (!(meters > 0)) return;
  const lats = params.getAll('lat');
  const lons = params.getAll('lon');
  if (lats.length === 0 || lons.length === 0) return;
  const lat = parse(lats[lats.length - 1]);
  const lon = parse(lons[lons.length - 1]);
  if (lat === undefined || lon === undefined) return;
  const snapped = snapPoint({ lat, lon }, meters);
  params.set('lat', String(snapped.lat));
  params.set('lon', String(snapped.lon));
}
