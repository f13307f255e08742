import { Inject, Injectable } from '@nestjs/common';
import { throttleConfig, ThrottleConfig } from '../config/configuration';
import { MetricsService } from '../metrics/metrics.service';
import { HitRateLimiter } from './hit-rate-limiter';
import { RedisThrottlerStorage } from './redis-throttler.storage';

const MISSES = 'misses';

/**
 * The per-client allowances of the places routes. Hits (answers from the cache, and requests that
 * joined another's upstream call) are counted in this process's memory, synchronously, so no Redis
 * round trip sits on a hit. Everything else — misses, which may cost an upstream call, invalid and
 * uncacheable requests — is counted in Redis across instances (RATE_LIMIT_MISSES per
 * RATE_LIMIT_WINDOW_SECONDS, then a block of one window), in memory while Redis is unusable.
 */
@Injectable()
export class RateLimits {
  readonly enabled: boolean;
  private readonly hits: HitRateLimiter | null;
  private readonly windowMs: number;

  constructor(
    @Inject(throttleConfig.KEY) private readonly config: ThrottleConfig,
    private readonly storage: RedisThrottlerStorage,
    private readonly metrics: MetricsService,
  ) {
    this.enabled = config.enabled;
    this.windowMs = config.windowSeconds * 1000;
    this.hits = config.enabled ? new HitRateLimiter(config.hitLimit, this.windowMs, config.hitClients) : null;
  }

  /** Seconds until `client` may be served a hit again, or 0 when this one is allowed. */
  hit(client: string, now: number): number {
    const retryAfter = this.hits === null ? 0 : this.hits.take(client, now);
    if (retryAfter > 0) this.metrics.rateLimited.inc({ kind: 'hit' });
    return retryAfter;
  }

  /** Seconds until `client` may make a miss again, or 0 when this one is allowed. */
  async miss(client: string): Promise<number> {
    if (!this.enabled) return 0;
    const r = await this.storage.increment(`${MISSES}:${client}`, this.windowMs, this.config.missLimit, this.windowMs, MISSES);
    if (!r.isBlocked) return 0;
    this.metrics.rateLimited.inc({ kind: 'miss' });
    return Math.max(1, r.timeToBlockExpire);
  }
}
