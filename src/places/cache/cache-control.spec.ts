import { underWatchdog } from '../../../test/support/watchdog';
import { judge, parseRequestDirectives, RequestDirectives } from './cache-control';

const none: RequestDirectives = { noCache: false, noStore: false, onlyIfCached: false };

describe('parseRequestDirectives', () => {
  it('reads each RFC 9111 5.2.1 request directive, case-insensitively', () => {
    expect(parseRequestDirectives('no-cache', undefined)).toEqual({ ...none, noCache: true });
    expect(parseRequestDirectives('No-Store', undefined)).toEqual({ ...none, noStore: true });
    expect(parseRequestDirectives('only-if-cached', undefined)).toEqual({ ...none, onlyIfCached: true });
    expect(parseRequestDirectives('max-age=0', undefined)).toEqual({ ...none, maxAge: 0 });
    expect(parseRequestDirectives('max-age="60"', undefined)).toEqual({ ...none, maxAge: 60 });
    expect(parseRequestDirectives('max-stale', undefined)).toEqual({ ...none, maxStale: Infinity });
    expect(parseRequestDirectives('max-stale=30', undefined)).toEqual({ ...none, maxStale: 30 });
    expect(parseRequestDirectives('min-fresh=120', undefined)).toEqual({ ...none, minFresh: 120 });
    expect(parseRequestDirectives(' max-age=5 , only-if-cached,x-ext="a,b"', undefined)).toEqual({
      ...none,
      maxAge: 5,
      onlyIfCached: true,
    });
    expect(parseRequestDirectives(['max-age=5', 'no-store'], undefined)).toEqual({ ...none, maxAge: 5, noStore: true });
  });

  it('ignores unknown directives and malformed values; nothing that matters is undefined', () => {
    expect(parseRequestDirectives(undefined, undefined)).toBeUndefined();
    expect(parseRequestDirectives('public, x-foo=1', undefined)).toBeUndefined();
    expect(parseRequestDirectives('max-age=-1, max-age=abc, min-fresh=', undefined)).toBeUndefined();
    expect(parseRequestDirectives('max-age=99999999999', undefined)).toEqual({ ...none, maxAge: 2 ** 31 });
  });

  it('reads whitespace around =, quoted values with escapes and empty values; ignores malformed members', () => {
    expect(parseRequestDirectives('max-age = 5', undefined)).toEqual({ ...none, maxAge: 5 });
    expect(parseRequestDirectives('\tmax-age=\u00a0"5"\u00a0', undefined)).toEqual({ ...none, maxAge: 5 });
    expect(parseRequestDirectives('max-age="\\5"', undefined)).toEqual({ ...none, maxAge: 5 });
    expect(parseRequestDirectives('max-stale=', undefined)).toEqual({ ...none, maxStale: Infinity });
    expect(parseRequestDirectives('max-stale=""', undefined)).toEqual({ ...none, maxStale: Infinity });
    expect(parseRequestDirectives('x="a\\"b,c", no-store', undefined)).toEqual({ ...none, noStore: true });
    for (const bad of ['max-age=5 6', 'max-age="5"x', 'max-age="5', 'max-age="5\\"', 'max-age="\\\n5"', 'max-age 5', 'max-age=5;x', '=5']) {
      expect([bad, parseRequestDirectives(bad, undefined)]).toEqual([bad, undefined]);
    }
  });

  it('takes Pragma: no-cache only when there is no Cache-Control', () => {
    expect(parseRequestDirectives(undefined, 'no-cache')).toEqual({ ...none, noCache: true });
    expect(parseRequestDirectives(undefined, 'x, No-Cache')).toEqual({ ...none, noCache: true });
    expect(parseRequestDirectives('max-stale', 'no-cache')).toEqual({ ...none, maxStale: Infinity });
    expect(parseRequestDirectives('public', 'no-cache')).toBeUndefined();
    expect(parseRequestDirectives(undefined, 'x')).toBeUndefined();
  });
});

/** A parser quadratic in the header length needs minutes for this (about 85 ms at 16 KB, Node's header limit). */
const LONG = 512 * 1024;

describe('parseRequestDirectives on hostile headers', () => {
  it.each([
    ['a token, spaces, another token', `a${' '.repeat(LONG)}b`],
    ['a token, tabs, another token', `max-age${'\t'.repeat(LONG)}x`],
    ['a value after spaces, then a stray quote', `max-age=${' '.repeat(LONG)}"`],
    ['spaces on both sides of =', `max-age${' '.repeat(LONG / 2)}=${' '.repeat(LONG / 2)};`],
    ['an unterminated quoted string', `x="${'\\a'.repeat(LONG / 2)}`],
  ])('parses %s in time linear in its length, and ignores it', (_shape, header) => {
    expect(underWatchdog(() => parseRequestDirectives(header, undefined))).toBeUndefined();
  });

  it('still reads the directives around a long run of spaces', () => {
    const header = `no-store,${' '.repeat(LONG)}max-age${' '.repeat(LONG)}=${' '.repeat(LONG)}"5"${' '.repeat(LONG)}, min-fresh=1`;
    expect(underWatchdog(() => parseRequestDirectives(header, undefined))).toEqual({ ...none, noStore: true, maxAge: 5, minFresh: 1 });
  });

  it('reads a long Pragma in time linear in its length', () => {
    const pragma = `x${' '.repeat(LONG)}y, ${' '.repeat(LONG)}no-cache${' '.repeat(LONG)}`;
    expect(underWatchdog(() => parseRequestDirectives(undefined, pragma))).toEqual({ ...none, noCache: true });
  });
});

describe('judge', () => {
  const now = 1_000_000_000;
  const s = 1000;
  /** stored `age` seconds ago, fresh for `ttl` seconds from storing */
  const copy = (age: number, ttl: number) => ({ storedAt: now - age * s, freshUntil: now - age * s + ttl * s });

  it('no-cache never uses a copy', () => {
    expect(judge(copy(0, 60), now, { ...none, noCache: true })).toBe('unusable');
  });

  it('max-age: a copy no older than N seconds', () => {
    expect(judge(copy(10, 60), now, { ...none, maxAge: 10 })).toBe('fresh');
    expect(judge(copy(11, 60), now, { ...none, maxAge: 10 })).toBe('unusable');
    expect(judge(copy(0, 60), now, { ...none, maxAge: 0 })).toBe('fresh');
  });

  it('min-fresh: a copy fresh for at least N more seconds', () => {
    expect(judge(copy(10, 60), now, { ...none, minFresh: 50 })).toBe('fresh');
    expect(judge(copy(10, 60), now, { ...none, minFresh: 51 })).toBe('unusable');
  });

  it('max-stale: a stale copy within N seconds of staleness, any with no value', () => {
    expect(judge(copy(70, 60), now, none)).toBe('unusable');
    expect(judge(copy(70, 60), now, { ...none, maxStale: 10 })).toBe('stale');
    expect(judge(copy(71, 60), now, { ...none, maxStale: 10 })).toBe('unusable');
    expect(judge(copy(9999, 60), now, { ...none, maxStale: Infinity })).toBe('stale');
    expect(judge(copy(30, 60), now, { ...none, maxStale: 10 })).toBe('fresh');
  });

  it('only-if-cached and no-store leave the usual freshness rule', () => {
    expect(judge(copy(30, 60), now, { ...none, onlyIfCached: true })).toBe('fresh');
    expect(judge(copy(61, 60), now, { ...none, onlyIfCached: true })).toBe('unusable');
    expect(judge(copy(30, 60), now, { ...none, noStore: true })).toBe('fresh');
  });
});
