import type { IncomingMessage, ServerResponse } from 'node:http';
import { acceptsGzipEncoding } from '../common/accept-encoding';
import { errorBody, ErrorBody, writeError } from '../common/error-writer';
import { Resolution } from './cache/places-cache.service';
import { Decision } from './decision';
import { Exchange } from './exchange';

type AnswerVariant = 'raw' | 'api';

const API_CONTENT_TYPE = 'application/json; charset=utf-8';
const CACHE_NAME = 'places-cache';

function acceptsGzip(req: IncomingMessage): boolean {
  return acceptsGzipEncoding(req.headers['accept-encoding']);
}

/** RFC 9211 Cache-Status for one answer. */
export function cacheStatus(r: Resolution, now: number): string {
  const ttl = Math.floor((r.answer.freshUntil - now) / 1000);
  switch (r.outcome) {
    case 'HIT':
      return `${CACHE_NAME}; hit; ttl=${ttl}`;
    case 'STALE':
      // RFC 9211: a copy served without forwarding anything is a hit, its ttl negative once stale.
      if (r.maxStale) return `${CACHE_NAME}; hit; ttl=${ttl}; detail=max-stale`;
      return r.fwdStatus !== undefined
        ? `${CACHE_NAME}; fwd=stale; fwd-status=${r.fwdStatus}; ttl=${ttl}; detail=stale-if-error`
        : `${CACHE_NAME}; fwd=stale; ttl=${ttl}; detail=stale-while-revalidate`;
    case 'BYPASS':
      return `${CACHE_NAME}; fwd=bypass; fwd-status=${r.answer.status}; detail=shared-cache-unavailable`;
    case 'MISS':
      return `${CACHE_NAME}; fwd=${r.fwd ?? 'uri-miss'}; fwd-status=${r.answer.status}${r.stored ? `; stored; ttl=${ttl}` : ''}${r.collapsed ? '; collapsed' : ''}`;
  }
}

const VARY = 'Accept-Language, Accept-Encoding';

/**
 * The one place a pipeline decision becomes a response, for the front door and the controller alike.
 * `head`: as for writeAnswer; for anything but an answer its headers are set one by one first.
 */
export function writeDecision(x: Exchange, res: ServerResponse, d: Decision, compressMinBytes: number, head?: string[]): void {
  if (d.kind === 'answer') {
    x.cache = d.outcome;
    writeAnswer(x.req, res, d, x.route!.variant, compressMinBytes, Date.now(), head);
    return;
  }
  if (head !== undefined) for (let i = 0; i < head.length; i += 2) res.setHeader(head[i], head[i + 1]);
  switch (d.kind) {
    case 'invalid':
      // Nominatim's own error format for the requested output (or /api's JSON error), never cached.
      res.statusCode = d.error.status;
      res.setHeader('Content-Type', d.error.contentType);
      res.setHeader('Cache-Control', 'no-store');
      // Set, not left to Node: it adds none to a HEAD, which must carry GET's (RFC 9110 9.3.2).
      res.setHeader('Content-Length', Buffer.byteLength(d.error.body));
      res.end(d.error.body);
      return;
    case 'limited':
      writeError(res, errorBody(429, 'Rate limit exceeded; try again later'), d.retryAfterSeconds);
      return;
    case 'failed':
      writeError(res, d.error.getResponse() as ErrorBody, d.error.retryAfterSeconds);
      return;
  }
}

/**
 * Writes a cached or fresh answer: the upstream's status, Content-Type and bytes as they are (or
 * /api's wrapper), plus what the cache did. Used by both the front-door hit path and the controller,
 * so a hit and a miss carry the same headers.
 *
 * `head`: the headers the front door decided for this response but has not set yet (request id,
 * security, CORS without Vary). The answer's own are appended to it and all go out in one writeHead,
 * which costs a fraction of one setHeader per header; the headers and their order are the same.
 */
function writeAnswer(
  req: IncomingMessage,
  res: ServerResponse,
  r: Resolution,
  variant: AnswerVariant,
  compressMinBytes: number,
  now = Date.now(),
  head?: string[],
): void {
  const a = r.answer;
  const fromCache = r.outcome === 'HIT' || r.outcome === 'STALE';
  let body: Buffer | string;
  // gzip members are latin1 strings (see gzip-splice.ts): written as they are, one byte a char.
  let gz: string | null = null;
  let contentType: string;
  const wantsGzip = acceptsGzip(req);
  // The plain body only when it is sent: an L1 answer may have to be decompressed for it.
  if (variant === 'api') {
    if (wantsGzip) gz = fromCache ? a.apiHitGzip(compressMinBytes) : a.apiMissGzip(compressMinBytes);
    body = gz ?? a.apiBody(fromCache);
    contentType = API_CONTENT_TYPE;
  } else {
    if (wantsGzip) gz = a.gzip(compressMinBytes);
    body = gz ?? a.body;
    contentType = a.contentType;
  }
  const h = head ?? [];
  h.push('Content-Type', contentType, 'X-Cache', r.outcome, 'Cache-Status', cacheStatus(r, now));
  // On every answer (RFC 9111 5.1): 0 for one just fetched, so a client's max-age has something to compare.
  const age = Math.max(0, Math.floor((now - a.storedAt) / 1000));
  h.push('Age', String(age));
  // A cache downstream counts Age against max-age (RFC 9111 4.2.3): max-age is the copy's freshness
  // lifetime, so that what it keeps the answer for is what is left here (Cache-Status's ttl); 0 once stale.
  const maxAge = a.freshUntil > now ? age + Math.floor((a.freshUntil - now) / 1000) : 0;
  h.push('Cache-Control', r.stored ? `public, max-age=${maxAge}` : 'no-store');
  // Keep what CORS already put there (Vary: Origin when CORS_ORIGINS lists origins).
  const vary = head === undefined ? res.getHeader('Vary') : undefined;
  h.push('Vary', vary ? `${String(vary)}, ${VARY}` : VARY);
  if (gz !== null) {
    h.push('Content-Encoding', 'gzip');
    body = gz;
  }
  h.push('Content-Length', String(body.length));
  if (head !== undefined) {
    res.writeHead(a.status, h);
  } else {
    for (let i = 0; i < h.length; i += 2) res.setHeader(h[i], h[i + 1]);
    res.statusCode = a.status;
  }
  if (req.method === 'HEAD') res.end();
  else res.end(body, 'latin1');
}
