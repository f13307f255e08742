/*
 * Why the pacer refuses a caller. Both carry the Retry-After (seconds) the client is told; the Nominatim
 * client turns them into 503 answers.
 */

/** The queue for an upstream slot is longer than callers may wait: answer 503 with Retry-After. */
export class QueueFullError extends Error {
  constructor(public readonly retryAfterSeconds: number) {
    super(`upstream queue is full; retry after ${retryAfterSeconds} s`);
    this.name = 'QueueFullError';
  }
}

/** Upstream answered 429/403 (or 503 with Retry-After) recently; nothing may be sent until the cool-down ends. */
export class CoolingDownError extends Error {
  constructor(public readonly retryAfterSeconds: number) {
    super(`upstream is cooling down; retry after ${retryAfterSeconds} s`);
    this.name = 'CoolingDownError';
  }
}

/** A Retry-After (whole seconds, at least 1) for a wait of `ms`. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
