import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { ClusterNotOkError } from '../cache/redis-cluster';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { refusalHint, redisRefusal } from '../cache/redis-guard';
import { REFUSAL_WINDOW_MS, type RecentRefusals } from '../cache/redis-refusals';
import { withTimeout } from '../cache/with-timeout';
import { type FullRedis, fullRedis } from './redis-memory';

/**
 * Readiness of the shared cache: one PING through the cache's own client, bounded by
 * REDIS_OP_TIMEOUT_MS (RedisConnectionService.run). The service answers without Redis (fail open,
 * X-Cache: BYPASS), so a failed round trip is `degraded`, never `down`: a load balancer must keep
 * sending traffic to an instance whose Redis is gone. A Redis that answers PING but refused other
 * commands within the last 30 s (full, an ACL, …) is `degraded` too (`refusing`): PING alone hides it.
 * So is one that INFO memory shows full with noeviction (`full`), which refuses writes even while no
 * request has met a refusal lately.
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
    // Asked beside the PING (one round trip): a full Redis that no request has met lately still refuses.
    const full = this.conn.isUsable() ? this.full() : Promise.resolve(undefined);
    try {
      await this.conn.run('ping', () => client.ping());
      const memory = await full;
      const refused = this.conn.recentRefusals();
      if (refused.length > 0) {
        const message = `${refusingMessage(refused)}${memory ? `; ${fullMessage(memory)}` : ''}`;
        return session.degraded({ state: 'refusing', ...cluster, message, refused, ...(memory && { memory }), responseTimeMs: elapsed(started) });
      }
      if (memory) return session.degraded({ state: 'full', ...cluster, message: fullMessage(memory), memory, responseTimeMs: elapsed(started) });
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

  /**
   * INFO memory of the Redis (every master of a cluster): one that is full with noeviction. Asked
   * outside run(): INFO is not a command of the service, and an ACL without it (the rule in
   * docs/deployment.md) must not read as a refusal; then, or when slow, this is simply not known.
   */
  private async full(): Promise<FullRedis | undefined> {
    try {
      const infos = await withTimeout(Promise.all(this.conn.scanClients().map((c) => c.info('memory'))), this.conn.opTimeoutMs, 'redis info memory');
      return infos.map(fullRedis).find((f) => f !== undefined);
    } catch {
      return undefined;
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

function fullMessage(m: FullRedis): string {
  const mb = (bytes: number) => (bytes / 1048576).toFixed(1);
  return (
    `Redis is full: ${mb(m.usedBytes)} MB used, maxmemory ${mb(m.maxBytes)} MB, maxmemory-policy ${m.policy}: it refuses every write ` +
    `(misses are BYPASS, not stored); use allkeys-lru or raise maxmemory`
  );
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
