/**
 * Query of the tutorial route. Validation is done by the shared canonicaliser (nominatim-request.ts),
 * which the front-door hit path runs too, so the fields carry documentation only: a second set of
 * class-validator rules could disagree with it.
 */
export class ApiQueryDto {
  /**
   * Free-text place query, e.g. `san francisco`. Required, not blank, at most 512 characters.
   * Case, surrounding and repeated spaces do not matter: they share one cache entry.
   * @example san francisco
   */
  q: string;
}
