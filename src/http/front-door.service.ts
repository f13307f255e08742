import { Inject, Injectable } from '@nestjs/common';
import cors from 'cors';
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { appConfig, AppConfig, cacheConfig, CacheConfig, throttleConfig, ThrottleConfig } from '../config/configuration';
import { requestLineWriter, RequestLine } from '../logging/app-logger';
import { APP_LOGGER } from '../logging/logging.module';
import { MetricsService } from '../metrics/metrics.service';
import { writeAnswer } from '../places/answer-writer';
import { L1Holder } from '../places/l1-cache';
import { CanonicalRequest } from '../places/nominatim-request';
import { hasRequestDirectives } from '../places/cache-control';
import { canonicaliseRoute, PLACE_ROUTES, PlaceRoute, splitTarget } from '../places/place-routes';
import { PlacesCacheService, Resolution } from '../places/places-cache.service';
import { clientIp } from './client-ip';
import { HitRateLimiter } from './hit-rate-limiter';
import { originForm, refuseTunnel } from './request-target';
import { securityHeaders } from './security-headers';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const REQUEST_ID = /^[\w.:@-]{1,128}$/;
const STATIC_ROUTES = new Set(['/metrics', '/health/live', '/health/ready', '/health/upstream', '/docs', '/docs-json', '/docs-yaml']);
const EXPOSED = 'X-Cache, Cache-Status, Age, X-Request-Id, Retry-After';
/**
 * Bounds of the hit path's memos (canonical requests and log hashes by request target): one entry per
 * 16 KiB of L1, so that they can know the targets of what L1 holds (a 5 KB answer takes ~11 KiB).
 */
const MEMO_MIN_ENTRIES = 4096;
const MEMO_MAX_ENTRIES = 131_072;
const MEMO_KEY_CHARS = 300;

/** One request on its way through the front door; what its log line and metrics need at the end. */
interface Exchange {
  requestId: string;
  path: string;
  query: string;
  started: number;
  /** X-Cache of a hit written here with writeHead (which leaves nothing for res.getHeader) */
  cache?: string;
  /** what the memo knows about this request's target, when it is a cacheable question */
  known?: Known;
}

/**
 * The memo's entry for a request target: its canonical request, its query's log hash once computed,
 * and the L1 slot of its answer once found there.
 */
interface Known extends L1Holder {
  request: CanonicalRequest;
  qhash?: string;
}

/** A request for a cacheable question that L1 did not have (yet), on its way to Redis or Nest. */
interface Lookup {
  req: IncomingMessage;
  res: ServerResponse;
  request: CanonicalRequest;
  variant: 'api' | 'raw';
  x: Exchange;
  deferred: boolean;
  /** hands the request to Express/Nest */
  pass: () => void;
}

/** Keeps `work` in `map` under `key` until it settles (unless another has taken the key since). */
function untilSettled<T>(map: Map<string, Promise<T>>, key: string, work: Promise<T>): void {
  map.set(key, work);
  const forget = () => {
    if (map.get(key) === work) map.delete(key);
  };
  work.then(forget, forget);
}

type Series = { count: { inc(): void }; duration: { observe(seconds: number): void } };

/** A Map that forgets everything when full: enough for memos whose hot entries come straight back. */
function remember<V>(memo: Map<string, V>, key: string, value: V, entries: number): V {
  if (key.length <= MEMO_KEY_CHARS) {
    if (memo.size >= entries) memo.clear();
    memo.set(key, value);
  }
  return value;
}

/**
 * The http.Server request listener, in front of Express. It does what every response needs (request
 * id, security headers, CORS, one log line and metrics) and answers cache hits itself: a hit costs a
 * canonicalisation and a memory (or one Redis) read, not the Express/Nest pipeline. Everything else —
 * misses, invalid requests, docs, health, admin — goes on to Nest.
 *
 * A request that validation would reject is never answered here: only a request the canonicaliser
 * accepts can name a cache key, and the controller runs the very same canonicaliser.
 */
@Injectable()
export class FrontDoor {
  private readonly headers: Array<[string, string]>;
  private readonly cors: ReturnType<typeof cors>;
  private readonly hitLimiter: HitRateLimiter | null;
  /**
   * With CORS for any origin, what every GET/HEAD answer starts with is fixed: X-Request-Id (slot 1
   * filled per request), the security headers and CORS's. A hit writes them with its own headers in
   * one writeHead; anything else sets them before going on. null with listed origins: CORS then
   * depends on the request's Origin and stays with the cors middleware.
   */
  private readonly head: string[] | null;
  private readonly memoEntries: number;
  /** by request target: one lookup gives a hit its canonical request and, at the end, its log hash */
  private readonly canonical = new Map<string, Known>();
  /** log hashes by query, for requests the memo above does not know (invalid, uncacheable, other routes) */
  private readonly qhashes = new Map<string, string>();
  private readonly series = new Map<string, Series>();
  private readonly writeRequestLine: (line: RequestLine) => void;
  /**
   * Cacheable misses handed to Nest, by key; settled when that request's response ends. A miss for a
   * key in here follows that request instead of going the same way (see follow).
   */
  private readonly firsts = new Map<string, Promise<void>>();
  /** Redis reads of a key for a request, by key (settle with "found"): a request for a key in here waits for that read. */
  private readonly reads = new Map<string, Promise<boolean>>();

  constructor(
    @Inject(appConfig.KEY) private readonly app: AppConfig,
    @Inject(cacheConfig.KEY) private readonly cacheCfg: CacheConfig,
    @Inject(throttleConfig.KEY) throttle: ThrottleConfig,
    @Inject(APP_LOGGER) private readonly logger: Logger,
    private readonly places: PlacesCacheService,
    private readonly metrics: MetricsService,
  ) {
    this.headers = securityHeaders();
    this.writeRequestLine = requestLineWriter(logger);
    this.cors = cors({
      origin: app.corsOrigins === '*' ? '*' : app.corsOrigins,
      methods: ['GET', 'HEAD', 'OPTIONS'],
      exposedHeaders: EXPOSED,
      maxAge: 86400,
    });
    this.hitLimiter = throttle.enabled ? new HitRateLimiter(throttle.hitLimit, throttle.windowSeconds * 1000) : null;
    this.memoEntries = Math.min(MEMO_MAX_ENTRIES, Math.max(MEMO_MIN_ENTRIES, Math.floor(cacheCfg.l1MaxBytes / 16384)));
    this.head = app.corsOrigins === '*' ? ['X-Request-Id', '', ...this.headers.flat(), ...simpleCorsHeaders(this.cors)] : null;
  }

  /** Puts the front door in place of the server's current request listener (Express). */
  install(server: Server): void {
    const listeners = server.listeners('request') as Handler[];
    if (listeners.length !== 1) throw new Error(`expected one request listener, found ${listeners.length}`);
    const next = listeners[0];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res, next));
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuseTunnel(socket));
  }

  handle(req: IncomingMessage, res: ServerResponse, next: Handler): void {
    const started = performance.now();
    const id = req.headers['x-request-id'];
    const requestId = typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID();
    req.headers['x-request-id'] = requestId;
    // Absolute-form targets become origin-form here, for the hit path, Express and the controller alike.
    const url = (req.url = originForm(req.url ?? '/'));
    const { path, query } = splitTarget(url);
    const x: Exchange = { requestId, path, query, started };
    res.once('close', () => this.finished(req, res, x));

    if (this.head !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      this.route(req, res, next, x, url, true);
      return;
    }
    res.setHeader('X-Request-Id', requestId);
    for (const [name, value] of this.headers) res.setHeader(name, value);
    this.cors(req as never, res as never, () => this.route(req, res, next, x, url, false));
  }

  /**
   * Answers a hit, or hands the request on. `deferred`: the common headers (this.head) are not set
   * yet; they go out with a hit's own, or are set before anything else answers.
   */
  private route(req: IncomingMessage, res: ServerResponse, next: Handler, x: Exchange, url: string, deferred: boolean): void {
    const pass = deferred
      ? () => {
          this.setHead(res, x.requestId);
          next(req, res);
        }
      : () => next(req, res);
    if (url.length > this.app.maxUrlBytes) {
      if (deferred) this.setHead(res, x.requestId);
      this.sendError(res, 414, 'URI Too Long', `The request target is longer than ${this.app.maxUrlBytes} bytes`);
      return;
    }
    const route = PLACE_ROUTES.get(x.path);
    if (route === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return pass();
    // The client's Cache-Control decides what may be served: the full way, counted as a miss by the limiter.
    if (this.cacheCfg.clientCacheControl === 'honour' && hasRequestDirectives(req)) return pass();
    const lang = req.headers['accept-language'];
    const known = this.cacheable(route, url, x.query, typeof lang === 'string' ? lang : undefined);
    if (known === undefined) return pass();
    x.known = known;
    const request = known.request;

    const now = Date.now();
    const hit = this.places.fromMemory(request, now, known);
    if (hit !== undefined) return this.serveHit(req, res, hit, route.variant, now, x, deferred);
    this.lookUp({ req, res, request, variant: route.variant, x, deferred, pass });
  }

  /** Serves `p` from L1 if it is there now; false if not. */
  private fromMemory(p: Lookup): boolean {
    const now = Date.now();
    const hit = this.places.fromMemory(p.request, now, p.x.known);
    if (hit === undefined) return false;
    this.serveHit(p.req, p.res, hit, p.variant, now, p.x, p.deferred);
    return true;
  }

  /** Not in L1: Redis, shared with the other requests for the key being read now; then Nest. */
  private lookUp(p: Lookup): void {
    const miss = () => this.toNest(p);
    // Without L1 a read serves only its own request: nothing to share.
    if (this.cacheCfg.l1MaxBytes === 0) {
      void this.read(p, miss);
      return;
    }
    const running = this.reads.get(p.request.key);
    if (running !== undefined) {
      // The same key is being read from Redis for another request: a miss for that one is a miss for
      // this one, and what it found is in L1 now (else, too large for L1, this one reads it itself).
      void running.then((found) => {
        if (!found) miss();
        else if (!this.fromMemory(p)) void this.read(p, miss);
      });
      return;
    }
    const found = this.read(p, miss).then(
      (shared) => shared !== undefined,
      () => false,
    );
    untilSettled(this.reads, p.request.key, found);
  }

  /** Redis for this request, then its answer or `miss`; settles with what was found. */
  private read(p: Lookup, miss: () => void): Promise<Resolution | undefined> {
    // The request carries what was found, so the controller does not read Redis again for a miss.
    const read = this.places.fromCache(p.request, p.req, p.x.known);
    read.then(
      (shared) => (shared === undefined ? miss() : this.serveHit(p.req, p.res, shared, p.variant, Date.now(), p.x, p.deferred)),
      miss,
    );
    return read;
  }

  /** A miss goes on to Nest, unless a request for the same key is there already: then it follows that one. */
  private toNest(p: Lookup): void {
    const first = this.firsts.get(p.request.key);
    if (first !== undefined) return this.follow(p, first);
    // It will most likely go upstream: the fill lock is asked for while Nest checks the rate limit.
    const giveBack = this.places.lockAhead(p.request, p.req);
    const ended = new Promise<void>((resolve) =>
      p.res.once('close', () => {
        giveBack();
        resolve();
      }),
    );
    untilSettled(this.firsts, p.request.key, ended);
    p.pass();
  }

  /**
   * Another miss for this key is in Nest, on its way upstream: this one joins that request's fill as
   * soon as it starts, and answers what it brings as resolve() answers a caller that joins a fill. 200
   * identical misses make one trip through Nest, not 200 that would each delay the first one's
   * upstream call. When the first request ends without a fill (refused, gone), this one looks again.
   */
  private follow(p: Lookup, first: Promise<void>): void {
    let joined = false;
    const carry = (fill: Promise<Resolution>) => {
      this.places.carry(p.req, fill);
      p.pass();
    };
    const withdraw = this.places.whenFilling(p.request.key, (fill) => {
      joined = true;
      fill.then(
        // Only a stored answer is written here; anything else takes the controller's way (errors, /api's 502).
        (r) => (r.stored && r.answer.status === 200 ? this.serveHit(p.req, p.res, r, p.variant, Date.now(), p.x, p.deferred) : carry(fill)),
        () => carry(fill),
      );
    });
    void first.then(() => {
      if (joined) return;
      withdraw();
      if (!this.fromMemory(p)) this.lookUp(p);
    });
  }

  /**
   * The memo's entry for the target (its canonical request and all) when the request may be answered
   * from the cache. canonicaliseRoute is pure, so a target seen recently is not canonicalised again
   * (most hits are for a few popular questions).
   */
  private cacheable(route: PlaceRoute, target: string, query: string, lang: string | undefined): Known | undefined {
    const key = lang === undefined ? target : `${target}\n${lang}`;
    const known = this.canonical.get(key);
    if (known !== undefined) return known;
    const c = canonicaliseRoute(route, query, lang, this.cacheCfg.reverseSnapMeters);
    return c.ok && c.request.cacheable ? remember(this.canonical, key, { request: c.request }, this.memoEntries) : undefined;
  }

  private serveHit(
    req: IncomingMessage,
    res: ServerResponse,
    hit: Resolution,
    variant: 'api' | 'raw',
    now: number,
    x: Exchange,
    deferred: boolean,
  ): void {
    if (this.hitLimiter !== null) {
      const retryAfter = this.hitLimiter.take(clientIp(req, this.app.trustProxy), now);
      if (retryAfter > 0) {
        this.metrics.rateLimited.inc({ kind: 'hit' });
        if (deferred) this.setHead(res, x.requestId);
        res.setHeader('Retry-After', String(retryAfter));
        this.sendError(res, 429, 'Too Many Requests', 'Rate limit exceeded; try again later');
        return;
      }
    }
    if (!deferred) return writeAnswer(req, res, hit, variant, this.cacheCfg.compressMinBytes, now);
    x.cache = hit.outcome;
    const head = this.head!.slice();
    head[1] = x.requestId;
    writeAnswer(req, res, hit, variant, this.cacheCfg.compressMinBytes, now, head);
  }

  /** The deferred common headers, set one by one, as the cors path sets them. */
  private setHead(res: ServerResponse, requestId: string): void {
    const head = this.head!;
    res.setHeader(head[0], requestId);
    for (let i = 2; i < head.length; i += 2) res.setHeader(head[i], head[i + 1]);
  }

  private sendError(res: ServerResponse, status: number, error: string, message: string): void {
    const body = JSON.stringify({ statusCode: status, error, message });
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }

  private finished(req: IncomingMessage, res: ServerResponse, x: Exchange): void {
    const ms = performance.now() - x.started;
    const route = routeLabel(x.path);
    const status = res.writableFinished ? res.statusCode : 499;
    const series = this.seriesFor(route, req.method ?? 'GET', status);
    series.count.inc();
    series.duration.observe(ms / 1000);
    if (!this.logger.isLevelEnabled('info')) return;
    const entry: RequestLine = { reqId: x.requestId, method: req.method, route, status, ms: Math.round(ms * 100) / 100 };
    const cache = x.cache ?? res.getHeader('X-Cache');
    if (cache !== undefined) entry.cache = cache;
    // Queries are people's addresses: at info level only a hash that lets lines be correlated.
    if (x.query !== '') entry.qhash = x.known !== undefined ? (x.known.qhash ??= hashQuery(x.query)) : this.qhash(x.query);
    if (this.logger.isLevelEnabled('debug')) this.logger.info({ ...entry, query: x.query }, 'request');
    else this.writeRequestLine(entry);
  }

  private qhash(query: string): string {
    const known = this.qhashes.get(query);
    if (known !== undefined) return known;
    return remember(this.qhashes, query, hashQuery(query), this.memoEntries);
  }

  /** The request counter and duration histogram of one (route, method, status), bound once. */
  private seriesFor(route: string, method: string, status: number): Series {
    const key = `${route} ${method} ${status}`;
    let s = this.series.get(key);
    if (s !== undefined) return s;
    const labels = { route, method, status: String(status) };
    const duration = this.metrics.httpDuration.labels(route);
    // Methods are the client's choice: only the first few hundred combinations are kept bound (tallied).
    if (this.series.size >= 256) return { count: this.metrics.httpRequests.labels(labels), duration };
    s = { count: this.metrics.tally(this.metrics.httpRequests, labels), duration };
    this.series.set(key, s);
    return s;
  }
}

/** What a request line says of a query: a hash that lets lines be correlated without the address in it. */
function hashQuery(query: string): string {
  return createHash('sha256').update(query).digest('base64url').slice(0, 16);
}

/** What the cors middleware sets on a GET without Origin, when that does not depend on the request. */
function simpleCorsHeaders(middleware: ReturnType<typeof cors>): string[] {
  const set: string[] = [];
  const fakeRes = {
    setHeader: (name: string, value: string) => set.push(name, String(value)),
    getHeader: () => undefined,
  };
  middleware({ method: 'GET', headers: {} } as never, fakeRes as never, () => undefined);
  if (set.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'vary')) {
    throw new Error('CORS for any origin unexpectedly varies by request');
  }
  return set;
}

export function routeLabel(path: string): string {
  if (PLACE_ROUTES.has(path) || STATIC_ROUTES.has(path)) return path;
  if (path.startsWith('/docs')) return '/docs/*';
  if (path.startsWith('/admin/')) return '/admin/*';
  return 'other';
}
