import { ApiProperty } from '@nestjs/swagger';
import { PlaceOutputQueryDto } from './place-output-query.dto';
/**
 * Query of GET /reverse: the place at (or nearest to) a coordinate. Documentation only: the shared
 * canonicaliser (nominatim-request.ts) validates.
 */
export class ReverseQueryDto extends PlaceOutputQueryDto {
  /**
   * Latitude (WGS 84). Required; not a number: 400. Outside -90..90 Nominatim answers
   * `{"error":"Unable to geocode"}`.
   * @example 52.5163
   */
  @ApiProperty({ format: 'double' })
  lat: number;

  /**
   * Longitude (WGS 84). Required; not a number: 400.
   * @example 13.3777
   */
  @ApiProperty({ format: 'double' })
  lon: number;

  /**
   * Level of detail: 3 country, 5 state, 8 county, 10 city, 12 town/borough, 13 village/suburb,
   * 14 neighbourhood, 15 any settlement, 16 major streets, 17 major and minor streets, 18 building.
   * Values outside 0..18 are clamped.
   */
  @ApiProperty({ type: 'integer', minimum: 0, maximum: 18 })
  zoom?: number = 18;

  /** Answer format; Nominatim's default for /reverse is XML (`reversegeocode`). */
  format?: 'xml' | 'json' | 'jsonv2' | 'geojson' | 'geocodejson' = 'xml';

  /** Include the `address` breakdown. */
  addressdetails?: 0 | 1 = 1;

  /**
   * Only consider these data layers: comma-separated `address`, `poi`, `railway`, `natural`,
   * `manmade`. Another name: 400.
   * @example address
   */
  layer?: string;
}
