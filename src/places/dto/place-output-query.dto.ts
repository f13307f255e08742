/**
 * Output options shared by /search, /reverse and /lookup. Documentation only: the shared canonicaliser
 * (nominatim-request.ts) validates, so that a cache hit and a miss are judged alike. Booleans follow
 * Nominatim: `0` is false, any other value is true.
 */
export abstract class PlaceOutputQueryDto {
  /**
   * JSON formats only: wrap the answer in a call of this function (JSONP), answered as
   * `application/javascript`. Must be a dotted JavaScript identifier (e.g. `handleResults`), else 400.
   */
  json_callback?: string;

  /**
   * Preferred languages for names in the answer: an RFC 9110 Accept-Language string or a
   * comma-separated list of language codes. Defaults to the request's Accept-Language header, so that
   * header is part of the cache key (answers carry `Vary: Accept-Language`).
   * @example de,en
   */
  'accept-language'?: string;

  /** Include the `extratags` object (wikipedia, opening hours, population, …) when the place has any. */
  extratags?: 0 | 1 = 0;

  /** Include the `namedetails` object: every name of the place (`name:de`, `official_name`, …). */
  namedetails?: 0 | 1 = 0;

  /** Include the tagged entrances of the place (newer Nominatim versions; forwarded only when 1). */
  entrances?: 0 | 1 = 0;

  /** Accepted by newer Nominatim versions (forwarded only when 1; Nominatim 5.1 ignores it). */
  transliterate?: 0 | 1 = 0;

  /**
   * Add the place's geometry as GeoJSON (`geojson`). At most one `polygon_*` output may be 1, else 400;
   * with format=geojson or geocodejson only this one is read.
   */
  polygon_geojson?: 0 | 1 = 0;

  /** Add the place's geometry as KML (`geokml`). At most one `polygon_*` output. */
  polygon_kml?: 0 | 1 = 0;

  /** Add the place's geometry as SVG path data (`svg`). At most one `polygon_*` output. */
  polygon_svg?: 0 | 1 = 0;

  /** Add the place's geometry as WKT (`geotext`). At most one `polygon_*` output. */
  polygon_text?: 0 | 1 = 0;

  /**
   * Simplify the output geometry: the tolerance in degrees by which it may differ from the original
   * (topology is kept). Only used with a `polygon_*` output.
   * @example 0.001
   */
  polygon_threshold?: number = 0;
}
