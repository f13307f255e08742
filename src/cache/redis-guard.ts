/** Raised instead of waiting on a Redis that is down, frozen or still connecting: the caller fails open. */
export class RedisUnavailableError extends Error {
  constructor(reason: string) {
    super(`Redis unavailable: ${reason}`);
    this.name = 'RedisUnavailableError';
  }
}
