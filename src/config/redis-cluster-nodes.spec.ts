import { loadConfig } from './configuration';
import { resolveRedisClusterNodes } from './redis-cluster-nodes';

describe(resolveRedisClusterNodes.name, () => {
  it('is null when unset or blank', () => {
    expect(resolveRedisClusterNodes(undefined)).toBeNull();
    expect(resolveRedisClusterNodes('  ')).toBeNull();
  });

  it('takes host:port and redis:// seeds, with the password masked for logs and kept for every node', () => {
    const c = resolveRedisClusterNodes('redis://:s3cret@10.0.0.1:7000, redis://:s3cret@10.0.0.2:7001');
    expect(c).toEqual({
      nodes: ['redis://:s3cret@10.0.0.1:7000', 'redis://:s3cret@10.0.0.2:7001'],
      safeNodes: ['redis://:***@10.0.0.1:7000', 'redis://:***@10.0.0.2:7001'],
      tls: false,
      username: undefined,
      password: 's3cret',
    });
    expect(resolveRedisClusterNodes('node-a:7000,node-b')?.nodes).toEqual(['redis://node-a:7000', 'redis://node-b:6379']);
  });

  it('turns on TLS for rediss:// seeds', () => {
    expect(resolveRedisClusterNodes('rediss://app:pw@c1.example:6380')).toMatchObject({ tls: true, username: 'app', password: 'pw' });
  });

  it.each([
    ['redis://a:1,,redis://b:2', 'REDIS_CLUSTER_NODES has an empty entry'],
    ['http://a:1', 'REDIS_CLUSTER_NODES entry 1: must use redis:// or rediss://'],
    ['redis://a:1,b:99999', 'REDIS_CLUSTER_NODES entry 2: has an invalid port'],
    ['redis://a:1/2', 'REDIS_CLUSTER_NODES must not name a database'],
    ['redis://a:1,rediss://b:2', 'REDIS_CLUSTER_NODES mixes redis:// and rediss://'],
    ['redis://:x@a:1,redis://:y@b:2', 'REDIS_CLUSTER_NODES seeds carry different credentials'],
  ])('refuses %s', (value, message) => {
    expect(() => resolveRedisClusterNodes(value)).toThrow(message);
  });

  it('is a start-up error naming both when REDIS_URL is set too', () => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis://a:7000', REDIS_URL: 'redis://b:6379' })).toThrow(
      'REDIS_CLUSTER_NODES and REDIS_URL are both set',
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis://a:7000', REDIS_TLS_URL: 'rediss://b:6379' })).toThrow(
      'REDIS_CLUSTER_NODES and REDIS_TLS_URL are both set',
    );
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis://a:7000' }).redis).toMatchObject({ connection: null, cluster: { nodes: ['redis://a:7000'] } });
  });
});
