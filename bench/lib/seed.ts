/**
 * Fills a Redis with cached answers directly, in the exact form the service writes them: the key from
 * the service's canonicaliser, the value from CachedAnswer.toStored serialised as cache-manager does
 * (JSON), the expiry the service gives it. 100k answers then take seconds instead of 100k paced
 * upstream calls. The naive baseline's entries are written the way it writes them (raw q, JSON, EX).
 */
import type { RedisClientType } from 'redis';
import { CachedAnswer } from '../../src/places/cache/cached-answer';
import { spliceableGzip } from '../../src/places/cache/gzip-splice';
import { canonicaliseRoute } from '../../src/places/place-routes';

export const JSON_TYPE = 'application/json; charset=utf-8';

/** The service's cache key for `/api?q=<q>` (no Accept-Language header). */
export function apiKey(q: string): string {
  const c = canonicaliseRoute({ variant: 'api' }, `q=${encodeURIComponent(q)}`, undefined);
  if (!c.ok) throw new Error(`"${q}" is not a valid /api question`);
  return c.request.key;
}

export interface SeedPolicy {
  ttlSeconds: number;
  /** max(STALE_IF_ERROR_SECONDS, STALE_WHILE_REVALIDATE_SECONDS): how long Redis keeps an entry past freshness */
  keepSeconds: number;
  compressMinBytes: number;
}

/** The service's defaults (src/config/configuration.ts). */
export const DEFAULT_POLICY: SeedPolicy = { ttlSeconds: 3600, keepSeconds: 86_400, compressMinBytes: 256 };

/** One entry as the service stores it: key, JSON value, expiry in ms. */
export function storedEntry(q: string, body: Buffer, policy: SeedPolicy, gz?: string | null): { key: string; value: string; pxMs: number } {
  const now = Date.now();
  const freshUntil = now + policy.ttlSeconds * 1000;
  const staleUntil = freshUntil + policy.keepSeconds * 1000;
  const answer = new CachedAnswer(200, JSON_TYPE, body, now, freshUntil, staleUntil, false, gz ?? null);
  return { key: apiKey(q), value: JSON.stringify(answer.toStored(policy.compressMinBytes)), pxMs: staleUntil - now };
}

async function inBatches<T>(items: readonly T[], size: number, fn: (batch: readonly T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await fn(items.slice(i, i + size));
}

/** Writes `qs` as service entries that all hold `body`. */
export async function seedService(redis: RedisClientType, qs: readonly string[], body: Buffer, policy = DEFAULT_POLICY): Promise<void> {
  // Same bytes for every key: compress once and hand the gzip to each entry (toStored uses it as-is).
  const gz = body.length >= policy.compressMinBytes ? spliceableGzip(body) : null;
  await inBatches(qs, 2000, async (batch) => {
    const multi = redis.multi();
    for (const q of batch) {
      const e = storedEntry(q, body, policy, gz);
      multi.set(e.key, e.value, { PX: e.pxMs });
    }
    await multi.exec();
  });
}

/** Writes `qs` as the naive baseline stores them: key = raw q, value = JSON.stringify(JSON.parse(upstream body)). */
export async function seedNaive(redis: RedisClientType, qs: readonly string[], upstreamBody: Buffer, ttlSeconds = 3600): Promise<void> {
  const value = JSON.stringify(JSON.parse(upstreamBody.toString('utf8')));
  await inBatches(qs, 2000, async (batch) => {
    const multi = redis.multi();
    for (const q of batch) multi.set(q, value, { EX: ttlSeconds });
    await multi.exec();
  });
}

/** `MEMORY USAGE key SAMPLES 0` (exact for a string), and the value's length. */
export async function memoryOf(redis: RedisClientType, key: string): Promise<{ memoryBytes: number; valueBytes: number }> {
  const memoryBytes = Number(await redis.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']));
  const valueBytes = Number(await redis.sendCommand(['STRLEN', key]));
  return { memoryBytes, valueBytes };
}
