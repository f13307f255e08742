import { ApiProperty } from '@nestjs/swagger';
import { MAX_TEXT_LENGTH } from '../nominatim/nominatim-request';
import { PlaceOutputQueryDto } from './place-output-query.dto';
/**
 * Query of GET /search, exactly Nominatim's parameters (the allow-list in nominatim-request.ts).
 * Documentation only: the shared canonicaliser validates. Give either `q` or structured fields
 * (amenity, street, city, county, state, country, postalcode), never both (400).
 *
 * Swagger UI's "Try it out" fills in and sends every `@example`, so only parameters whose examples make
 * one valid request together with `q` have one; the others (structured fields, `exclude_place_ids`,
 * which would skip the answer, and `json_callback`, which turns it into JSONP) give theirs in the text.
 */
export class SearchQueryDto extends PlaceOutputQueryDto {
  /**
   * Free-form query, e.g. `pilkington avenue, birmingham` or `[bakery] in berlin`. Processed left to
   * right, then right to left if that fails; commas are optional but help. Case, surrounding and
   * repeated spaces do not matter (one cache entry). Not together with the structured fields.
   * @example berlin
   */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  q?: string;

  /**
   * Structured search: name and/or type of a point of interest, e.g. `Brandenburger Tor`.
   */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  amenity?: string;

  /**
   * Structured search: house number and street name, e.g. `Unter den Linden 1`.
   */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  street?: string;

  /**
   * Structured search: city, e.g. `Berlin`.
   */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  city?: string;

  /** Structured search: county. */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  county?: string;

  /** Structured search: state. */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  state?: string;

  /**
   * Structured search: country, e.g. `Deutschland`.
   */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  country?: string;

  /**
   * Structured search: postal code, e.g. `10117`.
   */
  @ApiProperty({ maxLength: MAX_TEXT_LENGTH })
  postalcode?: string;

  /**
   * Answer format: a JSON array of places (`json` with `class`, `jsonv2` with `category`), a GeoJSON or
   * GeocodeJSON FeatureCollection, or XML (`searchresults`). An unknown value is a 400 in plain text.
   */
  format?: 'xml' | 'json' | 'jsonv2' | 'geojson' | 'geocodejson' = 'jsonv2';

  /** Maximum number of results; values outside 1..50 are clamped. Not a number: 400. */
  @ApiProperty({ type: 'integer', minimum: 1, maximum: 50 })
  limit?: number = 10;

  /** Include the `address` breakdown of every result. */
  addressdetails?: 0 | 1 = 0;

  /**
   * Only results in these countries: comma-separated ISO 3166-1 alpha-2 codes.
   * @example de,ch
   */
  countrycodes?: string;

  /**
   * Preferred area: `<x1>,<y1>,<x2>,<y2>` (lon,lat of any two opposite corners). Results inside
   * rank higher; with `bounded=1` only results inside are returned.
   * @example 13.08,52.34,13.76,52.68
   */
  viewbox?: string;

  /**
   * Legacy spelling of `viewbox` (left,bottom,right,top), used when `viewbox` is absent or empty.
   * @deprecated
   */
  viewboxlbrt?: string;

  /** With `viewbox`: only return results inside the box (an amenity-only search like `[pub]` is then allowed). */
  bounded?: 0 | 1 = 0;

  /**
   * Only results of these data layers: comma-separated `address`, `poi`, `railway`, `natural`,
   * `manmade`. Another name: 400. Ignored when `featureType` is given.
   * @example address,poi
   */
  layer?: string;

  /**
   * Only places of this type in the address layer: `country`, `state`, `city` or `settlement`
   * (case-sensitive; other values select nothing special). Replaces `layer`.
   */
  featureType?: 'country' | 'state' | 'city' | 'settlement';

  /**
   * Skip these places: comma-separated `place_id`s (or OSM ids like `N123`), e.g. the results already
   * shown, to get further, less exact matches; e.g. `100008,100006`.
   */
  exclude_place_ids?: string;

  /** 0 returns every OSM object matching, also when several represent the same real place (e.g. a street split into ways). */
  dedupe?: 0 | 1 = 1;
}
