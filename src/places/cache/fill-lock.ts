import { Logger } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import type { RedisCommandClient, RedisSubscriberClient } from '../../cache/redis-commands';
import { ChannelSubscription } from '../../cache/channel-subscription';
import type { RedisGuard } from '../../cache/redis-guard';
import { withTimeout } from '../../cache/with-timeout';
import { GatewayError } from '../../common/gateway.errors';

export interface FillLockOptions {
  /** Namespace of the lock keys and of the notification channel, e.g. 'places:v1:'. */
  keyPrefix: string;
  /** Lease of a lock: a crashed holder's lock disappears after this long. Longer than one upstream call. */
  leaseMs: number;
  /** Bound on each Redis round trip. */
  opTimeoutMs: number;
  /**
   * Runs acquire, notify and poll calls instead of a plain opTimeoutMs timeout: the app passes
   * RedisConnectionService.run, so a Redis that is down or frozen is skipped at once rather than waited for.
   */
  guard?: RedisGuard;
  /** Reports a refused SUBSCRIBE (RedisConnectionService.noteRefused); true when it was one: it is then retried every SUBSCRIBE_RETRY_MS. */
  refused?: (op: string, error: unknown) => boolean;
  /** Redis name of an answer's key (RedisKeys.answer): on a cluster its hash tag puts the lock in the answer's slot. */
  keyName?: (key: string) => string;
}

/**
 * What a notice says of a key's fill: stored ('filled'), its lock removed without a fill ('released'),
 * or the holder's upstream call failed with this error (`{ failed }`, see notifyFailed).
 */
export type FillNotice = 'filled' | 'released' | { failed: GatewayError };

/* Compare-and-delete: only the holder of the token removes the lock. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
const RELEASE_SHA = createHash('sha1').update(RELEASE_SCRIPT).digest('hex');

/**
 * The Redis side of single flight across instances: the fill lock and its notices, and no state of
 * its own per key (SingleFlight keeps who waits for which key). The instance that wins `tryAcquire`
 * fetches upstream, writes the cache, calls `notifyFilled` and `release`; the others wait (see
 * SingleFlight.waitForFill) and then read the cache. Every notice is reported to the listener: this
 * process's own at once, other instances' as pub/sub delivers them; `isHeld` is the existence check a
 * waiter polls to notice a lock that disappears without one (holder gave up, or crashed and its lease
 * expired).
 */
export class FillLock {
  private readonly logger = new Logger(FillLock.name);
  private readonly channel: string;
  private listener?: (key: string, notice: FillNotice) => void;
  private readonly notices: ChannelSubscription;
  private readonly onMessage = (message: string) => {
    const notice = parseNotice(message);
    if (notice !== undefined) this.listener?.(notice.key, notice.said);
  };

  constructor(
    private readonly client: RedisCommandClient,
    subscriber: RedisSubscriberClient,
    private readonly options: FillLockOptions,
  ) {
    this.channel = `${options.keyPrefix}filled`;
    this.notices = new ChannelSubscription({
      subscriber,
      channel: this.channel,
      onMessage: this.onMessage,
      opTimeoutMs: options.opTimeoutMs,
      op: 'fill-lock subscribe',
      name: 'Fill notice subscription',
      // Waiters then learn of other instances' fills only by polling the lock (up to MAX_POLL_MS later).
      meanwhile: 'waiting instances poll the lock instead',
      refused: options.refused,
      logger: this.logger,
    });
  }

  get leaseMs(): number {
    return this.options.leaseMs;
  }

  /**
   * Reports every notice about a key's fill to `listener` (one listener: the app's SingleFlight):
   * notifyFilled, notifyFailed and a release that removed the lock here at once, before Redis hears of
   * them; other instances' notices as they arrive (after start).
   */
  listen(listener: (key: string, notice: FillNotice) => void): void {
    this.listener = listener;
  }

  /** Subscribes (once) to the fill notifications; rejects when this attempt failed (logged, and retried if refused). */
  start(): Promise<void> {
    return this.notices.start();
  }

  /** Takes the lock for `key` with a lease; resolves its token, or null if another holder has it. Throws on Redis failure. */
  async tryAcquire(key: string): Promise<string | null> {
    const token = randomUUID();
    let sent = false;
    try {
      const reply = await this.redisCall('fill-lock acquire', () => {
        sent = true;
        return this.client.set(this.lockKey(key), token, { NX: true, PX: this.options.leaseMs });
      });
      return reply === 'OK' ? token : null;
    } catch (error) {
      // A frozen Redis runs the SET it was sent once it wakes up, taking a lock nobody holds for a whole
      // lease (waiters would wait that long): send the compare-and-delete right behind it. (A closed
      // connection sent nothing.)
      if (sent && this.client.isReady) void this.release(key, token);
      throw error;
    }
  }

  /**
   * Releases the lock if `token` still holds it (a lease that expired and was taken by someone else is
   * left alone). Best effort: never rejects, since the lease ends the lock anyway.
   */
  async release(key: string, token: string): Promise<void> {
    const keys = [this.lockKey(key)];
    try {
      const deleted = await withTimeout(
        this.client.evalSha(RELEASE_SHA, { keys, arguments: [token] }).catch((error: unknown) => {
          if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
            return this.client.eval(RELEASE_SCRIPT, { keys, arguments: [token] });
          }
          throw error;
        }),
        this.options.opTimeoutMs,
        'redis fill-lock release',
      );
      if (Number(deleted) === 1) this.listener?.(key, 'released');
    } catch (error) {
      // Debug only: Redis being down is logged once, as a state change, by its owner.
      this.logger.debug(`Fill lock release failed (${describe(error)}); its lease will end it`);
    }
  }

  /**
   * Wakes the waiters for `key`: this process's at once, other instances' through pub/sub. Best effort:
   * never rejects; remote waiters still notice the released lock by their poll.
   */
  async notifyFilled(key: string): Promise<void> {
    this.listener?.(key, 'filled');
    try {
      await this.redisCall('fill-lock publish', () => this.client.publish(this.channel, key));
    } catch (error) {
      this.logger.debug(`Fill notification failed (${describe(error)}); waiters will see the lock released`);
    }
  }

  /**
   * Tells the waiters for `key` that the holder's upstream call failed with `error`: they answer with
   * the same error at once (their callers may serve a stale copy) instead of each taking the lock in
   * turn and asking again, a whole upstream timeout apiece. Call it before `release` (same connection):
   * Redis then publishes before it deletes the lock, so a waiter's poll does not find the lock gone
   * first. Best effort, never rejects: a waiter that misses it sees the lock released and takes over.
   */
  async notifyFailed(key: string, error: GatewayError): Promise<void> {
    this.listener?.(key, { failed: error });
    try {
      await this.redisCall('fill-lock publish', () => this.client.publish(this.channel, failureNotice(key, error)));
    } catch (error) {
      this.logger.debug(`Fill failure notification failed (${describe(error)}); waiters will see the lock released`);
    }
  }

  /**
   * Whether the lock of `key` is still there (held, its lease not ended). Throws as the guard does:
   * RedisUnavailableError or OperationTimeoutError when Redis does not answer.
   */
  async isHeld(key: string): Promise<boolean> {
    return (await this.redisCall('fill-lock check', () => this.client.exists(this.lockKey(key)))) > 0;
  }

  /** Unsubscribes from the notices. */
  stop(): Promise<void> {
    return this.notices.stop();
  }

  /** One bounded Redis call: through the app's guard when given, else with the plain op timeout. */
  private redisCall<T>(op: string, call: () => Promise<T>): Promise<T> {
    return this.options.guard ? this.options.guard(op, call) : withTimeout(call(), this.options.opTimeoutMs, `redis ${op}`);
  }

  private lockKey(key: string): string {
    return `${this.options.keyPrefix}lock:${this.options.keyName?.(key) ?? key}`;
  }
}

/*
 * The notices on the channel. A fill's is the key itself, as ever: instances still running the code
 * before failure notices (a rolling deploy) and new ones wake each other on fills alike. A failure's is a
 * JSON object; an old instance takes it for a key nobody waits for and ignores it (its waiters see the
 * lock released and take over, as they always did). The gateway's keys (places:v1:…) never start with '{'.
 */
interface FailureNotice {
  key: string;
  failed: { status: number; code: string; message: string; retryAfterSeconds?: number; upstreamStatus?: number };
}

function failureNotice(key: string, e: GatewayError): string {
  const notice: FailureNotice = {
    key,
    failed: { status: e.getStatus(), code: e.code, message: e.message, retryAfterSeconds: e.retryAfterSeconds, upstreamStatus: e.upstreamStatus },
  };
  return JSON.stringify(notice);
}

/** The key a notice is about and what it says; undefined for an unreadable one (ignored: the waiters' poll decides). */
function parseNotice(message: string): { key: string; said: FillNotice } | undefined {
  if (!message.startsWith('{')) return { key: message, said: 'filled' };
  let notice: Partial<FailureNotice>;
  try {
    notice = JSON.parse(message) as Partial<FailureNotice>;
  } catch {
    return undefined;
  }
  const f = notice.failed;
  const valid =
    typeof notice.key === 'string' &&
    typeof f === 'object' &&
    f !== null &&
    Number.isInteger(f.status) &&
    f.status >= 400 &&
    f.status <= 599 &&
    typeof f.code === 'string' &&
    typeof f.message === 'string' &&
    (f.retryAfterSeconds === undefined || (typeof f.retryAfterSeconds === 'number' && f.retryAfterSeconds > 0)) &&
    (f.upstreamStatus === undefined || Number.isInteger(f.upstreamStatus));
  if (!valid) return undefined;
  return { key: notice.key!, said: { failed: new GatewayError(f.status, f.message, f.code, f.retryAfterSeconds, f.upstreamStatus) } };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
