import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { ClusterNotOkError } from '../cache/redis-cluster';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { refusalHint, redisRefusal } from '../cache/redis-guard';
import { REFUSAL_WINDOW_MS, type RecentRefusals } from '../cache/redis-refusals';

/**
 * Readiness of the shared cache: one PING through the cache's own client, bounded by
 * REDIS_OP_TIMEOUT_MS (RedisConnectionService.run). The service answers without Redis (fail open,
 * X-Cache: BYPASS), so a failed round trip is `degraded`, never `down`: a load balancer must keep
 * sending traffic to an instance whose Redis is gone. A Redis that answers PING but refused other
 * commands within the last 30 s (full, an ACL, …) is `degraded` too (`refusing`): PING alone hides it.
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
      const refused = this.conn.recentRefusals();
      if (refused.length > 0) {
        return session.degraded({ state: 'refusing', ...cluster, message: refusingMessage(refused), refused, responseTimeMs: elapsed(started) });
      }
      return session.up({ state: 'ready', ...cluster, responseTimeMs: elapsed(started) });
    } catch (e) {
      return session.degraded({
        state: this.failedState((e as Error).cause),
        ...cluster,
        message: `${(e as Error).message}; serving without the shared cache (X-Cache: BYPASS)`,
        responseTimeMs: elapsed(started),
      });
    }
  }

  /** Why the PING failed, by what it failed with. */
  private failedState(cause: unknown): string {
    if (cause instanceof ClusterNotOkError) return 'cluster_fail';
    if (redisRefusal(cause) !== undefined) return 'refusing';
    return this.conn.state === 'ready' ? 'unresponsive' : this.conn.state;
  }
}

function refusingMessage(refused: RecentRefusals[]): string {
  const kinds = refused.map((r) => {
    const hint = refusalHint(r.kind);
    return `${r.kind} (${r.count} so far, on ${r.ops.join(', ')}): ${hint || r.text}`;
  });
  return `Redis answers PING but refused commands within the last ${REFUSAL_WINDOW_MS / 1000} s: ${kinds.join('; ')}; serving without what was refused`;
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
