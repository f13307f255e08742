import { findRoute, PLACE_ROUTES } from './place-routes';

describe('findRoute', () => {
  const search = PLACE_ROUTES.get('/search');

  it('finds every place path as written', () => {
    for (const [path, route] of PLACE_ROUTES) expect([path, findRoute(path)]).toEqual([path, route]);
  });

  it('ignores letter case and one trailing slash, as Express does', () => {
    expect(findRoute('/search/')).toBe(search);
    expect(findRoute('/SEARCH')).toBe(search);
    expect(findRoute('/Search.PHP/')).toBe(PLACE_ROUTES.get('/search.php'));
    expect(findRoute('/api/')).toBe(PLACE_ROUTES.get('/api'));
    expect(findRoute('/STATUS/')).toBe(PLACE_ROUTES.get('/status'));
  });

  it('finds no route for a second trailing slash, nor for `//` (not `/` with a trailing slash)', () => {
    for (const path of ['//', '///', '/search//', '/SEARCH//', '/status//', '/api//', '/search.php//', `/search${'/'.repeat(5000)}`]) {
      expect([path, findRoute(path)]).toEqual([path, undefined]);
    }
  });

  it('finds no route for other paths', () => {
    for (const path of ['', '//search', '/search/x', '/search.', '/%73earch', '/search;x=1', '/nothing', '/admin/cache']) {
      expect([path, findRoute(path)]).toEqual([path, undefined]);
    }
  });
});
