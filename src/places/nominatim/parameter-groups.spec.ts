import { underWatchdog } from '../../../test/support/watchdog';
import { acceptLanguage } from './parameter-groups';

describe('acceptLanguage', () => {
  // Long enough that a parser quadratic in its input would need minutes (the header is cut off at 4 KB,
  // the parameter is checked for length before this).
  const LONG = 512 * 1024;

  it.each([
    ['a language, spaces, another', `de${' '.repeat(LONG)}x`, `de${' '.repeat(LONG)}x`],
    ['spaces, then no language', `${' '.repeat(LONG)}!`, `${' '.repeat(LONG)}!`],
    ['a long weight, then junk', `de;q=0.${'1'.repeat(LONG)}!`, `de;q=0.${'1'.repeat(LONG)}!`],
    ['spaces around the weight', `de;${' '.repeat(LONG)}q${' '.repeat(LONG)}=${' '.repeat(LONG)}1${' '.repeat(LONG)}, en;q=0.5`, 'de,en'],
  ])('reads %s in time linear in its length', (_shape, param, expected) => {
    expect(underWatchdog(() => acceptLanguage(param, undefined))).toBe(expected);
  });
});

describe('acceptLanguage: Python\'s \\s, not JavaScript\'s', () => {
  it('reads no language from a range with U+FEFF around it, as Nominatim\'s re.fullmatch does not', () => {
    expect(acceptLanguage('de\ufeff', undefined)).toBe('de\ufeff');
    expect(acceptLanguage('\u00a0de;q=0.5, en', undefined)).toBe('en,de');
  });
});
