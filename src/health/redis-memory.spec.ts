import { fullRedis } from './redis-memory';

/** INFO memory as Redis 7 writes it (CRLF, the fields this reads among others). */
const info = (fields: Record<string, string | number>) =>
  `# Memory\r\nused_memory_human:1.00M\r\n${Object.entries(fields).map(([k, v]) => `${k}:${v}`).join('\r\n')}\r\nallocator_frag_ratio:1.01\r\n`;

describe('fullRedis', () => {
  it('is full over maxmemory with noeviction, by the memory Redis counts', () => {
    expect(fullRedis(info({ used_memory: 2_000_000, maxmemory: 1_000_000, maxmemory_policy: 'noeviction', mem_not_counted_for_evict: 0 }))).toEqual({
      usedBytes: 2_000_000,
      maxBytes: 1_000_000,
      policy: 'noeviction',
    });
    // replica output and AOF buffers are not counted by Redis's own check
    expect(fullRedis(info({ used_memory: 2_000_000, maxmemory: 1_000_000, maxmemory_policy: 'noeviction', mem_not_counted_for_evict: 1_500_000 }))).toBeUndefined();
    expect(fullRedis(info({ used_memory: 1_000_000, maxmemory: 1_000_000, maxmemory_policy: 'noeviction' }))).toBeUndefined();
  });

  it('is never full without maxmemory, with a policy that evicts, or from a text without the fields', () => {
    expect(fullRedis(info({ used_memory: 2_000_000, maxmemory: 0, maxmemory_policy: 'noeviction' }))).toBeUndefined();
    expect(fullRedis(info({ used_memory: 2_000_000, maxmemory: 1_000_000, maxmemory_policy: 'allkeys-lru' }))).toBeUndefined();
    expect(fullRedis('')).toBeUndefined();
    expect(fullRedis(info({ maxmemory: 1_000_000, maxmemory_policy: 'noeviction' }))).toBeUndefined();
  });
});
