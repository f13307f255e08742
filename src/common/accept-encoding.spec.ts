import { acceptsGzipEncoding } from './accept-encoding';

describe('acceptsGzipEncoding', () => {
  it.each([
    ['gzip', true],
    ['gzip, deflate, br, zstd', true],
    ['deflate, gzip;q=1.0, *;q=0.5', true],
    ['GZIP', true],
    ['x-gzip', true],
    ['gzip;q=0.001', true],
    ['gzip ; q=0.5', true],
    ['gzip;Q=1', true],
    ['*', true],
    ['br, *;q=0.1', true],
    ['identity;q=0, gzip', true],
    ['deflate, gzip;q=0.5', true],
    ['gzip;q=0.5, *;q=0.2', true],
    ['gzip;q=0.5, identity;q=0.5', true],
    [' ,gzip, ', true],
  ])('%j: gzip', (header, expected) => {
    expect(acceptsGzipEncoding(header)).toBe(expected);
  });

  it.each([
    [undefined, false],
    ['', false],
    ['identity', false],
    ['gzip;q=0', false],
    ['gzip;q=0.0', false],
    ['gzip;q=0.000', false],
    ['gzip;q=0, *', false],
    ['*, gzip;q=0', false],
    ['*;q=0', false],
    ['nogzip', false],
    ['gzipx, br', false],
    ['deflate, br', false],
    ['gzip;q=0.5, identity', false],
    ['gzip;q=2', false],
    ['gzip;q=1.5', false],
    ['gzip;q=high', false],
    ['gzip;q=0.0001', false],
    ['gzip;q=', false],
    ['"gzip"', false],
  ])('%j: no gzip', (header, expected) => {
    expect(acceptsGzipEncoding(header)).toBe(expected);
  });

  it('gives the same answer from its memo as from parsing', () => {
    for (let i = 0; i < 600; i++) {
      expect(acceptsGzipEncoding(`gzip;q=0.${i % 2 === 0 ? 0 : 5}, x-${i}`)).toBe(i % 2 === 1);
    }
    expect(acceptsGzipEncoding(`${'br, '.repeat(100)}gzip;q=0`)).toBe(false);
    expect(acceptsGzipEncoding(`${'br, '.repeat(100)}gzip;q=0`)).toBe(false);
  });
});
