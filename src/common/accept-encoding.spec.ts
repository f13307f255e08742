import { underWatchdog } from '../../test/support/watchdog';
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

  // Long enough that a parser quadratic in the header length would need minutes.
  const LONG = 512 * 1024;
  it.each([
    ['a coding, spaces, another coding', `gzip${' '.repeat(LONG)}x`, false],
    ['spaces around a parameter', `gzip;${' '.repeat(LONG)}q${' '.repeat(LONG)}=${' '.repeat(LONG)}1${' '.repeat(LONG)}`, true],
    ['a long run of parameters', `gzip${' ; q=1'.repeat(LONG / 6)}`, true],
    ['a long run of bad parameters, then q=0', `gzip${';  ;=;q'.repeat(LONG / 6)}=0`, false],
    ['a long weight', `gzip;q=0.${'0'.repeat(LONG)}1`, false],
  ])('reads %s in time linear in its length', (_shape, header, expected) => {
    expect(underWatchdog(() => acceptsGzipEncoding(header))).toBe(expected);
  });
});
