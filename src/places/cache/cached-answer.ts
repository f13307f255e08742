import { gunzipSync, gzip as gzipOnPool, gzipSync, type ZlibOptions } from 'node:zlib';

/** deflate looks back at most its window less this much (zlib's MIN_LOOKAHEAD) */
const MIN_LOOKAHEAD = 262;

/**
 * zlib options for compressing `length` bytes: the smallest window (and a hash table in the same
 * proportion as zlib's default, memLevel = windowBits - 7) that still covers the whole input. deflate
 * cannot refer further back than the input's start, so this compresses as well as the default 32 KiB
 * window, while zlib sets up 64 KiB instead of 256 KiB for a 5 KB answer and compresses it in ~40 %
 * of the time (measured here; the fill of a miss and the first gzip hit of an entry pay it).
 */
export function gzipOptionsFor(length: number): ZlibOptions {
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(length + MIN_LOOKAHEAD))));
  return { windowBits, memLevel: windowBits - 7 };
}

function gzip(bytes: Buffer): Buffer {
  return gzipSync(bytes, gzipOptionsFor(bytes.length));
}

/**
 * Bodies from this size are compressed on libuv's thread pool, never on the event loop: gzipSync of a
 * 2 MiB answer holds every request of the process for tens of milliseconds, while a 5 KB one takes
 * ~0.1 ms, less than the thread-pool round trip. Until its gzip is ready such an answer is served
 * uncompressed (compression is the server's choice).
 */
export const ASYNC_GZIP_MIN_BYTES = 64 * 1024;

function gzipLater(bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    gzipOnPool(bytes, gzipOptionsFor(bytes.length), (err, gz) => (err === null ? resolve(gz) : reject(err))),
  );
}

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
  /** stored at, fresh until (epoch ms) */
  at: number;
  fu: number;
  /** a "no result" answer ([] or "Unable to geocode"), kept for a shorter time */
  e: boolean;
}

/**
 * An answer ready to be served: the upstream status, Content-Type and body bytes exactly as received,
 * plus the times that decide whether it is fresh or stale. Variants (/api's wrapper, gzip) are built
 * once, on first use, and kept with the entry.
 */
export class CachedAnswer {
  private gzipBytes: Buffer | null;
  private apiBodies: { hit?: Buffer; miss?: Buffer; hitGzip?: Buffer; missGzip?: Buffer } = {};
  /** gzips of large bodies under way on the thread pool (see ASYNC_GZIP_MIN_BYTES) */
  private gzipping?: { body?: Promise<void>; hitGzip?: true; missGzip?: true };

  constructor(
    readonly status: number,
    readonly contentType: string,
    readonly body: Buffer,
    readonly storedAt: number,
    readonly freshUntil: number,
    /** when the copy may no longer be served even as stale (its Redis expiry) */
    readonly staleUntil: number,
    readonly empty: boolean,
    gzip: Buffer | null = null,
  ) {
    this.gzipBytes = gzip;
  }

  /** Approximate memory held, for the L1 byte bound. */
  get size(): number {
    return 256 + this.body.length * 2 + (this.gzipBytes?.length ?? 0) + this.contentType.length;
  }

  isFresh(now: number): boolean {
    return now < this.freshUntil;
  }

  /** gzip bytes, if the body is worth compressing; null while a large body's gzip is being made. */
  gzip(minBytes: number): Buffer | null {
    if (this.gzipBytes === null && this.body.length >= minBytes) {
      if (this.body.length < ASYNC_GZIP_MIN_BYTES) this.gzipBytes = gzip(this.body);
      else void this.compressing(minBytes);
    }
    return this.gzipBytes;
  }

  /**
   * For a fill, before the answer is stored: the gzip of a large body, made on the thread pool.
   * undefined when there is nothing to wait for (small bodies are compressed when stored).
   */
  compressing(minBytes: number): Promise<void> | undefined {
    if (this.gzipBytes !== null || this.body.length < Math.max(minBytes, ASYNC_GZIP_MIN_BYTES)) return undefined;
    this.gzipping ??= {};
    this.gzipping.body ??= gzipLater(this.body).then(
      (gz) => {
        this.gzipBytes = gz;
      },
      () => {
        // Stored uncompressed then; the next use tries again.
        this.gzipping!.body = undefined;
      },
    );
    return this.gzipping.body;
  }

  /** The tutorial contract: {"cache": <hit>, "data": <upstream array>} built by concatenation, not re-serialisation. */
  apiBody(cacheHit: boolean): Buffer {
    const slot = cacheHit ? 'hit' : 'miss';
    let b = this.apiBodies[slot];
    if (!b) {
      b = Buffer.concat([Buffer.from(`{"cache":${cacheHit},"data":`), this.body, Buffer.from('}')]);
      this.apiBodies[slot] = b;
    }
    return b;
  }

  apiHitGzip(minBytes: number): Buffer | null {
    if (this.body.length < minBytes) return null;
    return this.apiGzip('hitGzip', true);
  }

  /** The miss's wrapper gzip-compressed, for the requests that fill (or join the fill of) this entry. */
  apiMissGzip(minBytes: number): Buffer | null {
    if (this.body.length < minBytes) return null;
    return this.apiGzip('missGzip', false);
  }

  private apiGzip(slot: 'hitGzip' | 'missGzip', cacheHit: boolean): Buffer | null {
    const made = this.apiBodies[slot];
    if (made !== undefined) return made;
    const plain = this.apiBody(cacheHit);
    if (plain.length < ASYNC_GZIP_MIN_BYTES) return (this.apiBodies[slot] = gzip(plain));
    this.gzipping ??= {};
    if (this.gzipping[slot] === undefined) {
      const gzipping = this.gzipping;
      gzipping[slot] = true;
      gzipLater(plain).then(
        (gz) => (this.apiBodies[slot] = gz),
        () => (gzipping[slot] = undefined),
      );
    }
    return null;
  }

  toStored(compressMinBytes: number): StoredAnswer {
    const gz = this.gzip(compressMinBytes);
    return {
      v: 1,
      s: this.status,
      t: this.contentType,
      b: gz ? gz.toString('base64') : this.body.toString('utf8'),
      z: gz !== null,
      at: this.storedAt,
      fu: this.freshUntil,
      e: this.empty,
    };
  }

  static fromStored(stored: StoredAnswer, staleUntil: number): CachedAnswer | null {
    if (stored === null || typeof stored !== 'object' || stored.v !== 1) return null;
    let body: Buffer;
    let gz: Buffer | null = null;
    if (stored.z) {
      gz = Buffer.from(stored.b, 'base64');
      body = gunzipSync(gz, { chunkSize: outputChunk(gz) });
    } else {
      body = Buffer.from(stored.b, 'utf8');
    }
    return new CachedAnswer(stored.s, stored.t, body, stored.at, stored.fu, staleUntil, stored.e, gz);
  }
}

/**
 * gunzip's output buffer size for `gz`: its uncompressed size (the gzip trailer's ISIZE) and a little.
 * With zlib's default 16 KB chunk a 5 KB body would be a view on a 16 KB allocation, kept as long as
 * the entry lives in L1: three times the memory the L1 byte bound counts.
 */
function outputChunk(gz: Buffer): number {
  const size = gz.length >= 18 ? gz.readUInt32LE(gz.length - 4) : 0;
  return size > 0 && size <= 8 * 1024 * 1024 ? size + 64 : 16 * 1024;
}

const EMPTY_BODIES = new Set(['[]', '{"error":"Unable to geocode"}']);

/**
 * Nominatim's "nothing found" answers in each format: cacheable, but for a shorter time (a place
 * added to OpenStreetMap today should show up soon).
 */
export function isEmptyAnswer(body: Buffer): boolean {
  if (body.length > 600) return false;
  const text = body.toString('utf8').trim();
  if (EMPTY_BODIES.has(text)) return true;
  if (/"features"\s*:\s*\[\s*\]/.test(text)) return true;
  if (text.startsWith('<?xml')) {
    return (/<searchresults[\s>]/.test(text) && !/<place[\s>]/.test(text)) || /<error>\s*Unable to geocode/.test(text);
  }
  return false;
}
