import { isEntryKey } from '../places/cache/cache-purge.service';
import { CachedAnswer, StoredAnswer } from '../places/cache/cached-answer';

/** One line of `export` (NDJSON), as `import` reads it back. */
export interface EntryLine {
  key: string;
  /** the Nominatim request (path and canonical query), or null for a hashed key (a query over 200 characters) */
  request: string | null;
  status: number;
  headers: { 'content-type': string };
  /** the answer's bytes as UTF-8 text; `bodyBase64` instead when they are not valid UTF-8 */
  body?: string;
  bodyBase64?: string;
  storedAt: string;
  freshUntil: string;
  /** when Redis drops the entry (the end of stale-if-error); null for a key without expiry */
  expiresAt: string | null;
  /** a "no result" answer ([] or "Unable to geocode"), kept for a shorter time */
  empty: boolean;
}

const ENDPOINT_KEY = /^places:v1:(search|reverse|lookup|status|details):(.*)$/s;

/** `/search?q=berlin&format=json` from `places:v1:search:format=json&q=berlin`; null for a hashed key. */
export function requestOfKey(key: string): string | null {
  const m = ENDPOINT_KEY.exec(key);
  if (m === null || m[2].startsWith('h:')) return null;
  return m[2] === '' ? `/${m[1]}` : `/${m[1]}?${m[2]}`;
}

/**
 * The export line of one Redis entry: its value as the service stored it (JSON of a StoredAnswer)
 * and its PTTL (-1: no expiry). null when the value is not an answer this version can read.
 */
export function toEntryLine(key: string, value: string, pttlMs: number, now: number): EntryLine | null {
  let stored: StoredAnswer;
  try {
    stored = JSON.parse(value) as StoredAnswer;
  } catch {
    return null;
  }
  let answer: CachedAnswer | null;
  try {
    answer = CachedAnswer.fromStored(stored, 0);
  } catch {
    return null; // gzip bytes that do not inflate
  }
  if (answer === null || !Number.isFinite(answer.storedAt) || !Number.isFinite(answer.freshUntil)) return null;
  const text = answer.body.toString('utf8');
  const utf8 = Buffer.byteLength(text) === answer.body.length && Buffer.from(text, 'utf8').equals(answer.body);
  return {
    key,
    request: requestOfKey(key),
    status: answer.status,
    headers: { 'content-type': answer.contentType },
    ...(utf8 ? { body: text } : { bodyBase64: answer.body.toString('base64') }),
    storedAt: new Date(answer.storedAt).toISOString(),
    freshUntil: new Date(answer.freshUntil).toISOString(),
    expiresAt: pttlMs >= 0 ? new Date(now + pttlMs).toISOString() : null,
    empty: answer.empty,
  };
}

export type ParsedLine =
  | { kind: 'entry'; key: string; value: string; ttlMs: number | null; storedAt: number }
  | { kind: 'expired'; key: string }
  | { kind: 'bad'; reason: string };

function time(v: unknown, name: string): number | string {
  if (typeof v !== 'string') return `${name} must be an ISO date-time string`;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : `${name} is not a date-time: ${JSON.stringify(v).slice(0, 40)}`;
}

/**
 * Reads one import line: the Redis value to write (the StoredAnswer the service itself would store,
 * compressed as COMPRESS_MIN_BYTES says) and the entry's remaining lifetime, or why the line is refused.
 */
export function parseEntryLine(text: string, now: number, compressMinBytes: number): ParsedLine {
  let v: Partial<EntryLine> & Record<string, unknown>;
  try {
    v = JSON.parse(text) as typeof v;
  } catch (e) {
    return { kind: 'bad', reason: `not JSON (${(e as Error).message})` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { kind: 'bad', reason: 'not a JSON object' };
  if (typeof v.key !== 'string' || !isEntryKey(v.key)) return { kind: 'bad', reason: 'key is not a places-cache entry key (places:v1:<endpoint>:…)' };
  if (typeof v.status !== 'number' || !Number.isInteger(v.status) || v.status < 100 || v.status > 599) {
    return { kind: 'bad', reason: 'status must be an HTTP status code' };
  }
  const contentType = (v.headers as Record<string, unknown> | undefined)?.['content-type'];
  if (typeof contentType !== 'string' || contentType === '' || /[\r\n]/.test(contentType)) {
    return { kind: 'bad', reason: 'headers must have a content-type' };
  }
  let body: Buffer;
  if (typeof v.body === 'string' && v.bodyBase64 === undefined) body = Buffer.from(v.body, 'utf8');
  else if (typeof v.bodyBase64 === 'string' && v.body === undefined && /^[A-Za-z0-9+/]*={0,2}$/.test(v.bodyBase64)) body = Buffer.from(v.bodyBase64, 'base64');
  else return { kind: 'bad', reason: 'needs body (text) or bodyBase64, not both' };
  if (typeof v.empty !== 'boolean' && v.empty !== undefined) return { kind: 'bad', reason: 'empty must be true or false' };

  const storedAt = time(v.storedAt, 'storedAt');
  if (typeof storedAt === 'string') return { kind: 'bad', reason: storedAt };
  const freshUntil = time(v.freshUntil, 'freshUntil');
  if (typeof freshUntil === 'string') return { kind: 'bad', reason: freshUntil };
  if (freshUntil < storedAt) return { kind: 'bad', reason: 'freshUntil is before storedAt' };
  let ttlMs: number | null = null;
  if (v.expiresAt !== null) {
    const expiresAt = time(v.expiresAt, 'expiresAt');
    if (typeof expiresAt === 'string') return { kind: 'bad', reason: expiresAt };
    ttlMs = expiresAt - now;
    if (ttlMs <= 0) return { kind: 'expired', key: v.key };
  }
  const answer = new CachedAnswer(v.status, contentType, body, storedAt, freshUntil, 0, v.empty === true);
  return { kind: 'entry', key: v.key, value: JSON.stringify(answer.toStored(compressMinBytes)), ttlMs, storedAt };
}
