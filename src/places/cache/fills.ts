import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import { CACHE_MANAGER } from '../../cache/cache.constants';
import { RedisConnectionService } from '../../cache/redis-connection.service';
import { RedisUnavailableError } from '../../cache/redis-guard';
import { GatewayError } from '../../common/gateway.errors';
import { cacheConfig, CacheConfig } from '../../config/configuration';
import { MetricsService } from '../../metrics/metrics.service';
import { NominatimClient } from '../nominatim/nominatim.client';
import { CanonicalRequest } from '../nominatim/nominatim-request';
import { notCached, passesToWaiters } from '../nominatim/upstream-errors';
import { judge, RequestDirectives } from './cache-control';
import { CachedAnswer, storableContentType } from './cached-answer';
import { isEmptyAnswer } from '../nominatim/empty-answer';
import { FillLock } from './fill-lock';
import { CacheOutcome, PlacesCacheService, Resolution } from './places-cache.service';
import { SingleFlight } from './single-flight';

export const FILL_LOCK = 'FILL_LOCK';

/**
 * A fill-lock attempt made before its fill starts (see lockAhead): the lock's SET NX and, right behind
 * it on the same connection, one more look for an entry filled elsewhere.
 */
export interface LockAttempt {
  lock: FillLock;
  key: string;
  /** the lock's token, or null when another holder has it; rejects when Redis could not be asked */
  token: Promise<string | null>;
  /** what Redis held for the key just after the SET NX (undefined also when the read failed) */
  entry: Promise<CachedAnswer | undefined>;
}

/**
 * Fills, run as the key's one flight (SingleFlight) under the fill lock in Redis, so that one instance
 * calls upstream and the others read what it stored. A fill asks Nominatim and keeps what it answered
 * (L2, then L1, then the notice to waiting instances).
 */
@Injectable()
export class Fills implements OnModuleDestroy {
  private readonly logger = new Logger(Fills.name);
  private destroyed = false;

  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    @Inject(cacheConfig.KEY) private readonly config: CacheConfig,
    @Inject(FILL_LOCK) private readonly fillLock: FillLock | null,
    private readonly redis: RedisConnectionService,
    private readonly nominatim: NominatimClient,
    private readonly places: PlacesCacheService,
    private readonly metrics: MetricsService,
    private readonly flights: SingleFlight,
  ) {}

  /** RFC 5861 stale-while-revalidate: one refresh, through the same flights and pacing; never throws. */
  refresh(req: CanonicalRequest): void {
    if (this.flights.busy(req.key) || this.destroyed) return;
    this.flights.lead(req.key, this.fill(req), true).catch((e: Error) => this.logger.debug(`background refresh failed: ${e.message}`));
  }

  /**
   * Asks for the fill lock now, before the fill needs it (while the client's allowance is checked):
   * in a burst each Redis round trip waits behind the arrivals read meanwhile (Redis, the clients and
   * this process share the cores), so one fewer in a row brings the upstream call forward.
   * Nothing is attempted without a usable Redis.
   */
  lockAhead(req: CanonicalRequest): LockAttempt | undefined {
    const lock = this.redis.isUsable() ? this.fillLock : null;
    return lock === null || !req.cacheable ? undefined : this.attemptLock(lock, req.key);
  }

  /** Releases the lock an unused attempt took (if it took it). Best effort, never rejects. */
  giveBack(attempt: LockAttempt | undefined): void {
    attempt?.token.then(
      (token) => {
        if (token !== null) void attempt.lock.release(attempt.key, token);
      },
      () => undefined,
    );
  }

  /** Counts a request that joined another's flight and got its upstream answer. */
  collapsed(r: Resolution): Resolution {
    return { ...r, collapsed: true };
  }

  /** Straight upstream, nothing kept: a question that is not cached (/details), or one asked with no-store. */
  async passThrough(req: CanonicalRequest): Promise<Resolution> {
    const up = await this.nominatim.fetch(req);
    this.metrics.cacheOutcomes.inc({ outcome: 'miss', tier: 'none' });
    return { kind: 'answer', answer: this.places.transient(up.status, up.contentType, up.body), outcome: 'MISS', stored: false };
  }

  /**
   * For the warm-up command (src/cli): undefined when Redis holds a fresh copy, else the key's one flight
   * (joined if running): the same fill lock and fleet-wide pacer as a miss. A stale copy is refilled,
   * not served. Throws RedisUnavailableError when Redis cannot be read, and the fill's errors.
   */
  async warm(req: CanonicalRequest): Promise<Resolution | undefined> {
    const cached = await this.places.readShared(req.key);
    if (cached !== undefined && cached.isFresh(Date.now())) return undefined;
    // A warm-up that joins a flight (the same question twice in its file) asked nothing itself: collapsed.
    const running = this.flights.running(req.key);
    return running !== undefined ? running.then((r) => r && this.collapsed(r)) : this.flights.lead(req.key, this.fill(req));
  }

  /**
   * A request carrying Cache-Control directives (RFC 9111 5.2.1, see cache-control.ts): a stored copy
   * is used only as they allow (never to start a background refresh); otherwise only-if-cached answers
   * 504 without asking upstream, no-store asks upstream (paced) and keeps nothing, and anything else
   * fills as a miss does (paced, joined to the key's flight), the fresh answer replacing the entry.
   * When that upstream call fails, stale-if-error applies as without directives (RFC 5861 4: "regardless
   * of other freshness information"): an outage answers a reload with the copy, not a 502.
   */
  async directed(req: CanonicalRequest, d: RequestDirectives): Promise<Resolution> {
    if (!req.cacheable) {
      if (d.onlyIfCached) throw notCached();
      return this.passThrough(req);
    }
    const asked = Date.now();
    // Taken before the copy is read: a purge after it keeps the copy from stale-if-error below.
    const seen = this.places.purgeMark();
    const l1 = this.places.l1;
    let answer = l1.get(req.key, asked);
    let tier: 'l1' | 'l2' = 'l1';
    if (answer === undefined || judge(answer, asked, d) === 'unusable') {
      const shared = d.noCache ? undefined : await this.places.readShared(req.key).catch(() => undefined);
      if (shared !== undefined && (answer === undefined || shared.storedAt > answer.storedAt)) {
        answer = shared;
        tier = 'l2';
        l1.set(req.key, shared, asked);
      }
    }
    const usable = answer === undefined ? 'unusable' : judge(answer, Date.now(), d);
    if (answer !== undefined && usable !== 'unusable') {
      // 'stale' only ever comes from the client's max-stale: served as it is, nothing refreshed.
      const r: Resolution = usable === 'fresh' ? { kind: 'answer', answer, outcome: 'HIT', stored: true, tier } : { kind: 'answer', answer, outcome: 'STALE', stored: true, tier, maxStale: true };
      this.places.countHit(r);
      return r;
    }
    if (d.onlyIfCached) throw notCached();
    try {
      const r = await this.directedUpstream(req, d, asked);
      // RFC 9211: the copy found was stale, or fresh and refused by the directives (fwd=request).
      return answer === undefined ? r : { ...r, fwd: answer.isFresh(asked) ? 'request' : 'stale' };
    } catch (e) {
      if (!(e instanceof GatewayError)) throw e;
      // no-cache did not read Redis: it may hold a newer copy than L1's (or the only one).
      const stale = await this.places.staleIfError(req.key, { newest: answer, tier, seen }, e.upstreamStatus ?? e.getStatus(), d);
      if (stale === undefined) throw e;
      return stale;
    }
  }

  /** The upstream part of directed(): no-store's call, or the key's flight. */
  private async directedUpstream(req: CanonicalRequest, d: RequestDirectives, asked: number): Promise<Resolution> {
    if (d.noStore) return this.passThrough(req);
    const running = this.flights.running(req.key);
    const joined = running === undefined ? undefined : await running;
    if (joined !== undefined && joined.answer.storedAt >= asked) {
      const r = this.collapsed(joined);
      this.places.countHit(r);
      return r;
    }
    // An entry filled elsewhere counts only if it was filled after this request asked (no-cache, max-age=0).
    return (await this.flights.lead(req.key, this.fill(req, undefined, asked)))!;
  }

  /**
   * Across instances: the fill-lock holder calls upstream; the others wait for its pub/sub notice, and
   * fail as it failed when it says so (see passesToWaiters), rather than ask again one after another.
   * `filledSince`: an entry another instance stored before then does not count (a no-cache request's).
   */
  async fill(req: CanonicalRequest, ahead?: LockAttempt, filledSince = 0): Promise<Resolution> {
    const lock = this.redis.isUsable() ? this.fillLock : null;
    if (lock === null) {
      this.giveBack(ahead);
      return this.fetchAndStore(req, this.redis.client !== null);
    }

    let token: string | null;
    let failed: GatewayError | undefined;
    try {
      const giveUpAt = Date.now() + this.config.fillWaitMs;
      const attempt = ahead ?? this.attemptLock(lock, req.key);
      token = await attempt.token;
      const filled = this.asFilledElsewhere(req, await attempt.entry, filledSince);
      if (filled !== undefined) {
        if (token !== null) void lock.release(req.key, token).catch(() => undefined);
        return filled;
      }
      // The holder failed upstream: its error is ours too (our caller may serve a stale copy now).
      // It gave up otherwise or died (its lease ended): take over, or wait for whoever took over first.
      // Past fillWaitMs, go without the lock.
      while (token === null && Date.now() < giveUpAt) {
        const outcome = await this.flights.waitForFill(req.key, giveUpAt - Date.now());
        if (typeof outcome === 'object') {
          failed = outcome.failed;
          break;
        }
        const filled = this.asFilledElsewhere(req, await this.places.readShared(req.key), filledSince);
        if (filled !== undefined) return filled;
        token = await lock.tryAcquire(req.key);
      }
    } catch {
      return this.fetchAndStore(req, true);
    }
    if (failed !== undefined) throw failed;
    let held = token !== null;
    // Not awaited: the answer is ready, and a Redis that froze meanwhile must not hold it back.
    const release = () => {
      if (held) void lock.release(req.key, token!).catch(() => undefined);
      held = false;
    };
    try {
      return await this.fetchAndStore(req, false, release);
    } catch (e) {
      // Sent before the release below, on the same connection: waiters hear of the failure before
      // they could see the lock gone and take over.
      if (held && e instanceof GatewayError && passesToWaiters(e)) void lock.notifyFailed(req.key, e);
      throw e;
    } finally {
      release();
    }
  }

  /**
   * Asks for the fill lock of `key`. A holder fills, then releases: our cache lookup can come just
   * before its fill and our lock just after its release (seen as 1 % duplicate upstream calls with rate
   * limiting on). So look once more: a GET sent right behind the SET NX, on the same connection, runs
   * after it in Redis and sees any fill made before our lock, without a round trip of its own.
   */
  private attemptLock(lock: FillLock, key: string): LockAttempt {
    const token = lock.tryAcquire(key);
    // Handled where the attempt is used or given back; never an unhandled rejection meanwhile.
    token.catch(() => undefined);
    return { lock, key, token, entry: this.places.readShared(key).catch(() => undefined) };
  }

  private asFilledElsewhere(req: CanonicalRequest, filled: CachedAnswer | undefined, filledSince = 0): Resolution | undefined {
    if (filled === undefined || !filled.isFresh(Date.now()) || filled.storedAt < filledSince) return undefined;
    this.places.l1.set(req.key, filled, Date.now());
    this.metrics.cacheOutcomes.inc({ outcome: 'coalesced', tier: 'l2' });
    return { kind: 'answer', answer: filled, outcome: 'MISS', stored: true, collapsed: true, tier: 'l2' };
  }

  /**
   * `release`: gives the fill lock back; called right behind the store and its notice, so that they
   * go to Redis in one write (no round trip of its own) and Redis runs them in that order: a waiter
   * hears the notice before it could see the lock gone, and one that sees the lock gone reads the
   * entry. (On a cluster the lock shares the entry's slot, so the SET still runs first; the notice may
   * reach another node later, and a waiter that polls meanwhile finds the lock gone and reads the entry.)
   */
  private async fetchAndStore(req: CanonicalRequest, bypass: boolean, release?: () => void): Promise<Resolution> {
    const up = await this.nominatim.fetch(req);
    const outcome: CacheOutcome = bypass ? 'BYPASS' : 'MISS';
    // Nominatim's own errors (400, 404, …) go back as they are and are never cached.
    if (up.status !== 200) {
      this.countFill(outcome);
      return { kind: 'answer', answer: this.places.transient(up.status, up.contentType, up.body), outcome, stored: false };
    }

    const now = Date.now();
    const empty = isEmptyAnswer(up.body);
    const ttlSeconds = empty ? Math.min(this.config.emptyTtlSeconds, this.ttlFor(req)) : this.ttlFor(req);
    const freshUntil = now + ttlSeconds * 1000;
    const answer = new CachedAnswer(200, storableContentType(up.contentType, req.contentType), up.body, now, freshUntil, freshUntil + this.places.keepMs, empty);
    // A large body's gzip is made off the event loop before it is kept (see ASYNC_GZIP_MIN_BYTES).
    const compressing = answer.compressing(this.config.compressMinBytes);
    if (compressing !== undefined) await compressing;
    this.places.l1.set(req.key, answer, now);
    if (!bypass) {
      try {
        const stored = this.redis.run('set', () =>
          this.cache.set(req.key, answer.toStored(this.config.compressMinBytes), answer.staleUntil - now),
        );
        // The notice goes right behind the SET on the same connection (one round trip for both): Redis
        // runs it after the SET, so a waiter it wakes reads the entry. Never rejects.
        const notified = this.fillLock !== null && this.redis.client !== null ? this.fillLock.notifyFilled(req.key) : undefined;
        release?.();
        await stored;
        await notified;
      } catch (e) {
        if (!(e instanceof RedisUnavailableError)) throw e;
        this.countFill('BYPASS');
        return { kind: 'answer', answer, outcome: 'BYPASS', stored: true };
      }
    }
    this.countFill(outcome);
    return { kind: 'answer', answer, outcome, stored: true };
  }

  /** A fill that went upstream: a miss, or a bypass when Redis could not be used (the answer lives in L1 only). */
  private countFill(outcome: CacheOutcome): void {
    this.metrics.cacheOutcomes.inc(outcome === 'BYPASS' ? { outcome: 'bypass', tier: 'l1' } : { outcome: 'miss', tier: 'l2' });
  }

  private ttlFor(req: CanonicalRequest): number {
    return req.endpoint === 'status' ? this.config.statusTtlSeconds : this.config.ttlSeconds;
  }

  onModuleDestroy(): void {
    this.destroyed = true;
  }
}
