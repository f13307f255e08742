import { resolveRedisConnection } from './redis-url';

export interface RedisClusterConnection {
  /** Seed nodes as full URLs (password included; never log them, use `safeNodes`). */
  nodes: string[];
  /** The same URLs with any password masked: the only form that may be logged. */
  safeNodes: string[];
  tls: boolean;
  /** Credentials of the seed URLs, used for every node the cluster reports (all nodes share them). */
  username: string | undefined;
  password: string | undefined;
}

/**
 * Turns REDIS_CLUSTER_NODES (comma-separated seed nodes, each in any form REDIS_URL accepts) into a
 * cluster connection, or `null` when unset. Seeds are only where discovery starts: the client learns
 * every master and replica from CLUSTER SLOTS. One scheme and one set of credentials for all seeds,
 * since node-redis applies one set of connection defaults to every discovered node.
 */
export function resolveRedisClusterNodes(value: string | undefined): RedisClusterConnection | null {
  const raw = value?.trim() ?? '';
  if (raw === '') return null;
  const entries = raw.split(',').map((s) => s.trim());
  if (entries.some((e) => e === '')) throw new Error('REDIS_CLUSTER_NODES has an empty entry (expects host:port or redis://… seeds, comma-separated)');
  const parsed = entries.map((entry, i) => {
    try {
      const c = resolveRedisConnection(entry, undefined);
      if (c === null) throw new Error('empty');
      return c;
    } catch (e) {
      throw new Error(`REDIS_CLUSTER_NODES entry ${i + 1}: ${(e as Error).message.replace(/^REDIS_URL /, '')}`, { cause: e });
    }
  });
  const urls = parsed.map((c) => new URL(c.url));
  if (urls.some((u) => u.pathname !== '' && u.pathname !== '/')) {
    throw new Error('REDIS_CLUSTER_NODES must not name a database (a cluster has only database 0)');
  }
  if (new Set(parsed.map((c) => c.tls)).size > 1) throw new Error('REDIS_CLUSTER_NODES mixes redis:// and rediss:// seeds');
  if (new Set(urls.map((u) => `${u.username}\n${u.password}`)).size > 1) {
    throw new Error('REDIS_CLUSTER_NODES seeds carry different credentials (all nodes of a cluster share one)');
  }
  return {
    nodes: parsed.map((c) => c.url),
    safeNodes: parsed.map((c) => c.safeUrl),
    tls: parsed[0].tls,
    username: urls[0].username ? decodeURIComponent(urls[0].username) : undefined,
    password: urls[0].password ? decodeURIComponent(urls[0].password) : undefined,
  };
}
