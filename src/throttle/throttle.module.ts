import { Module } from '@nestjs/common';
import { RateLimits } from './rate-limits';
import { RedisThrottlerStorage } from './redis-throttler.storage';

/** The per-client allowances, applied by the places pipeline (see RateLimits). */
@Module({ providers: [RedisThrottlerStorage, RateLimits], exports: [RateLimits] })
export class ThrottleModule {}
