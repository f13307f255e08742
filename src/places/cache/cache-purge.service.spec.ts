import { escapeGlob, isEntryKey, isPurgeablePrefix } from './cache-purge.service';

describe('cache purge key rules', () => {
  it.each([
    ['places:v1:search:format=json&q=berlin', true],
    ['places:v1:reverse:lat=1&lon=2', true],
    ['places:v1:lookup:h:abc', true],
    ['places:v1:status:format=text', true],
    ['places:v1:details:place_id=1', true],
    ['places:v1:lock:places:v1:search:q=x', false],
    ['places:v1:pacer:next', false],
    ['places:v1:throttle:abc', false],
    ['places:v1:purge', false],
    ['places:v1:searchx:q', false],
    ['places:v2:search:q=x', false],
    ['other:places:v1:search:q=x', false],
    ['places:v1:search:q=\r\nx', false],
    [`places:v1:search:${'x'.repeat(2000)}`, false],
  ])('isEntryKey(%j) is %s', (key, expected) => {
    expect(isEntryKey(key)).toBe(expected);
  });

  it.each([
    ['places:v1:', true],
    ['places:v1:search:', true],
    ['places:v1:search:format=json&q=ber', true],
    ['places:v1', false],
    ['places:', false],
    ['', false],
    ['*', false],
    ['places:v1:\u0000', false],
  ])('isPurgeablePrefix(%j) is %s', (prefix, expected) => {
    expect(isPurgeablePrefix(prefix)).toBe(expected);
  });

  it('escapes every glob character of SCAN MATCH', () => {
    expect(escapeGlob('places:v1:search:q=a*b?c[d]e\\f^g')).toBe('places:v1:search:q=a\\*b\\?c\\[d\\]e\\\\f^g');
  });
});
