import { gunzipSync } from 'node:zlib';
import { gunzipMember, gzipSize, looksSpliceable, spliceableGzip, spliceableGzipLater, spliceGzip, splicePiece } from './gzip-splice';
import { stringBytes } from './l1-memory';
import { PlainCopies, type PlainHolder } from './plain-copies';

export { gzipOptionsFor } from './gzip-splice';

/**
 * Bodies from this size are compressed on libuv's thread pool, never on the event loop: a 2 MiB answer's
 * gzip holds every request of the process for tens of milliseconds, while a 5 KB one takes ~0.1 ms, less
 * than the thread-pool round trip. Until its gzip is ready such an answer is served uncompressed
 * (compression is the server's choice).
 */
export const ASYNC_GZIP_MIN_BYTES = 64 * 1024;

/** The form an answer takes in Redis (cache-manager stores values as JSON). */
export interface StoredAnswer {
  v: 1;
  /** upstream HTTP status */
  s: number;
  /** upstream Content-Type */
  t: string;
  /** body: UTF-8 text, or base64 of its gzip bytes when `z` */
  b: string;
  z: boolean;
  /** the gzip bytes are spliceable (see gzip-splice.ts); older entries' are read, then compressed again */
  f?: 1;
  /** stored at, fresh until (epoch ms) */
  at: number;
  fu: number;
  /** a "no result" answer ([] or "Unable to geocode"), kept for a shorter time */
  e: boolean;
}

/**
 * Whether `status` and `contentType` can be written as an answer with a body: a status of 200-599 that
 * may carry one (not 204, 205 or 304), and a Content-Type Node will send (visible ASCII, spaces and
 * tabs; Node throws on anything else, out of the request). Redis is shared and `cli import` writes
 * entries too, so what is read back is checked before it can reach a client.
 */
export function answerFieldsProblem(status: unknown, contentType: unknown): string | null {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599 || status === 204 || status === 205 || status === 304) {
    return 'status must be 200-599 with a body (not 204, 205 or 304)';
  }
  if (typeof contentType !== 'string' || !CONTENT_TYPE.test(contentType)) return 'content-type must be 1-200 visible ASCII characters (spaces and tabs inside)';
  return null;
}

/**
 * The Content-Type a fresh 200 is kept with: as received when it reads back (answerFieldsProblem), else
 * `nominatims`, the one Nominatim sends for the request. Only the received one's media type was checked
 * (upstream-body.ts): with a parameter past 200 characters or a byte beyond ASCII (no Nominatim sends
 * that) the answer was stored but never read back, and every later request asked upstream again.
 */
export function storableContentType(received: string, nominatims: string | undefined): string {
  if (answerFieldsProblem(200, received) === null) return received;
  const semi = received.indexOf(';');
  return nominatims ?? (semi < 0 ? received : received.slice(0, semi)).trim();
}

const CONTENT_TYPE = /^[\x21-\x7e](?:[\t\x20-\x7e]{0,198}[\x21-\x7e])?$/;

const HIT_PREFIX = '{"cache":true,"data":';
const MISS_PREFIX = '{"cache":false,"data":';
const HIT_PIECE = splicePiece(HIT_PREFIX, false);
const MISS_PIECE = splicePiece(MISS_PREFIX, false);
const END_PIECE = splicePiece('}', true);
const HIT_HEAD = Buffer.from(HIT_PREFIX);
const MISS_HEAD = Buffer.from(MISS_PREFIX);
const END = Buffer.from('}');

/** Content-Types are a handful of strings: one copy of each, not one per answer. */
const contentTypes = new Map<string, string>();
function intern(t: string): string {
  const known = contentTypes.get(t);
  if (known !== undefined) return known;
  if (contentTypes.size < 64) contentTypes.set(t, t);
  return t;
}

/**
 * An answer ready to be served: the upstream status, Content-Type and body bytes exactly as received,
 * plus the times that decide whether it is fresh or stale.
 *
 * Kept in L1 in one compact form (`compact`): the spliceable gzip member when the body is worth
 * compressing (the very bytes Redis keeps), else the body itself, as a latin1 string. A gzip client
 * gets the member as it is (/api's wrapper spliced around it); any other client a plain copy,
 * decompressed on first use and kept within the L1's budget while it is asked for (PlainCopies).
 */
export class CachedAnswer implements PlainHolder {
  readonly contentType: string;
  /** the compact form: a gzip member when `zipped`, else the body's bytes (latin1) */
  private data: string | null = null;
  private zipped = false;
  /** /api's hit body `{"cache":true,"data":<body>}`, of which the body is a view; null once dropped */
  private plain: Buffer | null;
  /** where the plain copy is counted while the answer is in L1 */
  private copies: PlainCopies | null = null;
  /** a large body's gzip under way on the thread pool (see ASYNC_GZIP_MIN_BYTES) */
  private gzipping: Promise<void> | null = null;

  constructor(
    readonly status: number,
    contentType: string,
    body: Buffer | null,
    readonly storedAt: number,
    readonly freshUntil: number,
    /** when the copy may no longer be served even as stale (its Redis expiry) */
    readonly staleUntil: number,
    readonly empty: boolean,
    /** the body's spliceable gzip member (latin1), when known: what `body` is then made from */
    gzip: string | null = null,
    /** or the body's bytes as latin1 text */
    text: string | null = null,
  ) {
    this.contentType = intern(contentType);
    this.plain = body === null ? null : wrap(body);
    if (gzip !== null) {
      this.data = gzip;
      this.zipped = true;
    } else if (text !== null) {
      this.data = text;
    }
    if (this.plain === null && this.data === null) throw new Error('a CachedAnswer needs a body or its gzip');
  }

  /** Memory the compact form holds (besides the entry's fixed part and key, which L1 counts); see `compact`. */
  get size(): number {
    return this.data === null ? 16 + this.bodyLength : stringBytes(this.data);
  }

  get bodyLength(): number {
    if (this.plain !== null) return this.plain.length - HIT_HEAD.length - END.length;
    return this.zipped ? gzipSize(this.data!) : this.data!.length;
  }

  isFresh(now: number): boolean {
    return now < this.freshUntil;
  }

  /** The body's bytes. */
  get body(): Buffer {
    const p = this.plainCopy();
    return p.subarray(HIT_HEAD.length, p.length - END.length);
  }

  /** The spliceable gzip member (latin1), if the body is worth compressing; null while a large one's is made. */
  gzip(minBytes: number): string | null {
    if (this.zipped) return this.data;
    if (this.data === null && this.bodyLength >= minBytes) {
      if (this.bodyLength >= ASYNC_GZIP_MIN_BYTES) {
        void this.compressing(minBytes);
        return null;
      }
      this.data = spliceableGzip(this.body);
      this.zipped = true;
      return this.data;
    }
    return null;
  }

  /**
   * For a fill, before the answer is kept: the gzip of a large body, made on the thread pool.
   * undefined when there is nothing to wait for (small bodies are compressed when first needed).
   */
  compressing(minBytes: number): Promise<void> | undefined {
    if (this.zipped || this.data !== null || this.bodyLength < Math.max(minBytes, ASYNC_GZIP_MIN_BYTES)) return undefined;
    this.gzipping ??= spliceableGzipLater(this.body).then(
      (gz) => {
        if (this.zipped || this.data !== null) return;
        this.data = gz;
        this.zipped = true;
      },
      () => {
        // Kept uncompressed then; the next use tries again.
        this.gzipping = null;
      },
    );
    return this.gzipping;
  }

  /** The tutorial contract: {"cache": <hit>, "data": <upstream array>} built by concatenation, not re-serialisation. */
  apiBody(cacheHit: boolean): Buffer {
    if (cacheHit) return this.plainCopy();
    return Buffer.concat([MISS_HEAD, this.body, END]);
  }

  apiHitGzip(minBytes: number): string | null {
    const gz = this.gzip(minBytes);
    return gz === null ? null : spliceGzip(HIT_PIECE, gz, END_PIECE);
  }

  /** The miss's wrapper gzip-compressed, for the requests that fill (or join the fill of) this entry. */
  apiMissGzip(minBytes: number): string | null {
    const gz = this.gzip(minBytes);
    return gz === null ? null : spliceGzip(MISS_PIECE, gz, END_PIECE);
  }

  /**
   * Into the compact form, as L1 keeps it: the gzip member (made now if the body is worth it) or the
   * body as a string; the plain copy stays only while `copies` has room for it.
   */
  compact(minBytes: number, copies: PlainCopies): void {
    if (this.gzip(minBytes) === null && this.data === null) this.data = this.body.toString('latin1');
    this.copies = copies;
    if (this.plain !== null && !copies.add(this, PlainCopies.bytesOf(this.plain))) this.plain = null;
  }

  /** Leaves the L1: its plain copy is no longer counted there (nor kept). */
  release(): void {
    if (this.copies === null) return;
    this.copies.forget(this);
    this.copies = null;
    if (this.data !== null) this.plain = null;
  }

  dropPlain(): void {
    if (this.data !== null) this.plain = null;
  }

  /** /api's hit body (the body a view on it), decompressed and counted in L1's copies when not at hand. */
  private plainCopy(): Buffer {
    if (this.plain !== null) return this.plain;
    const body = this.zipped ? gunzipMember(this.data!) : Buffer.from(this.data!, 'latin1');
    const p = wrap(body);
    if (this.copies === null || this.copies.add(this, PlainCopies.bytesOf(p))) this.plain = p;
    return p;
  }

  toStored(compressMinBytes: number): StoredAnswer {
    const gz = this.gzip(compressMinBytes);
    const stored: StoredAnswer = {
      v: 1,
      s: this.status,
      t: this.contentType,
      b: gz !== null ? Buffer.from(gz, 'latin1').toString('base64') : this.body.toString('utf8'),
      z: gz !== null,
      at: this.storedAt,
      fu: this.freshUntil,
      e: this.empty,
    };
    if (gz !== null) stored.f = 1;
    return stored;
  }

  /** The answer an entry read back from Redis holds; null when it is not one this service can serve. */
  static fromStored(stored: StoredAnswer, staleUntil: number): CachedAnswer | null {
    if (stored === null || typeof stored !== 'object' || stored.v !== 1) return null;
    if (answerFieldsProblem(stored.s, stored.t) !== null || typeof stored.b !== 'string') return null;
    if (!Number.isFinite(stored.at) || !Number.isFinite(stored.fu)) return null;
    if (stored.z) {
      const gz = Buffer.from(stored.b, 'base64');
      const member = stored.f === 1 ? gz.toString('latin1') : null;
      if (member !== null && looksSpliceable(member)) {
        return new CachedAnswer(stored.s, stored.t, null, stored.at, stored.fu, staleUntil, stored.e === true, member);
      }
      // An entry stored before the spliceable form: its body now, compressed again when L1 keeps it.
      let body: Buffer;
      try {
        body = gunzipSync(gz);
      } catch {
        return null;
      }
      return new CachedAnswer(stored.s, stored.t, body, stored.at, stored.fu, staleUntil, stored.e === true);
    }
    const text = Buffer.from(stored.b, 'utf8').toString('latin1');
    return new CachedAnswer(stored.s, stored.t, null, stored.at, stored.fu, staleUntil, stored.e === true, null, text);
  }
}

/**
 * `{"cache":true,"data":<body>}` in a Buffer of its own, exactly its size: a view on a pool slab or on
 * zlib's output chunk would keep the whole slab or chunk alive as long as the copy lives.
 */
function wrap(body: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(HIT_HEAD.length + body.length + END.length);
  HIT_HEAD.copy(out, 0);
  body.copy(out, HIT_HEAD.length);
  END.copy(out, HIT_HEAD.length + body.length);
  return out;
}
