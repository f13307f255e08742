import { LRUCache } from 'lru-cache';
import { CachedAnswer, ServedAnswer } from './cached-answer';

/**
 * How often a hit held by slot refreshes its entry's place in the LRU order: memcached's
 * ITEM_UPDATE_INTERVAL. Entries used within the same minute count as equally recent; in return a hit
 * on a held slot does not probe lru-cache's key map, whose buckets are cold in a large L1.
 */
export const L1_BUMP_MS = 60_000;

/**
 * Where an L1 entry's times count from: milliseconds since this module loaded, not since 1970. V8 keeps
 * an integer of up to 32 bits inside the object, but a number the size of Date.now() (~1.8e12) in a
 * heap box of its own: one more object for a hit to reach. A time more than ~24 days from the origin
 * is boxed again: an object more, not a wrong answer.
 */
export const TIME_ORIGIN = Date.now();

/** A few distinct Content-Types, shared by every entry: the string a hit writes stays in cache. */
const CONTENT_TYPES = new Map<string, string>();

function shared(contentType: string): string {
  const known = CONTENT_TYPES.get(contentType);
  if (known !== undefined) return known;
  if (CONTENT_TYPES.size < 64) CONTENT_TYPES.set(contentType, contentType);
  return contentType;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * An L1 entry as a caller may hold it between hits: live until lru-cache drops it (evicted, deleted,
 * replaced, expired), which also lets go of the answer and its bytes, so that a held slot keeps none
 * of them alive.
 *
 * A hit on a held slot reads the slot and the bytes it writes, nothing else: the numbers and bytes a
 * hit needs are copied here from the answer (times as offsets from TIME_ORIGIN), so that a hit over
 * many keys reaches two or three objects, not a chain of six (answer, its time boxes, its variants,
 * …). The variants are built by the answer, once, and kept here too. (Measured: no gain shown beyond
 * noise on the machine it was tried on; see docs/benchmark.md.)
 */
export class L1Slot implements ServedAnswer {
  answer: CachedAnswer | null;
  status: number;
  contentType: string;
  body: Buffer;
  /** when the entry last took its place at the head of the LRU order (ms since TIME_ORIGIN) */
  bumped: number;
  /** variants, once built: /api's wrapper of a hit, and the gzip bytes of it and of the body */
  private apiHit: Buffer | null = null;
  private apiHitGz: Buffer | null = null;
  private gz: Buffer | null = null;
  /** stored at, fresh until, servable until (ms since TIME_ORIGIN) */
  private readonly at: number;
  private readonly fu: number;
  private readonly su: number;

  constructor(
    readonly key: string,
    answer: CachedAnswer,
    now: number,
  ) {
    this.answer = answer;
    this.status = answer.status;
    this.contentType = shared(answer.contentType);
    this.body = answer.body;
    this.bumped = now - TIME_ORIGIN;
    this.at = answer.storedAt - TIME_ORIGIN;
    this.fu = answer.freshUntil - TIME_ORIGIN;
    this.su = answer.staleUntil - TIME_ORIGIN;
  }

  get storedAt(): number {
    return this.at + TIME_ORIGIN;
  }

  get freshUntil(): number {
    return this.fu + TIME_ORIGIN;
  }

  isFresh(now: number): boolean {
    return now - TIME_ORIGIN < this.fu;
  }

  /** True while the entry may still be served, fresh or stale (until its Redis copy expires). */
  servable(now: number): boolean {
    return this.answer !== null && now - TIME_ORIGIN < this.su;
  }

  apiBody(cacheHit: boolean): Buffer {
    if (!cacheHit) return this.answer!.apiBody(false);
    return (this.apiHit ??= this.answer!.apiBody(true));
  }

  gzip(minBytes: number): Buffer | null {
    return (this.gz ??= this.answer!.gzip(minBytes));
  }

  apiHitGzip(minBytes: number): Buffer | null {
    if (this.body.length < minBytes) return null;
    return (this.apiHitGz ??= this.answer!.apiHitGzip(minBytes));
  }

  /** The entry left L1: nothing is served from this slot again, and it holds no bytes. */
  release(): void {
    this.answer = null;
    this.body = NO_BYTES;
    this.apiHit = this.apiHitGz = this.gz = null;
  }
}

/** Whatever holds an L1 slot between hits (the front door's memo entry for a request target). */
export interface L1Holder {
  slot?: L1Slot;
}

/**
 * The in-process tier over Redis: bounded by bytes, and an entry never outlives its Redis copy
 * (its TTL is the time left until the shared entry's own expiry).
 */
export class L1Cache {
  private readonly lru: LRUCache<string, L1Slot> | null;

  constructor(maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, L1Slot>({
            maxSize: maxBytes,
            sizeCalculation: (s) => Math.max(1, s.answer!.size),
            ttlAutopurge: false,
            dispose: (s) => s.release(),
          })
        : null;
  }

  get(key: string, now: number): CachedAnswer | undefined {
    return this.slot(key, now)?.answer ?? undefined;
  }

  /** The live entry for `key`, put at the head of the LRU order. */
  slot(key: string, now: number): L1Slot | undefined {
    const s = this.lru?.get(key);
    if (s === undefined || !this.live(s, now)) return undefined;
    s.bumped = now - TIME_ORIGIN;
    return s;
  }

  /**
   * A slot held since an earlier `slot()`, while its entry is live and not expired (what
   * `slot(slot.key)` would give), with the LRU order refreshed at most every L1_BUMP_MS.
   */
  use(s: L1Slot, now: number): L1Slot | undefined {
    if (!this.live(s, now)) return undefined;
    const t = now - TIME_ORIGIN;
    if (t - s.bumped >= L1_BUMP_MS) {
      this.lru!.get(s.key);
      s.bumped = t;
    }
    return s;
  }

  /**
   * Whether the slot may still be served (fresh or stale within its Redis copy's life); past that the
   * entry is dropped now rather than when lru-cache's own TTL next notices.
   */
  private live(s: L1Slot, now: number): boolean {
    if (s.servable(now)) return true;
    if (s.answer !== null) this.lru!.delete(s.key);
    return false;
  }

  /** The new entry's slot, or undefined when it is not kept (L1 off, expired, larger than L1). */
  set(key: string, answer: CachedAnswer, now: number): L1Slot | undefined {
    if (!this.lru) return undefined;
    const ttl = answer.staleUntil - now;
    if (ttl <= 0 || answer.size > this.lru.maxSize) return undefined;
    const slot = new L1Slot(key, answer, now);
    this.lru.set(key, slot, { ttl });
    return slot;
  }

  /** True when there was an entry to drop. */
  delete(key: string): boolean {
    return this.lru?.delete(key) ?? false;
  }

  deletePrefix(prefix: string): number {
    if (!this.lru) return 0;
    let n = 0;
    for (const key of [...this.lru.keys()]) {
      if (key.startsWith(prefix)) {
        this.lru.delete(key);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.lru?.clear();
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }
}
