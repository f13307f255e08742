import { RedisKeys } from './redis-keys';

describe(RedisKeys.name, () => {
  const single = new RedisKeys(false);
  const cluster = new RedisKeys(true);

  it('leaves every key exactly as it is on one Redis', () => {
    const key = 'places:v1:search:format=json&q=berlin';
    expect(single.answer(key)).toBe(key);
    expect(single.canonical(key)).toBe(key);
    expect(single.tag('pacer')).toBe('pacer');
    expect(single.matchFor('places:v1:search:q=a*b')).toBe('places:v1:search:q=a\\*b*');
  });

  it('tags an answer with its question on a cluster, and maps the name back', () => {
    const key = 'places:v1:reverse:format=json&lat=1&lon=2';
    expect(cluster.answer(key)).toBe('places:v1:reverse:{format=json&lat=1&lon=2}');
    expect(cluster.canonical(cluster.answer(key))).toBe(key);
    expect(cluster.answer('places:v1:search:h:abc')).toBe('places:v1:search:{h:abc}');
    expect(cluster.tag('pacer')).toBe('{pacer}');
  });

  it('matches a prefix after the brace on a cluster, and whole endpoints or the namespace as they are', () => {
    expect(cluster.matchFor('places:v1:search:format=json&q=ber')).toBe('places:v1:search:{format=json&q=ber*');
    expect(cluster.matchFor('places:v1:search:')).toBe('places:v1:search:{*');
    expect(cluster.matchFor('places:v1:sea')).toBe('places:v1:sea*');
    expect(cluster.matchFor('places:v1:')).toBe('places:v1:*');
  });

  it('leaves names that are not answers alone', () => {
    expect(cluster.canonical('places:v1:{pacer}:pacer:next')).toBe('places:v1:{pacer}:pacer:next');
    expect(cluster.answer('places:v1:lock')).toBe('places:v1:lock');
  });
});
