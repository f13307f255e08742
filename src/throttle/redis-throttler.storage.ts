import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { createHash } from 'node:crypto';
import { KEY_PREFIX } from '../cache/cache.constants';
import type { RedisCommandClient } from '../cache/redis-commands';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { refusedByRedis } from '../cache/redis-guard';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * One atomic step of a fixed window with a block, as ThrottlerStorage v6 expects it.
 * KEYS[1] counts the window's hits; KEYS[2] exists while the client is blocked and holds the count
 * that blocked it. ARGV: window (ms), limit, block duration (ms).
 * Replies {totalHits, timeToExpire ms, isBlocked 0/1, timeToBlockExpire ms}.
 * A blocked request is not counted (the block, not the count, decides until it ends), and the window
 * starts afresh after a block, like @nestjs/throttler's in-memory storage.
 */
const INCREMENT_SCRIPT = `
local blocked = redis.call('GET', KEYS[2])
if blocked then
  local left = redis.call('PTTL', KEYS[2])
  return {tonumber(blocked), left, 1, left}
end
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
if hits > tonumber(ARGV[2]) then
  local block = tonumber(ARGV[3])
  if block > 0 then
    redis.call('SET', KEYS[2], hits, 'PX', block)
    redis.call('DEL', KEYS[1])
    return {hits, block, 1, block}
  end
  return {hits, ttl, 1, ttl}
end
return {hits, ttl, 0, 0}
`;
const INCREMENT_SHA = createHash('sha1').update(INCREMENT_SCRIPT).digest('hex');

/** Counter keys live under the service's namespace but outside the cache entries' (admin purges skip them). */
export const THROTTLE_KEY_PREFIX = `${KEY_PREFIX}throttle:`;

/**
 * @nestjs/throttler storage in Redis, so a client's allowance of misses holds across instances.
 * Redis is never allowed to fail a request: in in-memory mode, or when Redis is down, frozen or slow
 * (every call is bounded by REDIS_OP_TIMEOUT_MS through RedisConnectionService.run), it counts in this
 * process with @nestjs/throttler's own in-memory storage — the limit still holds per instance.
 */
@Injectable()
export class RedisThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly logger = new Logger(RedisThrottlerStorage.name);
  readonly memory = new ThrottlerStorageService();
  /** counting per process; `quiet` when Redis refused the script (the connection logs refusals) */
  private degraded: false | 'logged' | 'quiet' = false;

  constructor(private readonly conn: RedisConnectionService) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    const client = this.conn.client;
    if (client === null) return this.memory.increment(key, ttl, limit, blockDuration, throttlerName);
    const hashed = createHash('sha256').update(`${throttlerName}\n${key}`).digest('base64url').slice(0, 32);
    // On a cluster both keys carry the hash as a tag: the script touches them together.
    const tagged = this.conn.keys.tag(hashed);
    const keys = [`${THROTTLE_KEY_PREFIX}${tagged}`, `${THROTTLE_KEY_PREFIX}${tagged}:block`];
    const args = [String(Math.max(1, Math.ceil(ttl))), String(limit), String(Math.max(0, Math.ceil(blockDuration)))];
    let reply: unknown;
    try {
      reply = await this.conn.run('throttle', () => runScript(client, keys, args));
    } catch (error) {
      this.noteDegraded(error);
      return this.memory.increment(key, ttl, limit, blockDuration, throttlerName);
    }
    if (!Array.isArray(reply) || reply.length !== 4) {
      this.noteDegraded(new Error(`unexpected throttle script reply ${JSON.stringify(reply)}`));
      return this.memory.increment(key, ttl, limit, blockDuration, throttlerName);
    }
    this.noteHealthy();
    const [totalHits, expireMs, blocked, blockMs] = reply.map(Number);
    return {
      totalHits,
      timeToExpire: seconds(expireMs),
      isBlocked: blocked === 1,
      timeToBlockExpire: blocked === 1 ? Math.max(1, seconds(blockMs)) : 0,
    };
  }

  onApplicationShutdown(): void {
    this.memory.onApplicationShutdown();
  }

  private noteDegraded(error: unknown): void {
    if (this.degraded) return;
    this.degraded = refusedByRedis(error) ? 'quiet' : 'logged';
    if (this.degraded === 'quiet') return;
    this.logger.warn(
      `Rate limit counts kept in this process only (${error instanceof Error ? error.message : String(error)}); shared again when Redis returns`,
    );
  }

  private noteHealthy(): void {
    if (!this.degraded) return;
    const logged = this.degraded === 'logged';
    this.degraded = false;
    if (logged) this.logger.log('Redis is back: rate limit counts are shared again');
  }
}

async function runScript(client: RedisCommandClient, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await client.evalSha(INCREMENT_SHA, { keys, arguments: args });
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return client.eval(INCREMENT_SCRIPT, { keys, arguments: args });
    }
    throw error;
  }
}

function seconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}
