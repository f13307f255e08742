/** One purge, of `scope` itself or (prefix) of every key starting with it; `seq` orders purges, `at` ages them. */
interface Purge {
  readonly seq: number;
  readonly at: number;
  readonly scope: string;
  readonly prefix: boolean;
}

/**
 * The purges this instance made or was told of (the purge broadcast), for as long as a copy read before
 * one may still be in use: a flight that read the entry, then waits on Nominatim, must not answer with
 * that copy (stale-if-error) once a purge has removed it.
 *
 * A reader takes a mark() before it reads; since(key, mark) then says whether a purge made after the
 * mark covers the key. Marks are a counter, not a clock: a purge and a read in the same millisecond
 * are still ordered. Memory is bounded: purges older than `memoryMs`, and the oldest past `maxEntries`,
 * are forgotten. A mark older than a forgotten purge counts as purged: it can no longer be told apart,
 * and refusing a stale copy is the safe answer (a 5xx instead of an old one).
 */
export class RecentPurges {
  private seq = 0;
  /** seq of the newest purge forgotten: a mark below it cannot be checked */
  private floor = 0;
  /** oldest first */
  private readonly purges: Purge[] = [];

  /**
   * `maxEntries`: the import command publishes every key it writes on the purge channel too, so an
   * import of many keys comes in as as many purges (a flight that then fails reads the imported copy
   * from Redis: PlacesCacheService.staleIfError); a few MB of keys at most, and past it the oldest
   * tenth goes at once (one splice, not one per purge).
   */
  constructor(
    private readonly memoryMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  mark(): number {
    return this.seq;
  }

  add(scope: string, prefix: boolean, now: number): void {
    this.purges.push({ seq: ++this.seq, at: now, scope, prefix });
    const n = this.purges.length;
    let drop = n > this.maxEntries ? n - this.maxEntries + Math.floor(this.maxEntries / 10) : 0;
    while (drop < n - 1 && now - this.purges[drop].at > this.memoryMs) drop++;
    if (drop > 0) {
      this.floor = this.purges[drop - 1].seq;
      this.purges.splice(0, drop);
    }
  }

  /** Whether a purge made after `mark` (taken before `key` was read) covers `key`. */
  since(key: string, mark: number): boolean {
    if (mark === this.seq) return false;
    if (mark < this.floor) return true;
    for (let i = this.purges.length - 1; i >= 0 && this.purges[i].seq > mark; i--) {
      const p = this.purges[i];
      if (p.prefix ? key.startsWith(p.scope) : key === p.scope) return true;
    }
    return false;
  }

  /** Purges remembered now (for tests and the bound). */
  get size(): number {
    return this.purges.length;
  }
}
