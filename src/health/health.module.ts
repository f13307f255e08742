import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PlacesModule } from '../places/places.module';
import { HealthController } from './health.controller';
import { RedisHealthIndicator } from './redis.health';
import { UpstreamHealthIndicator } from './upstream.health';

/** /health/live, /health/ready and /health/upstream (RedisConnectionService comes from the global CacheModule). */
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), PlacesModule],
  controllers: [HealthController],
  providers: [RedisHealthIndicator, UpstreamHealthIndicator],
})
export class HealthModule {}
