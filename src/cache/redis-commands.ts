import type { RedisClientType } from 'redis';

/**
 * The commands the service's own Redis code (pacer, fill lock, purge, rate limits, health) sends:
 * a node-redis client on one Redis, or a ClusterCommands facade over a Redis Cluster.
 */
export type RedisCommandClient = Pick<RedisClientType, 'isReady' | 'set' | 'exists' | 'pTTL' | 'evalSha' | 'eval' | 'publish' | 'unlink' | 'ping'>;

/** The pub/sub side: a dedicated client on one Redis, the cluster's own pub/sub connection on a cluster. */
export type RedisSubscriberClient = Pick<RedisClientType, 'isReady' | 'subscribe' | 'unsubscribe' | 'on' | 'off'>;
