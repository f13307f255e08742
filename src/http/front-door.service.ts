import { Inject, Injectable } from '@nestjs/common';
import cors from 'cors';
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { appConfig, AppConfig, cacheConfig, CacheConfig, throttleConfig, ThrottleConfig } from '../config/configuration';
import { APP_LOGGER } from '../logging/logging.module';
import { MetricsService } from '../metrics/metrics.service';
import { writeAnswer } from '../places/answer-writer';
import { canonicaliseRoute, PLACE_ROUTES, splitTarget } from '../places/place-routes';
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

  constructor(
    @Inject(appConfig.KEY) private readonly app: AppConfig,
    @Inject(cacheConfig.KEY) private readonly cacheCfg: CacheConfig,
    @Inject(throttleConfig.KEY) throttle: ThrottleConfig,
    @Inject(APP_LOGGER) private readonly logger: Logger,
    private readonly places: PlacesCacheService,
    private readonly metrics: MetricsService,
  ) {
    this.headers = securityHeaders();
    this.cors = cors({
      origin: app.corsOrigins === '*' ? '*' : app.corsOrigins,
      methods: ['GET', 'HEAD', 'OPTIONS'],
      exposedHeaders: EXPOSED,
      maxAge: 86400,
    });
    this.hitLimiter = throttle.enabled ? new HitRateLimiter(throttle.hitLimit, throttle.windowSeconds * 1000) : null;
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
    res.setHeader('X-Request-Id', requestId);
    for (const [name, value] of this.headers) res.setHeader(name, value);
    // Absolute-form targets become origin-form here, for the hit path, Express and the controller alike.
    const url = (req.url = originForm(req.url ?? '/'));
    const { path, query } = splitTarget(url);
    res.once('close', () => this.finished(req, res, path, query, requestId, started));

    this.cors(req as never, res as never, () => {
      if (url.length > this.app.maxUrlBytes) {
        this.sendError(res, 414, 'URI Too Long', `The request target is longer than ${this.app.maxUrlBytes} bytes`);
        return;
      }
      const route = PLACE_ROUTES.get(path);
      if (route === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return next(req, res);
      const lang = req.headers['accept-language'];
      const canonical = canonicaliseRoute(route, query, typeof lang === 'string' ? lang : undefined);
      if (!canonical.ok || !canonical.request.cacheable) return next(req, res);

      const now = Date.now();
      const hit = this.places.fromMemory(canonical.request, now);
      if (hit !== undefined) return this.serveHit(req, res, hit, route.variant, now);
      // The request carries what was found, so the controller does not read Redis again for a miss.
      this.places.fromCache(canonical.request, req).then(
        (shared) => (shared === undefined ? next(req, res) : this.serveHit(req, res, shared, route.variant, Date.now())),
        () => next(req, res),
      );
    });
  }

  private serveHit(req: IncomingMessage, res: ServerResponse, hit: Resolution, variant: 'api' | 'raw', now: number): void {
    if (this.hitLimiter !== null) {
      const retryAfter = this.hitLimiter.take(clientIp(req, this.app.trustProxy), now);
      if (retryAfter > 0) {
        this.metrics.rateLimited.inc({ kind: 'hit' });
        res.setHeader('Retry-After', String(retryAfter));
        this.sendError(res, 429, 'Too Many Requests', 'Rate limit exceeded; try again later');
        return;
      }
    }
    writeAnswer(req, res, hit, variant, this.cacheCfg.compressMinBytes, now);
  }

  private sendError(res: ServerResponse, status: number, error: string, message: string): void {
    const body = JSON.stringify({ statusCode: status, error, message });
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }

  private finished(req: IncomingMessage, res: ServerResponse, path: string, query: string, requestId: string, started: number): void {
    const ms = performance.now() - started;
    const route = routeLabel(path);
    const status = res.writableFinished ? res.statusCode : 499;
    this.metrics.httpRequests.inc({ route, method: req.method ?? 'GET', status: String(status) });
    this.metrics.httpDuration.observe({ route }, ms / 1000);
    if (!this.logger.isLevelEnabled('info')) return;
    const entry: Record<string, unknown> = {
      reqId: requestId,
      method: req.method,
      route,
      status,
      ms: Math.round(ms * 100) / 100,
    };
    const cache = res.getHeader('X-Cache');
    if (cache !== undefined) entry.cache = cache;
    // Queries are people's addresses: at info level only a hash that lets lines be correlated.
    if (query !== '') entry.qhash = createHash('sha256').update(query).digest('base64url').slice(0, 16);
    if (this.logger.isLevelEnabled('debug')) entry.query = query;
    this.logger.info(entry, 'request');
  }
}

export function routeLabel(path: string): string {
  if (PLACE_ROUTES.has(path) || STATIC_ROUTES.has(path)) return path;
  if (path.startsWith('/docs')) return '/docs/*';
  if (path.startsWith('/admin/')) return '/admin/*';
  return 'other';
}
