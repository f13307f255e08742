import { GatewayError } from '../../common/gateway.errors';

/** What the gateway says when Nominatim fails, is too slow, or is not asked now. */
export const upstreamTimeout = (ms: number) =>
  new GatewayError(504, `Nominatim did not answer within ${ms} ms`, 'upstream_timeout');

export const upstreamFailed = (detail: string, upstreamStatus?: number) =>
  new GatewayError(502, `Nominatim request failed: ${detail}`, 'upstream_error', undefined, upstreamStatus);

export const upstreamBusy = (message: string, code: string, retryAfterSeconds: number, upstreamStatus?: number) =>
  new GatewayError(503, message, code, Math.max(1, Math.ceil(retryAfterSeconds)), upstreamStatus);

/** A 200 that is not the format asked for (an HTML error page, a truncated body): never stored. */
export const upstreamInvalid = (problem: string) =>
  new GatewayError(502, `Nominatim sent an answer that is not valid: ${problem}`, 'upstream_invalid');

/** An answer past UPSTREAM_MAX_BYTES: its connection is cut as soon as the limit is passed. */
export const upstreamTooLarge = (maxBytes: number) =>
  new GatewayError(502, `Nominatim's answer is larger than ${maxBytes} bytes (UPSTREAM_MAX_BYTES)`, 'upstream_too_large');

/** RFC 9111 5.2.1.7: only-if-cached and nothing usable is stored. */
export const notCached = () =>
  new GatewayError(504, 'Nothing usable is cached for this question (the request said only-if-cached)', 'not_cached');
