import type { IncomingMessage, ServerResponse } from 'node:http';
import { Resolution } from './places-cache.service';

export type AnswerVariant = 'raw' | 'api';

const API_CONTENT_TYPE = 'application/json; charset=utf-8';
const CACHE_NAME = 'places-cache';

export function acceptsGzip(req: IncomingMessage): boolean {
  const ae = req.headers['accept-encoding'];
  return typeof ae === 'string' && ae.includes('gzip') && !/gzip\s*;\s*q=0(\.0*)?(\s*(,|$))/.test(ae);
}

/** RFC 9211 Cache-Status for one answer. */
export function cacheStatus(r: Resolution, now: number): string {
  const ttl = Math.floor((r.answer.freshUntil - now) / 1000);
  switch (r.outcome) {
    case 'HIT':
      return `${CACHE_NAME}; hit; ttl=${ttl}`;
    case 'STALE':
      return r.fwdStatus !== undefined
        ? `${CACHE_NAME}; fwd=stale; fwd-status=${r.fwdStatus}; ttl=${ttl}; detail=stale-if-error`
        : `${CACHE_NAME}; fwd=stale; ttl=${ttl}; detail=stale-while-revalidate`;
    case 'BYPASS':
      return `${CACHE_NAME}; fwd=bypass; fwd-status=${r.answer.status}; detail=shared-cache-unavailable`;
    case 'MISS':
      return `${CACHE_NAME}; fwd=uri-miss; fwd-status=${r.answer.status}${r.stored ? `; stored; ttl=${ttl}` : ''}${r.collapsed ? '; collapsed' : ''}`;
  }
}

const VARY = 'Accept-Language, Accept-Encoding';

/**
 * Writes a cached or fresh answer: the upstream's status, Content-Type and bytes as they are (or
 * /api's wrapper), plus what the cache did. Used by both the front-door hit path and the controller,
 * so a hit and a miss carry the same headers.
 *
 * `head`: the headers the front door decided for this response but has not set yet (request id,
 * security, CORS without Vary). The answer's own are appended to it and all go out in one writeHead,
 * which costs a fraction of one setHeader per header; the headers and their order are the same.
 */
export function writeAnswer(
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
  let body: Buffer;
  let gz: Buffer | null = null;
  let contentType: string;
  const wantsGzip = acceptsGzip(req);
  if (variant === 'api') {
    body = a.apiBody(fromCache);
    if (wantsGzip) gz = fromCache ? a.apiHitGzip(compressMinBytes) : a.apiMissGzip(compressMinBytes);
    contentType = API_CONTENT_TYPE;
  } else {
    body = a.body;
    if (wantsGzip) gz = a.gzip(compressMinBytes);
    contentType = a.contentType;
  }
  const h = head ?? [];
  h.push('Content-Type', contentType, 'X-Cache', r.outcome, 'Cache-Status', cacheStatus(r, now));
  // On every answer (RFC 9111 5.1): 0 for one just fetched, so a client's max-age has something to compare.
  h.push('Age', String(Math.max(0, Math.floor((now - a.storedAt) / 1000))));
  h.push('Cache-Control', r.stored ? `public, max-age=${Math.max(0, Math.floor((a.freshUntil - now) / 1000))}` : 'no-store');
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
  res.end(req.method === 'HEAD' ? undefined : body);
}
