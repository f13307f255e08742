/**
 * The gateway's own error body, for every error it makes itself: /api's 400, 429 (rate limit),
 * 502/503/504 (Nominatim failing, overloaded or too slow), on every route.
 */
export class GatewayErrorDto {
  /**
   * The HTTP status, repeated.
   * @example 504
   */
  statusCode: number;

  /**
   * The HTTP reason phrase.
   * @example "Gateway Timeout"
   */
  error: string;

  /**
   * What went wrong, for people.
   * @example "Nominatim did not answer within 10000 ms"
   */
  message: string;

  /**
   * For upstream failures, a machine-readable cause: `upstream_error` (502: Nominatim failed or
   * unreachable), `upstream_invalid` (502: a 200 not in the format asked for, or a 4xx
   * that is not Nominatim's error), `upstream_too_large`
   * (502: past UPSTREAM_MAX_BYTES), `upstream_timeout` (504), `upstream_queue_full`, `upstream_cooldown`,
   * `upstream_refused` or `upstream_unavailable` (503, with Retry-After); `not_cached` (504: the
   * request said only-if-cached and nothing usable is stored).
   * @example upstream_timeout
   */
  code?: string;
}

export class NominatimErrorDetailDto {
  /**
   * The HTTP status, repeated.
   * @example 400
   */
  code: number;

  /**
   * Nominatim's message, word for word.
   * @example "Nothing to search for."
   */
  message: string;
}

/**
 * Nominatim's error body for JSON formats, which the gateway answers itself for invalid requests
 * (nothing invalid is sent upstream). XML formats get `<error><code/><message/></error>`; an invalid
 * `format` gets plain text `ERROR 400: <message>`.
 */
export class NominatimErrorDto {
  error: NominatimErrorDetailDto;
}
