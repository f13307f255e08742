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
import { SingleFlight } from './cache/single-flight';
import { FIRST_BACKOFF_MS, NominatimClient } from './nominatim/nominatim.client';
import { PlacePipeline } from './place-pipeline';
import { PlacesController } from './places.controller';
import { UpstreamPacer } from './nominatim/upstream-pacer';
import { UpstreamStatus } from './nominatim/upstream-status';
import { pacerKeyPrefix, UpstreamTarget, UPSTREAMS } from './nominatim/upstream-target';

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
      provide: UPSTREAMS,
      inject: [RedisConnectionService, nominatimConfig.KEY, redisConfig.KEY],
      useFactory: (conn: RedisConnectionService, n: NominatimConfig, r: RedisConfig): UpstreamTarget[] =>
        n.upstreams.map((u, i) => {
          const pacer = new UpstreamPacer(
            conn.client,
            {
              minIntervalMs: 1000 / u.maxRps,
              maxWaitMs: n.queueMaxWaitMs,
              // On a cluster both pacer keys carry the tag {pacer}: one script reads and writes them together.
              keyPrefix: conn.cluster ? `${pacerKeyPrefix(KEY_PREFIX, n.upstreams, i)}${conn.keys.tag('pacer')}:` : pacerKeyPrefix(KEY_PREFIX, n.upstreams, i),
              opTimeoutMs: r.opTimeoutMs,
              guard: (op, call) => conn.run(op, call),
              processes: n.pacingProcesses,
            },
            () => conn.isUsable(),
          );
          return { ...u, pacer, status: new UpstreamStatus(pacer), backoffMs: FIRST_BACKOFF_MS, coolingSince: undefined };
        }),
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
              refused: (op, error) => conn.noteRefused(op, error),
              keyName: (key) => conn.keys.answer(key),
            })
          : null,
    },
    { provide: SingleFlight, inject: [FILL_LOCK], useFactory: (lock: FillLock | null) => new SingleFlight(lock) },
  ],
  exports: [PlacesCacheService, PlacePipeline, Fills, CachePurgeService, UPSTREAMS],
})
export class PlacesModule implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    @Inject(FILL_LOCK) private readonly fillLock: FillLock | null,
    private readonly flights: SingleFlight,
    private readonly conn: RedisConnectionService,
  ) {}

  onApplicationBootstrap(): void {
    // Subscribe whenever the pub/sub connection becomes ready; start-up never waits on Redis.
    const subscribe = () => this.fillLock?.start().catch(() => undefined);
    this.conn.subscriber?.on('ready', subscribe);
    if (this.conn.subscriber?.isReady) void subscribe();
  }

  async onModuleDestroy(): Promise<void> {
    this.flights.stop();
    await this.fillLock?.stop().catch(() => undefined);
  }
}
