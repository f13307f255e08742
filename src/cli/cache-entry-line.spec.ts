import { CachedAnswer } from '../places/cache/cached-answer';
import { parseEntryLine, requestOfKey, toEntryLine } from './cache-entry-line';

describe('cache entry lines (export/import)', () => {
  const key = 'places:v1:search:format=json&q=berlin';
  const body = Buffer.from(`[{"name":"Berlin","pad":"${'x'.repeat(2000)}"}]`);
  const stored = (compressMinBytes: number) =>
    JSON.stringify(new CachedAnswer(200, 'application/json; charset=utf-8', body, 1_000_000, 4_600_000, 0, false).toStored(compressMinBytes));

  it('requestOfKey: the canonical request, or null for a hashed key', () => {
    expect(requestOfKey(key)).toBe('/search?format=json&q=berlin');
    expect(requestOfKey('places:v1:status:')).toBe('/status');
    expect(requestOfKey('places:v1:search:h:abc')).toBeNull();
  });

  it('an exported line imports back to the very value the service stored (gzip or not), with the TTL it had left', () => {
    for (const min of [0, 1024, 1_000_000]) {
      const line = toEntryLine(key, stored(min), 50_000, 2_000_000)!;
      expect(line).toMatchObject({ key, status: 200, body: body.toString(), storedAt: new Date(1_000_000).toISOString(), expiresAt: new Date(2_050_000).toISOString() });
      const parsed = parseEntryLine(JSON.stringify(line), 2_010_000, min);
      expect(parsed).toEqual({ kind: 'entry', key, value: stored(min), ttlMs: 40_000, storedAt: 1_000_000 });
    }
  });

  it('skips expired entries and explains bad lines', () => {
    const line = toEntryLine(key, stored(1024), 50_000, 2_000_000)!;
    expect(parseEntryLine(JSON.stringify(line), 2_050_000, 1024)).toEqual({ kind: 'expired', key });
    const bad = (text: string) => {
      const r = parseEntryLine(text, 0, 1024);
      return r.kind === 'bad' ? r.reason : r.kind;
    };
    expect(bad('{')).toMatch(/^not JSON/);
    expect(bad('[]')).toBe('not a JSON object');
    expect(bad(JSON.stringify({ ...line, key: 'places:v1:pacer:next' }))).toMatch(/^key is not/);
    expect(bad(JSON.stringify({ ...line, status: 'ok' }))).toMatch(/^status/);
    expect(bad(JSON.stringify({ ...line, headers: {} }))).toMatch(/content-type/);
    expect(bad(JSON.stringify({ ...line, body: undefined }))).toMatch(/body/);
    expect(bad(JSON.stringify({ ...line, storedAt: 'yesterday' }))).toMatch(/^storedAt is not a date-time/);
    expect(bad(JSON.stringify({ ...line, freshUntil: '1960-01-01T00:00:00Z' }))).toBe('freshUntil is before storedAt');
  });

  it('refuses a stored value this version cannot read', () => {
    expect(toEntryLine(key, 'not json', 1, 0)).toBeNull();
    expect(toEntryLine(key, '{"v":2}', 1, 0)).toBeNull();
  });
});
