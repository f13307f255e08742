/**
 * What an L1 entry really costs, for the byte bound (L1_MAX_BYTES). Counting the body alone let the
 * process grow ~18 KB per 3.2 KB answer: Buffers (each two objects and a malloc'ed backing store, some
 * views on 8 KiB pool slabs or zlib's 16 KiB output chunks), the key string, the entry objects and
 * lru-cache's own arrays. The constants are measured on Node 24 (64-bit, pointer compression off) by
 * l1-memory.spec.ts, which fails when the count falls below what the heap and external memory really
 * grow by.
 */

/** V8 string: header (map, hash, length) and the characters rounded up to 8 bytes; one byte a char for latin1 */
export function stringBytes(s: string, oneByte = true): number {
  return 16 + (((oneByte ? s.length : 2 * s.length) + 7) & ~7);
}

/**
 * Per entry besides its key and data: lru-cache's slots (key map entry, key/value/next/prev/size/ttl/
 * start arrays), the L1 slot and the answer object with its three boxed times.
 */
export const ENTRY_OVERHEAD_BYTES = 384;

/** A Buffer with its own backing store: the Uint8Array, the ArrayBuffer, the backing store and malloc's header */
export const BUFFER_OVERHEAD_BYTES = 256;

/** Per plain copy besides its Buffer: its place in the copies' Map */
export const COPY_OVERHEAD_BYTES = 48;

/**
 * A warning when the L1 budget is more than half the V8 heap limit: the L1's answers live in the heap
 * (latin1 strings), and a heap that full spends its time in garbage collection, or dies.
 */
export function heapWarning(l1MaxBytes: number, heapLimitBytes: number): string | undefined {
  if (l1MaxBytes <= heapLimitBytes / 2) return undefined;
  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
  return (
    `L1_MAX_BYTES (${mib(l1MaxBytes)}) is more than half the V8 heap limit (${mib(heapLimitBytes)}): ` +
    `raise --max-old-space-size (NODE_OPTIONS in the image; node's command line, which wins over NODE_OPTIONS, ` +
    `with npm start) or lower L1_MAX_BYTES`
  );
}
