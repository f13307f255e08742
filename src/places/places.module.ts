import { HttpModule } from '@nestjs/axios';
import { Inject, Module, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { KEY_PREFIX } from '../cache/cache.constants';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { nominatimConfig, NominatimConfig, redisConfig, RedisConfig } from '../config/configuration';
import { FillLock } from './fill-lock';
import { FIRST_BACKOFF_MS, NominatimClient, UPSTREAM_PACER } from './nominatim.client';
import { FILL_LOCK, PlacesCacheService } from './places-cache.service';
import { PlacesController } from './places.controller';
import { UpstreamPacer } from './upstream-pacer';
import { UpstreamStatus } from './upstream-status';
import { pacerKeyPrefix, UpstreamTarget, UPSTREAMS } from './upstream-target';

@Module({
  imports: [HttpModule],
  controllers: [PlacesController],
  providers: [
    NominatimClient,
    PlacesCacheService,
    {
      provide: UPSTREAMS,
      inject: [RedisConnectionService, nominatimConfig.KEY, redisConfig.KEY],
      useFactory: (conn: RedisConnectionService, n: NominatimConfig, r: RedisConfig): UpstreamTarget[] =>
        n.upstreams.map((u, i) => {
          const pacer = new UpstreamPacer(
            conn.client,
            {
              minIntervalMs: 1000 / u.maxRps,
              maxWaitMs: n.queueMaxWaitMs,
              keyPrefix: pacerKeyPrefix(KEY_PREFIX, n.upstreams, i),
              opTimeoutMs: r.opTimeoutMs,
              guard: (op, call) => conn.run(op, call),
            },
            () => conn.isUsable(),
          );
          return { ...u, pacer, status: new UpstreamStatus(pacer), backoffMs: FIRST_BACKOFF_MS, coolingEpisode: false };
        }),
    },
    { provide: UPSTREAM_PACER, inject: [UPSTREAMS], useFactory: (targets: UpstreamTarget[]) => targets[0].pacer },
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
            })
          : null,
    },
    // The preferred upstream's status; /health/upstream lists every upstream from UPSTREAMS.
    { provide: UpstreamStatus, inject: [UPSTREAMS], useFactory: (targets: UpstreamTarget[]) => targets[0].status },
  ],
  exports: [PlacesCacheService, UpstreamStatus, UPSTREAMS],
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
