import type { Store } from 'cache-manager';
import { redisClusterInsStore } from 'cache-manager-redis-yet';
import type { RedisClusterType } from 'redis';
import type { RedisKeys } from './redis-keys';

/**
 * cache-manager store on a Redis Cluster (cache-manager-redis-yet's redisClusterInsStore), storing each
 * answer under its hash-tagged name (RedisKeys.answer) so that its fill lock shares its slot. Callers
 * keep using canonical keys. Only get/set/del/ttl are used by the service; the bulk operations and
 * reset() (FLUSHDB on every master) are left out on purpose.
 */
export function clusterAnswerStore(cluster: RedisClusterType, keys: RedisKeys): Store {
  const store = redisClusterInsStore(cluster, { rootNodes: [] });
  const unsupported = (what: string) => () => Promise.reject(new Error(`${what} is not supported on the cluster store`));
  return {
    get: (key) => store.get(keys.answer(key)),
    set: (key, value, ttl) => store.set(keys.answer(key), value, ttl),
    del: (key) => store.del(keys.answer(key)),
    ttl: (key) => store.ttl(keys.answer(key)),
    mget: unsupported('mget'),
    mset: unsupported('mset'),
    mdel: unsupported('mdel'),
    keys: unsupported('keys'),
    reset: unsupported('reset'),
  };
}
