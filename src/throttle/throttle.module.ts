import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { throttleConfig, ThrottleConfig } from '../config/configuration';
import { PlacesThrottlerGuard } from './places-throttler.guard';
import { RedisThrottlerStorage } from './redis-throttler.storage';

/** Holds the storage so ThrottlerModule.forRootAsync can inject it. */
@Module({ providers: [RedisThrottlerStorage], exports: [RedisThrottlerStorage] })
class ThrottleStorageModule {}

/**
 * Per-client rate limit of the requests that reach Nest on the places routes (RATE_LIMIT_MISSES per
 * RATE_LIMIT_WINDOW_SECONDS), counted in Redis across instances. A client that goes over is refused
 * for one window (the throttler's block duration).
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      imports: [ThrottleStorageModule],
      inject: [throttleConfig.KEY, RedisThrottlerStorage],
      useFactory: (config: ThrottleConfig, storage: RedisThrottlerStorage) => ({
        throttlers: [
          {
            name: 'misses',
            ttl: config.windowSeconds * 1000,
            limit: config.missLimit,
            blockDuration: config.windowSeconds * 1000,
          },
        ],
        storage,
        // X-RateLimit-* would make a miss's headers differ from a hit's; Retry-After is set on a 429.
        setHeaders: false,
      }),
    }),
  ],
  providers: [{ provide: APP_GUARD, useClass: PlacesThrottlerGuard }],
})
export class ThrottleModule {}
