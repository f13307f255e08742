import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { ClusterNotOkError } from '../cache/redis-cluster';
import { RedisConnectionService } from '../cache/redis-connection.service';

/**
 * Readiness of the shared cache: one PING through the cache's own client, bounded by
 * REDIS_OP_TIMEOUT_MS (RedisConnectionService.run). The service answers without Redis (fail open,
 * X-Cache: BYPASS), so a failed round trip is `degraded`, never `down`: a load balancer must keep
 * sending traffic to an instance whose Redis is gone.
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly conn: RedisConnectionService,
  ) {}

  async check(key = 'redis'): Promise<HealthIndicatorResult> {
    const session = this.health.check(key);
    const client = this.conn.client;
    if (client === null) {
      return session.up({ state: 'disabled', message: 'REDIS_URL is not set: in-memory cache, nothing shared between instances' });
    }
    const started = performance.now();
    // On a cluster: PING every master, and list the nodes with which are reachable.
    const cluster = this.conn.cluster ? { mode: 'cluster', nodes: this.conn.cluster.nodes() } : {};
    try {
      await this.conn.run('ping', () => client.ping());
      return session.up({ state: 'ready', ...cluster, responseTimeMs: elapsed(started) });
    } catch (e) {
      return session.degraded({
        state: (e as Error).cause instanceof ClusterNotOkError ? 'cluster_fail' : this.conn.state === 'ready' ? 'unresponsive' : this.conn.state,
        ...cluster,
        message: `${(e as Error).message}; serving without the shared cache (X-Cache: BYPASS)`,
        responseTimeMs: elapsed(started),
      });
    }
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
