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

function send(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function main(): Promise<void> {
  const redis = createClient({ url: REDIS_URL });
  redis.on('error', (e: Error) => console.error(`naive: redis ${e.message}`));
  await redis.connect();

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const q = url.searchParams.get('q');
      if (url.pathname !== '/api' || !q) return send(res, url.pathname === '/api' ? 400 : 404, { error: 'q is required' });
      const cached = await redis.get(q);
      if (cached !== null) return send(res, 200, { cache: true, data: JSON.parse(cached) });
      const upstream = await fetch(`${UPSTREAM}/search?q=${encodeURIComponent(q)}&format=json`, {
        headers: { 'User-Agent': 'places-cache-bench-naive/1.0' },
      });
      const data: unknown = await upstream.json();
      await redis.set(q, JSON.stringify(data), { EX: TTL_SECONDS });
      send(res, 200, { cache: false, data });
    } catch (e) {
      send(res, 500, { error: (e as Error).message });
    }
  });
  server.listen(0, '127.0.0.1', () => announce(server));
}

// A baseline that cannot start says why and exits, so the driver sees it at once.
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
