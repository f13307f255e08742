import type { IncomingMessage } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { GatewayError } from '../common/gateway.errors';
import { cacheConfig, CacheConfig } from '../config/configuration';
import { RateLimits } from '../throttle/rate-limits';
import { parseRequestDirectives, RequestDirectives } from './cache/cache-control';
import { Fills, LockAttempt } from './cache/fills';
import { Lookup, PlacesCacheService, Resolution } from './cache/places-cache.service';
import { SingleFlight } from './cache/single-flight';
import { Decision } from './decision';
import { Exchange, Question } from './exchange';
import { upstreamFailed } from './nominatim/upstream-errors';
import { memoEntries, Questions } from './questions';

/**
 * One way through for every place request, whichever entry received it:
 *
 *   1 question  canonicalise once (Nominatim's 400s)            -> invalid | question
 *     (the client's Cache-Control directives, when honoured, take the request to Fills.directed)
 *   2 memory    L1, synchronously; a hit pays the hit allowance  -> answer | limited
 *   3 flight    one per key (cache/single-flight.ts): L2, then the miss allowance, then the fill
 *               lock and one paced upstream call, kept in L2 and L1; others asking meanwhile join it
 *                                                               -> answer | limited | failed
 *
 * run() returns a decision and writes nothing; the caller hands it to the answer writer. A hit
 * answered from L1 returns synchronously, without a promise.
 */
@Injectable()
export class PlacePipeline {
  readonly questions: Questions;
  /** CLIENT_CACHE_CONTROL=honour */
  private readonly honourDirectives: boolean;

  constructor(
    @Inject(cacheConfig.KEY) config: CacheConfig,
    private readonly cache: PlacesCacheService,
    private readonly fills: Fills,
    private readonly flights: SingleFlight,
    private readonly limits: RateLimits,
  ) {
    this.questions = new Questions(memoEntries(config.l1MaxBytes), config.reverseSnapMeters);
    this.honourDirectives = config.clientCacheControl === 'honour';
  }

  run(x: Exchange): Decision | Promise<Decision> {
    const lang = x.req.headers['accept-language'];
    const q = this.questions.of(x.route!, x.target, x.query, typeof lang === 'string' ? lang : undefined);
    if ('ok' in q) return this.refusedOrNot(x, { kind: 'invalid', error: q.error });
    x.question = q;
    // The client's Cache-Control (RFC 9111 5.2.1) decides what may be served: the full way, off the hit path.
    const directives = this.honourDirectives ? directivesOf(x.req) : undefined;
    if (directives !== undefined) return this.directed(x, q, directives);
    if (!q.request.cacheable) return this.passThrough(x, q);
    const now = Date.now();
    const hit = this.cache.fromMemory(q.request, now, q);
    if (hit !== undefined) return this.served(x, hit, now, true);
    return this.flight(x, q);
  }

  /**
   * A hit: counted against the client's hit allowance, and then as served. `revalidate`: a stale copy
   * starts one refresh (a flight's leader starts it once its own flight has ended).
   */
  private served(x: Exchange, r: Resolution, now: number, revalidate: boolean): Decision {
    if (this.limits.enabled) {
      const retryAfterSeconds = this.limits.hit(x.client, now);
      if (retryAfterSeconds > 0) return { kind: 'limited', retryAfterSeconds };
    }
    this.cache.countHit(r);
    if (revalidate && r.outcome === 'STALE' && r.fwdStatus === undefined) this.fills.refresh(x.question!.request);
    return r;
  }

  /** `decision`, unless the client is over its miss allowance (invalid requests count as misses). */
  private async refusedOrNot(x: Exchange, decision: Decision): Promise<Decision> {
    const retryAfterSeconds = await this.limits.miss(x.client);
    x.mark('limit');
    if (retryAfterSeconds > 0) return { kind: 'limited', retryAfterSeconds };
    if (decision.kind === 'answer' && decision.collapsed) this.cache.countHit(decision);
    return decision;
  }

  /** Not in L1: join the key's flight, or lead one. A leader refused by its allowance leaves the others to look again. */
  private async flight(x: Exchange, q: Question): Promise<Decision> {
    const key = q.request.key;
    for (;;) {
      const running = this.flights.running(key);
      if (running === undefined) {
        const led = this.lead(x, q);
        // The flight ends (its joiners settle, the key is free again) before this request goes on.
        await this.flights.lead(key, led.then(settledWith)).catch(() => undefined);
        const { decision, found } = await led;
        if (found?.outcome === 'STALE' && found.fwdStatus === undefined) this.fills.refresh(q.request);
        return decision;
      }
      let r: Resolution | undefined;
      try {
        r = await running;
      } catch (e) {
        return this.refusedOrNot(x, failed(e));
      }
      if (r === undefined) continue;
      x.mark('answer');
      if (r.outcome === 'HIT' || r.outcome === 'STALE') return this.served(x, r, Date.now(), false);
      // An upstream answer another request brought: a stored one costs Nominatim nothing more, so it
      // counts as a hit; anything else (Nominatim's 4xx) counts as this client's miss.
      const joined = this.fills.collapsed(r);
      return r.stored && r.answer.status === 200 ? this.served(x, joined, Date.now(), false) : this.refusedOrNot(x, this.checked(x, joined));
    }
  }

  /**
   * The flight's work, led by this request: L2; then, with the lock asked for while the client's
   * allowance is checked, one upstream call, with stale-if-error as the fallback. Returns this
   * request's decision and what the flight settles with for the others (see Led).
   */
  private async lead(x: Exchange, q: Question): Promise<Led> {
    const found: Lookup = await this.cache.lookup(q.request, q);
    x.mark('lookup');
    if (found.hit !== undefined) return { decision: this.served(x, found.hit, Date.now(), false), found: found.hit };
    const attempt: LockAttempt | undefined = this.fills.lockAhead(q.request);
    const refused = await this.limits.miss(x.client);
    x.mark('limit');
    if (refused > 0) {
      this.fills.giveBack(attempt);
      return { decision: { kind: 'limited', retryAfterSeconds: refused } };
    }
    try {
      const fetched = await this.fills.fill(q.request, attempt);
      x.mark('answer');
      // A copy found here is stale past stale-while-revalidate: Cache-Status says fwd=stale, for the
      // requests that joined this flight too (they found the same copy, or L1 had nothing newer).
      const r: Resolution = found.newest === undefined ? fetched : { ...fetched, fwd: 'stale' };
      return { decision: this.checked(x, r), found: r };
    } catch (e) {
      x.mark('answer');
      const stale = e instanceof GatewayError ? await this.cache.staleIfError(q.request.key, found, e.upstreamStatus ?? e.getStatus()) : undefined;
      if (stale !== undefined) return { decision: stale, found: stale };
      return { decision: failed(e), error: e };
    }
  }

  /** A request with Cache-Control directives: counted against the miss allowance, as a miss is. */
  private async directed(x: Exchange, q: Question, d: RequestDirectives): Promise<Decision> {
    const refused = await this.limits.miss(x.client);
    x.mark('limit');
    if (refused > 0) return { kind: 'limited', retryAfterSeconds: refused };
    try {
      const r = await this.fills.directed(q.request, d);
      x.mark('answer');
      return this.checked(x, r);
    } catch (e) {
      x.mark('answer');
      return failed(e);
    }
  }

  /** /details: never cached, so nothing to look up or join. */
  private async passThrough(x: Exchange, q: Question): Promise<Decision> {
    const refused = await this.limits.miss(x.client);
    x.mark('limit');
    if (refused > 0) return { kind: 'limited', retryAfterSeconds: refused };
    try {
      const r = await this.fills.passThrough(q.request);
      x.mark('answer');
      return this.checked(x, r);
    } catch (e) {
      return failed(e);
    }
  }

  /** /api wraps only Nominatim's successes; anything else from Nominatim is a 502 there. */
  private checked(x: Exchange, r: Resolution): Decision {
    if (x.route!.variant === 'api' && r.answer.status !== 200) {
      return { kind: 'failed', error: upstreamFailed(`Nominatim answered ${r.answer.status}`, r.answer.status) };
    }
    return r;
  }
}

/**
 * What a flight's leader ends with: its own decision, and for the requests that joined the flight the
 * answer it found (undefined: none, they look again) or the error it failed with.
 */
interface Led {
  decision: Decision;
  found?: Resolution;
  error?: unknown;
}

/** What the flight settles with for those who joined it. */
function settledWith(led: Led): Resolution | undefined {
  if (led.error !== undefined) throw led.error;
  return led.found;
}

function failed(e: unknown): Decision {
  if (e instanceof GatewayError) return { kind: 'failed', error: e };
  throw e;
}

/** The request's Cache-Control directives that change what is served, or undefined (cheap when absent). */
function directivesOf(req: IncomingMessage): RequestDirectives | undefined {
  const { 'cache-control': cc, pragma } = req.headers;
  return cc === undefined && pragma === undefined ? undefined : parseRequestDirectives(cc, pragma);
}
