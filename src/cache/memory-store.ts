import { L1_DEFAULT_BYTES } from '../config/configuration';

/**
 * The stand-in for Redis when REDIS_URL is unset: cache-manager's memory store (lru-cache), holding a
 * second in-process copy of each answer beside the L1. Bounded by entries alone it let a few large
 * answers (a country's polygon is megabytes) take the process past a gigabyte while the L1 kept to its
 * budget; so it is bounded in bytes, by the same L1_MAX_BYTES, and the process holds at most about twice
 * that in answers. With the L1 off it is the only cache there is, and takes the L1's default budget:
 * keeping nothing would send every repeated question to Nominatim, which blocks clients that repeat.
 */
interface MemoryStoreOptions {
  ttl: 0;
  max: number;
  maxSize: number;
  sizeCalculation: (value: unknown) => number;
  /** What is set is a fresh object nobody changes afterwards: lodash's deep clone of it would only cost. */
  shouldCloneBeforeSet: false;
}

/** Entries at most, whatever their size: lru-cache preallocates per entry bookkeeping for this many. */
const MAX_ENTRIES = 100_000;

/** `l1MaxBytes`: L1_MAX_BYTES (0: the L1 is off). */
export function memoryStoreOptions(l1MaxBytes: number): MemoryStoreOptions {
  const maxSize = l1MaxBytes > 0 ? l1MaxBytes : L1_DEFAULT_BYTES;
  return { ttl: 0, max: MAX_ENTRIES, maxSize, sizeCalculation: approximateBytes, shouldCloneBeforeSet: false };
}

/**
 * What a stored value costs, an upper bound: strings at two bytes a character (V8 keeps text with a
 * character above U+00FF that way), numbers and other leaves at 8, an object's header and slots at 64
 * plus 8 a property. Stored answers are flat objects of a few strings and numbers.
 */
export function approximateBytes(value: unknown, depth = 0): number {
  if (typeof value === 'string') return 16 + 2 * value.length;
  if (typeof value !== 'object' || value === null) return 8;
  if (Buffer.isBuffer(value)) return 96 + value.length;
  if (depth > 4) return 64;
  let bytes = 64;
  for (const v of Object.values(value)) bytes += 8 + approximateBytes(v, depth + 1);
  return Math.max(1, bytes);
}
