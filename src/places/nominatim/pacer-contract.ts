import type { RedisGuard } from '../../cache/redis-guard';

/** What UpstreamPacer is given and what it gives its callers. */

export interface UpstreamPacerOptions {
  /** Minimum spacing between two upstream request starts, across all instances (1000 / NOMINATIM_MAX_RPS). */
  minIntervalMs: number;
  /** Longest a caller may sleep for its slot; beyond that it is refused with QueueFullError. */
  maxWaitMs: number;
  /** Namespace of the shared keys, e.g. 'places:v1:'. */
  keyPrefix: string;
  /** Bound on each Redis round trip; past it the pacer falls back to its in-process scheduler. */
  opTimeoutMs: number;
  /**
   * Runs each Redis call instead of a plain opTimeoutMs timeout: the app passes RedisConnectionService.run,
   * so a Redis that times out here is skipped by every caller for a while (and vice versa).
   */
  guard?: RedisGuard;
  /**
   * Added to the interval (default 5% of minIntervalMs, at most 50 ms) so that jitter between instances
   * cannot squeeze two starts closer than minIntervalMs: a caller that cannot start within its window
   * (guardMs, see pacing-arithmetic.ts) of its shared slot gives the slot up and queues again.
   */
  guardMs?: number;
  /**
   * Processes that share this budget (FLEET_INSTANCES × WEB_CONCURRENCY; default 1). Without a usable
   * Redis each paces on its own, so each then takes this share of the rate: its local slots are this
   * many intervals apart, and the fleet stays within the budget while Redis is down or slow.
   */
  processes?: number;
  /** Local monotonic clock (ms), performance.now() by default. Only used for relative delays, never compared across instances. */
  now?: () => number;
}

export type PacerMode = 'redis' | 'local';

/** What a caller gets with its slot. */
export interface PacerGrant {
  waitedMs: number;
  mode: PacerMode;
  /**
   * To call when the request has been written to the socket (or will not be: call it on failure too).
   * With `signalsSend`, this process's next request waits for it: spacing is then measured from the
   * moment a request really left, not from its slot, so a slow start (a new connection, a busy event
   * loop) cannot bunch two requests together. Idempotent. `written`: false when the request failed
   * before it was written (nothing reached the upstream).
   */
  sent(written?: boolean): void;
}
