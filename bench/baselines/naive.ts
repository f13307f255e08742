/**
 * The "naive" baseline: the cache-aside design of the usual tutorial, in plain node:http + the `redis`
 * client. GET the raw `q`; on a miss fetch upstream, SET it with EX, answer `{cache, data}`. No
 * canonicalisation, coalescing, pacing, headers, logging or metrics. JSON is parsed and re-serialised,
 * as the tutorial does.
 */
import http from 'node:http';
import { createClient } from 'redis';
import { announce, env } from './child';

const REDIS_URL = env('REDIS_URL');
const UPSTREAM = env('NOMINATIM_URL');
const TTL_SECONDS = Number(env('CACHE_TTL_SECONDS', '3600'));

async function main(): Promise<void> {
  const redis = createClient({ url: REDIS_URL });
  redis.on('error', (e: Error) => console.error(`naive: redis ${e.message}`));
  await redis.connect();

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const q = url.searchParams.get('q');
      if (url.pathname !== '/api' || !q) {
        res.writeHead(url.pathname === '/api' ? 400 : 404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'q is required' }));
        return;
      }
      const cached = await redis.get(q);
      if (cached !== null) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ cache: true, data: JSON.parse(cached) }));
        return;
      }
      const upstream = await fetch(`${UPSTREAM}/search?q=${encodeURIComponent(q)}&format=json`, {
        headers: { 'User-Agent': 'places-cache-bench-naive/1.0' },
      });
      const data: unknown = await upstream.json();
      await redis.set(q, JSON.stringify(data), { EX: TTL_SECONDS });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ cache: false, data }));
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: (e as Error).message }));
    }
  });
  server.listen(0, '127.0.0.1', () => announce(server));
}

void main();
