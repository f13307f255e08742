import { LRUCache } from 'lru-cache';
import { CachedAnswer } from './cached-answer';
import { ENTRY_OVERHEAD_BYTES, stringBytes } from './l1-memory';
import { PlainCopies } from './plain-copies';

/**
 * How often a hit held by slot refreshes its entry's place in the LRU order: memcached's
 * ITEM_UPDATE_INTERVAL. Entries used within the same minute count as equally recent; in return a hit
 * on a held slot does not probe lru-cache's key map, whose buckets are cold in a large L1.
 */
export const L1_BUMP_MS = 60_000;

/**
 * An L1 entry as a caller may hold it between hits: live until lru-cache drops it (evicted, deleted,
 * replaced, expired), which also lets go of the answer so that a held slot keeps no bytes alive.
 */
interface L1Slot {
  readonly key: string;
  answer: CachedAnswer | null;
  /** when the entry last took its place at the head of the LRU order */
  bumped: number;
}

/** Whatever holds an L1 slot between hits (the front door's memo entry for a request target). */
export interface L1Holder {
  slot?: L1Slot;
}

/** What an entry costs the L1: its answer's compact form, its key and the fixed part (l1-memory.ts). */
export function entryBytes(key: string, answer: CachedAnswer): number {
  return ENTRY_OVERHEAD_BYTES + stringBytes(key, isOneByte(key)) + answer.size;
}

function isOneByte(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[^\u0000-\u00ff]/.test(s);
}

/**
 * The in-process tier over Redis: bounded by bytes, and an entry never outlives its Redis copy
 * (its TTL is the time left until the shared entry's own expiry). Every answer in it is in its compact
 * form (see CachedAnswer.compact); the plain copies of those asked for without gzip share the budget:
 * at least a sixteenth of it, and whatever the entries leave free.
 */
export class L1Cache {
  private readonly lru: LRUCache<string, L1Slot> | null;
  private readonly copies: PlainCopies;

  constructor(
    maxBytes: number,
    private readonly compressMinBytes = 1024,
  ) {
    const reserve = Math.floor(maxBytes / 16);
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, L1Slot>({
            maxSize: maxBytes - reserve,
            sizeCalculation: (s, key) => Math.max(1, entryBytes(key, s.answer!)),
            ttlAutopurge: false,
            dispose: (s) => {
              s.answer?.release();
              s.answer = null;
            },
          })
        : null;
    this.copies = new PlainCopies(this.lru ? reserve : 0, () => (this.lru ? maxBytes - this.lru.calculatedSize : 0));
  }

  get(key: string, now: number): CachedAnswer | undefined {
    return this.slot(key, now)?.answer ?? undefined;
  }

  /** The live entry for `key`, put at the head of the LRU order. */
  slot(key: string, now: number): L1Slot | undefined {
    const s = this.lru?.get(key);
    if (s === undefined || this.live(s, now) === undefined) return undefined;
    s.bumped = now;
    return s;
  }

  /**
   * The answer of a slot held since an earlier `slot()`, while the entry is live and not expired:
   * what `get(slot.key)` would give, with the LRU order refreshed at most every L1_BUMP_MS.
   */
  use(s: L1Slot, now: number): CachedAnswer | undefined {
    const a = this.live(s, now);
    if (a === undefined) return undefined;
    if (now - s.bumped >= L1_BUMP_MS) {
      this.lru!.get(s.key);
      s.bumped = now;
    }
    return a;
  }

  /**
   * The slot's answer while it may still be served (fresh or stale within its Redis copy's life);
   * past that the entry is dropped now rather than when lru-cache's own TTL next notices.
   */
  private live(s: L1Slot, now: number): CachedAnswer | undefined {
    const a = s.answer;
    if (a === null) return undefined;
    if (now >= a.staleUntil) {
      this.lru!.delete(s.key);
      return undefined;
    }
    return a;
  }

  /** The new entry's slot, or undefined when it is not kept (L1 off, expired, larger than L1). */
  set(key: string, answer: CachedAnswer, now: number): L1Slot | undefined {
    if (!this.lru) return undefined;
    const ttl = answer.staleUntil - now;
    if (ttl <= 0) return undefined;
    const held = this.lru.peek(key, { allowStale: true });
    if (held?.answer === answer) {
      // The same answer again (a fill that reads what this process stored): its slot stays.
      this.lru.set(key, held, { ttl });
      return held;
    }
    answer.compact(this.compressMinBytes, this.copies);
    if (entryBytes(key, answer) > this.lru.maxSize) {
      answer.release();
      return undefined;
    }
    const slot: L1Slot = { key, answer, bumped: now };
    this.lru.set(key, slot, { ttl });
    // The entries took room the copies may have had.
    this.copies.trim();
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
    this.copies.clear();
  }

  /** What the entries and the plain copies cost, together never over L1_MAX_BYTES. */
  get bytes(): number {
    return (this.lru?.calculatedSize ?? 0) + this.copies.bytes;
  }

  /** Of `entries`, how many keep a plain copy too (for the bench and tests). */
  get plainCopies(): number {
    return this.copies.entries;
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }
}
