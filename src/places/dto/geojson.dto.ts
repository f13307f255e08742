import { ApiProperty } from '@nestjs/swagger';

// GeoJSON and GeocodeJSON answers (format=geojson / geocodejson). Documentation only.

export class GeoJsonGeometryDto {
  /**
   * GeoJSON geometry type: `Point` unless a polygon output was asked for.
   * @example Point
   */
  type: string;

  /**
   * Coordinates, longitude first: `[lon, lat]` for a Point, nested arrays of them for lines and polygons.
   * @example [13.3888599, 52.5170365]
   */
  @ApiProperty({ type: 'array', items: {} })
  coordinates: unknown[];
}

export class GeoJsonPlacePropertiesDto {
  /** @example 100008 */
  place_id: number;

  /** @example node */
  osm_type: 'node' | 'way' | 'relation';

  /** @example 2 */
  osm_id: number;

  /** @example 15 */
  place_rank: number;

  /**
   * Key of the main OSM tag.
   * @example place
   */
  category: string;

  /**
   * Value of the main OSM tag.
   * @example city
   */
  type: string;

  /** @example 0.20000999999999997 */
  importance: number;

  /** @example city */
  addresstype: string;

  /** @example Berlin */
  name: string;

  /** @example "Berlin, 10117, Deutschland" */
  display_name: string;

  /** With addressdetails=1: address parts by type. */
  address?: Record<string, string>;

  /** With extratags=1. */
  extratags?: Record<string, string> | null;

  /** With namedetails=1. */
  namedetails?: Record<string, string> | null;
}

export class GeoJsonFeatureDto {
  /** @example Feature */
  type: 'Feature';

  properties: GeoJsonPlacePropertiesDto;

  /**
   * Bounding box: west, south, east, north.
   * @example [13.2288599, 52.3570365, 13.5488599, 52.6770365]
   */
  bbox: number[];

  geometry: GeoJsonGeometryDto;
}

/** format=geojson: a FeatureCollection of places (one Feature for /reverse). */
export class GeoJsonFeatureCollectionDto {
  /** @example FeatureCollection */
  type: 'FeatureCollection';

  /** @example "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright" */
  licence: string;

  features: GeoJsonFeatureDto[];
}

export class GeocodeJsonMetaDto {
  /** @example 0.1.0 */
  version: string;

  /** @example "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright" */
  attribution: string;

  /** @example ODbL */
  licence: string;

  /**
   * The query as Nominatim understood it.
   * @example Berlin
   */
  query?: string;
}

/** One place in GeocodeJSON; address fields appear with addressdetails=1 when the place has them. */
export class GeocodeJsonPlaceDto {
  /** @example 100008 */
  place_id: number;

  /** @example node */
  osm_type: 'node' | 'way' | 'relation';

  /** @example 2 */
  osm_id: number;

  /** @example place */
  osm_key: string;

  /** @example city */
  osm_value: string;

  /**
   * GeocodeJSON type: `house`, `street`, `locality`, `city`, `region`, `country`, … or the OSM value.
   * @example city
   */
  type: string;

  /** @example "Berlin, 10117, Deutschland" */
  label: string;

  /** @example Berlin */
  name?: string;

  housenumber?: string;

  street?: string;

  locality?: string;

  district?: string;

  /** @example "10117" */
  postcode?: string;

  city?: string;

  county?: string;

  state?: string;

  /** @example Deutschland */
  country?: string;

  /** @example de */
  country_code?: string;

  /** Administrative areas by level (`level4`, `level8`, …). */
  admin?: Record<string, string>;
}

export class GeocodeJsonPropertiesDto {
  geocoding: GeocodeJsonPlaceDto;
}

export class GeocodeJsonFeatureDto {
  /** @example Feature */
  type: 'Feature';

  properties: GeocodeJsonPropertiesDto;

  geometry: GeoJsonGeometryDto;
}

/** format=geocodejson: the GeocodeJSON 0.1 FeatureCollection. */
export class GeocodeJsonDto {
  /** @example FeatureCollection */
  type: 'FeatureCollection';

  geocoding: GeocodeJsonMetaDto;

  features: GeocodeJsonFeatureDto[];
}
