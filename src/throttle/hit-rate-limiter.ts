/**
 * Per-client allowance for answers served from the cache: a fixed window counted in process memory.
 * Hits cost Nominatim nothing, so they get a higher allowance than misses (which are limited by
 * @nestjs/throttler with its counts in Redis); keeping this count local keeps a Redis round trip off
 * every hit.
 */
export class HitRateLimiter {
  private windowStart = 0;
  private counts = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxClients = 100_000,
  ) {}

  /** Seconds until the client may try again, or 0 when this request is allowed. */
  take(client: string, now: number): number {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now - ((now - this.windowStart) % this.windowMs);
      this.counts = new Map();
    }
    const n = (this.counts.get(client) ?? 0) + 1;
    if (this.counts.size < this.maxClients || this.counts.has(client)) this.counts.set(client, n);
    if (n <= this.limit) return 0;
    return Math.max(1, Math.ceil((this.windowStart + this.windowMs - now) / 1000));
  }
}
