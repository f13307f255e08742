import { isRedirect, redirectAdvice } from './upstream-redirect';

describe('upstream redirects', () => {
  const asked = 'http://nominatim.example/search?format=json&q=secretplace&email=ops%40example.org';

  it('are the 3xx statuses, 304 included', () => {
    expect([200, 299, 300, 301, 304, 307, 308, 399, 400, 404, 500].map(isRedirect)).toEqual([
      false, false, true, true, true, true, true, true, false, false, false,
    ]);
  });

  it.each([
    ['http → https', 'https://nominatim.example/search?format=json&q=secretplace', 'a redirect to https://nominatim.example/search, not followed; set NOMINATIM_URL to https://nominatim.example'],
    ['a moved host under a path', 'https://geo.example/nominatim/search', 'a redirect to https://geo.example/nominatim/search, not followed; set NOMINATIM_URL to https://geo.example/nominatim'],
    ['a relative Location', '/v2/search?q=secretplace', 'a redirect to http://nominatim.example/v2/search, not followed; set NOMINATIM_URL to http://nominatim.example/v2'],
    ['credentials in the Location', 'https://user:secret@nominatim.example/search', 'a redirect to https://nominatim.example/search, not followed; set NOMINATIM_URL to https://nominatim.example'],
    ['another path (a login page)', 'https://sso.example/login?next=%2Fsearch%3Fq%3Dsecretplace', 'a redirect to https://sso.example/login, not followed; check NOMINATIM_URL'],
    ['another scheme', 'ftp://nominatim.example/search', 'a redirect to a ftp: URL, not followed; check NOMINATIM_URL'],
    ['an invalid Location', 'http://[::1', 'a redirect to an invalid Location, not followed; check NOMINATIM_URL'],
    ['no Location', undefined, 'a redirect without a Location, not followed; check NOMINATIM_URL'],
    ['an empty Location', ' ', 'a redirect without a Location, not followed; check NOMINATIM_URL'],
  ])('are told to the operator without the question: %s', (_what, location, advice) => {
    expect(redirectAdvice(location, asked, '/search')).toBe(advice);
  });

  it('cut a long target short', () => {
    const advice = redirectAdvice(`https://nominatim.example/${'a'.repeat(5000)}`, asked, '/search');
    expect(advice.length).toBeLessThan(300);
  });
});
