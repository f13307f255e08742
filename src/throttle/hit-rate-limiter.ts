import { LRUCache } from 'lru-cache';

/**
 * Per-client allowance for answers served from the cache: a fixed window counted in process memory.
 * Hits cost Nominatim nothing, so they get a higher allowance than misses (which are limited by
 * @nestjs/throttler with its counts in Redis); keeping this count local keeps a Redis round trip off
 * every hit.
 *
 * At most `maxClients` clients are counted at once (bounded memory under a flood of client keys, such
 * as forged X-Forwarded-For values with TRUST_PROXY): past it the least recently seen client is
 * forgotten, so a client that keeps asking stays counted, and every new one is counted too.
 */
export class HitRateLimiter {
  private windowStart = 0;
  /** requests of each client in the current window; an object, so that a hit costs one lookup */
  private readonly counts: LRUCache<string, { n: number }>;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    maxClients = 100_000,
  ) {
    this.counts = new LRUCache({ max: maxClients });
  }

  /** Seconds until the client may try again, or 0 when this request is allowed. */
  take(client: string, now: number): number {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now - ((now - this.windowStart) % this.windowMs);
      this.counts.clear();
    }
    // get() makes the client the most recently seen.
    const count = this.counts.get(client);
    let n = 1;
    if (count === undefined) this.counts.set(client, { n });
    else n = ++count.n;
    if (n <= this.limit) return 0;
    return Math.max(1, Math.ceil((this.windowStart + this.windowMs - now) / 1000));
  }

  /** Clients counted now. */
  get clients(): number {
    return this.counts.size;
  }
}
