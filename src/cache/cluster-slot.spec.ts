import { clusterSlot } from './cluster-slot';
import { RedisKeys } from './redis-keys';

describe(clusterSlot.name, () => {
  // Values from `redis-cli CLUSTER KEYSLOT <key>` on Redis 7.0.
  it.each([
    ['foo', 12182],
    ['bar', 5061],
    ['somekey', 11058],
    ['{user1000}.following', 3443],
    ['{user1000}.followers', 3443],
    ['foo{}{bar}', 8363],
    ['foo{{bar}}zap', 4015],
    ['{pacer}', 6865],
  ])('puts %s in slot %i', (key, slot) => {
    expect(clusterSlot(key)).toBe(slot);
  });

  it('puts a fill lock in its answer\'s slot, and spreads answers over slots', () => {
    const keys = new RedisKeys(true);
    const answers = Array.from({ length: 50 }, (_, i) => keys.answer(`places:v1:search:format=json&q=city%20${i}`));
    for (const name of answers) expect(clusterSlot(`places:v1:lock:${name}`)).toBe(clusterSlot(name));
    expect(new Set(answers.map(clusterSlot)).size).toBeGreaterThan(40);
  });
});
