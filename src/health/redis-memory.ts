/** A Redis that refuses every write for want of memory, as INFO memory shows it. */
export interface FullRedis {
  usedBytes: number;
  maxBytes: number;
  policy: string;
}

/**
 * Whether INFO memory describes a Redis that refuses writes: over `maxmemory` with
 * `maxmemory-policy noeviction`, counting memory as Redis's own check does (without what
 * `mem_not_counted_for_evict` reports: replica output and AOF buffers). A Redis that evicts is never
 * full here: it makes room for each write. Undefined when not full or when the text says nothing.
 */
export function fullRedis(info: string): FullRedis | undefined {
  const field = (name: string) => new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1];
  const maxBytes = Number(field('maxmemory'));
  const usedBytes = Number(field('used_memory'));
  const policy = field('maxmemory_policy') ?? '';
  if (!(maxBytes > 0) || !Number.isFinite(usedBytes) || policy !== 'noeviction') return undefined;
  const uncounted = Number(field('mem_not_counted_for_evict') ?? 0) || 0;
  return usedBytes - uncounted > maxBytes ? { usedBytes, maxBytes, policy } : undefined;
}
