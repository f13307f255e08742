import { PlaceOutputQueryDto } from './place-output-query.dto';
/**
 * Query of GET /lookup: places by their OSM ids. Documentation only: the shared canonicaliser
 * (nominatim-request.ts) validates.
 */
export class LookupQueryDto extends PlaceOutputQueryDto {
  /**
   * Up to 50 comma-separated OSM ids, each `N`, `W` or `R` (node, way, relation) and a number. More
   * than 50: 400. Malformed entries are ignored; without any id the answer is an empty list. Results
   * come in the order asked.
   * @example N2,W200
   */
  osm_ids?: string;

  /** Answer format; Nominatim's default for /lookup is XML (`searchresults`, as /search's: Nominatim 5.1 formats both alike). */
  format?: 'xml' | 'json' | 'jsonv2' | 'geojson' | 'geocodejson' = 'xml';

  /** Include the `address` breakdown of every result. */
  addressdetails?: 0 | 1 = 1;
}
