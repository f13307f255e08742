import { NominatimPlaceDto } from './place.dto';

/** The answer of GET /api: the contract of the original tutorial service. */
export class ApiAnswerDto {
  /**
   * true when the answer came from the cache (a fresh hit, or a stale copy served while Nominatim is
   * failing or being asked again), false when Nominatim was asked for this request.
   * @example false
   */
  cache: boolean;

  /** Nominatim's `/search?q=…&format=json` result array, unchanged (all fields, Unicode intact); `[]` when nothing matches. */
  data: NominatimPlaceDto[];
}
