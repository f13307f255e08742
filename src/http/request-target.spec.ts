import { originForm } from './request-target';

describe(originForm.name, () => {
  it.each([
    ['/search?q=x', '/search?q=x'],
    ['http://evil.example/search?q=x', '/search?q=x'],
    ['HTTPS://127.0.0.1:8080/reverse', '/reverse'],
    ['http://evil.example', '/'],
    ['http://evil.example?q=x', '/?q=x'],
    ['http://user:pw@evil.example:80//search', '//search'],
    ['http://evil.example/%2e%2e/admin', '/%2e%2e/admin'],
    ['/search#', '/search'],
    ['/search#?q=x', '/search'],
    ['/search?q=x#frag', '/search?q=x'],
    ['http://evil.example/reverse#/../admin', '/reverse'],
    ['#', '/'],
    ['*', '*'],
    ['evil.example:443', 'evil.example:443'],
  ])('%s -> %s', (target, expected) => {
    expect(originForm(target)).toBe(expected);
  });
});
