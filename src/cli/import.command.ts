import { INestApplicationContext } from '@nestjs/common';
import type { Writable } from 'node:stream';
import { PURGE_CHANNEL } from '../places/cache/cache-purge.service';
import { PlacesCacheService } from '../places/cache/places-cache.service';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { withTimeout } from '../cache/with-timeout';
import { cacheConfig, CacheConfig, nominatimConfig, NominatimConfig } from '../config/configuration';
import { parseEntryLine } from './cache-entry-line';
import { readLines } from './line-input';

/** Entries written per pipelined round trip. */
const BATCH = 200;
const BATCH_TIMEOUT_MS = 30_000;

/*
 * Writes one entry unless Redis already holds a copy stored at the same time or later (an import
 * into a running fleet never replaces a newer answer with an older one), then publishes the key on
 * the purge channel: every running instance drops its L1 copy and reads the imported one from Redis.
 * KEYS[1] the entry's Redis name; ARGV[1] value (JSON of a StoredAnswer); ARGV[2] TTL ms;
 * ARGV[3] the entry's storedAt (epoch ms); ARGV[4] the purge channel; ARGV[5] the canonical key (the
 * Redis name without a cluster's hash tag, as purges publish it). Returns 1 written, 0 kept.
 */
const IMPORT_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, v = pcall(cjson.decode, current)
  if ok and type(v) == 'table' and tonumber(v['at']) and tonumber(v['at']) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`;

interface ImportCounts {
  imported: number;
  expired: number;
  kept: number;
  bad: number;
}

/**
 * `import FILE|-`: every valid line becomes the entry the service itself would have stored, with the
 * lifetime it had left; bad lines are reported by number and the rest imported. Returns the exit code.
 */
export async function importEntries(app: INestApplicationContext, file: string, err: Writable = process.stderr): Promise<number> {
  const conn = app.get(RedisConnectionService);
  const client = conn.client!;
  const { compressMinBytes } = app.get<CacheConfig>(cacheConfig.KEY);
  const { maxBytes } = app.get<NominatimConfig>(nominatimConfig.KEY);
  const limits = { compressMinBytes, maxBytes, keepMs: app.get(PlacesCacheService).keepMs };
  const counts: ImportCounts = { imported: 0, expired: 0, kept: 0, bad: 0 };
  const started = performance.now();
  let batch: Array<Promise<unknown>> = [];
  const flush = async () => {
    const replies = await withTimeout(Promise.all(batch), BATCH_TIMEOUT_MS, 'redis import');
    for (const r of replies) {
      if (Number(r) === 1) counts.imported++;
      else counts.kept++;
    }
    batch = [];
  };

  let n = 0;
  for await (const text of readLines(file)) {
    n++;
    if (text.trim() === '') continue;
    const line = parseEntryLine(text, Date.now(), limits);
    if (line.kind === 'bad') {
      counts.bad++;
      err.write(`line ${n}: ${line.reason}\n`);
      continue;
    }
    if (line.kind === 'expired') {
      counts.expired++;
      continue;
    }
    const args = [line.value, String(Math.ceil(line.ttlMs)), String(line.storedAt), PURGE_CHANNEL, line.key];
    // EVAL, not EVALSHA: the script is short, and a batch needs no NOSCRIPT round trip.
    batch.push(client.eval(IMPORT_SCRIPT, { keys: [conn.keys.answer(line.key)], arguments: args }));
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  err.write(
    `import: ${counts.imported} imported, ${counts.expired} expired (skipped), ` +
      `${counts.kept} older than the cached copy (kept the cached one), ${counts.bad} bad lines, in ${seconds} s\n`,
  );
  return counts.bad > 0 ? 1 : 0;
}
