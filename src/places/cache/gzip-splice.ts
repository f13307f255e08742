import { constants, crc32, deflateRaw, deflateRawSync, gunzipSync, type ZlibOptions } from 'node:zlib';

/**
 * gzip members that can be served as they are and also spliced: the body's deflate stream ends with a
 * sync flush (every block non-final, byte-aligned), then an empty final block (`03 00`). So the body's
 * blocks can be put between other independently deflated pieces, /api's `{"cache":true,"data":` and
 * `}`, and the result is one valid gzip member: deflate never refers back past the start of the piece
 * it compressed, and the CRC of the whole is combined from the pieces' CRCs. An /api hit for a gzip
 * client then costs a copy, not a compression; and the L1 keeps one compact copy per answer.
 *
 * The members are latin1 strings (one char a byte): a V8 one-byte string costs 16 bytes besides its
 * data, where a Buffer costs ~250 (two objects and a backing store, measured in l1-memory.spec.ts);
 * for 100k answers of ~500 compressed bytes that difference is a third of the L1.
 */

/** deflate looks back at most its window less this much (zlib's MIN_LOOKAHEAD) */
const MIN_LOOKAHEAD = 262;

/**
 * zlib options for compressing `length` bytes: the smallest window (and a hash table in the same
 * proportion as zlib's default, memLevel = windowBits - 7) that still covers the whole input. deflate
 * cannot refer further back than the input's start, so this compresses as well as the default 32 KiB
 * window, while zlib sets up 64 KiB instead of 256 KiB for a 5 KB answer and compresses it in ~40 %
 * of the time.
 */
export function gzipOptionsFor(length: number): ZlibOptions {
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(length + MIN_LOOKAHEAD))));
  return { windowBits, memLevel: windowBits - 7 };
}

/** ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown): no name, no time, nothing to vary */
const HEADER = '\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff';
/** an empty final block with fixed codes: BFINAL=1 BTYPE=01, then end-of-block */
const FINAL_EMPTY = '\x03\x00';
const HEADER_BYTES = HEADER.length;
const TAIL_BYTES = FINAL_EMPTY.length + 8;
const SYNC_MARK = '\x00\x00\xff\xff';

/** The body's deflate blocks, non-final and byte-aligned (ending with a sync flush). */
function deflateOpen(bytes: Buffer): Buffer {
  return deflateRawSync(bytes, { ...gzipOptionsFor(bytes.length), finishFlush: constants.Z_SYNC_FLUSH });
}

function u32le(n: number): string {
  return String.fromCharCode(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
}

function readU32le(s: string, at: number): number {
  return (s.charCodeAt(at) | (s.charCodeAt(at + 1) << 8) | (s.charCodeAt(at + 2) << 16) | (s.charCodeAt(at + 3) << 24)) >>> 0;
}

/** `body` as a spliceable gzip member (latin1). */
export function spliceableGzip(body: Buffer): string {
  return member(body, deflateOpen(body));
}

/** spliceableGzip on libuv's thread pool: a large body is never compressed on the event loop. */
export function spliceableGzipLater(body: Buffer): Promise<string> {
  return new Promise((resolve, reject) =>
    deflateRaw(body, { ...gzipOptionsFor(body.length), finishFlush: constants.Z_SYNC_FLUSH }, (err, d) =>
      err === null ? resolve(member(body, d)) : reject(err),
    ),
  );
}

function member(body: Buffer, deflated: Buffer): string {
  // Flattened now: a cons string would keep its parts, and a flat one is what a socket write wants.
  return flat(HEADER + deflated.toString('latin1') + FINAL_EMPTY + u32le(crc32(body)) + u32le(body.length));
}

/**
 * True when `gz` has the shape spliceableGzip gives (our header, a sync flush, the empty final block).
 * Only entries this service stored with the spliceable mark are taken as such; this guards against a
 * damaged or foreign value under that mark.
 */
export function looksSpliceable(gz: string): boolean {
  const n = gz.length;
  return n >= HEADER_BYTES + SYNC_MARK.length + TAIL_BYTES && gz.startsWith(HEADER) && gz.startsWith(SYNC_MARK + FINAL_EMPTY, n - TAIL_BYTES - SYNC_MARK.length);
}

/** The uncompressed length a gzip member declares (ISIZE: the length mod 2^32). */
export function gzipSize(gz: string): number {
  return readU32le(gz, gz.length - 4);
}

/** The uncompressed bytes of a gzip member; `into` sizes zlib's output to them (no slack kept). */
export function gunzipMember(gz: string): Buffer {
  const bytes = Buffer.from(gz, 'latin1');
  const size = gzipSize(gz);
  return gunzipSync(bytes, { chunkSize: Math.min(Math.max(size + 64, 64), 8 * 1024 * 1024) });
}

/** Fixed text around a body, ready to splice: its open deflate blocks, CRC and length. */
interface SplicePiece {
  deflated: string;
  crc: number;
  length: number;
}

export function splicePiece(text: string, final: boolean): SplicePiece {
  const bytes = Buffer.from(text, 'utf8');
  const deflated = final ? deflateRawSync(bytes) : deflateOpen(bytes);
  return { deflated: deflated.toString('latin1'), crc: crc32(bytes), length: bytes.length };
}

/**
 * One gzip member of prefix + body + suffix, from the body's spliceable member: a copy of the body's
 * deflate blocks between the pieces', and the CRC combined (no compression, no decompression).
 */
export function spliceGzip(prefix: SplicePiece, gz: string, suffix: SplicePiece): string {
  const bodyCrc = readU32le(gz, gz.length - 8);
  const bodyLength = gzipSize(gz);
  const crc = crc32Combine(crc32Combine(prefix.crc, bodyCrc, bodyLength), suffix.crc, suffix.length);
  const length = (prefix.length + bodyLength + suffix.length) >>> 0;
  const blocks = gz.slice(HEADER_BYTES, gz.length - TAIL_BYTES);
  return flat(HEADER + prefix.deflated + blocks + suffix.deflated + u32le(crc) + u32le(length));
}

/** A flat (sequential) copy of `s`, so that it holds no slices or cons parts of other strings. */
function flat(s: string): string {
  // Number() of a string flattens it in V8; the result is the same characters.
  void Number(s);
  return s;
}

// CRC-32 combination (zlib's crc32_combine, with its x^(2^n) table): the CRC of A+B from crc(A),
// crc(B) and len(B), in ~log2(len(B)) polynomial products.
const POLY = 0xedb88320;

function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

const X2N: number[] = (() => {
  const t = [0x40000000];
  for (let n = 1; n < 32; n++) t.push(multModP(t[n - 1], t[n - 1]));
  return t;
})();

/** x^(n * 2^k) mod P */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000;
  while (n) {
    if (n & 1) p = multModP(X2N[k & 31], p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;
}
