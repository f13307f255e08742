import { INestApplicationContext } from '@nestjs/common';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { KEY_PREFIX } from '../cache/cache.constants';
import { RedisConnectionService } from '../cache/redis-connection.service';
import { withTimeout } from '../cache/with-timeout';
import { isEntryKey } from '../places/cache/cache-purge.service';
import { toEntryLine } from './cache-entry-line';
import { CliError } from './line-input';

/** Keys per SCAN page; their values and TTLs are read in one pipelined round trip. */
const SCAN_COUNT = 500;
/** A command waits longer than a request would, but not forever on a frozen Redis. */
const PAGE_TIMEOUT_MS = 30_000;

/** Opens FILE for writing (standard output for -), failing in one line when it cannot be created. */
async function openOutput(file: string): Promise<Writable> {
  if (file === '-') return process.stdout;
  const out = createWriteStream(file);
  try {
    await once(out, 'open');
  } catch (e) {
    throw new CliError(`cannot write ${file}: ${(e as Error).message}`);
  }
  return out;
}

/**
 * `export FILE|-`: every cache entry as one NDJSON line, walking the keys with SCAN a page at a time
 * and writing each page before reading the next (constant memory; the output's back-pressure is
 * respected). SCAN may return a key twice while Redis resizes its table: import takes it twice, harmlessly.
 */
export async function exportEntries(app: INestApplicationContext, file: string, prefix: string, err: Writable = process.stderr): Promise<number> {
  const start = prefix === '' ? KEY_PREFIX : prefix;
  if (!start.startsWith(KEY_PREFIX)) throw new CliError(`--prefix must start with ${KEY_PREFIX}`);
  // One Redis, or every master of a cluster: each SCANs and reads the keys it holds. On a cluster the
  // Redis names carry a hash tag; the lines carry the canonical keys, so an export imports either way.
  const conn = app.get(RedisConnectionService);
  const names = conn.keys;
  const nodes = conn.scanClients();
  const fromReplica = conn.state === 'read_only';
  if (nodes.length === 0) throw new CliError('REDIS_URL is not set');
  const out = await openOutput(file);
  const name = file === '-' ? 'standard output' : file;
  const outError = new Promise<never>((_, reject) => out.once('error', (e) => reject(new CliError(`cannot write ${name}: ${e.message}`))));
  outError.catch(() => undefined);
  const started = performance.now();
  let written = 0;
  let unreadable = 0;
  for (const client of nodes) {
    let cursor = 0;
    do {
      const page = await withTimeout(client.scan(cursor, { MATCH: names.matchFor(start), COUNT: SCAN_COUNT }), PAGE_TIMEOUT_MS, 'redis scan');
      cursor = Number(page.cursor);
      const keys = page.keys.filter((k) => {
        const key = names.canonical(k);
        return key.startsWith(start) && isEntryKey(key);
      });
      // Read before the TTLs: an expiry computed from it is never later than Redis's own.
      const now = Date.now();
      // node-redis pipelines the commands sent in one tick: one round trip for the page.
      const reads = await withTimeout(
        Promise.all(keys.map((k) => Promise.all([client.get(k), client.pTTL(k)]))),
        PAGE_TIMEOUT_MS,
        'redis get',
      );
      let chunk = '';
      reads.forEach(([value, pttl], i) => {
        if (value === null || pttl === -2) return; // gone since the SCAN
        const line = toEntryLine(names.canonical(keys[i]), value, pttl, now);
        if (line === null) {
          unreadable++;
          return;
        }
        chunk += `${JSON.stringify(line)}\n`;
        written++;
      });
      if (chunk !== '' && !out.write(chunk)) await Promise.race([once(out, 'drain'), outError]);
    } while (cursor !== 0);
  }
  if (out !== process.stdout) {
    out.end();
    await Promise.race([once(out, 'finish'), outError]);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  err.write(
    `export: ${written} entries written to ${file === '-' ? 'standard output' : file} in ${seconds} s` +
      `${fromReplica ? ', read from a read-only replica (what its master stored in the last moments may be missing)' : ''}` +
      `${unreadable > 0 ? `; ${unreadable} values this version cannot read were left out` : ''}\n`,
  );
  return 0;
}
