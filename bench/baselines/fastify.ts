/**
 * The "fastify" baseline: a bare Fastify 5 app (no Nest) whose GET /api answers the bytes of a cached
 * /api answer (BODY_FILE) with raw's headers. What a lean framework costs per request, between raw
 * (node:http alone) and floor (Nest + Express).
 */
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { announce, env } from './child';

const body = readFileSync(env('BODY_FILE'));
const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length) };

async function main(): Promise<void> {
  const app = Fastify({ logger: false });
  app.get('/api', (_req, reply) => {
    reply.headers(headers).send(body);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  announce(app.server);
}

// A baseline that cannot start says why and exits, so the driver sees it at once.
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
