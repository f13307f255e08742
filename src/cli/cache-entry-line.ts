import { AnswerKeyParts, answerKeyParts, isHashedQuestion } from '../cache/answer-keys';
import { isEntryKey } from '../places/cache/cache-purge.service';
import { answerFieldsProblem, CachedAnswer, StoredAnswer } from '../places/cache/cached-answer';
import { isEmptyAnswer } from '../places/nominatim/empty-answer';
import { CT_JSONP, MAX_VALUE_LENGTH, SPECS } from '../places/nominatim/nominatim-params';
import { canonicaliseNominatim, CanonicalRequest, NominatimEndpoint } from '../places/nominatim/nominatim-request';
import { validCallback } from '../places/nominatim/parameter-groups';
import { upstreamBodyProblem } from '../places/nominatim/upstream-body';
import { printable } from './line-input';

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

/** `/search?q=berlin&format=json` from `places:v1:search:format=json&q=berlin`; null for a hashed key. */
export function requestOfKey(key: string): string | null {
  const parts = isEntryKey(key) ? answerKeyParts(key) : undefined;
  if (parts === undefined || isHashedQuestion(parts.question)) return null;
  return parts.question === '' ? `/${parts.endpoint}` : `/${parts.endpoint}?${parts.question}`;
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

type ParsedLine =
  | { kind: 'entry'; key: string; value: string; ttlMs: number; storedAt: number }
  | { kind: 'expired'; key: string }
  | { kind: 'bad'; reason: string };

function time(v: unknown, name: string): number | string {
  if (typeof v !== 'string') return `${name} must be an ISO date-time string`;
  // Only the form export writes (toISOString): Date.parse alone reads "1" as 2001-01-01.
  const t = Date.parse(v);
  return Number.isFinite(t) && new Date(t).toISOString() === v
    ? t
    : `${name} is not a date-time as export writes it (YYYY-MM-DDTHH:MM:SS.sssZ): ${printable(JSON.stringify(v).slice(0, 40))}`;
}

type Expectation = Pick<CanonicalRequest, 'format' | 'contentType' | 'resultKind' | 'jsonCallback'>;

/** How far ahead of this host's clock an entry's storedAt may be (the exporting host's clock may run ahead). */
const CLOCK_SKEW_MS = 5 * 60_000;
/** The longest freshness the service gives an answer: CACHE_TTL_SECONDS' upper bound. */
const MAX_FRESH_MS = 365 * 24 * 3600 * 1000;

/** A JSONP body starts with the callback as sent (any length up to MAX_VALUE_LENGTH, one UTF-8 byte or more a character). */
const CALLBACK_CALL = new RegExp(`^([^(]{1,${MAX_VALUE_LENGTH}})\\(`);
const CALLBACK_BYTES = 4 * MAX_VALUE_LENGTH + 1;

/**
 * What an answer stored under `key` was checked against before the service stored it: the key's own
 * request, rebuilt by the canonicaliser, which must give the very key back. A hashed key hides its
 * request: an answer in any format its endpoint has will do, a JSONP callback read from the body.
 */
function expectationsOfKey(key: string, body: Buffer): Expectation[] | string {
  const { endpoint, question: query } = answerKeyParts(key) as AnswerKeyParts;
  const spec = SPECS[endpoint as NominatimEndpoint];
  if (!spec.cacheable) return `${spec.path} answers are never cached`;
  if (!isHashedQuestion(query, true)) {
    const r = canonicaliseNominatim(endpoint as NominatimEndpoint, new URLSearchParams(query));
    return r.ok && r.request.key === key ? [r.request] : 'key is not canonical (not the key the service makes for its request)';
  }
  const callback = CALLBACK_CALL.exec(body.subarray(0, CALLBACK_BYTES).toString('utf8'))?.[1];
  const jsonp = callback !== undefined && validCallback(callback) ? callback : undefined;
  return spec.formats.flatMap((format): Expectation[] => {
    const plain = { format, resultKind: spec.resultKind };
    const json = format !== 'xml' && format !== 'text';
    return json && jsonp !== undefined ? [plain, { ...plain, contentType: CT_JSONP, jsonCallback: jsonp }] : [plain];
  });
}

/** What the importing environment allows: its COMPRESS_MIN_BYTES, UPSTREAM_MAX_BYTES and how long it keeps an entry past its freshness. */
interface ImportLimits {
  compressMinBytes: number;
  maxBytes: number;
  /** PlacesCacheService.keepMs: max(STALE_IF_ERROR_SECONDS, STALE_WHILE_REVALIDATE_SECONDS), in ms */
  keepMs: number;
}

/**
 * Reads one import line: the Redis value to write (the StoredAnswer the service itself would store,
 * compressed as COMPRESS_MIN_BYTES says) and the entry's remaining lifetime, or why the line is refused.
 */
export function parseEntryLine(text: string, now: number, { compressMinBytes, maxBytes, keepMs }: ImportLimits): ParsedLine {
  let v: Partial<EntryLine> & Record<string, unknown>;
  try {
    v = JSON.parse(text) as typeof v;
  } catch (e) {
    // V8's message quotes the start of the line.
    return { kind: 'bad', reason: `not JSON (${printable((e as Error).message)})` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { kind: 'bad', reason: 'not a JSON object' };
  if (typeof v.key !== 'string' || !isEntryKey(v.key)) return { kind: 'bad', reason: 'key is not a places-cache entry key (places:v1:<endpoint>:…)' };
  // Only a 200 is ever stored: Nominatim's errors are passed on, never cached.
  if (v.status !== 200) return { kind: 'bad', reason: 'status must be 200 (the service stores no other answer)' };
  const header = (v.headers as Record<string, unknown> | undefined)?.['content-type'];
  const fieldsProblem = answerFieldsProblem(v.status, header);
  if (fieldsProblem !== null) return { kind: 'bad', reason: `headers: ${fieldsProblem}` };
  const contentType = header as string;
  let body: Buffer;
  if (typeof v.body === 'string' && v.bodyBase64 === undefined) body = Buffer.from(v.body, 'utf8');
  else if (typeof v.bodyBase64 === 'string' && v.body === undefined && /^[A-Za-z0-9+/]*={0,2}$/.test(v.bodyBase64)) body = Buffer.from(v.bodyBase64, 'base64');
  else return { kind: 'bad', reason: 'needs body (text) or bodyBase64, not both' };
  if (body.length > maxBytes) return { kind: 'bad', reason: `body is larger than UPSTREAM_MAX_BYTES (${maxBytes} bytes)` };
  const expectations = expectationsOfKey(v.key, body);
  if (typeof expectations === 'string') return { kind: 'bad', reason: expectations };
  const problems = expectations.map((e) => upstreamBodyProblem(e, contentType, body));
  if (!problems.includes(null)) {
    // Of a hashed key's formats, the one whose Content-Type matched says more than the others.
    const problem = problems.find((p) => !p!.startsWith('Content-Type')) ?? problems[0];
    return { kind: 'bad', reason: `not an answer the service stores under this key: ${problem}` };
  }
  if (typeof v.empty !== 'boolean' && v.empty !== undefined) return { kind: 'bad', reason: 'empty must be true or false' };
  // Whether it is a "no result" answer (kept for EMPTY_TTL_SECONDS) is the body's to say, as when stored.
  const empty = isEmptyAnswer(body);
  if (v.empty !== undefined && v.empty !== empty) return { kind: 'bad', reason: `empty is ${String(v.empty)} but the body is ${empty ? '' : 'not '}a "no result" answer` };

  const storedAt = time(v.storedAt, 'storedAt');
  if (typeof storedAt === 'string') return { kind: 'bad', reason: storedAt };
  const freshUntil = time(v.freshUntil, 'freshUntil');
  if (typeof freshUntil === 'string') return { kind: 'bad', reason: freshUntil };
  if (freshUntil < storedAt) return { kind: 'bad', reason: 'freshUntil is before storedAt' };
  // The service stores an answer when it gets it, fresh for at most CACHE_TTL_SECONDS' bound. A later
  // storedAt would also keep every later import and fill from replacing the entry (newer copies win).
  if (storedAt > now + CLOCK_SKEW_MS) return { kind: 'bad', reason: `storedAt is in the future (more than ${CLOCK_SKEW_MS / 60_000} minutes ahead of this host's clock)` };
  if (freshUntil - storedAt > MAX_FRESH_MS) return { kind: 'bad', reason: 'freshUntil is more than 365 days after storedAt (CACHE_TTL_SECONDS allows no more)' };
  // The service reads an entry until freshUntil + keepMs and sets its Redis expiry there: a longer one
  // (or none: a key export found without expiry) would only hold Redis memory.
  let expiresAt = freshUntil + keepMs;
  if (v.expiresAt !== null) {
    const exported = time(v.expiresAt, 'expiresAt');
    if (typeof exported === 'string') return { kind: 'bad', reason: exported };
    expiresAt = Math.min(expiresAt, exported);
  }
  const ttlMs = expiresAt - now;
  if (ttlMs <= 0) return { kind: 'expired', key: v.key };
  const answer = new CachedAnswer(v.status, contentType, body, storedAt, freshUntil, 0, empty);
  return { kind: 'entry', key: v.key, value: JSON.stringify(answer.toStored(compressMinBytes)), ttlMs, storedAt };
}
