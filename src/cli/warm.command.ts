import { INestApplicationContext } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisUnavailableError } from '../cache/redis-guard';
import { GatewayError } from '../common/gateway.errors';
import { CanonicalRequest, canonicaliseApi } from '../places/nominatim/nominatim-request';
import { canonicaliseRoute, findRoute, splitTarget } from '../places/place-routes';
import { cacheConfig, CacheConfig } from '../config/configuration';
import { Fills } from '../places/cache/fills';
import { countLines, printable, readLines } from './line-input';
import { Progress, ProgressOutput, WarmCounts } from './progress';

/** A busy upstream (queue full, cool-down) is waited for and asked again this many times. */
const BUSY_RETRIES = 10;
/** A Redis that did not answer in time is asked again this many times, a second apart. */
const REDIS_RETRIES = 3;

export type Question = { ok: true; request: CanonicalRequest } | { ok: false; reason: string };

/** One line of a warm file: free text is an /api question, a line starting with / a Nominatim request. */
export function questionOf(line: string, reverseSnapMeters = 0): Question | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  if (!text.startsWith('/')) {
    const r = canonicaliseApi(new URLSearchParams([['q', text]]));
    return r.ok ? r : { ok: false, reason: errorText(r.error.body) };
  }
  const { path, query } = splitTarget(text);
  const route = findRoute(path);
  if (route === undefined) return { ok: false, reason: `${printable(path)} is not a Nominatim endpoint (/search, /reverse, /lookup, /status)` };
  const r = canonicaliseRoute(route, query, undefined, reverseSnapMeters);
  if (!r.ok) return { ok: false, reason: `${r.error.status} ${errorText(r.error.body)}` };
  if (!r.request.cacheable) return { ok: false, reason: `${path} answers are never cached` };
  return r;
}

/** The message of an error body (JSON `{error: {message}}` or `{message}`, else the text), on one line. */
function errorText(body: string): string {
  try {
    const v = JSON.parse(body) as { message?: unknown; error?: { message?: unknown } };
    const m = v.error?.message ?? v.message;
    if (typeof m === 'string') return m;
  } catch {
    // XML or text: shown as it is
  }
  return body.replace(/\s+/g, ' ').trim().slice(0, 200);
}

type Outcome = { kind: 'asked' | 'cached' } | { kind: 'failed'; reason: string };

/** Asks for one question unless it is cached and fresh; waits and retries when upstream or Redis is busy. */
async function warmOne(places: Fills, request: CanonicalRequest): Promise<Outcome> {
  let busy = 0;
  let redis = 0;
  for (;;) {
    try {
      const r = await places.warm(request);
      if (r === undefined || r.collapsed) return { kind: 'cached' };
      if (r.outcome === 'BYPASS') return { kind: 'failed', reason: 'Redis could not store the answer' };
      if (!r.stored) return { kind: 'failed', reason: `upstream answered ${r.answer.status}: ${errorText(r.answer.body.toString('utf8'))}` };
      return { kind: 'asked' };
    } catch (e) {
      if (e instanceof GatewayError && e.getStatus() === 503 && busy++ < BUSY_RETRIES) {
        await sleep((e.retryAfterSeconds ?? 1) * 1000);
        continue;
      }
      if (e instanceof RedisUnavailableError && redis++ < REDIS_RETRIES) {
        await sleep(1000);
        continue;
      }
      return { kind: 'failed', reason: e instanceof Error ? e.message : String(e) };
    }
  }
}

/**
 * `warm FILE|-`: every question of FILE that is not cached and fresh is asked once, through the
 * service's cache service (same keys, fill lock and fleet-wide pacer). Returns the exit code.
 */
export async function warm(
  app: INestApplicationContext,
  file: string,
  options: { concurrency: number; everySeconds: number },
  err: ProgressOutput = process.stderr,
): Promise<number> {
  const places = app.get(Fills);
  // The service's own question rules, REVERSE_SNAP_METERS included: the same keys as its requests.
  const { reverseSnapMeters } = app.get<CacheConfig>(cacheConfig.KEY);
  const total = await countLines(file);
  const counts: WarmCounts = { asked: 0, cached: 0, failed: 0, blank: 0 };
  const progress = new Progress(err, total, options.everySeconds * 1000);
  const fail = (n: number, reason: string) => {
    counts.failed++;
    progress.note(`line ${n}: ${reason}`, counts);
  };

  const running = new Set<Promise<void>>();
  let n = 0;
  for await (const line of readLines(file)) {
    n++;
    const q = questionOf(line, reverseSnapMeters);
    if (q === undefined) {
      counts.blank++;
      progress.update(counts);
      continue;
    }
    if (!q.ok) {
      fail(n, q.reason);
      continue;
    }
    const lineNo = n;
    const task = warmOne(places, q.request).then((o) => {
      if (o.kind === 'failed') fail(lineNo, o.reason);
      else counts[o.kind]++;
      progress.update(counts);
    });
    running.add(task);
    void task.finally(() => running.delete(task));
    if (running.size >= options.concurrency) await Promise.race(running);
  }
  await Promise.all(running);
  err.write(`${progress.finish(counts)}\n`);
  return counts.failed > 0 ? 1 : 0;
}
