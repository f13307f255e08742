/** GET /details (format=json): Nominatim's debugging view of one place. Documentation only. */
export class PlaceDetailsDto {
  /** @example 100008 */
  place_id: number;

  /** @example 100001 */
  parent_place_id?: number;

  /**
   * OSM object type as one letter.
   * @example N
   */
  osm_type: 'N' | 'W' | 'R';

  /** @example 2 */
  osm_id: number;

  /** @example place */
  category: string;

  /** @example city */
  type: string;

  /** @example 4 */
  admin_level: number;

  /** @example Berlin */
  localname: string;

  /**
   * Every name tag of the place.
   * @example {"name": "Berlin", "name:en": "Berlin"}
   */
  names: Record<string, string>;

  /** The object's own `addr:*` tags. */
  addresstags: Record<string, string>;

  housenumber?: string;

  /** @example "10117" */
  calculated_postcode?: string;

  /** @example de */
  country_code: string;

  /** @example "2025-01-01T00:00:00+00:00" */
  indexed_date: string;

  importance?: number;

  /** @example 0.20000999999999997 */
  calculated_importance: number;

  extratags: Record<string, string>;

  calculated_wikipedia?: string;

  /** @example 16 */
  rank_address: number;

  /** @example 15 */
  rank_search: number;

  /** @example false */
  isarea: boolean;

  /**
   * GeoJSON point.
   * @example {"type": "Point", "coordinates": [13.3888599, 52.5170365]}
   */
  centroid: Record<string, unknown>;

  /** GeoJSON geometry: the centroid, or the full geometry with polygon_geojson=1. */
  geometry: Record<string, unknown>;

  /** With addressdetails=1: the address lines, each with `localname`, `class`, `type`, `rank_address`, `isaddress`, … */
  address?: Array<Record<string, unknown>>;

  /** With linkedplaces=1 (default): the places linked to this one. */
  linked_places?: Array<Record<string, unknown>>;

  /** With keywords=1: `name` and `address` search terms. */
  keywords?: Record<string, unknown>;

  /** With hierarchy=1: the places that have this one in their address. */
  hierarchy?: Record<string, unknown>;
}
