import { ApiProperty } from '@nestjs/swagger';
import { MAX_TEXT_LENGTH } from '../nominatim/nominatim-request';

/**
 * Query of the tutorial route. Validation is done by the shared canonicaliser (nominatim-request.ts),
 * which the front-door hit path runs too, so the fields carry documentation only: a second set of
 * class-validator rules could disagree with it. The limits shown are the canonicaliser's constants.
 */
export class ApiQueryDto {
  /**
   * Free-text place query, e.g. `san francisco`. Required, not blank, at most 512 characters after
   * trimming; control characters are refused. Case, surrounding and repeated spaces do not matter: they
   * share one cache entry (the Unicode normalisation form does, as to Nominatim). Other parameters are ignored.
   * @example berlin
   */
  @ApiProperty({ minLength: 1, maxLength: MAX_TEXT_LENGTH })
  q: string;
}
