import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { APP_VERSION } from '../config/configuration';
import { RedisHealthIndicator } from './redis.health';
import { UpstreamHealthIndicator } from './upstream.health';

const indicator = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['up', 'degraded', 'down'] } },
  additionalProperties: true,
};

/** terminus' answer shape, with our own examples (see docs/operations.md for every field). */
const resultSchema = (examples: Record<string, { summary: string; value: object }>) => ({
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['status', 'details'],
        properties: {
          status: { type: 'string', enum: ['ok', 'degraded', 'error', 'shutting_down'] },
          info: { type: 'object', additionalProperties: indicator },
          error: { type: 'object', additionalProperties: indicator },
          details: { type: 'object', additionalProperties: indicator },
        },
      },
      examples,
    },
  },
});

/** terminus' answer when the one indicator is up or degraded (both go to `info`). */
const wrap = (status: string, key: string, value: object) => ({
  status,
  info: { [key]: value },
  error: {},
  details: { [key]: value },
});

/** terminus answers 503 once the shutdown hooks run (in practice the port is closed by then). */
const SHUTTING_DOWN = {
  description: 'The instance is shutting down (after SIGTERM); send traffic elsewhere',
  ...resultSchema({
    shuttingDown: { summary: 'shutting down', value: wrap('shutting_down', 'redis', { state: 'ready', responseTimeMs: 0.4, status: 'up' }) },
  }),
};

/**
 * Operational endpoints. Liveness is the process; readiness is the shared cache (a degraded Redis does
 * not stop the service answering, so it stays 200); upstream is reported from the last real call,
 * never probed.
 */
@ApiTags('operations')
@Controller('health')
export class HealthController {
  private readonly startedAt = Date.now();

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly redis: RedisHealthIndicator,
    private readonly upstream: UpstreamHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({ summary: 'Liveness: the process answers', description: 'Checks nothing outside the process: restart the instance only when this fails.' })
  @ApiOkResponse({
    description: 'The process is running',
    ...resultSchema({
      ok: {
        summary: 'alive',
        value: wrap('ok', 'process', { status: 'up', pid: 4242, uptimeSeconds: 3600.5, version: APP_VERSION }),
      },
    }),
  })
  @ApiServiceUnavailableResponse(SHUTTING_DOWN)
  live(): Promise<HealthCheckResult> {
    return this.health.check([
      () =>
        this.indicators.check('process').up({
          pid: process.pid,
          uptimeSeconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
          version: APP_VERSION,
        }),
    ]);
  }

  @Get('ready')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({
    summary: 'Readiness: can this instance serve, and is the shared cache (Redis) reachable?',
    description:
      'One PING to Redis, bounded by REDIS_OP_TIMEOUT_MS. Without Redis the gateway still answers (from upstream, ' +
      'X-Cache: BYPASS), so readiness stays 200 with `status: "degraded"`. Without REDIS_URL, Redis is `disabled`. ' +
      'On a Redis Cluster (REDIS_CLUSTER_NODES) every master is pinged, and `mode: "cluster"` with `nodes` lists each ' +
      'node (`address`, `role`, `reachable`); a master down makes it `degraded`, and so does a master that does not report ' +
      '`cluster_state:ok` (state `cluster_fail`: the cluster is still forming, or a slot has no master). ' +
      'A Redis that answers PING but refused other commands within the last 30 s (full with noeviction: OOM; an ACL ' +
      'without a command or channel, a refused subscription included: NOPERM; …) is `degraded` too, state `refusing`, ' +
      'with `refused` listing each kind; so is one that INFO memory (asked beside the PING) shows over maxmemory with ' +
      'noeviction, even while idle (state `full`, with `memory`); so is a ' +
      'REDIS_URL that leads to a read-only replica (state `read_only`: a failover moved the master; reconnecting every second). ' +
      'Upstream reachability is not part of readiness: see /health/upstream.',
  })
  @ApiOkResponse({
    description: 'Ready (`ok`), or serving without Redis (`degraded`)',
    ...resultSchema({
      ok: { summary: 'Redis answers', value: wrap('ok', 'redis', { state: 'ready', responseTimeMs: 0.4, status: 'up' }) },
      degraded: {
        summary: 'Redis down: serving without the shared cache',
        value: wrap('degraded', 'redis', {
          state: 'down',
          message: 'Redis unavailable: down; serving without the shared cache (X-Cache: BYPASS)',
          responseTimeMs: 0,
          status: 'degraded',
        }),
      },
      refusing: {
        summary: 'Redis answers but refuses commands (here: full, noeviction)',
        value: wrap('degraded', 'redis', {
          state: 'refusing',
          message:
            'Redis answers PING but refused commands within the last 30 s: OOM (6 so far, on fill-lock acquire, pacer acquire): ' +
            'Redis is at maxmemory and its maxmemory-policy evicts nothing, e.g. noeviction; use allkeys-lru; serving without what was refused',
          refused: [
            {
              kind: 'OOM',
              count: 6,
              ops: ['fill-lock acquire', 'pacer acquire'],
              text: "OOM command not allowed when used memory > 'maxmemory'. script: 3d2dbbe4280615ebeab03bff22c02564d063526a, on @user_script:11.",
              lastSecondsAgo: 2.1,
            },
          ],
          responseTimeMs: 0.9,
          status: 'degraded',
        }),
      },
      full: {
        summary: 'Redis full with noeviction while no request met a refusal lately',
        value: wrap('degraded', 'redis', {
          state: 'full',
          message:
            'Redis is full: 100.1 MB used, maxmemory 100.0 MB, maxmemory-policy noeviction: it refuses every write ' +
            '(misses are BYPASS, not stored); use allkeys-lru or raise maxmemory',
          memory: { usedBytes: 104960000, maxBytes: 104857600, policy: 'noeviction' },
          responseTimeMs: 0.5,
          status: 'degraded',
        }),
      },
      memory: {
        summary: 'No REDIS_URL: in-memory cache',
        value: wrap('ok', 'redis', {
          state: 'disabled',
          message: 'REDIS_URL is not set: in-memory cache, nothing shared between instances',
          status: 'up',
        }),
      },
    }),
  })
  @ApiServiceUnavailableResponse(SHUTTING_DOWN)
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.redis.check()]);
  }

  @Get('upstream')
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({
    summary: 'Upstream (Nominatim) as the last real call showed it',
    description:
      'Sends nothing to Nominatim (its usage policy counts every request): reports the last upstream call this ' +
      'instance made, its age, failures in a row and the cool-down after a 429/403 (or a 503 with Retry-After). ' +
      '`degraded` while the (preferred) upstream is failing or cooling down; a fallback\'s failure shows in its own ' +
      'entry only. Cached and stale answers are still served, so this is always 200.',
  })
  @ApiOkResponse({
    description: 'Upstream state: unknown (no call yet), ok, failing or cooling_down',
    ...resultSchema({
      ok: {
        summary: 'last call answered',
        value: wrap('ok', 'upstream', {
          state: 'ok',
          url: 'https://nominatim.openstreetmap.org',
          lastCall: { endpoint: 'search', status: 200, durationMs: 312, at: '2026-01-01T12:00:00.000Z', ageSeconds: 4.2 },
          lastSuccessAgeSeconds: 4.2,
          consecutiveFailures: 0,
          coolDownRemainingSeconds: 0,
          queued: 0,
          status: 'up',
        }),
      },
      coolingDown: {
        summary: 'Nominatim answered 429: nothing is sent for a while',
        value: wrap('degraded', 'upstream', {
          state: 'cooling_down',
          url: 'https://nominatim.openstreetmap.org',
          lastCall: { endpoint: 'search', status: 429, durationMs: 80, at: '2026-01-01T12:00:00.000Z', ageSeconds: 2.1 },
          lastSuccessAgeSeconds: 65.3,
          consecutiveFailures: 1,
          coolDownRemainingSeconds: 58,
          queued: 0,
          status: 'degraded',
        }),
      },
    }),
  })
  @ApiServiceUnavailableResponse(SHUTTING_DOWN)
  upstreamState(): Promise<HealthCheckResult> {
    return this.health.check([() => this.upstream.check()]);
  }
}
