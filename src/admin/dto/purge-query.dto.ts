/**
 * Queries of the admin routes. Documentation only: the controller reads the raw query string (a key
 * contains `&` and `=` once decoded, and a question is canonicalised like any request).
 */

/** DELETE /admin/cache */
export class PurgeKeyQueryDto {
  /**
   * The canonical cache key (URL-encoded: it contains `&` and `=`), e.g.
   * `places:v1:search:accept-language=de&addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=berlin`,
   * or the hashed form `places:v1:search:h:…` of a long question. Only answer keys
   * (`places:v1:<search|reverse|lookup|status|details>:…`) are accepted.
   * @example places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=berlin
   */
  key: string;
}

/** DELETE /admin/cache/question */
export class PurgeQuestionQueryDto {
  /**
   * The route the question was asked on: `/api`, `/search`, `/reverse`, `/lookup`, `/status` (or a
   * `.php` alias, or `/`).
   * @example /search
   */
  path: string;

  /**
   * The question itself: `q` and every other parameter exactly as a client sends them (format, limit,
   * lat, lon, osm_ids, …). They are canonicalised like a request, so `q=Berlin` and `q=%20berlin` name
   * one entry. Answers are kept per language: the `accept-language` parameter, else this request's
   * Accept-Language header, names the variant to purge.
   * @example Berlin
   */
  q?: string;
}

/** DELETE /admin/cache/prefix */
export class PurgePrefixQueryDto {
  /**
   * Start of the keys to purge; must start with `places:v1:`. `places:v1:` purges every cached answer,
   * `places:v1:reverse:` one endpoint's. Glob characters match themselves. Fill locks, pacing state and
   * rate-limit counters are never purged.
   * @example places:v1:search:
   */
  prefix: string;
}
