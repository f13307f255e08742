import { Global, Module } from '@nestjs/common';
import { caching, Cache } from 'cache-manager';
import { redisInsStore } from 'cache-manager-redis-yet';
import { cacheConfig, CacheConfig } from '../config/configuration';
import { CACHE_MANAGER, REDIS_CLIENT, REDIS_SUBSCRIBER } from './cache.constants';
import { clusterAnswerStore } from './cluster-store';
import { memoryStoreOptions } from './memory-store';
import { RedisConnectionService } from './redis-connection.service';

/**
 * Provides CACHE_MANAGER (cache-manager 5) backed by Redis (or a Redis Cluster, REDIS_CLUSTER_NODES)
 * through cache-manager-redis-yet, or by cache-manager's memory store when REDIS_URL is unset (bounded
 * in bytes: memory-store.ts), plus the raw clients for what a key-value cache API cannot express
 * (locks, pacing, pub/sub, SCAN).
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
      inject: [RedisConnectionService, cacheConfig.KEY],
      useFactory: async (conn: RedisConnectionService, config: CacheConfig): Promise<Cache> => {
        const single = conn.singleClient;
        const cache = conn.cluster
          ? await caching(clusterAnswerStore(conn.cluster.cluster, conn.keys))
          : single
            ? await caching(redisInsStore(single as Parameters<typeof redisInsStore>[0]))
            : await caching('memory', memoryStoreOptions(config.l1MaxBytes));
        conn.start();
        return cache;
      },
    },
  ],
  exports: [CACHE_MANAGER, REDIS_CLIENT, REDIS_SUBSCRIBER, RedisConnectionService],
})
export class CacheModule {}
