/**
 * Query of GET /details (Nominatim's debugging endpoint; passed through, never cached). Give `place_id`,
 * or `osmtype` and `osmid`. Documentation only: the shared canonicaliser (nominatim-request.ts) validates.
 */
export class DetailsQueryDto {
  /**
   * Nominatim's internal place id (differs between Nominatim installations). Not a number: 400.
   * @example 100008
   */
  place_id?: number;

  /**
   * OSM object type, with `osmid`: `N` (node), `W` (way) or `R` (relation).
   * @example N
   */
  osmtype?: 'N' | 'W' | 'R';

  /**
   * OSM object id, with `osmtype`. Not a number: 400.
   * @example 2
   */
  osmid?: number;

  /**
   * With `osmtype`/`osmid`: the main OSM tag key, to pick one of several places made from the same object.
   * @example place
   */
  class?: string;

  /** The only format of /details: `json` (anything else is a 400 in plain text). */
  format?: string = 'json';

  /** Wrap the answer in a call of this function (JSONP). */
  json_callback?: string;

  /**
   * Preferred languages for names: an RFC 9110 Accept-Language string or a comma-separated list of
   * language codes. Defaults to the request's Accept-Language header.
   * @example en
   */
  'accept-language'?: string;

  /** Include the address breakdown (`address`). */
  addressdetails?: 0 | 1 = 0;

  /** Include the search terms of the place (`keywords`). */
  keywords?: 0 | 1 = 0;

  /** Include places linked to this one (`linked_places`). */
  linkedplaces?: 0 | 1 = 1;

  /** Include the places whose address is this place (`hierarchy`). */
  hierarchy?: 0 | 1 = 0;

  /** With `hierarchy=1`: group the hierarchy by type. */
  group_hierarchy?: 0 | 1 = 0;

  /** Include the full geometry as GeoJSON (`geometry`) instead of the centroid only. */
  polygon_geojson?: 0 | 1 = 0;

  /** Include the tagged entrances (newer Nominatim versions). */
  entrances?: 0 | 1 = 0;

  /** Accepted by newer Nominatim versions; Nominatim 5.1 ignores it. */
  transliterate?: 0 | 1 = 0;
}
