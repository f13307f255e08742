import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { createClient, RedisClientType } from 'redis';
import { redisConfig, RedisConfig } from '../config/configuration';
import { MetricsService } from '../metrics/metrics.service';
import { KEY_PREFIX } from './cache.constants';
import { redisClientBehaviour } from './redis-client-options';
import { ClusterConnection } from './redis-cluster';
import type { RedisCommandClient, RedisSubscriberClient } from './redis-commands';
import { type RedisRefusal, redisRefusal, RedisUnavailableError } from './redis-guard';
import { RedisKeys } from './redis-keys';
import { type RecentRefusals, RedisRefusals } from './redis-refusals';
import { OperationTimeoutError, withTimeout } from './with-timeout';

/** After a timed-out command, skip Redis this long before trying again (a frozen Redis costs one timeout, not one per request). */
const SUSPEND_AFTER_TIMEOUT_MS = 1000;
/** Longest a graceful QUIT may take on shutdown before the connection is simply closed. */
const QUIT_TIMEOUT_MS = 1000;
/** While REDIS_URL leads to a read-only replica, open the connection again this often (a failover behind a DNS name is followed). */
const READ_ONLY_RETRY_MS = 1000;
/** Written (1 s of life) to learn whether a node is writable when HELLO cannot tell its role. */
const ROLE_PROBE_KEY = `${KEY_PREFIX}role-probe`;
const READ_ONLY_REASON = `the node behind REDIS_URL is a read-only replica; reconnecting every ${READ_ONLY_RETRY_MS / 1000} s until it is a master`;

/** `read_only`: connected, but to a replica (READONLY, or its role at connect): skipped like a Redis that is down. */
type RedisState = 'disabled' | 'connecting' | 'ready' | 'down' | 'read_only';

/**
 * Owns the node-redis connections (command client + pub/sub duplicate) and their lifecycle.
 * We create and connect the clients ourselves, in the background: awaiting a connect in a provider
 * factory would abort start-up when Redis is down, and the service must start and answer without it.
 */
@Injectable()
export class RedisConnectionService implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnectionService.name);
  readonly client: RedisCommandClient | null;
  readonly subscriber: RedisSubscriberClient | null;
  /** REDIS_CLUSTER_NODES mode: the cluster client and its topology; null on one Redis or in memory */
  readonly cluster: ClusterConnection | null = null;
  /** Key names in Redis (hash tags on a cluster only) */
  readonly keys: RedisKeys;
  /** One Redis: the command client (the cache store and SCAN use it directly) */
  private readonly single: RedisClientType | null = null;
  private stateValue: RedisState;
  private closing = false;
  private suspendedUntil = 0;
  /** a command timed out and none has succeeded since (a slow or frozen Redis) */
  private slow = false;
  /** error replies of a Redis that answers but refuses (OOM, NOPERM, MISCONF, …): logged and reported */
  private readonly refusals = new RedisRefusals(this.logger);
  /** the next reconnection while the node is a read-only replica */
  private reopenTimer: NodeJS.Timeout | undefined;
  /** the command connection is being closed on purpose, to be opened again at once */
  private reopening = false;
  /** the last connection led to a read-only replica (Redis skipped until a master is reached, even through an outage) */
  private onReplica = false;
  /** a command that only reads (export) stays on a read-only replica instead of looking for a master */
  private readingReplica = false;

  constructor(
    @Inject(redisConfig.KEY) private readonly config: RedisConfig,
    private readonly metrics: MetricsService,
  ) {
    const connection = config.connection;
    this.keys = new RedisKeys(config.cluster !== null);
    if (config.cluster !== null) {
      this.stateValue = 'connecting';
      metrics.redisConnected.set(0);
      this.cluster = new ClusterConnection(config.cluster, config.opTimeoutMs);
      const cluster = this.cluster;
      metrics.observeRedisCluster(() => cluster.nodes());
      this.client = this.cluster.commands;
      this.subscriber = this.cluster.commands as unknown as RedisSubscriberClient;
      this.cluster.on('ready', () => this.setState('ready', ''));
      this.cluster.on('down', () => {
        if (!this.closing) this.setState('down', '');
      });
      return;
    }
    if (connection === null) {
      this.client = null;
      this.subscriber = null;
      this.stateValue = 'disabled';
      metrics.withoutRedis();
      return;
    }
    this.stateValue = 'connecting';
    metrics.redisConnected.set(0);
    this.single = createClient({
      url: connection.url,
      ...redisClientBehaviour(connection.tls),
    }) as RedisClientType;
    const subscriber = this.single.duplicate() as RedisClientType;
    this.client = this.single;
    this.subscriber = subscriber;
    this.attach(this.single, true);
    this.attach(subscriber, false);
  }

  get state(): RedisState {
    return this.stateValue;
  }

  /** True when a command sent now has a chance to succeed. */
  isUsable(): boolean {
    return this.client !== null && this.client.isReady && Date.now() >= this.suspendedUntil;
  }

  get opTimeoutMs(): number {
    return this.config.opTimeoutMs;
  }

  /**
   * Runs one cache operation with the REDIS_OP_TIMEOUT_MS bound. In in-memory mode it just runs.
   * Throws RedisUnavailableError when Redis cannot be used now, so callers can fail open.
   */
  async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.client === null) return fn();
    if (!this.isUsable()) throw new RedisUnavailableError(this.unusableReason());
    try {
      const result = await withTimeout(fn(), this.config.opTimeoutMs, `redis ${op}`);
      if (this.slow) {
        this.slow = false;
        this.logger.log('Redis answers in time again; shared cache in use');
      }
      return result;
    } catch (e) {
      this.metrics.redisErrors.inc({ op });
      const refusal = redisRefusal(e);
      if (refusal !== undefined) {
        // A replica answers READONLY to every write: the node was demoted (a failover behind a DNS name,
        // maintenance). node-redis stays connected to it for ever; we open the connection again instead.
        if (refusal.kind === 'READONLY' && this.single) this.followToMaster();
        else this.noteRefusal(refusal, op);
        // Redis's words without a key or a question: callers log this message.
        throw new RedisUnavailableError(refusal.text, { cause: e });
      }
      if (e instanceof OperationTimeoutError) {
        // One line per episode (a frozen Redis times out again after every suspension), not one per second.
        if (!this.slow) {
          this.slow = true;
          this.logger.warn(
            `Redis ${op} took longer than ${this.config.opTimeoutMs} ms; bypassing Redis for ${SUSPEND_AFTER_TIMEOUT_MS} ms at a time until it answers in time`,
          );
        }
        // (never shortens the skip of a read-only replica, which lasts until a master is reached)
        this.suspendedUntil = Math.max(this.suspendedUntil, Date.now() + SUSPEND_AFTER_TIMEOUT_MS);
      }
      throw new RedisUnavailableError((e as Error).message, { cause: e });
    }
  }

  /**
   * A command the caller sent on its own connection (a SUBSCRIBE on the pub/sub one) failed: a refusal
   * is logged, counted and reported by readiness like one through run(). True when it was one.
   */
  noteRefused(op: string, error: unknown): boolean {
    const refusal = redisRefusal(error);
    if (refusal === undefined) return false;
    this.noteRefusal(refusal, op);
    return true;
  }

  private noteRefusal(refusal: RedisRefusal, op: string): void {
    this.metrics.redisRefusals.inc({ kind: refusal.kind });
    this.refusals.note(refusal, op);
  }

  private unusableReason(): string {
    if (this.stateValue === 'read_only') return READ_ONLY_REASON;
    return this.client?.isReady ? 'suspended after a timeout' : this.stateValue;
  }

  /** What Redis refused within the last REFUSAL_WINDOW_MS (30 s), by kind; empty when nothing. */
  recentRefusals(): RecentRefusals[] {
    return this.refusals.recent();
  }

  /**
   * For a command that only reads (export): a read-only replica is kept, not reconnected every second
   * in search of a master (which would cut a SCAN short). Its state still reads `read_only` and run()
   * still skips it, so nothing is written to it; the caller reads through singleClient.
   */
  readFromReplica(): void {
    this.readingReplica = true;
    clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
  }

  /** The node-redis client of one Redis (null on a cluster or in memory). */
  get singleClient(): RedisClientType | null {
    return this.single;
  }

  /** Where SCAN must run to see every key: the one Redis, or each reachable cluster master. */
  scanClients(): RedisClientType[] {
    if (this.cluster) return this.cluster.masterClients();
    return this.single ? [this.single] : [];
  }

  /** Connects in the background; start-up never waits for Redis. */
  start(): void {
    if (this.cluster) {
      this.logger.log(`Connecting to Redis Cluster through seeds ${this.config.cluster!.safeNodes.join(', ')}`);
      this.cluster.start();
      return;
    }
    if (!this.single || !this.subscriber) {
      this.logger.log('REDIS_URL is not set: using the in-memory cache (nothing is shared between instances)');
      return;
    }
    this.logger.log(`Connecting to Redis at ${this.config.connection!.safeUrl}`);
    for (const c of [this.single, this.subscriber as RedisClientType]) {
      c.connect().catch(() => {
        // The 'error' listener reports it; node-redis keeps reconnecting on its own.
      });
    }
  }

  private attach(client: RedisClientType, primary: boolean): void {
    // Without an 'error' listener node-redis crashes the process when Redis dies.
    client.on('error', (err: Error) => {
      if (primary && this.stateValue !== 'down' && !this.closing) {
        this.setState('down', `Redis unavailable (${err.message}); serving without the shared cache`);
      }
    });
    if (!primary) return;
    client.on('ready', () => void this.checkRole(client));
    client.on('end', () => {
      if (!this.closing && !this.reopening) this.setState('down', 'Redis connection ended');
    });
  }

  /**
   * On every connection (at start, after an outage, after a reconnection of ours): a read-only replica
   * is skipped before the cache writes to it. A node whose role cannot be told, or that does not answer
   * in time, is taken as writable (a write answered READONLY tells the truth later).
   */
  private async checkRole(client: RedisClientType): Promise<void> {
    const role = await this.roleOf(client);
    if (this.closing || !client.isReady) return;
    if (role === 'read_only') return this.followToMaster();
    if (this.onReplica) {
      this.onReplica = false;
      this.suspendedUntil = 0;
      this.setState('ready', 'Redis behind REDIS_URL is writable again (a master); shared cache in use');
    } else {
      this.setState('ready', 'Redis connected; shared cache in use');
    }
  }

  /**
   * Whether the node takes writes. HELLO names a master at once. A replica may take writes too
   * (`replica-read-only no`), Redis 5 has no HELLO, and HELLO can be renamed away or refused by an ACL:
   * then one write decides, on a key of our own that expires at once (a read-only replica answers
   * READONLY). Without an answer either way the node is taken as writable, and a write answered
   * READONLY tells later; a node taken as writable after READONLY without asking it would be
   * reconnected at every write.
   */
  private async roleOf(client: RedisClientType): Promise<'writable' | 'read_only' | undefined> {
    try {
      const reply = await withTimeout(client.sendCommand<unknown[]>(['HELLO', '2']), this.config.opTimeoutMs, 'redis hello');
      if (Array.isArray(reply) && reply[reply.indexOf('role') + 1] === 'master') return 'writable';
    } catch {
      // told by the write below
    }
    if (!client.isReady) return undefined;
    try {
      await withTimeout(client.set(ROLE_PROBE_KEY, '1', { PX: 1000 }), this.config.opTimeoutMs, 'redis role probe');
      return 'writable';
    } catch (e) {
      return redisRefusal(e)?.kind === 'READONLY' ? 'read_only' : undefined;
    }
  }

  /**
   * The node is a read-only replica: skip Redis as if it were down (misses BYPASS, pacing and rate
   * limits per process) and open the connection again, at once and then every READ_ONLY_RETRY_MS,
   * until it leads to a master: a new connection resolves REDIS_URL's host name again, so a failover
   * that moved the name is followed; a node promoted in place is seen by its role at connect.
   */
  private followToMaster(): void {
    if (this.closing || !this.single) return;
    this.onReplica = true;
    this.suspendedUntil = Number.POSITIVE_INFINITY;
    const first = this.stateValue !== 'read_only';
    this.setState(
      'read_only',
      `Redis at ${this.config.connection!.safeUrl} is a read-only replica (READONLY: a failover or maintenance moved the master); ` +
        `serving without the shared cache, reconnecting every ${READ_ONLY_RETRY_MS / 1000} s until it leads to a master`,
    );
    if (this.reopenTimer || this.readingReplica) return;
    this.reopenTimer = setTimeout(() => void this.reopen(), first ? 0 : READ_ONLY_RETRY_MS);
  }

  private async reopen(): Promise<void> {
    this.reopenTimer = undefined;
    const single = this.single;
    if (this.closing || !single || this.stateValue !== 'read_only') return;
    this.reopening = true;
    try {
      // 'end' is emitted within disconnect(), while `reopening` holds (not an outage to report).
      if (single.isOpen) await single.disconnect();
    } catch {
      // already closed
    } finally {
      this.reopening = false;
    }
    if (this.closing) return;
    // 'ready' checks the role again; a node gone meanwhile is reported by 'error' and retried by node-redis.
    single.connect().catch(() => undefined);
  }

  private setState(state: RedisState, message: string): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.metrics.redisConnected.set(state === 'ready' ? 1 : 0);
    // The cluster logs its own transitions (with the masters reachable).
    if (message === '') return;
    if (state === 'ready') this.logger.log(message);
    else this.logger.warn(message);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.refusals.stop();
    clearTimeout(this.reopenTimer);
    if (this.cluster) return this.cluster.close(QUIT_TIMEOUT_MS);
    await Promise.all(
      [this.subscriber as RedisClientType | null, this.single].map(async (c) => {
        if (!c) return;
        try {
          // A frozen Redis never answers QUIT: give it a moment, then drop the socket.
          if (c.isOpen) await withTimeout(c.quit(), QUIT_TIMEOUT_MS, 'redis quit');
        } catch {
          await c.disconnect().catch(() => undefined);
        }
      }),
    );
  }
}
