import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import { answerKeyParts } from '../../cache/answer-keys';
import { CACHE_MANAGER, KEY_PREFIX } from '../../cache/cache.constants';
import { ChannelSubscription } from '../../cache/channel-subscription';
import { RedisConnectionService } from '../../cache/redis-connection.service';
import { redisRefusal, RedisUnavailableError } from '../../cache/redis-guard';
import { SPECS } from '../nominatim/nominatim-params';
import { PlacesCacheService } from './places-cache.service';

/** Every instance listens here; a message is a cache key, or `prefix:<prefix>`. */
export const PURGE_CHANNEL = `${KEY_PREFIX}purge`;
const PREFIX_MESSAGE = 'prefix:';

// eslint-disable-next-line no-control-regex -- rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;
export const MAX_KEY_LENGTH = 1024;

/** Keys per SCAN page and per UNLINK. */
const SCAN_COUNT = 1000;
const UNLINK_BATCH = 500;
/** A prefix purge stops after this long (under Heroku's 30 s router timeout) and says it is incomplete. */
const PURGE_BUDGET_MS = 20_000;

export interface PurgeResult {
  /** entries removed from the shared cache (Redis, or the memory store in in-memory mode) */
  deleted: number;
  /** entries dropped from this instance's L1; the other instances drop theirs on the broadcast */
  l1Deleted: number;
  /** false when a prefix purge ran out of time: run it again to finish */
  complete: boolean;
}

/**
 * The purge could not be finished through Redis; this instance's L1 was purged. Either the shared
 * copies were not removed (Redis unavailable), or they were but the broadcast to the other instances
 * failed (the message says which): running the purge again finishes it.
 */
export class PurgeUnavailableError extends Error {
  constructor(
    readonly l1Deleted: number,
    message = 'Redis is unavailable: the shared cache was not purged',
  ) {
    super(message);
    this.name = 'PurgeUnavailableError';
  }
}

/**
 * Cache entries are `places:v1:<endpoint>:…`, for one of Nominatim's endpoints. Everything else under
 * places:v1: (fill locks, pacing, rate-limit counters) is working state, never purged, even by the
 * prefix `places:v1:`.
 */
export function isEntryKey(key: string): boolean {
  if (key.length > MAX_KEY_LENGTH || CONTROL.test(key)) return false;
  const parts = answerKeyParts(key);
  return parts !== undefined && Object.prototype.hasOwnProperty.call(SPECS, parts.endpoint);
}

/** A prefix may name all entries (`places:v1:`), one endpoint's, or any narrower start of a key. */
export function isPurgeablePrefix(prefix: string): boolean {
  return prefix.length <= MAX_KEY_LENGTH && prefix.startsWith(KEY_PREFIX) && !CONTROL.test(prefix);
}

export { escapeGlob } from '../../cache/redis-keys';

/**
 * Purges answers from both tiers: the shared cache (SCAN + UNLINK in batches: never KEYS, never
 * FLUSHDB, never cache-manager's reset(), which flushes the whole database) and the L1 of every
 * instance, through a Redis pub/sub broadcast that every instance subscribes to, whether or not it
 * serves the admin routes.
 */
@Injectable()
export class CachePurgeService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(CachePurgeService.name);
  /** Purge broadcasts from the other instances (null without Redis). */
  private readonly broadcasts: ChannelSubscription | null;
  private readonly onReady = () => void this.broadcasts?.start().catch(() => undefined);

  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    private readonly conn: RedisConnectionService,
    private readonly places: PlacesCacheService,
  ) {
    const subscriber = conn.subscriber;
    this.broadcasts =
      subscriber === null
        ? null
        : new ChannelSubscription({
            subscriber,
            channel: PURGE_CHANNEL,
            onMessage: (message) => this.applyBroadcast(message),
            opTimeoutMs: conn.opTimeoutMs,
            op: 'purge subscribe',
            name: 'Purge broadcast subscription',
            // Refused (an ACL without the channel): this instance would never hear of purges; the
            // connection reports it (readiness, places_redis_refusals_total) while retries are refused.
            refused: (op, error) => conn.noteRefused(op, error),
            logger: this.logger,
          });
  }

  onApplicationBootstrap(): void {
    // Like the fill lock: subscribe whenever the pub/sub connection becomes ready; never wait on Redis.
    this.conn.subscriber?.on('ready', this.onReady);
    if (this.conn.subscriber?.isReady) this.onReady();
  }

  async onModuleDestroy(): Promise<void> {
    this.conn.subscriber?.off('ready', this.onReady);
    await this.broadcasts?.stop();
  }

  /**
   * Removes one entry by its canonical key. This instance drops its L1 copy and remembers the purge
   * twice: first, so that nothing read before is used even if Redis then fails; again once Redis has
   * removed the entry, for a read that raced the UNLINK (PlacesCacheService.purged).
   */
  async purgeKey(key: string): Promise<PurgeResult> {
    const l1Deleted = this.places.purged(key);
    const client = this.conn.client;
    if (client === null) {
      const existed = (await this.cache.get(key)) !== undefined;
      if (existed) await this.cache.del(key);
      this.places.purged(key);
      return { deleted: existed ? 1 : 0, l1Deleted, complete: true };
    }
    let deleted: number;
    try {
      deleted = Number(await this.conn.run('purge', () => client.unlink(this.conn.keys.answer(key))));
    } catch (e) {
      if (e instanceof RedisUnavailableError) throw new PurgeUnavailableError(l1Deleted);
      throw e;
    }
    this.places.purged(key);
    await this.broadcast(key, deleted, l1Deleted);
    return { deleted, l1Deleted, complete: true };
  }

  /** Removes every entry whose key starts with `prefix` (which starts with places:v1:); remembered as purgeKey's. */
  async purgePrefix(prefix: string): Promise<PurgeResult> {
    const l1Deleted = this.places.purged(prefix, true);
    const client = this.conn.client;
    if (client === null) {
      const keys = (await this.cache.store.keys()).filter((k) => k.startsWith(prefix) && isEntryKey(k));
      if (keys.length > 0) await this.cache.store.mdel(...keys);
      this.places.purged(prefix, true);
      return { deleted: keys.length, l1Deleted, complete: true };
    }
    const names = this.conn.keys;
    const match = names.matchFor(prefix);
    const deadline = Date.now() + PURGE_BUDGET_MS;
    let deleted = 0;
    let cursor = 0;
    // One Redis, or every master of a cluster (each holds its own slots' keys); a master unreachable
    // now leaves the purge incomplete.
    const nodes = this.conn.scanClients();
    const missing = this.conn.cluster ? this.conn.cluster.masterCount - nodes.length : 0;
    if (nodes.length === 0) throw new PurgeUnavailableError(l1Deleted);
    try {
      for (const node of nodes) {
        cursor = 0;
        do {
          const page = await this.conn.run('purge scan', () => node.scan(cursor, { MATCH: match, COUNT: SCAN_COUNT }));
          cursor = Number(page.cursor);
          // startsWith as well as MATCH: the glob is escaped, and this keeps it so whatever MATCH does.
          const keys = page.keys.filter((k) => {
            const key = names.canonical(k);
            return key.startsWith(prefix) && isEntryKey(key);
          });
          for (let i = 0; i < keys.length; i += UNLINK_BATCH) {
            const batch = keys.slice(i, i + UNLINK_BATCH);
            deleted += Number(await this.conn.run('purge', () => client.unlink(batch)));
          }
        } while (cursor !== 0 && Date.now() < deadline);
        if (cursor !== 0) break;
      }
    } catch (e) {
      if (e instanceof RedisUnavailableError) throw new PurgeUnavailableError(l1Deleted);
      throw e;
    }
    this.places.purged(prefix, true);
    await this.broadcast(`${PREFIX_MESSAGE}${prefix}`, deleted, l1Deleted);
    if (cursor !== 0) this.logger.warn(`Prefix purge stopped after ${PURGE_BUDGET_MS} ms with ${deleted} entries deleted; run it again to finish`);
    if (missing > 0) this.logger.warn(`Prefix purge skipped ${missing} unreachable cluster master(s); run it again once they are back`);
    return { deleted, l1Deleted, complete: cursor === 0 && missing === 0 };
  }

  /**
   * What another instance (or this one) published, after Redis removed the entries: drop the L1 copies
   * here, and keep a copy a running flight read before from being served as stale-if-error.
   */
  applyBroadcast(message: string): void {
    if (message.startsWith(PREFIX_MESSAGE)) {
      const prefix = message.slice(PREFIX_MESSAGE.length);
      if (isPurgeablePrefix(prefix)) this.places.purged(prefix, true);
    } else if (isEntryKey(message)) {
      this.places.purged(message);
    }
  }

  /**
   * Tells every instance (this one included) to drop its L1 copies. The entries are gone from Redis by
   * now: a failure here must not be reported as "not purged" (a retry only has the broadcast left to
   * do), and is logged, as a Redis user refused PUBLISH on the channel fails every purge this way.
   */
  private async broadcast(message: string, deleted: number, l1Deleted: number): Promise<void> {
    const client = this.conn.client as NonNullable<RedisConnectionService['client']>;
    try {
      await this.conn.run('purge publish', () => client.publish(PURGE_CHANNEL, message));
    } catch (e) {
      if (!(e instanceof RedisUnavailableError)) throw e;
      // A refusal in Redis's words with what it quotes masked: an unknown command quotes its arguments, the key.
      const why = e.cause instanceof Error ? (redisRefusal(e.cause)?.text ?? e.cause.message) : e.message;
      const what = `${deleted} entries removed from Redis, but the purge could not be broadcast to the other instances (${why}): their L1 copies stay until they expire`;
      this.logger.warn(`Purge: ${what}`);
      throw new PurgeUnavailableError(l1Deleted, `${what}; run it again`);
    }
  }
}
