import { BUFFER_OVERHEAD_BYTES, COPY_OVERHEAD_BYTES } from './l1-memory';

/** What keeps a plain copy: it lets go of it when the copies need room. */
export interface PlainHolder {
  dropPlain(): void;
}

/**
 * Uncompressed copies of L1 answers, for clients that do not take gzip: decompressing costs about a
 * hit's own time (~60 µs for 5 KB here), so the answers such clients ask for again keep one plain copy,
 * within a byte budget inside L1_MAX_BYTES. The oldest copy goes first (made, not used: a hot answer
 * whose copy went is decompressed once more and comes back at the end).
 *
 * The budget is what the compact entries leave free (`room()`), never less than `reserve`: a full L1
 * still keeps its hottest answers plain.
 */
export class PlainCopies {
  private readonly copies = new Map<PlainHolder, number>();
  private total = 0;

  constructor(
    readonly reserve: number,
    private readonly room: () => number,
  ) {}

  static bytesOf(copy: Buffer): number {
    return BUFFER_OVERHEAD_BYTES + COPY_OVERHEAD_BYTES + copy.length;
  }

  /** Keeps `holder`'s copy of `bytes` counted; false (nothing kept) when it cannot fit at all. */
  add(holder: PlainHolder, bytes: number): boolean {
    if (bytes > this.budget()) return false;
    const had = this.copies.get(holder);
    if (had !== undefined) {
      this.copies.delete(holder);
      this.total -= had;
    }
    this.copies.set(holder, bytes);
    this.total += bytes;
    this.trim();
    return this.copies.has(holder);
  }

  /** `holder` lets go of its copy itself (its entry left the L1). */
  forget(holder: PlainHolder): void {
    const had = this.copies.get(holder);
    if (had === undefined) return;
    this.copies.delete(holder);
    this.total -= had;
  }

  /** Drops the oldest copies until the copies fit their budget. */
  trim(): void {
    const budget = this.budget();
    for (const [holder, bytes] of this.copies) {
      if (this.total <= budget) break;
      this.copies.delete(holder);
      this.total -= bytes;
      holder.dropPlain();
    }
  }

  clear(): void {
    for (const holder of this.copies.keys()) holder.dropPlain();
    this.copies.clear();
    this.total = 0;
  }

  get bytes(): number {
    return this.total;
  }

  get entries(): number {
    return this.copies.size;
  }

  private budget(): number {
    return Math.max(this.reserve, this.room());
  }
}
