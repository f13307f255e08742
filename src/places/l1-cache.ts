import { LRUCache } from 'lru-cache';
import { CachedAnswer } from './cached-answer';

/**
 * The in-process tier over Redis: bounded by bytes, and an entry never outlives its Redis copy
 * (its TTL is the time left until the shared entry's own expiry).
 */
export class L1Cache {
  private readonly lru: LRUCache<string, CachedAnswer> | null;

  constructor(maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, CachedAnswer>({
            maxSize: maxBytes,
            sizeCalculation: (a) => Math.max(1, a.size),
            ttlAutopurge: false,
          })
        : null;
  }

  get(key: string, now: number): CachedAnswer | undefined {
    const a = this.lru?.get(key);
    if (a !== undefined && now >= a.staleUntil) {
      this.lru!.delete(key);
      return undefined;
    }
    return a;
  }

  set(key: string, answer: CachedAnswer, now: number): void {
    if (!this.lru) return;
    const ttl = answer.staleUntil - now;
    if (ttl <= 0 || answer.size > this.lru.maxSize) return;
    this.lru.set(key, answer, { ttl });
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
