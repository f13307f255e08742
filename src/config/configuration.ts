import { registerAs } from '@nestjs/config';
import { ConfigValidationError, Env, EnvReader } from './env-parsers';
import { RedisClusterConnection, resolveRedisClusterNodes } from './redis-cluster-nodes';
import { RedisConnection, resolveRedisConnection } from './redis-url';
import { readUpstreams, UpstreamConfig } from './upstreams';

export const PUBLIC_NOMINATIM_URL = 'https://nominatim.openstreetmap.org';
// Kept in step with package.json by a unit test.
export const APP_VERSION = '1.0.0';
/**
 * A User-Agent someone was told to replace: docker-compose.yml's default says "CHANGE ME", so a stack
 * started without NOMINATIM_USER_AGENT is warned about as the app's own default is.
 */
const PLACEHOLDER_USER_AGENT = /\bCHANGE ME\b/i;
export const DEFAULT_USER_AGENT = `places-cache/${APP_VERSION} (+https://github.com/places-cache/places-cache)`;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AppConfig {
  port: number;
  host: string;
  logLevel: LogLevel;
  corsOrigins: string[] | '*';
  adminToken: string | undefined;
  /** when set, /metrics needs `Authorization: Bearer <METRICS_TOKEN>` */
  metricsToken: string | undefined;
  trustProxy: boolean;
  shutdownTimeoutMs: number;
  maxUrlBytes: number;
  /** HTTP server: a client must send its headers within headersTimeoutMs, its whole request within requestTimeoutMs */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** processes serving the port (node:cluster workers) when above 1 */
  webConcurrency: number;
  /** FLEET_INSTANCES: instances (dynos, containers) sharing NOMINATIM_MAX_RPS, each with its WEB_CONCURRENCY workers */
  fleetInstances: number;
}

export interface RedisConfig {
  connection: RedisConnection | null;
  /** REDIS_CLUSTER_NODES: run on a Redis Cluster (then `connection` is null) */
  cluster: RedisClusterConnection | null;
  opTimeoutMs: number;
}

/** L1_MAX_BYTES unset: about 130,000 typical answers, half the heap `npm start` gives node. */
export const L1_DEFAULT_BYTES = 128 * 1024 * 1024;

export interface CacheConfig {
  ttlSeconds: number;
  statusTtlSeconds: number;
  emptyTtlSeconds: number;
  staleIfErrorSeconds: number;
  staleWhileRevalidateSeconds: number;
  l1MaxBytes: number;
  compressMinBytes: number;
  /** how long a request waits for another instance's fill before going itself */
  fillWaitMs: number;
  /** REVERSE_SNAP_METERS: above 0, reverse questions are snapped to a grid cell about this wide */
  reverseSnapMeters: number;
  /** CLIENT_CACHE_CONTROL: honour the client's Cache-Control request directives, or ignore them */
  clientCacheControl: 'honour' | 'ignore';
}

export interface NominatimConfig {
  /** the preferred upstream (the first of `upstreams`) */
  baseUrl: string;
  /** NOMINATIM_URL's list, in order of preference, each with its NOMINATIM_MAX_RPS */
  upstreams: UpstreamConfig[];
  /** UPSTREAM_BACKOFF_MAX_SECONDS: longest a failing upstream of several is passed over */
  backoffMaxMs: number;
  userAgent: string;
  /** NOMINATIM_USER_AGENT unset or set to the default, or a placeholder left as it came (see PLACEHOLDER_USER_AGENT) */
  userAgentIsPlaceholder: boolean;
  email: string | undefined;
  timeoutMs: number;
  /** an upstream answer larger than this is cut off (502 upstream_too_large) */
  maxBytes: number;
  maxRps: number;
  /**
   * Processes pacing the same budget (FLEET_INSTANCES × WEB_CONCURRENCY). While Redis cannot be
   * reached each paces on its own at this share of each upstream's rate, so the fleet's total holds.
   */
  pacingProcesses: number;
  queueMaxWaitMs: number;
  /** the fill lock's lease: the longest a holder's upstream call can take, every upstream of its fail-over tried */
  fillLeaseMs: number;
  isPublicServer: boolean;
}

export interface ThrottleConfig {
  enabled: boolean;
  windowSeconds: number;
  missLimit: number;
  hitLimit: number;
  /** clients the hit limiter remembers at once (the least recently seen are forgotten first) */
  hitClients: number;
}

interface Config {
  app: AppConfig;
  redis: RedisConfig;
  cache: CacheConfig;
  nominatim: NominatimConfig;
  throttle: ThrottleConfig;
}

const DAY = 86400;

/**
 * CORS_ORIGINS: `*`, or origins exactly as a browser sends them in `Origin` (the cors middleware
 * compares strings), so that a trailing slash, a path or a capital letter cannot silently refuse
 * every browser client.
 */
function readCorsOrigins(r: EnvReader): string[] | '*' {
  const value = r.string('CORS_ORIGINS', '*');
  if (value === '*') return '*';
  const origins = value.split(',').map((o) => o.trim()).filter(Boolean);
  if (origins.length === 0) r.problem('CORS_ORIGINS must be * or a comma-separated list of origins');
  for (const origin of origins) {
    if (origin === '*') {
      r.problem('CORS_ORIGINS: * allows every origin on its own, not in a list');
      continue;
    }
    // The cors middleware compares whole strings, and no browser sends a * in Origin.
    if (origin.includes('*')) {
      r.problem(`CORS_ORIGINS entry "${origin}": patterns are not supported; list each origin (scheme://host[:port])`);
      continue;
    }
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      r.problem(`CORS_ORIGINS entry "${origin}" is not an origin: scheme://host[:port], e.g. https://app.example`);
      continue;
    }
    // An app's own scheme (capacitor://localhost) has no origin in the URL standard, but browsers send it so.
    const canonical = url.origin !== 'null' ? url.origin : `${url.protocol}//${url.host}`;
    if (url.host === '') r.problem(`CORS_ORIGINS entry "${origin}" is not an origin: scheme://host[:port], e.g. https://app.example`);
    else if (canonical !== origin) r.problem(`CORS_ORIGINS entry "${origin}" is not an origin as browsers send it: write ${canonical}`);
  }
  return origins;
}

/** Reads and validates the whole environment; throws one ConfigValidationError listing every problem. */
export function loadConfig(env: Env): Config {
  const r = new EnvReader(env);

  const cors = readCorsOrigins(r);
  const app: AppConfig = {
    port: r.int('PORT', 8080, 0, 65535),
    host: r.string('HOST', '0.0.0.0'),
    logLevel: r.oneOf('LOG_LEVEL', 'info', LOG_LEVELS),
    corsOrigins: cors,
    adminToken: r.optionalString('ADMIN_TOKEN'),
    metricsToken: r.optionalString('METRICS_TOKEN'),
    trustProxy: r.bool('TRUST_PROXY', false),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 10000, 0, 25000),
    maxUrlBytes: r.int('MAX_URL_BYTES', 4096, 256, 65536),
    headersTimeoutMs: r.int('HEADERS_TIMEOUT_MS', 10_000, 100, 120_000),
    requestTimeoutMs: r.int('REQUEST_TIMEOUT_MS', 30_000, 100, 600_000),
    keepAliveTimeoutMs: r.int('KEEP_ALIVE_TIMEOUT_MS', 65_000, 1_000, 600_000),
    webConcurrency: r.int('WEB_CONCURRENCY', 1, 1, 64),
    fleetInstances: r.int('FLEET_INSTANCES', 1, 1, 1000),
  };
  if (app.requestTimeoutMs < app.headersTimeoutMs) r.problem('REQUEST_TIMEOUT_MS must be at least HEADERS_TIMEOUT_MS');
  for (const [name, token] of [['ADMIN_TOKEN', app.adminToken], ['METRICS_TOKEN', app.metricsToken]] as const) {
    if (token !== undefined && token.length < 16) r.problem(`${name} must be at least 16 characters when set`);
    // It is sent as `Authorization: Bearer <token>`, one token of visible characters: one with a space
    // could never be presented, and /admin or /metrics would stay locked.
    else if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) r.problem(`${name} must be visible ASCII characters with no space (it is sent as Authorization: Bearer <${name}>)`);
  }

  let connection: RedisConnection | null = null;
  try {
    connection = resolveRedisConnection(env.REDIS_URL, env.REDIS_TLS_URL);
  } catch (e) {
    r.problem((e as Error).message);
  }
  let cluster: RedisClusterConnection | null = null;
  try {
    cluster = resolveRedisClusterNodes(env.REDIS_CLUSTER_NODES);
  } catch (e) {
    r.problem((e as Error).message);
  }
  if (cluster !== null && (env.REDIS_URL?.trim() || env.REDIS_TLS_URL?.trim())) {
    const single = env.REDIS_URL?.trim() ? 'REDIS_URL' : 'REDIS_TLS_URL';
    r.problem(`REDIS_CLUSTER_NODES and ${single} are both set: set REDIS_CLUSTER_NODES for a Redis Cluster or ${single} for one Redis, not both`);
    connection = null;
  }
  const redis: RedisConfig = { connection, cluster, opTimeoutMs: r.int('REDIS_OP_TIMEOUT_MS', 250, 10, 10000) };
  // Workers share the upstream pacer, rate limits and fills only through Redis; without it each would
  // pace on its own and the group would ask Nominatim N times as often.
  if (app.webConcurrency > 1 && connection === null && cluster === null && !r.problems.some((p) => p.startsWith('REDIS'))) {
    r.problem(`WEB_CONCURRENCY=${app.webConcurrency} needs REDIS_URL (or REDIS_TLS_URL, or REDIS_CLUSTER_NODES): the workers share the upstream pacer and rate limits through Redis`);
  }

  const ttlSeconds = r.int('CACHE_TTL_SECONDS', 3600, 1, 365 * DAY);
  const cache: CacheConfig = {
    ttlSeconds,
    statusTtlSeconds: r.int('STATUS_TTL_SECONDS', Math.min(10, ttlSeconds), 1, DAY),
    emptyTtlSeconds: r.int('EMPTY_TTL_SECONDS', Math.min(600, ttlSeconds), 1, 365 * DAY),
    staleIfErrorSeconds: r.int('STALE_IF_ERROR_SECONDS', DAY, 0, 30 * DAY),
    staleWhileRevalidateSeconds: r.int('STALE_WHILE_REVALIDATE_SECONDS', 60, 0, 30 * DAY),
    l1MaxBytes: r.int('L1_MAX_BYTES', L1_DEFAULT_BYTES, 0, 16 * 1024 * 1024 * 1024),
    compressMinBytes: r.int('COMPRESS_MIN_BYTES', 256, 0, 1024 * 1024 * 1024),
    fillWaitMs: 0,
    reverseSnapMeters: r.number('REVERSE_SNAP_METERS', 0, 0, 100_000),
    clientCacheControl: r.oneOf('CLIENT_CACHE_CONTROL', 'honour', ['honour', 'ignore'] as const),
  };

  const upstreams = readUpstreams(r, PUBLIC_NOMINATIM_URL);
  const baseUrl = upstreams[0].baseUrl;
  const ua = r.optionalString('NOMINATIM_USER_AGENT');
  const timeoutMs = r.int('UPSTREAM_TIMEOUT_MS', 10000, 100, 25000);
  const queueMaxWaitMs = r.int('UPSTREAM_QUEUE_MAX_WAIT_MS', 10000, 0, 25000);
  const nominatim: NominatimConfig = {
    baseUrl,
    upstreams,
    backoffMaxMs: r.int('UPSTREAM_BACKOFF_MAX_SECONDS', 30, 1, 3600) * 1000,
    userAgent: ua ?? DEFAULT_USER_AGENT,
    // The default written out (an uncommented .env.example line) identifies nobody either.
    userAgentIsPlaceholder: ua === undefined || ua === DEFAULT_USER_AGENT || PLACEHOLDER_USER_AGENT.test(ua),
    email: r.optionalString('NOMINATIM_EMAIL'),
    timeoutMs,
    maxBytes: r.int('UPSTREAM_MAX_BYTES', 2 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    maxRps: upstreams[0].maxRps,
    pacingProcesses: app.fleetInstances * app.webConcurrency,
    queueMaxWaitMs,
    // A holder may wait its pacing turn and then the upstream timeout, at each upstream its fail-over
    // tries in turn (each has its own pacer): the lease, and the waiters' patience, outlast all of them.
    // Past it another instance takes the lock and asks again.
    fillLeaseMs: upstreams.length * (queueMaxWaitMs + timeoutMs) + 1000,
    isPublicServer: upstreams.some((u) => new URL(u.baseUrl).hostname === 'nominatim.openstreetmap.org'),
  };
  cache.fillWaitMs = nominatim.fillLeaseMs;
  if (nominatim.email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(nominatim.email)) {
    r.problem(`NOMINATIM_EMAIL must be an e-mail address (got "${nominatim.email}")`);
  }
  if (/[\r\n]/.test(env.NOMINATIM_USER_AGENT ?? '')) r.problem('NOMINATIM_USER_AGENT must be one line');

  const throttle: ThrottleConfig = {
    enabled: r.bool('RATE_LIMIT_ENABLED', true),
    windowSeconds: r.int('RATE_LIMIT_WINDOW_SECONDS', 60, 1, 3600),
    missLimit: r.int('RATE_LIMIT_MISSES', 60, 1, 1_000_000),
    hitLimit: r.int('RATE_LIMIT_HITS', 6000, 1, 100_000_000),
    hitClients: r.int('RATE_LIMIT_HIT_CLIENTS', 100_000, 100, 1_000_000),
  };

  if (r.problems.length > 0) throw new ConfigValidationError(r.problems);
  return { app, redis, cache, nominatim, throttle };
}

/** ConfigModule's `validate` hook: fail fast at start-up with one message. */
export function validateEnv(env: Record<string, unknown>): Record<string, unknown> {
  loadConfig(env as Env);
  return env;
}

export const appConfig = registerAs('app', (): AppConfig => loadConfig(process.env).app);
export const redisConfig = registerAs('redis', (): RedisConfig => loadConfig(process.env).redis);
export const cacheConfig = registerAs('cache', (): CacheConfig => loadConfig(process.env).cache);
export const nominatimConfig = registerAs('nominatim', (): NominatimConfig => loadConfig(process.env).nominatim);
export const throttleConfig = registerAs('throttle', (): ThrottleConfig => loadConfig(process.env).throttle);
