import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** DELETE /admin/cache */
export class PurgeKeyQueryDto {
  /**
   * The canonical cache key, as in `places:v1:search:format=jsonv2&limit=10&q=berlin` (or the hashed
   * form `places:v1:search:h:…` of a long question). Only answer keys (`places:v1:<endpoint>:…`) are accepted.
   */
  @ApiProperty({ example: 'places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=berlin' })
  key: string;
}

/** DELETE /admin/cache/question */
export class PurgeQuestionQueryDto {
  /**
   * The route the question was asked on: `/api`, `/search`, `/reverse`, `/lookup`, `/status` (or a
   * `.php` alias). Every other query parameter is the question itself, exactly as a client sends it;
   * the gateway's canonicaliser turns it into the key, so `q=Berlin` and `q=%20berlin` name one entry.
   */
  @ApiProperty({ example: '/search' })
  path: string;

  /**
   * The question's own parameters (q, format, limit, lat, lon, osm_ids, accept-language, …). An answer
   * cached for a client's Accept-Language header is keyed with that language: pass it as `accept-language`.
   */
  @ApiPropertyOptional({ example: 'Berlin' })
  q?: string;
}

/** DELETE /admin/cache/prefix */
export class PurgePrefixQueryDto {
  /**
   * Start of the keys to purge; must start with `places:v1:`. `places:v1:` purges every cached answer,
   * `places:v1:reverse:` one endpoint's. Fill locks, pacing state and rate-limit counters are never purged.
   */
  @ApiProperty({ example: 'places:v1:search:' })
  prefix: string;
}
