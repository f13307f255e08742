/**
 * One place as Nominatim's JSON formats render it (documentation only; the gateway passes the
 * upstream's bytes through unchanged). See Nominatim's docs/api/Output.md.
 */
export abstract class PlaceBaseDto {
  /**
   * Nominatim's internal id of the place; differs between Nominatim installations and over time.
   * @example 100008
   */
  place_id: number;

  /**
   * Data licence, which applies to the answer.
   * @example "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright"
   */
  licence: string;

  /**
   * Type of the OSM object the place was made from.
   * @example node
   */
  osm_type: 'node' | 'way' | 'relation';

  /**
   * Id of the OSM object.
   * @example 2
   */
  osm_id: number;

  /**
   * Latitude of the centroid, a decimal string (WGS 84).
   * @example "52.5170365"
   */
  lat: string;

  /**
   * Longitude of the centroid, a decimal string (WGS 84).
   * @example "13.3888599"
   */
  lon: string;

  /**
   * Value of the main OSM tag.
   * @example city
   */
  type: string;

  /**
   * Search rank of the place (0–30: country 4, city 16, street 26, house 30).
   * @example 15
   */
  place_rank: number;

  /**
   * Relative importance (0–1) used for ranking.
   * @example 0.20000999999999997
   */
  importance: number;

  /**
   * Address role of the place (e.g. `city`, `road`, `house`).
   * @example city
   */
  addresstype: string;

  /**
   * Name in the requested language, or the local name; empty when the place has none.
   * @example Berlin
   */
  name: string;

  /**
   * Full, comma-separated address in the requested language.
   * @example "Berlin, 10117, Deutschland"
   */
  display_name: string;

  /**
   * With addressdetails=1: address parts by type (`road`, `suburb`, `city`, `postcode`, `country`,
   * `country_code`, …), each a string.
   * @example {"city": "Berlin", "postcode": "10117", "country": "Deutschland", "country_code": "de"}
   */
  address?: Record<string, string>;

  /**
   * With extratags=1: further OSM tags of the place (`wikipedia`, `population`, `opening_hours`, …).
   * @example {"capital": "yes", "population": "3677472"}
   */
  extratags?: Record<string, string> | null;

  /**
   * With namedetails=1: every name of the place by tag (`name`, `name:de`, `official_name`, …).
   * @example {"name": "Berlin", "name:en": "Berlin", "name:ru": "Берлин"}
   */
  namedetails?: Record<string, string> | null;

  /**
   * Bounding box as four decimal strings: south latitude, north latitude, west longitude, east longitude.
   * @example ["52.3570365", "52.6770365", "13.2288599", "13.5488599"]
   */
  boundingbox: string[];

  /** With polygon_geojson=1: the geometry as a GeoJSON geometry object. */
  geojson?: Record<string, unknown>;

  /** With polygon_kml=1: the geometry as KML. */
  geokml?: string;

  /** With polygon_svg=1: the geometry as SVG path data. */
  svg?: string;

  /** With polygon_text=1: the geometry as WKT. */
  geotext?: string;
}

/** A place in format=json (the format of `/api`'s `data`): the main OSM tag key is `class`. */
export class NominatimPlaceDto extends PlaceBaseDto {
  /**
   * Key of the main OSM tag (`place`, `amenity`, `highway`, …).
   * @example place
   */
  class: string;
}

/** A place in format=jsonv2 (the default of /search): the main OSM tag key is `category`. */
export class NominatimPlaceV2Dto extends PlaceBaseDto {
  /**
   * Key of the main OSM tag (`place`, `amenity`, `highway`, …).
   * @example place
   */
  category: string;
}

/** What /reverse answers (HTTP 200) when no place is near the coordinate. */
export class UnableToGeocodeDto {
  /** @example "Unable to geocode" */
  error: string;
}
