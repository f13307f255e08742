import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import { getHeapStatistics } from 'node:v8';
import { CACHE_MANAGER } from '../../cache/cache.constants';
import { RedisConnectionService } from '../../cache/redis-connection.service';
import { cacheConfig, CacheConfig } from '../../config/configuration';
import { CounterSeries, MetricsService } from '../../metrics/metrics.service';
import { CanonicalRequest } from '../nominatim/nominatim-request';
import { judge, RequestDirectives } from './cache-control';
import { CachedAnswer, StoredAnswer } from './cached-answer';
import { L1Cache, L1Holder } from './l1-cache';
import { heapWarning } from './l1-memory';
import { RecentPurges } from './recent-purges';

/** What the cache did for one request; it becomes X-Cache / Cache-Status / Age and /api's `cache` flag. */
export type CacheOutcome = 'HIT' | 'MISS' | 'STALE' | 'BYPASS';

/** An answer to write: also the pipeline's `answer` decision (a hit allocates no other object for it). */
export interface Resolution {
  readonly kind: 'answer';
  answer: CachedAnswer;
  outcome: CacheOutcome;
  /** the answer is in the cache (false for upstream 4xx answers and /details) */
  stored: boolean;
  /** this request waited for another request's upstream call instead of making one */
  collapsed?: boolean;
  tier?: 'l1' | 'l2';
  /** upstream status that made us serve a stale copy */
  fwdStatus?: number;
  /** a stale copy the client's max-stale accepted: served without asking upstream, nothing refreshed */
  maxStale?: true;
  /**
   * Why Nominatim was asked although a copy was found (RFC 9211 `fwd`): it was stale, or the client's
   * directives refused it while fresh. Unset: there was none (`uri-miss`).
   */
  fwd?: 'stale' | 'request';
}

/** What one cache lookup found. */
export interface Lookup {
  /** an answer to serve now (fresh, or stale within stale-while-revalidate) */
  hit?: Resolution;
  /** the newest copy seen, fresh or stale, and where it was (for stale-if-error) */
  newest?: CachedAnswer;
  tier?: 'l1' | 'l2';
  /** purgeMark() taken before the copy was read: a purge after it means the copy must not be served */
  seen?: number;
}

/**
 * The two tiers and their staleness: L1 (in-process, bytes-bounded) over L2 (CACHE_MANAGER: Redis, or
 * cache-manager's memory store without REDIS_URL). RFC 5861 decides what may be served: fresh, stale
 * within stale-while-revalidate, and (see staleIfError) stale-if-error. Redis trouble never fails a
 * lookup: L2 is then skipped.
 */
@Injectable()
export class PlacesCacheService {
  private readonly logger = new Logger(PlacesCacheService.name);
  readonly l1: L1Cache;
  /** how long an entry is kept past its freshness: as long as either stale policy may serve it */
  readonly keepMs: number;
  /** places_cache_outcomes_total{outcome="hit"} by tier, counted on the hit path */
  private readonly hits: Record<'l1' | 'l2', CounterSeries>;
  private readonly purges: RecentPurges;

  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    @Inject(cacheConfig.KEY) private readonly config: CacheConfig,
    private readonly redis: RedisConnectionService,
    private readonly metrics: MetricsService,
  ) {
    this.l1 = new L1Cache(config.l1MaxBytes, config.compressMinBytes);
    const tooLarge = heapWarning(config.l1MaxBytes, getHeapStatistics().heap_size_limit);
    if (tooLarge !== undefined) this.logger.warn(tooLarge);
    this.hits = {
      l1: metrics.tally(metrics.cacheOutcomes, { outcome: 'hit', tier: 'l1' }),
      l2: metrics.tally(metrics.cacheOutcomes, { outcome: 'hit', tier: 'l2' }),
    };
    metrics.observeL1(this.l1);
    this.keepMs = Math.max(config.staleIfErrorSeconds, config.staleWhileRevalidateSeconds) * 1000;
    // A purge is remembered as long as a flight may hold a copy read before it: the flight may wait out
    // another instance's fill (fillWaitMs, the fill lease: queue wait + upstream timeout for each upstream
    // + 1 s), then make its own call (within the lease again), plus its few Redis round trips. A flight
    // longer than that is refused its stale copy if any purge was forgotten meanwhile: see RecentPurges.
    this.purges = new RecentPurges(2 * config.fillWaitMs + 10_000);
  }

  /**
   * The hit path: L1 only, synchronous. `held` keeps the L1 slot between hits of the same question:
   * while it is live, a hit needs no L1 key lookup.
   */
  fromMemory(req: CanonicalRequest, now: number, held: L1Holder): Resolution | undefined {
    let answer = held.slot === undefined ? undefined : this.l1.use(held.slot, now);
    if (answer === undefined) {
      const slot = this.l1.slot(req.key, now);
      held.slot = slot;
      answer = slot?.answer ?? undefined;
    }
    return answer === undefined ? undefined : this.servable(answer, 'l1', now);
  }

  /**
   * L1, then L2 when L1 has nothing fresh: what may be served now, and the newest copy seen. An answer
   * read from Redis goes into L1, and `held` holds it from then on.
   */
  async lookup(req: CanonicalRequest, held?: L1Holder): Promise<Lookup> {
    const now = Date.now();
    const seen = this.purges.mark();
    let answer = this.l1.get(req.key, now);
    let tier: 'l1' | 'l2' = 'l1';
    if (answer === undefined || !answer.isFresh(now)) {
      const shared = await this.readShared(req.key).catch(() => undefined);
      // Purged while Redis was asked: the L1 copy read before is gone too; the next step is a miss.
      if (this.purges.since(req.key, seen)) return {};
      if (shared !== undefined && (answer === undefined || shared.storedAt > answer.storedAt)) {
        answer = shared;
        tier = 'l2';
        const slot = this.l1.set(req.key, shared, now);
        if (held !== undefined) held.slot = slot;
      }
    }
    if (answer === undefined) return {};
    return { newest: answer, tier, seen, hit: this.servable(answer, tier, now) };
  }

  /**
   * RFC 5861 stale-if-error, once Nominatim failed: the newest copy, when it is recent enough and no
   * purge of `key` came after it was read. A flight holds its copy while it waits on Nominatim, and
   * every request that joins it meanwhile gets what it settles with: without this, a request that came
   * after a purge's 200 would get the purged copy back (docs/security.md: the next request is a miss).
   *
   * Redis is read again when the flight's copy cannot be used (none, or purged since) or the request's
   * `directives` kept it from reading Redis (no-cache): what it holds now was written after the purge,
   * by an import (which comes in as a purge of each key it writes) or another instance's fill. The read
   * happens only on this failure path.
   *
   * `directives`: the client's Cache-Control, which sent the request upstream (Fills.directed). A copy
   * they refused (no-cache, max-age=0, min-fresh) is stale-if-error's whatever its freshness: the request
   * was forwarded and failed, so it is no hit.
   */
  async staleIfError(key: string, found: Lookup, upstreamStatus: number, directives?: RequestDirectives): Promise<Resolution | undefined> {
    const readAgain = directives?.noCache ?? false;
    const usable = () => found.newest !== undefined && found.seen !== undefined && !this.purges.since(key, found.seen);
    let shared: CachedAnswer | undefined;
    // readShared drops a copy that a purge made during the read covers.
    if (!usable() || readAgain) shared = await this.readShared(key).catch(() => undefined);
    // Asked again after the read: a purge that came in meanwhile rules out the copy held since before it.
    let copy = usable() ? found.newest : undefined;
    let tier = found.tier ?? 'l1';
    if (shared !== undefined && (copy === undefined || shared.storedAt > copy.storedAt)) {
      copy = shared;
      tier = 'l2';
    }
    const now = Date.now();
    if (copy === undefined || now >= copy.freshUntil + this.config.staleIfErrorSeconds * 1000) return undefined;
    // Fresh (the import's, or another fill's) and acceptable to the client: a hit found late.
    const r: Resolution =
      (directives === undefined ? copy.isFresh(now) : judge(copy, now, directives) === 'fresh')
        ? { kind: 'answer', answer: copy, outcome: 'HIT', stored: true, tier }
        : { kind: 'answer', answer: copy, outcome: 'STALE', stored: true, tier, fwdStatus: upstreamStatus };
    this.countHit(r);
    return r;
  }

  /**
   * Counts a stored answer once it is really served: a lookup finds, a limiter may still refuse (a 429
   * is no hit). An upstream answer another request brought counts as coalesced.
   */
  countHit(r: Resolution): void {
    if (r.collapsed) this.metrics.cacheOutcomes.inc({ outcome: 'coalesced', tier: 'l1' });
    else if (r.outcome === 'HIT') this.hits[r.tier ?? 'l1'].inc();
    else this.metrics.cacheOutcomes.inc({ outcome: 'stale', tier: r.tier ?? 'l1' });
  }

  /** An answer that is served once and never kept (Nominatim's 4xx, /details). */
  transient(status: number, contentType: string, body: Buffer): CachedAnswer {
    const now = Date.now();
    return new CachedAnswer(status, contentType, body, now, now, now, false);
  }

  /**
   * Before reading a copy that may be used later (a lookup, stale-if-error's fallback): a purge after
   * this mark, of the copy's key, means the copy must not be used.
   */
  purgeMark(): number {
    return this.purges.mark();
  }

  /**
   * A purge of `key` (`prefix`: of every key starting with it), made here or told by another instance:
   * drops the L1 copies and remembers the purge, so that a copy read before now is never used after it
   * (see staleIfError, readShared). Returns how many L1 copies were dropped.
   */
  purged(key: string, prefix = false): number {
    this.purges.add(key, prefix, Date.now());
    if (prefix) return this.l1.deletePrefix(key);
    return this.l1.delete(key) ? 1 : 0;
  }

  /**
   * L2 read; throws RedisUnavailableError when Redis cannot be used (callers fail open). A copy read
   * while a purge of its key ran counts as not found: every caller keeps what it reads in L1.
   */
  async readShared(key: string): Promise<CachedAnswer | undefined> {
    const seen = this.purges.mark();
    const stored = await this.redis.run('get', () => this.cache.get<StoredAnswer>(key));
    if (stored === undefined || stored === null || this.purges.since(key, seen)) return undefined;
    const answer = CachedAnswer.fromStored(stored, stored.fu + this.keepMs);
    if (answer === null || Date.now() >= answer.staleUntil) return undefined;
    return answer;
  }

  /**
   * Fresh, or stale within stale-while-revalidate (the pipeline then starts one refresh). Not counted
   * here: see countHit.
   */
  private servable(answer: CachedAnswer, tier: 'l1' | 'l2', now: number): Resolution | undefined {
    if (answer.isFresh(now)) return { kind: 'answer', answer, outcome: 'HIT', stored: true, tier };
    if (now < answer.freshUntil + this.config.staleWhileRevalidateSeconds * 1000) {
      return { kind: 'answer', answer, outcome: 'STALE', stored: true, tier };
    }
    return undefined;
  }
}
