/** Raised instead of waiting on a Redis that is down, frozen or still connecting: the caller fails open. */
export class RedisUnavailableError extends Error {
  /** `cause`: the error the Redis call failed with, when one did (what /health/ready names it by). */
  constructor(reason: string, options?: ErrorOptions) {
    super(`Redis unavailable: ${reason}`, options);
    this.name = 'RedisUnavailableError';
  }
}

/**
 * Runs one Redis call within REDIS_OP_TIMEOUT_MS, rejecting instead of waiting longer. The app passes
 * RedisConnectionService.run, so a timeout seen by one caller makes every caller skip Redis for a while.
 */
export type RedisGuard = <T>(op: string, call: () => Promise<T>) => Promise<T>;
