import { HttpException } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';

/**
 * Failures of the path to Nominatim, as our own errors: the exception filter turns them into one JSON
 * shape (and Retry-After where there is one); the cache-aside service may answer a stale copy instead.
 */
export class GatewayError extends HttpException {
  constructor(
    status: number,
    message: string,
    /** short machine-readable cause, e.g. upstream_timeout */
    readonly code: string,
    readonly retryAfterSeconds?: number,
    /** the upstream status, when the cause is an upstream answer */
    readonly upstreamStatus?: number,
  ) {
    // The reason phrase ("Bad Gateway"), as in every other error body; HttpStatus[status] is the enum name.
    super({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', code, message }, status);
  }
}

export const upstreamTimeout = (ms: number) =>
  new GatewayError(504, `Nominatim did not answer within ${ms} ms`, 'upstream_timeout');

export const upstreamFailed = (detail: string, upstreamStatus?: number) =>
  new GatewayError(502, `Nominatim request failed: ${detail}`, 'upstream_error', undefined, upstreamStatus);

/** RFC 9111 5.2.1.7: only-if-cached and nothing usable is stored. */
export const notCached = () =>
  new GatewayError(504, 'Nothing usable is cached for this question (the request said only-if-cached)', 'not_cached');

export const upstreamBusy = (message: string, code: string, retryAfterSeconds: number, upstreamStatus?: number) =>
  new GatewayError(503, message, code, Math.max(1, Math.ceil(retryAfterSeconds)), upstreamStatus);
