import { HttpException } from '@nestjs/common';
import { errorBody } from './error-writer';

/**
 * Failures of the path upstream, as our own errors: written in the one JSON error shape (and
 * Retry-After where there is one); the pipeline may answer a stale copy instead.
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
    super(errorBody(status, message, code), status);
  }
}
