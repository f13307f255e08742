import { Inject, Injectable } from '@nestjs/common';
import cors from 'cors';
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { clientIp } from '../common/client-ip';
import { errorBody, writeError } from '../common/error-writer';
import { appConfig, AppConfig, cacheConfig, CacheConfig } from '../config/configuration';
import { requestLineWriter, RequestLine } from '../logging/app-logger';
import { APP_LOGGER } from '../logging/logging.module';
import { MetricsService } from '../metrics/metrics.service';
import { writeDecision } from '../places/answer-writer';
import { Decision } from '../places/decision';
import { Exchange } from '../places/exchange';
import { PlacePipeline } from '../places/place-pipeline';
import { findRoute, PLACE_ROUTES, splitTarget } from '../places/place-routes';
import { memoEntries, remember } from '../places/questions';
import { originForm, refuseTunnel } from './request-target';
import { securityHeaders } from './security-headers';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const REQUEST_ID = /^[\w.:@-]{1,128}$/;
/** The routes besides the place routes that get their own request-metrics label. */
const STATIC_ROUTES = new Set(['/metrics', '/health/live', '/health/ready', '/health/upstream', '/docs', '/docs-json', '/docs-yaml']);
const EXPOSED = 'X-Cache, Cache-Status, Age, X-Request-Id, Retry-After';

type Series = { count: { inc(): void }; duration: { observe(seconds: number): void } };

/**
 * The http.Server request listener, in front of Express: it routes and writes. It does what every
 * response needs (request id, security headers, CORS, one log line and metrics), and hands every
 * GET/HEAD of a place route to the place pipeline, writing its decision itself: a hit costs a memo
 * lookup and a memory read, not the Express/Nest pipeline. Everything else — docs, health, metrics,
 * admin, other methods — goes on to Nest.
 */
@Injectable()
export class FrontDoor {
  private readonly headers: Array<[string, string]>;
  private readonly cors: ReturnType<typeof cors>;
  /**
   * With CORS for any origin, what every GET/HEAD answer starts with is fixed: X-Request-Id (slot 1
   * filled per request), the security headers and CORS's. A hit writes them with its own headers in
   * one writeHead; anything else sets them before going on. null with listed origins: CORS then
   * depends on the request's Origin and stays with the cors middleware.
   */
  private readonly head: string[] | null;
  private readonly memoEntries: number;
  /** log hashes by query, for requests without a canonical question (invalid, other routes) */
  private readonly qhashes = new Map<string, string>();
  private readonly series = new Map<string, Series>();
  /** by X-Cache value; only these four, so a header set elsewhere cannot add series */
  private readonly outcomeSeries: Map<string, { observe(seconds: number): void }>;
  private readonly writeRequestLine: (line: RequestLine) => void;
  private readonly clientOf: (req: IncomingMessage) => string;

  constructor(
    @Inject(appConfig.KEY) private readonly app: AppConfig,
    @Inject(cacheConfig.KEY) private readonly cacheCfg: CacheConfig,
    @Inject(APP_LOGGER) private readonly logger: Logger,
    private readonly pipeline: PlacePipeline,
    private readonly metrics: MetricsService,
  ) {
    this.headers = securityHeaders();
    this.outcomeSeries = new Map(['HIT', 'MISS', 'STALE', 'BYPASS'].map((o) => [o, metrics.cacheDuration.labels(o.toLowerCase())]));
    this.writeRequestLine = requestLineWriter(logger);
    this.cors = cors({
      origin: app.corsOrigins === '*' ? '*' : app.corsOrigins,
      methods: ['GET', 'HEAD', 'OPTIONS'],
      exposedHeaders: EXPOSED,
      maxAge: 86400,
    });
    this.memoEntries = memoEntries(cacheCfg.l1MaxBytes);
    this.head = app.corsOrigins === '*' ? ['X-Request-Id', '', ...this.headers.flat(), ...simpleCorsHeaders(this.cors)] : null;
    this.clientOf = (req) => clientIp(req, app.trustProxy);
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
    // Absolute-form targets become origin-form here, for the pipeline, Express and the controller alike.
    const url = (req.url = originForm(req.url ?? '/'));
    const { path, query } = splitTarget(url);
    const x = new Exchange(req, requestId, url, path, query, started, this.clientOf);
    res.once('close', () => this.finished(res, x));

    if (this.head !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      this.route(res, next, x, true);
      return;
    }
    res.setHeader('X-Request-Id', requestId);
    for (const [name, value] of this.headers) res.setHeader(name, value);
    this.cors(req as never, res as never, () => this.route(res, next, x, false));
  }

  /**
   * Runs the pipeline for a place route, or hands the request on. `deferred`: the common headers
   * (this.head) are not set yet; they go out with an answer's own, or are set before anything else.
   */
  private route(res: ServerResponse, next: Handler, x: Exchange, deferred: boolean): void {
    const req = x.req;
    if (x.target.length > this.app.maxUrlBytes) {
      if (deferred) this.setHead(res, x.requestId);
      writeError(res, errorBody(414, `The request target is longer than ${this.app.maxUrlBytes} bytes`));
      return;
    }
    const route = req.method === 'GET' || req.method === 'HEAD' ? findRoute(x.path) : undefined;
    if (route === undefined) {
      if (deferred) this.setHead(res, x.requestId);
      next(req, res);
      return;
    }
    x.route = route;
    const decision = this.pipeline.run(x);
    if (!(decision instanceof Promise)) return this.write(res, x, decision, deferred);
    decision.then(
      (d) => this.write(res, x, d, deferred),
      (e: unknown) => {
        this.logger.error({ err: e, reqId: x.requestId }, 'place request failed');
        if (deferred) this.setHead(res, x.requestId);
        writeError(res, errorBody(500, 'Internal server error'));
      },
    );
  }

  private write(res: ServerResponse, x: Exchange, d: Decision, deferred: boolean): void {
    if (res.destroyed) return;
    try {
      if (!deferred) return writeDecision(x, res, d, this.cacheCfg.compressMinBytes);
      const head = this.head!.slice();
      head[1] = x.requestId;
      writeDecision(x, res, d, this.cacheCfg.compressMinBytes, head);
    } catch (e) {
      // A hit is written synchronously from the request listener: a throw here (Node refusing a header
      // value) would otherwise end the process, for every client.
      this.logger.error({ err: e, reqId: x.requestId }, 'writing the answer failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      if (deferred) this.setHead(res, x.requestId);
      writeError(res, errorBody(500, 'Internal server error'));
    }
  }

  /** The deferred common headers, set one by one, as the cors path sets them. */
  private setHead(res: ServerResponse, requestId: string): void {
    const head = this.head!;
    res.setHeader(head[0], requestId);
    for (let i = 2; i < head.length; i += 2) res.setHeader(head[i], head[i + 1]);
  }

  private finished(res: ServerResponse, x: Exchange): void {
    const req = x.req;
    const ms = performance.now() - x.started;
    const route = routeLabel(x.path);
    const status = res.writableFinished ? res.statusCode : 499;
    const series = this.seriesFor(route, req.method ?? 'GET', status);
    series.count.inc();
    series.duration.observe(ms / 1000);
    this.observeOutcome(x.cache ?? res.getHeader('X-Cache'), ms / 1000);
    if (!this.logger.isLevelEnabled('info')) return;
    const entry: RequestLine = { reqId: x.requestId, method: req.method, route, status, ms: Math.round(ms * 100) / 100 };
    const cache = x.cache ?? res.getHeader('X-Cache');
    if (cache !== undefined) entry.cache = cache;
    // Queries are people's addresses: at info level only a hash that lets lines be correlated.
    if (x.query !== '') entry.qhash = x.question !== undefined ? (x.question.qhash ??= hashQuery(x.query)) : this.qhash(x.query);
    if (this.logger.isLevelEnabled('debug')) this.logger.info({ ...entry, query: x.query, phases: x.timings }, 'request');
    else this.writeRequestLine(entry);
  }

  /** places_cache_request_duration_seconds, for place requests the cache answered (X-Cache set). */
  private observeOutcome(cache: unknown, seconds: number): void {
    const series = typeof cache === 'string' ? this.outcomeSeries.get(cache) : undefined;
    series?.observe(seconds);
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
  if (path === '/dashboard' || path.startsWith('/dashboard/')) return '/dashboard/*';
  return 'other';
}
