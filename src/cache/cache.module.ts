import { Global, Module } from '@nestjs/common';
import { caching, Cache } from 'cache-manager';
import { redisInsStore } from 'cache-manager-redis-yet';
import { CACHE_MANAGER, REDIS_CLIENT, REDIS_SUBSCRIBER } from './cache.constants';
import { clusterAnswerStore } from './cluster-store';
import { RedisConnectionService } from './redis-connection.service';

/**
 * Provides CACHE_MANAGER (cache-manager 5) backed by Redis (or a Redis Cluster, REDIS_CLUSTER_NODES)
 * through cache-manager-redis-yet, or by
 * cache-manager's memory store when REDIS_URL is unset, plus the raw clients for what a key-value
 * cache API cannot express (locks, pacing, pub/sub, SCAN).
 */
@Global()
@Module({
  providers: [
    RedisConnectionService,
    {
      provide: REDIS_CLIENT,
      inject: [RedisConnectionService],
      useFactory: (conn: RedisConnectionService) => conn.client,
    },
    {
      provide: REDIS_SUBSCRIBER,
      inject: [RedisConnectionService],
      useFactory: (conn: RedisConnectionService) => conn.subscriber,
    },
    {
      provide: CACHE_MANAGER,
      inject: [RedisConnectionService],
      useFactory: async (conn: RedisConnectionService): Promise<Cache> => {
        const single = conn.singleClient;
        const cache = conn.cluster
          ? await caching(clusterAnswerStore(conn.cluster.cluster, conn.keys))
          : single
            ? await caching(redisInsStore(single as Parameters<typeof redisInsStore>[0]))
            : await caching('memory', { max: 100_000, ttl: 0 });
        conn.start();
        return cache;
      },
    },
  ],
  exports: [CACHE_MANAGER, REDIS_CLIENT, REDIS_SUBSCRIBER, RedisConnectionService],
})
export class CacheModule {}
