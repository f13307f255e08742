import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import { CACHE_MANAGER } from '../cache/cache.constants';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { RedisUnavailableError } from '../cache/redis-guard';
import { cacheConfig, CacheConfig } from '../config/configuration';
import { CounterSeries, MetricsService } from '../metrics/metrics.service';
import { CachedAnswer, isEmptyAnswer, StoredAnswer } from './cached-answer';
import { FillLock } from './fill-lock';
import { judge, RequestDirectives } from './cache-control';
import { GatewayError, notCached } from './gateway.errors';
import { L1Cache, L1Holder } from './l1-cache';
import { NominatimClient, UpstreamAnswer } from './nominatim.client';
import { CanonicalRequest } from './nominatim-request';

export const FILL_LOCK = 'FILL_LOCK';

/** What the cache did for one request; it becomes X-Cache / Cache-Status / Age and /api's `cache` flag. */
export type CacheOutcome = 'HIT' | 'MISS' | 'STALE' | 'BYPASS';

export interface Resolution {
  answer: CachedAnswer;
  outcome: CacheOutcome;
  /** the answer is in the cache (false for upstream 4xx answers and /details) */
  stored: boolean;
  /** this request waited for another request's upstream call instead of making one */
  collapsed?: boolean;
  tier?: 'l1' | 'l2';
  /** upstream status that made us serve a stale copy */
  fwdStatus?: number;
}

/** What one cache lookup found. */
interface Lookup {
  key: string;
  /** an answer to serve now (fresh, or stale within stale-while-revalidate) */
  hit?: Resolution;
  /** the newest copy seen, fresh or stale, and where it was */
  newest?: CachedAnswer;
  tier?: 'l1' | 'l2';
}

/**
 * A fill-lock attempt made before its request reached `resolve` (see lockAhead): the lock's SET NX and,
 * right behind it on the same connection, one more look for an entry filled elsewhere.
 */
interface LockAttempt {
  lock: FillLock;
  key: string;
  /** the lock's token, or null when another holder has it; rejects when Redis could not be asked */
  token: Promise<string | null>;
  /** what Redis held for the key just after the SET NX (undefined also when the read failed) */
  entry: Promise<CachedAnswer | undefined>;
}

/**
 * Cache-aside for Nominatim answers: L1 (in-process, bytes-bounded) over L2 (CACHE_MANAGER: Redis, or
 * cache-manager's memory store without REDIS_URL). Owns keys' TTLs, staleness (RFC 5861
 * stale-while-revalidate and stale-if-error) and single-flight: one upstream call per question inside
 * this process (shared promise) and across instances (fill lock in Redis, woken by pub/sub).
 * Redis trouble never fails a request: it is bypassed and the answer comes from upstream.
 */
@Injectable()
export class PlacesCacheService implements OnModuleDestroy {
  private readonly logger = new Logger(PlacesCacheService.name);
  readonly l1: L1Cache;
  private readonly inflight = new Map<string, Promise<Resolution>>();
  /** What the front door's lookup found for a request it then handed to Nest (see fromCache's carrier). */
  private readonly lookups = new WeakMap<object, Lookup>();
  /** Front-door requests waiting for a fill of their key to start (see whenFilling). */
  private readonly waiting = new Map<string, Set<(fill: Promise<Resolution>) => void>>();
  /** The fill a front-door request joined before it was handed to Nest (see carry). */
  private readonly joined = new WeakMap<object, Promise<Resolution>>();
  /** Fill-lock attempts made for requests on their way through Nest (see lockAhead). */
  private readonly attempts = new WeakMap<object, LockAttempt>();
  /** Keys whose fill is a stale-while-revalidate refresh (front-door requests do not join it). */
  private readonly refreshing = new Set<string>();
  private readonly keepMs: number;
  private destroyed = false;
  /** places_cache_outcomes_total{outcome="hit"} by tier, counted on the hit path */
  private readonly hits: Record<'l1' | 'l2', CounterSeries>;

  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    @Inject(cacheConfig.KEY) private readonly config: CacheConfig,
    @Inject(FILL_LOCK) private readonly fillLock: FillLock | null,
    private readonly redis: RedisConnectionService,
    private readonly nominatim: NominatimClient,
    private readonly metrics: MetricsService,
  ) {
    this.l1 = new L1Cache(config.l1MaxBytes);
    this.hits = {
      l1: metrics.tally(metrics.cacheOutcomes, { outcome: 'hit', tier: 'l1' }),
      l2: metrics.tally(metrics.cacheOutcomes, { outcome: 'hit', tier: 'l2' }),
    };
    metrics.observeL1(this.l1);
    this.keepMs = Math.max(config.staleIfErrorSeconds, config.staleWhileRevalidateSeconds) * 1000;
  }

  /**
   * The hit path: an answer that may be served now without going upstream (fresh, or stale within
   * stale-while-revalidate, which also starts one background refresh). `undefined` means "go the full way".
   * With a `carrier` (the HTTP request), what was found is kept on it for `resolve`, which then need
   * not read Redis a second time for the same request. `held`: as for fromMemory; an answer read from
   * Redis into L1 is held from then on.
   */
  async fromCache(req: CanonicalRequest, carrier?: object, held?: L1Holder): Promise<Resolution | undefined> {
    const found = await this.lookup(req, held);
    if (found.hit === undefined && carrier !== undefined) this.lookups.set(carrier, found);
    return found.hit;
  }

  /** L1, then L2 when L1 has nothing fresh: what may be served now, and the newest copy seen (for stale-if-error). */
  private async lookup(req: CanonicalRequest, held?: L1Holder): Promise<Lookup> {
    if (!req.cacheable) return { key: req.key };
    const now = Date.now();
    let answer = this.l1.get(req.key, now);
    let tier: 'l1' | 'l2' = 'l1';
    if (answer === undefined || !answer.isFresh(now)) {
      const shared = await this.readShared(req.key).catch(() => undefined);
      if (shared !== undefined && (answer === undefined || shared.storedAt > answer.storedAt)) {
        answer = shared;
        tier = 'l2';
        const slot = this.l1.set(req.key, shared, now);
        if (held !== undefined) held.slot = slot;
      }
    }
    if (answer === undefined) return { key: req.key };
    return { key: req.key, newest: answer, tier, hit: this.servable(req, answer, tier, now) };
  }

  /**
   * Synchronous L1-only variant of `fromCache`, for the front door's fast path. `held` keeps the L1
   * slot between hits of the same request target: while it is live, a hit needs no L1 key lookup.
   */
  fromMemory(req: CanonicalRequest, now: number, held?: L1Holder): Resolution | undefined {
    let answer = held?.slot === undefined ? undefined : this.l1.use(held.slot, now);
    if (answer === undefined) {
      const slot = this.l1.slot(req.key, now);
      if (held !== undefined) held.slot = slot;
      answer = slot?.answer ?? undefined;
    }
    return answer === undefined ? undefined : this.servable(req, answer, 'l1', now);
  }

  /**
   * For the front door, while another request for `key` is on its way through Nest: `join` gets that
   * request's fill as soon as it starts (at once if one runs), as a caller joining a fill gets it
   * (collapsed), so identical misses wait for one upstream call without each going through Nest.
   * The returned function withdraws the wait (the other request ended without a fill).
   */
  whenFilling(key: string, join: (fill: Promise<Resolution>) => void): () => void {
    const running = this.inflight.get(key);
    // A stale-while-revalidate refresh is not joined: its question has a copy to serve at once.
    if (running !== undefined && !this.refreshing.has(key)) {
      join(this.joinFill(running));
      return () => undefined;
    }
    let joiners = this.waiting.get(key);
    if (joiners === undefined) this.waiting.set(key, (joiners = new Set()));
    const set = joiners;
    set.add(join);
    return () => {
      set.delete(join);
      if (set.size === 0 && this.waiting.get(key) === set) this.waiting.delete(key);
    };
  }

  /**
   * For the front door, as it hands Nest a miss that no other request for its key is ahead of: the fill
   * lock is asked for now, while Nest's rate limiter asks Redis about the client, not after it. In a
   * burst each Redis round trip waits behind the arrivals read meanwhile (Redis, the clients and this
   * process share the cores), so one fewer in a row brings the upstream call forward. `resolve(…,
   * carrier)` uses the attempt; the returned function gives the lock back if the request ended without
   * using it (refused by the limiter, or gone). Nothing is attempted without a usable Redis.
   */
  lockAhead(req: CanonicalRequest, carrier: object): () => void {
    const lock = this.redis.isUsable() ? this.fillLock : null;
    if (lock === null || !req.cacheable || this.inflight.has(req.key)) return () => undefined;
    const attempt = this.attemptLock(lock, req.key);
    this.attempts.set(carrier, attempt);
    return () => {
      if (this.attempts.get(carrier) !== attempt) return;
      this.attempts.delete(carrier);
      giveBack(attempt);
    };
  }

  /** `resolve(…, carrier)` then settles as `fill` did (an error, or an answer the front door does not write). */
  carry(carrier: object, fill: Promise<Resolution>): void {
    this.joined.set(carrier, fill);
  }

  /**
   * The full way: cache, then one coalesced, paced upstream call, with stale-if-error as the fallback.
   * `carrier`: the HTTP request the front door already looked up with `fromCache` (nothing servable).
   */
  async resolve(req: CanonicalRequest, carrier?: object): Promise<Resolution> {
    if (!req.cacheable) {
      const up = await this.nominatim.fetch(req);
      this.metrics.cacheOutcomes.inc({ outcome: 'miss', tier: 'none' });
      return { answer: this.transient(up), outcome: 'MISS', stored: false };
    }
    const prior = carrier === undefined ? undefined : this.lookups.get(carrier);
    const ahead = carrier === undefined ? undefined : this.attempts.get(carrier);
    if (carrier !== undefined) {
      this.lookups.delete(carrier);
      this.attempts.delete(carrier);
    }
    let found: Lookup;
    if (prior !== undefined && prior.key === req.key) {
      found = prior;
    } else {
      found = await this.lookup(req);
      if (found.hit !== undefined) {
        if (ahead !== undefined) giveBack(ahead);
        return found.hit;
      }
    }

    // The stale copy comes from L1 or L2 (with L1 disabled, or when another instance filled it).
    const stale = found.newest;
    const joined = carrier === undefined ? undefined : this.joined.get(carrier);
    if (joined !== undefined) this.joined.delete(carrier!);
    // The attempt is this fill's if it is for this key and this request makes the fill.
    const attempt = joined === undefined && ahead?.key === req.key ? ahead : undefined;
    if (ahead !== undefined && attempt === undefined) giveBack(ahead);
    try {
      return await (joined ?? this.fill(req, attempt));
    } catch (e) {
      if (e instanceof GatewayError && stale !== undefined && Date.now() < stale.freshUntil + this.config.staleIfErrorSeconds * 1000) {
        const tier = found.tier ?? 'l1';
        this.metrics.cacheOutcomes.inc({ outcome: 'stale', tier });
        return { answer: stale, outcome: 'STALE', stored: true, tier, fwdStatus: e.upstreamStatus ?? e.getStatus() };
      }
      throw e;
    }
  }

  // --- The client's Cache-Control (RFC 9111 5.2.1), see cache-control.ts ---------------------------------

  /**
   * `resolve` for a request carrying Cache-Control directives: a stored copy is used only as they allow
   * (never to start a background refresh); otherwise only-if-cached answers 504 without asking upstream,
   * no-store asks upstream (paced) and keeps nothing, and anything else fills as a miss does (paced,
   * coalesced), the fresh answer replacing the entry.
   */
  async resolveDirected(req: CanonicalRequest, d: RequestDirectives): Promise<Resolution> {
    if (!req.cacheable) {
      if (d.onlyIfCached) throw notCached();
      return this.resolve(req);
    }
    const asked = Date.now();
    let answer = this.l1.get(req.key, asked);
    let tier: 'l1' | 'l2' = 'l1';
    if (answer === undefined || judge(answer, asked, d) === 'unusable') {
      const shared = d.noCache ? undefined : await this.readShared(req.key).catch(() => undefined);
      if (shared !== undefined && (answer === undefined || shared.storedAt > answer.storedAt)) {
        answer = shared;
        tier = 'l2';
        this.l1.set(req.key, shared, asked);
      }
    }
    const now = Date.now();
    const usable = answer === undefined ? 'unusable' : judge(answer, now, d);
    if (answer !== undefined && usable !== 'unusable') {
      if (usable === 'fresh') this.hits[tier].inc();
      else this.metrics.cacheOutcomes.inc({ outcome: 'stale', tier });
      return { answer, outcome: usable === 'fresh' ? 'HIT' : 'STALE', stored: true, tier };
    }
    if (d.onlyIfCached) throw notCached();
    if (d.noStore) {
      const up = await this.nominatim.fetch(req);
      this.metrics.cacheOutcomes.inc({ outcome: 'miss', tier: 'none' });
      return { answer: this.transient(up), outcome: 'MISS', stored: false };
    }
    // An entry filled elsewhere counts only if it was filled after this request asked (no-cache, max-age=0).
    return this.fill(req, undefined, asked);
  }

  // -----------------------------------------------------------------------------------------------------

  private servable(req: CanonicalRequest, answer: CachedAnswer, tier: 'l1' | 'l2', now: number): Resolution | undefined {
    if (answer.isFresh(now)) {
      this.hits[tier].inc();
      return { answer, outcome: 'HIT', stored: true, tier };
    }
    if (now < answer.freshUntil + this.config.staleWhileRevalidateSeconds * 1000) {
      this.metrics.cacheOutcomes.inc({ outcome: 'stale', tier });
      this.refreshInBackground(req);
      return { answer, outcome: 'STALE', stored: true, tier };
    }
    return undefined;
  }

  /** RFC 5861 stale-while-revalidate: one refresh, through the same coalescing and pacing; never throws. */
  private refreshInBackground(req: CanonicalRequest): void {
    if (this.inflight.has(req.key) || this.destroyed) return;
    this.refreshing.add(req.key);
    this.fill(req)
      .catch((e: Error) => this.logger.debug(`background refresh failed: ${e.message}`))
      .finally(() => this.refreshing.delete(req.key));
  }

  /**
   * One upstream call per key in this process: concurrent callers share the leader's promise.
   * `attempt`: the fill lock asked for ahead (lockAhead), used by this fill or given back.
   */
  private fill(req: CanonicalRequest, attempt?: LockAttempt, filledSince = 0): Promise<Resolution> {
    const running = this.inflight.get(req.key);
    if (running !== undefined) {
      if (attempt !== undefined) giveBack(attempt);
      return this.joinFill(running);
    }
    const p = this.fillAcrossInstances(req, attempt, filledSince).finally(() => this.inflight.delete(req.key));
    this.inflight.set(req.key, p);
    const joiners = this.refreshing.has(req.key) ? undefined : this.waiting.get(req.key);
    if (joiners !== undefined) {
      this.waiting.delete(req.key);
      for (const join of joiners) join(this.joinFill(p));
    }
    return p;
  }

  private joinFill(running: Promise<Resolution>): Promise<Resolution> {
    this.metrics.cacheOutcomes.inc({ outcome: 'coalesced', tier: 'l1' });
    return running.then((r) => ({ ...r, collapsed: true }));
  }

  /** Across instances: the fill-lock holder calls upstream; the others wait for its pub/sub notice. */
  private async fillAcrossInstances(req: CanonicalRequest, ahead?: LockAttempt, filledSince = 0): Promise<Resolution> {
    const lock = this.redis.isUsable() ? this.fillLock : null;
    if (lock === null) {
      if (ahead !== undefined) giveBack(ahead);
      return this.fetchAndStore(req, this.redis.client !== null);
    }

    let token: string | null;
    try {
      const giveUpAt = Date.now() + this.config.fillWaitMs;
      const attempt = ahead ?? this.attemptLock(lock, req.key);
      token = await attempt.token;
      const filled = this.asFilledElsewhere(req, await attempt.entry, filledSince);
      if (filled !== undefined) {
        if (token !== null) void lock.release(req.key, token).catch(() => undefined);
        return filled;
      }
      // The holder gave up or died (its lease ended): take over, or wait for whoever took over first.
      // Past fillWaitMs, go without the lock.
      while (token === null && Date.now() < giveUpAt) {
        await lock.waitForFill(req.key, giveUpAt - Date.now());
        const filled = await this.filledElsewhere(req, filledSince);
        if (filled !== undefined) return filled;
        token = await lock.tryAcquire(req.key);
      }
    } catch {
      return this.fetchAndStore(req, true);
    }
    try {
      return await this.fetchAndStore(req, false);
    } finally {
      // Not awaited: the answer is ready, and a Redis that froze meanwhile must not hold it back.
      if (token !== null) void lock.release(req.key, token).catch(() => undefined);
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
    return { lock, key, token, entry: this.readShared(key).catch(() => undefined) };
  }

  /** A fresh entry another instance filled meanwhile, as a collapsed miss; throws when Redis is unusable. */
  private async filledElsewhere(req: CanonicalRequest, filledSince = 0): Promise<Resolution | undefined> {
    return this.asFilledElsewhere(req, await this.readShared(req.key), filledSince);
  }

  private asFilledElsewhere(req: CanonicalRequest, filled: CachedAnswer | undefined, filledSince = 0): Resolution | undefined {
    if (filled === undefined || !filled.isFresh(Date.now()) || filled.storedAt < filledSince) return undefined;
    this.l1.set(req.key, filled, Date.now());
    this.metrics.cacheOutcomes.inc({ outcome: 'coalesced', tier: 'l2' });
    return { answer: filled, outcome: 'MISS', stored: true, collapsed: true, tier: 'l2' };
  }

  private async fetchAndStore(req: CanonicalRequest, bypass: boolean): Promise<Resolution> {
    const up = await this.nominatim.fetch(req);
    const outcome: CacheOutcome = bypass ? 'BYPASS' : 'MISS';
    // Nominatim's own errors (400, 404, …) go back as they are and are never cached.
    if (up.status !== 200) {
      this.countFill(outcome);
      return { answer: this.transient(up), outcome, stored: false };
    }

    const now = Date.now();
    const empty = isEmptyAnswer(up.body);
    const ttlSeconds = empty
      ? Math.min(this.config.emptyTtlSeconds, this.ttlFor(req))
      : this.ttlFor(req);
    const freshUntil = now + ttlSeconds * 1000;
    const answer = new CachedAnswer(200, up.contentType, up.body, now, freshUntil, freshUntil + this.keepMs, empty);
    this.l1.set(req.key, answer, now);
    if (!bypass) {
      try {
        const stored = this.redis.run('set', () =>
          this.cache.set(req.key, answer.toStored(this.config.compressMinBytes), answer.staleUntil - now),
        );
        // The notice goes right behind the SET on the same connection (one round trip for both): Redis
        // runs it after the SET, so a waiter it wakes reads the entry. Never rejects.
        const notified = this.fillLock !== null && this.redis.client !== null ? this.fillLock.notifyFilled(req.key) : undefined;
        await stored;
        await notified;
      } catch (e) {
        if (!(e instanceof RedisUnavailableError)) throw e;
        this.countFill('BYPASS');
        return { answer, outcome: 'BYPASS', stored: true };
      }
    }
    this.countFill(outcome);
    return { answer, outcome, stored: true };
  }

  /** A fill that went upstream: a miss, or a bypass when Redis could not be used (the answer lives in L1 only). */
  private countFill(outcome: CacheOutcome): void {
    this.metrics.cacheOutcomes.inc(outcome === 'BYPASS' ? { outcome: 'bypass', tier: 'l1' } : { outcome: 'miss', tier: 'l2' });
  }

  private ttlFor(req: CanonicalRequest): number {
    return req.endpoint === 'status' ? this.config.statusTtlSeconds : this.config.ttlSeconds;
  }

  private transient(up: UpstreamAnswer): CachedAnswer {
    const now = Date.now();
    return new CachedAnswer(up.status, up.contentType, up.body, now, now, now, false);
  }

  /** L2 read; throws RedisUnavailableError when Redis cannot be used (callers fail open). */
  private async readShared(key: string): Promise<CachedAnswer | undefined> {
    const stored = await this.redis.run('get', () => this.cache.get<StoredAnswer>(key));
    if (stored === undefined || stored === null) return undefined;
    const answer = CachedAnswer.fromStored(stored, stored.fu + this.keepMs);
    if (answer === null || Date.now() >= answer.staleUntil) return undefined;
    return answer;
  }

  /** Drops one key from both tiers (L1 of other instances is dropped by the purge broadcast). */
  async evict(key: string): Promise<void> {
    this.l1.delete(key);
    await this.redis.run('del', () => this.cache.del(key));
  }

  onModuleDestroy(): void {
    this.destroyed = true;
  }
}

/** Releases the lock an unused attempt took (if it took it). Best effort, never rejects. */
function giveBack(attempt: LockAttempt): void {
  attempt.token.then(
    (token) => {
      if (token !== null) void attempt.lock.release(attempt.key, token);
    },
    () => undefined,
  );
}
