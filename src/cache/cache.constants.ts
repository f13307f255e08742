/** Same token value as @nestjs/cache-manager's, which cannot carry cache-manager 5 stores under Nest 12. */
export const CACHE_MANAGER = 'CACHE_MANAGER';
/** The node-redis client behind the cache (or null in in-memory mode). */
export const REDIS_CLIENT = 'REDIS_CLIENT';
/** A dedicated connection for pub/sub (a subscribed node-redis client cannot run other commands). */
export const REDIS_SUBSCRIBER = 'REDIS_SUBSCRIBER';
/** Every key this service writes starts with this; bump the version to orphan old entries. */
export const KEY_PREFIX = 'places:v1:';
