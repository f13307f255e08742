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

  it('takes Pragma: no-cache only when there is no Cache-Control', () => {
    expect(parseRequestDirectives(undefined, 'no-cache')).toEqual({ ...none, noCache: true });
    expect(parseRequestDirectives(undefined, 'x, No-Cache')).toEqual({ ...none, noCache: true });
    expect(parseRequestDirectives('max-stale', 'no-cache')).toEqual({ ...none, maxStale: Infinity });
    expect(parseRequestDirectives('public', 'no-cache')).toBeUndefined();
    expect(parseRequestDirectives(undefined, 'x')).toBeUndefined();
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
