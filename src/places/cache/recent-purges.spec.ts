import { RecentPurges } from './recent-purges';

const KEY = 'places:v1:search:format=json&q=lisbon';
const OTHER = 'places:v1:search:format=json&q=porto';

describe(RecentPurges.name, () => {
  it('says nothing is purged while no purge came after the mark', () => {
    const purges = new RecentPurges(60_000);
    const seen = purges.mark();
    expect(purges.since(KEY, seen)).toBe(false);
    purges.add(KEY, false, 1000);
    // A read that starts after the purge sees what the purge left.
    expect(purges.since(KEY, purges.mark())).toBe(false);
  });

  it('covers the purged key after the mark, not another key, and not a mark taken after the purge', () => {
    const purges = new RecentPurges(60_000);
    const before = purges.mark();
    purges.add(KEY, false, 1000);
    const after = purges.mark();
    expect(purges.since(KEY, before)).toBe(true);
    expect(purges.since(OTHER, before)).toBe(false);
    expect(purges.since(KEY, after)).toBe(false);
  });

  it('orders a purge and a read in the same millisecond', () => {
    const purges = new RecentPurges(60_000);
    const before = purges.mark();
    purges.add(KEY, false, 1000);
    purges.add(OTHER, false, 1000);
    expect(purges.since(KEY, before)).toBe(true);
    expect(purges.since(KEY, before + 1)).toBe(false);
    expect(purges.since(OTHER, before + 1)).toBe(true);
  });

  it('covers every key under a prefix, and only those', () => {
    const purges = new RecentPurges(60_000);
    const seen = purges.mark();
    purges.add('places:v1:search:', true, 1000);
    expect(purges.since(KEY, seen)).toBe(true);
    expect(purges.since('places:v1:reverse:lat=1&lon=2', seen)).toBe(false);
    // A key named like the prefix is not covered by a key purge of it.
    const next = purges.mark();
    purges.add('places:v1:search:format=json', false, 1000);
    expect(purges.since(KEY, next)).toBe(false);
  });

  it('forgets purges older than its memory, and then counts any older mark as purged', () => {
    const purges = new RecentPurges(10_000);
    const old = purges.mark();
    purges.add(OTHER, false, 1000);
    const recent = purges.mark();
    purges.add(KEY, false, 20_000);
    expect(purges.size).toBe(1);
    // OTHER's purge is forgotten: a mark from before it can no longer be checked, so it is refused.
    expect(purges.since(OTHER, old)).toBe(true);
    expect(purges.since('places:v1:lookup:osm_ids=N1', old)).toBe(true);
    // A mark from after the forgotten purge is still checked exactly.
    expect(purges.since(OTHER, recent)).toBe(false);
    expect(purges.since(KEY, recent)).toBe(true);
  });

  it('keeps at most maxEntries purges however many come at once', () => {
    const purges = new RecentPurges(60_000, 3);
    const before = purges.mark();
    for (let i = 0; i < 10; i++) purges.add(`places:v1:search:q=${i}`, false, 1000);
    expect(purges.size).toBe(3);
    expect(purges.since('places:v1:search:q=9', before + 7)).toBe(true);
    expect(purges.since('places:v1:search:q=0', before + 7)).toBe(false);
    expect(purges.since(KEY, before + 7)).toBe(false);
    // Marks from before the kept ones: refused, since a forgotten purge may have covered them.
    expect(purges.since(KEY, before + 6)).toBe(true);
  });

  it('past maxEntries, forgets the oldest tenth at once', () => {
    const purges = new RecentPurges(60_000, 20);
    const before = purges.mark();
    for (let i = 0; i < 21; i++) purges.add(`places:v1:search:q=${i}`, false, 1000);
    expect(purges.size).toBe(18);
    expect(purges.since(KEY, before + 2)).toBe(true);
    expect(purges.since(KEY, before + 3)).toBe(false);
    expect(purges.since('places:v1:search:q=3', before + 3)).toBe(true);
  });
});
