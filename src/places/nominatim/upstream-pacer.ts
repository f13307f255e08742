import { Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { RedisCommandClient } from '../../cache/redis-commands';
import type { RedisGuard } from '../../cache/redis-guard';
import { withTimeout } from '../../cache/with-timeout';

/** The queue for an upstream slot is longer than callers may wait: answer 503 with Retry-After. */
export class QueueFullError extends Error {
  constructor(public readonly retryAfterSeconds: number) {
    super(`upstream queue is full; retry after ${retryAfterSeconds} s`);
    this.name = 'QueueFullError';
  }
}

/** Upstream answered 429/403 recently; nothing may be sent until the cool-down ends. */
export class CoolingDownError extends Error {
  constructor(public readonly retryAfterSeconds: number) {
    super(`upstream is cooling down; retry after ${retryAfterSeconds} s`);
    this.name = 'CoolingDownError';
  }
}

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
   * cannot squeeze two starts closer than minIntervalMs: a caller that cannot start within guardMs of
   * its shared slot (a late Redis reply, event-loop lag, clocks known too loosely) gives the slot up and
   * queues again. It also absorbs the jitter between a start and the request reaching upstream.
   */
  guardMs?: number;
  /** Local monotonic clock (ms), performance.now() by default. Only used for relative delays, never compared across instances. */
  now?: () => number;
}

export type PacerMode = 'redis' | 'local';

/*
 * One shared "next free slot" per application (GCRA with a burst of 1), kept in Redis and computed on
 * Redis's own clock (TIME), so instances with skewed clocks still agree. Effects replication (default
 * since Redis 5, the only mode in 7) makes TIME inside a writing script safe.
 *
 * KEYS[1] next free slot (ms, Redis clock)   KEYS[2] cool-down flag (its PTTL is the remaining cool-down)
 * ARGV[1] interval ms (guard included)        ARGV[2] max wait ms for this call
 * ARGV[3] minimum delay ms the calling process needs (its own slots already handed out)
 * ARGV[4] horizon ms: a stored slot further ahead than this means Redis's clock stepped back; reset it
 * Returns {0, delayMs, nowUs} granted | {1, waitMs, nowUs} queue full | {2, pttlMs, 0} cooling down.
 */
const ACQUIRE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local cooling = redis.call('PTTL', KEYS[2])
if cooling > 0 then return {2, cooling, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nxt = tonumber(redis.call('GET', KEYS[1]) or now)
if nxt > now + tonumber(ARGV[4]) then nxt = now end
local slot = math.max(now + tonumber(ARGV[3]), nxt)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return {1, wait, nowUs} end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', slot + interval), 'PX', string.format('%.0f', wait + interval))
return {0, wait, nowUs}
`;

/* Sets the cool-down unless a longer one is already running. KEYS[1] cool-down flag, ARGV[1] ms. */
const COOL_DOWN_SCRIPT = `
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`;

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

/** How long before its slot a sleeping caller re-reads the shared cool-down (set by another instance meanwhile). */
const COOL_DOWN_RECHECK_LEAD_MS = 50;
/** How fast a Redis-clock offset sample loses precision (ms per ms): drift of the wall clock Redis reads against our monotonic one; 0.2 % was seen on a loaded VM. */
const CLOCK_DRIFT_ALLOWANCE = 0.005;

/** Redis clock minus local clock, from the round trip with the best recent precision (NTP-style). */
interface ClockOffset {
  offsetMs: number;
  errorMs: number;
  at: number;
}

interface Sleeper {
  timer?: NodeJS.Timeout;
  fail(error: Error): void;
}

/**
 * Global pacing of upstream (Nominatim) requests: at most one request start per `minIntervalMs` for
 * the whole application, however many instances share the Redis. Callers ask for a slot, sleep until
 * it comes and then start; a caller whose slot is further away than `maxWaitMs` is refused at once.
 *
 * Without a usable Redis (none configured, not ready, reported unhealthy, or a failed/slow call) the
 * same strict scheduler runs in-process, so pacing then holds per process only.
 */
export class UpstreamPacer {
  private readonly logger = new Logger(UpstreamPacer.name);
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly nextKey: string;
  private readonly coolDownKey: string;
  private readonly acquireSha = sha1(ACQUIRE_SCRIPT);
  private readonly coolDownSha = sha1(COOL_DOWN_SCRIPT);
  private readonly sleepers = new Set<Sleeper>();
  /** Earliest start this process may use next, on the local clock (slots from Redis included). */
  private localNext = -Infinity;
  private lastStart = -Infinity;
  private localCoolDownUntil = -Infinity;
  private readonly guardMs: number;
  private readonly horizonMs: number;
  private clock?: ClockOffset;
  private missedSlots = 0;
  private degraded = false;

  constructor(
    private readonly client: RedisCommandClient | null,
    private readonly options: UpstreamPacerOptions,
    private readonly isRedisUsable: () => boolean = () => true,
  ) {
    if (!(options.minIntervalMs > 0)) throw new RangeError('minIntervalMs must be > 0');
    if (!(options.maxWaitMs >= 0)) throw new RangeError('maxWaitMs must be >= 0');
    // The guard is also the lateness a caller's timer may have; below ~10 ms no event loop meets it
    // (a 1000 req/s setting would re-queue every caller), and at such rates the spacing is not a policy.
    this.guardMs = Math.max(0, options.guardMs ?? Math.min(50, Math.max(10, options.minIntervalMs / 20)));
    this.intervalMs = Math.ceil(options.minIntervalMs + this.guardMs);
    this.horizonMs = Math.ceil(options.maxWaitMs) + this.intervalMs;
    this.now = options.now ?? (() => performance.now());
    this.nextKey = `${options.keyPrefix}pacer:next`;
    this.coolDownKey = `${options.keyPrefix}pacer:cooldown`;
  }

  /** Callers currently sleeping for their slot. */
  get waiting(): number {
    return this.sleepers.size;
  }

  /**
   * Resolves when the caller may start its upstream request. Rejects with QueueFullError or
   * CoolingDownError (both carry retryAfterSeconds), or with the signal's reason when aborted; an
   * aborted caller's slot is not given back (pacing stays strict, one slot is lost).
   */
  async acquire(signal?: AbortSignal): Promise<{ waitedMs: number; mode: PacerMode }> {
    const askedAt = this.now();
    signal?.throwIfAborted();
    this.throwIfCoolingDownLocally();

    for (;;) {
      // A re-reservation after a missed slot must still fit in what is left of maxWaitMs.
      const { slot, deadline, mode } = await this.reserve(Math.max(0, this.options.maxWaitMs - (this.now() - askedAt)));
      await this.sleepUntilSlot(slot, mode === 'redis', signal);

      const startAt = this.now();
      if (startAt <= deadline) {
        this.lastStart = startAt;
        return { waitedMs: startAt - askedAt, mode };
      }
      this.noteMissedSlot(startAt - slot);
    }
  }

  /**
   * Reserves a slot, shared when Redis is usable, else local. `slot` is the local time to start at
   * and `deadline` the latest start that keeps the spacing (local slots have none: lastStart keeps
   * this process's own starts apart exactly).
   */
  private async reserve(maxWaitMs: number): Promise<{ slot: number; deadline: number; mode: PacerMode }> {
    if (!this.redisUsable()) {
      if (this.client) this.noteRedisFailure('client not ready or reported unusable');
      return { slot: this.reserveLocal(maxWaitMs), deadline: Infinity, mode: 'local' };
    }
    try {
      const shared = await this.reserveShared(maxWaitMs);
      this.noteRedisHealthy();
      return { ...shared, mode: 'redis' };
    } catch (error) {
      if (error instanceof QueueFullError || error instanceof CoolingDownError) throw error;
      this.noteRedisFailure(error);
      return { slot: this.reserveLocal(maxWaitMs), deadline: Infinity, mode: 'local' };
    }
  }

  /**
   * Starts a cool-down (after an upstream 429/403): locally at once, and shared through Redis when it
   * can be reached. Never rejects; a longer cool-down already running is kept. Callers sleeping in
   * this process's queue are refused immediately.
   */
  async coolDown(ms: number): Promise<void> {
    const duration = Math.max(1, Math.ceil(ms));
    this.localCoolDownUntil = Math.max(this.localCoolDownUntil, this.now() + duration);
    const error = new CoolingDownError(this.secondsFor(this.cooldownRemainingMs()));
    for (const sleeper of [...this.sleepers]) sleeper.fail(error);

    if (!this.client || !this.redisUsable()) return;
    try {
      await this.redisCall('pacer cool-down', () =>
        this.runScript(COOL_DOWN_SCRIPT, this.coolDownSha, [this.coolDownKey], [String(duration)]),
      );
    } catch (err) {
      this.noteRedisFailure(err);
    }
  }

  /** Remaining cool-down as this process knows it (its own, or one seen in Redis). */
  cooldownRemainingMs(): number {
    return Math.max(0, this.localCoolDownUntil - this.now());
  }

  /** One bounded Redis call: through the app's guard when given, else with the plain op timeout. */
  private redisCall<T>(op: string, call: () => Promise<T>): Promise<T> {
    return this.options.guard ? this.options.guard(op, call) : withTimeout(call(), this.options.opTimeoutMs, `redis ${op}`);
  }

  private redisUsable(): boolean {
    return this.client !== null && this.client.isReady && this.isRedisUsable();
  }

  /**
   * Reserves the next shared slot and maps it onto the local clock. Bookkeeping happens in the same
   * turn as the reply so that concurrent callers of this process see each other's slots.
   */
  private async reserveShared(maxWaitMs: number): Promise<{ slot: number; deadline: number }> {
    const ownDelay = Math.max(0, Math.ceil(this.localNext - this.now()));
    let sentAt = this.now();
    const reply = await this.redisCall('pacer acquire', () =>
      this.runScript(
        ACQUIRE_SCRIPT,
        this.acquireSha,
        [this.nextKey, this.coolDownKey],
        [String(this.intervalMs), String(Math.floor(maxWaitMs)), String(ownDelay), String(this.horizonMs)],
        () => (sentAt = this.now()),
      ),
    );
    const arrivedAt = this.now();
    if (!Array.isArray(reply) || reply.length !== 3) throw new Error(`unexpected pacer script reply ${JSON.stringify(reply)}`);
    const [status, ms, redisNowUs] = reply.map(Number);
    if (status === 2) {
      this.localCoolDownUntil = Math.max(this.localCoolDownUntil, arrivedAt + ms);
      throw new CoolingDownError(this.secondsFor(ms));
    }
    if (status === 1) throw new QueueFullError(this.secondsFor(ms));

    const [earliest, latest] = this.locateSlot(Math.floor(redisNowUs / 1000) + ms, redisNowUs / 1000, ms, sentAt, arrivedAt);
    this.localNext = Math.max(this.localNext, latest + this.intervalMs);
    // Starting at `latest` is never early; starting by earliest + guard is never late enough to come
    // within minIntervalMs of the next slot. A window wider than the guard (clocks known too loosely, a
    // slow round trip) has no safe start: the slot is given up and the caller queues again. Starting
    // late "best effort" instead put starts of two instances 950 ms apart in the pacing e2e test.
    const deadline = earliest + this.guardMs;
    return { slot: latest, deadline };
  }

  /**
   * Where a Redis-clock slot lies on the local clock, as [earliest, latest]. The script ran between
   * sentAt and arrivedAt; the offset between the clocks measured on the best recent round trip
   * (NTP-style) narrows that, since this round trip may have queued behind others or retried.
   */
  private locateSlot(redisSlotMs: number, redisNowMs: number, delayMs: number, sentAt: number, arrivedAt: number): [number, number] {
    const roundTrip: [number, number] = [sentAt + delayMs - 1, arrivedAt + delayMs]; // -1: Redis floors its ms
    const errorMs = (arrivedAt - sentAt) / 2;
    const agedError = (c: ClockOffset) => c.errorMs + (arrivedAt - c.at) * CLOCK_DRIFT_ALLOWANCE;
    if (!this.clock || errorMs <= agedError(this.clock)) {
      this.clock = { offsetMs: redisNowMs - (sentAt + arrivedAt) / 2, errorMs, at: arrivedAt };
    }
    const estimate = redisSlotMs - this.clock.offsetMs;
    const error = agedError(this.clock);
    const earliest = Math.max(roundTrip[0], estimate - error);
    const latest = Math.min(roundTrip[1], estimate + error);
    if (earliest > latest) {
      // The stored offset no longer fits (a clock step): trust this round trip alone.
      this.clock = { offsetMs: redisNowMs - (sentAt + arrivedAt) / 2, errorMs, at: arrivedAt };
      return roundTrip;
    }
    return [earliest, latest];
  }

  /** The same next-slot scheduler, per process; resolves the slot on the local clock. */
  private reserveLocal(maxWaitMs: number): number {
    const now = this.now();
    const slot = Math.max(now, this.localNext);
    const wait = slot - now;
    if (wait > maxWaitMs) throw new QueueFullError(this.secondsFor(wait));
    this.localNext = slot + this.intervalMs;
    return slot;
  }

  /**
   * Sleeps until `slot` (local clock). Before a shared slot it re-reads the shared cool-down in the
   * background, never delaying the start for it. On waking it also keeps this process's own starts
   * at least minIntervalMs apart on the local clock, whatever timer or event-loop jitter did.
   */
  private async sleepUntilSlot(slot: number, sharedRecheck: boolean, signal?: AbortSignal): Promise<void> {
    if (sharedRecheck && slot - this.now() > COOL_DOWN_RECHECK_LEAD_MS) {
      await this.sleep(slot - COOL_DOWN_RECHECK_LEAD_MS, signal);
      this.recheckSharedCoolDown();
    }
    for (;;) {
      await this.sleep(Math.max(slot, this.lastStart + this.options.minIntervalMs), signal);
      this.throwIfCoolingDownLocally();
      if (this.now() >= this.lastStart + this.options.minIntervalMs) return;
    }
  }

  private recheckSharedCoolDown(): void {
    if (!this.client || !this.redisUsable()) return;
    const client = this.client;
    this.redisCall('pacer cool-down check', () => client.pTTL(this.coolDownKey)).then(
      (pttl) => {
        if (pttl > 0) this.localCoolDownUntil = Math.max(this.localCoolDownUntil, this.now() + pttl);
      },
      () => undefined, // fail open: the local cool-down still applies
    );
  }

  /** Sleeps until `until` on the local clock; callers sleeping are counted and can be failed by coolDown(). */
  private sleep(until: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => sleeper.fail(toError(signal?.reason));
      const sleeper: Sleeper = {
        fail: (error) => {
          done();
          reject(error);
        },
      };
      const done = () => {
        clearTimeout(sleeper.timer);
        signal?.removeEventListener('abort', onAbort);
        this.sleepers.delete(sleeper);
      };
      if (signal?.aborted) return reject(toError(signal.reason));
      this.sleepers.add(sleeper);
      signal?.addEventListener('abort', onAbort, { once: true });
      const tick = () => {
        const remaining = until - this.now();
        if (remaining > 0) {
          sleeper.timer = setTimeout(tick, remaining);
          return;
        }
        done();
        resolve();
      };
      tick();
    });
  }

  private throwIfCoolingDownLocally(): void {
    const remaining = this.cooldownRemainingMs();
    if (remaining > 0) throw new CoolingDownError(this.secondsFor(remaining));
  }

  private secondsFor(ms: number): number {
    return Math.max(1, Math.ceil(ms / 1000));
  }

  /** EVALSHA, or EVAL when Redis does not know the script yet (`onRetry` marks the second send). */
  private async runScript(script: string, sha: string, keys: string[], args: string[], onRetry?: () => void): Promise<unknown> {
    const client = this.client as RedisCommandClient;
    try {
      return await client.evalSha(sha, { keys, arguments: args });
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
        onRetry?.();
        return client.eval(script, { keys, arguments: args });
      }
      throw error;
    }
  }

  private noteRedisFailure(error: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.logger.warn(
      `Redis unavailable for upstream pacing (${error instanceof Error ? error.message : String(error)}); pacing per process until it returns`,
    );
  }

  private noteMissedSlot(lateMs: number): void {
    if (this.missedSlots++ % 100 !== 0) return;
    this.logger.warn(
      `Upstream slot missed by ${lateMs.toFixed(1)} ms (event-loop lag or a late Redis reply beyond guardMs); re-queued, ${this.missedSlots} so far`,
    );
  }

  private noteRedisHealthy(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.logger.log('Redis is back: upstream pacing is global again');
  }
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason ?? 'aborted'));
}
