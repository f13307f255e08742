import { HttpModule } from '@nestjs/axios';
import { Inject, Module, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { KEY_PREFIX } from '../cache/cache.constants';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { nominatimConfig, NominatimConfig, redisConfig, RedisConfig } from '../config/configuration';
import { ThrottleModule } from '../throttle/throttle.module';
import { CachePurgeService } from './cache/cache-purge.service';
import { FillLock } from './cache/fill-lock';
import { FILL_LOCK, Fills } from './cache/fills';
import { PlacesCacheService } from './cache/places-cache.service';
import { NominatimClient, UPSTREAM_PACER } from './nominatim/nominatim.client';
import { PlacePipeline } from './place-pipeline';
import { PlacesController } from './places.controller';
import { UpstreamPacer } from './nominatim/upstream-pacer';
import { UpstreamStatus } from './nominatim/upstream-status';

/**
 * The place routes: the pipeline and its steps, the cache and Nominatim. Purging (and its broadcast)
 * is here too, always registered: every instance must drop its L1 copies when any instance purges,
 * whether or not it serves the admin routes itself.
 */
@Module({
  imports: [HttpModule, ThrottleModule],
  controllers: [PlacesController],
  providers: [
    NominatimClient,
    PlacesCacheService,
    Fills,
    PlacePipeline,
    CachePurgeService,
    {
      provide: UPSTREAM_PACER,
      inject: [RedisConnectionService, nominatimConfig.KEY, redisConfig.KEY],
      useFactory: (conn: RedisConnectionService, n: NominatimConfig, r: RedisConfig) =>
        new UpstreamPacer(
          conn.client,
          {
            minIntervalMs: 1000 / n.maxRps,
            maxWaitMs: n.queueMaxWaitMs,
            // On a cluster both pacer keys carry the tag {pacer}: one script reads and writes them together.
            keyPrefix: conn.cluster ? `${KEY_PREFIX}${conn.keys.tag('pacer')}:` : KEY_PREFIX,
            opTimeoutMs: r.opTimeoutMs,
            guard: (op, call) => conn.run(op, call),
          },
          () => conn.isUsable(),
        ),
    },
    {
      provide: FILL_LOCK,
      inject: [RedisConnectionService, nominatimConfig.KEY, redisConfig.KEY],
      useFactory: (conn: RedisConnectionService, n: NominatimConfig, r: RedisConfig) =>
        conn.client && conn.subscriber
          ? new FillLock(conn.client, conn.subscriber, {
              keyPrefix: KEY_PREFIX,
              leaseMs: n.fillLeaseMs,
              opTimeoutMs: r.opTimeoutMs,
              guard: (op, call) => conn.run(op, call),
              keyName: (key) => conn.keys.answer(key),
            })
          : null,
    },
    { provide: UpstreamStatus, inject: [UPSTREAM_PACER], useFactory: (pacer: UpstreamPacer) => new UpstreamStatus(pacer) },
  ],
  exports: [PlacesCacheService, PlacePipeline, CachePurgeService, UpstreamStatus],
})
export class PlacesModule implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    @Inject(FILL_LOCK) private readonly fillLock: FillLock | null,
    private readonly conn: RedisConnectionService,
  ) {}

  onApplicationBootstrap(): void {
    // Subscribe whenever the pub/sub connection becomes ready; start-up never waits on Redis.
    const subscribe = () => this.fillLock?.start().catch(() => undefined);
    this.conn.subscriber?.on('ready', subscribe);
    if (this.conn.subscriber?.isReady) void subscribe();
  }

  async onModuleDestroy(): Promise<void> {
    await this.fillLock?.stop().catch(() => undefined);
  }
}
