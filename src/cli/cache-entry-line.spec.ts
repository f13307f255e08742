import { CachedAnswer } from '../places/cache/cached-answer';
import { isEmptyAnswer } from '../places/nominatim/empty-answer';
import { canonicaliseNominatim, NominatimEndpoint } from '../places/nominatim/nominatim-request';
import { EntryLine, parseEntryLine, requestOfKey, toEntryLine } from './cache-entry-line';

/** The key the service makes for a request. */
const keyOf = (endpoint: NominatimEndpoint, query: string): string => {
  const r = canonicaliseNominatim(endpoint, new URLSearchParams(query));
  if (!r.ok) throw new Error(r.error.body);
  return r.request.key;
};

const MAX_BYTES = 2 * 1024 * 1024;
/** Kept a day past freshness (STALE_IF_ERROR_SECONDS' default). */
const LIMITS = { compressMinBytes: 1024, maxBytes: MAX_BYTES, keepMs: 86_400_000 };

describe('cache entry lines (export/import)', () => {
  const key = keyOf('search', 'q=berlin&format=json');
  const body = Buffer.from(`[{"name":"Berlin","pad":"${'x'.repeat(2000)}"}]`);
  const stored = (compressMinBytes: number) =>
    JSON.stringify(new CachedAnswer(200, 'application/json; charset=utf-8', body, 1_000_000, 4_600_000, 0, false).toStored(compressMinBytes));
  /** The line export writes for an answer the service stored. */
  const exported = (k: string, contentType: string, text: string | Buffer): EntryLine => {
    const value = JSON.stringify(new CachedAnswer(200, contentType, Buffer.from(text), 1_000_000, 4_600_000, 0, isEmptyAnswer(Buffer.from(text))).toStored(1024));
    return toEntryLine(k, value, 50_000, 2_000_000)!;
  };
  const bad = (line: unknown, maxBytes = MAX_BYTES) => {
    // Read back at the time export wrote the line (toEntryLine's `now` below).
    const r = parseEntryLine(typeof line === 'string' ? line : JSON.stringify(line), 2_000_000, { ...LIMITS, maxBytes });
    return r.kind === 'bad' ? r.reason : r.kind;
  };

  it('requestOfKey: the canonical request, or null for a hashed key', () => {
    expect(requestOfKey('places:v1:search:format=json&q=berlin')).toBe('/search?format=json&q=berlin');
    expect(requestOfKey('places:v1:status:')).toBe('/status');
    expect(requestOfKey('places:v1:search:h:abc')).toBeNull();
  });

  it('an exported line imports back to the very value the service stored (gzip or not), with the TTL it had left', () => {
    for (const min of [0, 1024, 1_000_000]) {
      const line = toEntryLine(key, stored(min), 50_000, 2_000_000)!;
      expect(line).toMatchObject({ key, status: 200, body: body.toString(), storedAt: new Date(1_000_000).toISOString(), expiresAt: new Date(2_050_000).toISOString() });
      const parsed = parseEntryLine(JSON.stringify(line), 2_010_000, { ...LIMITS, compressMinBytes: min });
      expect(parsed).toEqual({ kind: 'entry', key, value: stored(min), ttlMs: 40_000, storedAt: 1_000_000 });
    }
  });

  it('gives every entry the Redis expiry the service would: at most keepMs past its freshness, never none', () => {
    // stored(…) is fresh until 4,600,000; read back at 2,010,000 with a day kept past that.
    const line = toEntryLine(key, stored(1024), -1, 2_000_000)!; // a key export found without expiry
    expect(line.expiresAt).toBeNull();
    const until = (l: object, keepMs: number) => {
      const r = parseEntryLine(JSON.stringify(l), 2_010_000, { ...LIMITS, keepMs });
      return r.kind === 'entry' ? r.ttlMs : r.kind;
    };
    expect(until(line, 86_400_000)).toBe(4_600_000 + 86_400_000 - 2_010_000);
    expect(until({ ...line, expiresAt: new Date(9e12).toISOString() }, 60_000)).toBe(4_600_000 + 60_000 - 2_010_000);
    expect(until({ ...line, expiresAt: new Date(3_000_000).toISOString() }, 86_400_000)).toBe(990_000); // the sooner one
    // Past freshUntil + keepMs the service would not serve it: nothing to import.
    expect(parseEntryLine(JSON.stringify(line), 4_700_000, { ...LIMITS, keepMs: 60_000 })).toEqual({ kind: 'expired', key });
  });

  it('imports what the service stores in every format: XML, text status, JSONP, a hashed key, a body as base64', () => {
    const longQuery = `q=${'x'.repeat(300)}&format=geojson`;
    const hashed = keyOf('search', longQuery);
    expect(hashed).toMatch(/^places:v1:search:h:/);
    const hashedJsonp = keyOf('search', `${longQuery}&json_callback=cb`);
    const longCallback = `ns.${'cb'.repeat(200)}`;
    const hashedLongJsonp = keyOf('search', `${longQuery}&json_callback=${longCallback}`);
    const lines = [
      exported(keyOf('reverse', 'lat=52.5&lon=13.4'), 'text/xml; charset=utf-8', '<?xml version="1.0"?><reversegeocode><result>Berlin</result></reversegeocode>'),
      exported(keyOf('status', ''), 'text/plain; charset=utf-8', 'OK'),
      exported(keyOf('search', 'q=berlin&format=json&json_callback=cb'), 'application/javascript; charset=utf-8', 'cb([])'),
      exported(hashed, 'application/json; charset=utf-8', '{"type":"FeatureCollection","features":[]}'),
      exported(hashedJsonp, 'application/javascript; charset=utf-8', 'cb({"type":"FeatureCollection","features":[]})'),
      exported(hashedLongJsonp, 'application/javascript; charset=utf-8', `${longCallback}({"type":"FeatureCollection","features":[]})`),
      exported(key, 'application/json; charset=utf-8', Buffer.from(`[{"name":"Berlin \xff${'x'.repeat(2000)}"}]`, 'latin1')),
    ];
    expect(lines[6].bodyBase64).toBeDefined();
    for (const line of lines) expect(bad(line)).toBe('entry');
  });

  it('refuses what the service would never have stored', () => {
    const line = exported(key, 'application/json; charset=utf-8', '[]');
    expect(bad(line)).toBe('entry');
    for (const status of [500, 304, 101, 204]) expect(bad({ ...line, status })).toBe('status must be 200 (the service stores no other answer)');
    expect(bad({ ...line, headers: { 'content-type': 'text/html' }, body: '<script>alert(1)</script>' })).toBe(
      'not an answer the service stores under this key: Content-Type text/html where application/json was expected',
    );
    expect(bad({ ...line, body: '[{"truncated' })).toBe('not an answer the service stores under this key: invalid JSON (12 bytes)');
    expect(bad({ ...line, body: '{}' })).toBe('not an answer the service stores under this key: JSON that is not an array');
    const xml = exported(keyOf('reverse', 'lat=52.5&lon=13.4'), 'text/xml; charset=utf-8', '<reversegeocode></reversegeocode>');
    expect(bad(xml)).toBe('entry');
    expect(bad({ ...xml, body: '<reversegeocode><result></reversegeocode>' })).toMatch(/^not an answer the service stores under this key: malformed XML/);
    expect(bad({ ...line, headers: { 'content-type': 'application/json; charset=€' } })).toMatch(/^headers: content-type must be 1-200 visible ASCII/);
    expect(bad({ ...line, headers: { 'content-type': 'application/json\u0000' } })).toMatch(/^headers: content-type/);
    expect(bad({ ...line, key: 'places:v1:search:format=json&q=berlin' })).toBe('key is not canonical (not the key the service makes for its request)');
    expect(bad({ ...line, key: 'places:v1:search:h:short' })).toBe('key is not canonical (not the key the service makes for its request)');
    expect(bad({ ...line, key: 'places:v1:details:format=json&place_id=1' })).toBe('/details answers are never cached');
    // "No result" is the body's to say, as when the service stores it (EMPTY_TTL_SECONDS).
    expect(bad({ ...line, empty: false })).toBe('empty is false but the body is a "no result" answer');
    expect(bad({ ...exported(key, 'application/json; charset=utf-8', '[{"place_id":1}]'), empty: true })).toBe('empty is true but the body is not a "no result" answer');
    const { empty: _flag, ...unflagged } = line;
    const parsed = parseEntryLine(JSON.stringify(unflagged), 2_000_000, LIMITS);
    expect(parsed.kind === 'entry' && (JSON.parse(parsed.value) as { e: boolean }).e).toBe(true);
    expect(bad({ ...line, storedAt: '1' })).toMatch(/^storedAt is not a date-time as export writes it/);
    expect(bad({ ...line, expiresAt: '2026-02-30T00:00:00.000Z' })).toMatch(/^expiresAt is not a date-time/);
    const big = exported(key, 'application/json; charset=utf-8', `["${'x'.repeat(2000)}"]`);
    expect(bad(big, 2004)).toBe('entry');
    expect(bad(big, 2003)).toBe('body is larger than UPSTREAM_MAX_BYTES (2003 bytes)');
    // A hashed key's answer must still be one of its endpoint's formats.
    const hashed = exported(keyOf('search', `q=${'x'.repeat(300)}&format=json`), 'application/json; charset=utf-8', '[]');
    expect(bad(hashed)).toBe('entry');
    expect(bad({ ...hashed, body: 'nope' })).toBe('not an answer the service stores under this key: invalid JSON (4 bytes)');
    expect(bad({ ...hashed, headers: { 'content-type': 'application/javascript' }, body: 'alert(1)' })).toBe(
      'not an answer the service stores under this key: JSON that is not an object',
    );
  });

  it('skips expired entries and explains bad lines', () => {
    const line = toEntryLine(key, stored(1024), 50_000, 2_000_000)!;
    expect(parseEntryLine(JSON.stringify(line), 2_050_000, LIMITS)).toEqual({ kind: 'expired', key });
    expect(bad('{')).toMatch(/^not JSON/);
    // A gzip file imported without gunzip: the reason quotes the line, but never its control bytes raw
    // (ESC sequences would drive the operator's terminal; a CR would hide the line number).
    const binary = bad('\u001f\uFFFD\b\u0000\u001b[2J\u001b]0;pwned\u0007\r\u009b1m');
    expect(binary).toMatch(/^not JSON/);
    // eslint-disable-next-line no-control-regex -- finding control characters is the point
    expect(binary).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(binary).toContain('\\u001b[2J');
    expect(bad('[]')).toBe('not a JSON object');
    expect(bad({ ...line, key: 'places:v1:pacer:next' })).toMatch(/^key is not/);
    expect(bad({ ...line, status: 'ok' })).toMatch(/^status/);
    expect(bad({ ...line, headers: {} })).toMatch(/content-type/);
    expect(bad({ ...line, body: undefined })).toMatch(/body/);
    expect(bad({ ...line, storedAt: 'yesterday' })).toMatch(/^storedAt is not a date-time/);
    // The value is quoted: a C1 control in it (U+009B, a CSI) is escaped too, as JSON.stringify does not.
    expect(bad({ ...line, storedAt: '\u009b2J\u001b' })).toMatch(/^storedAt is not a date-time.*"\\u009b2J\\u001b"$/);
    expect(bad({ ...line, freshUntil: '1960-01-01T00:00:00.000Z' })).toBe('freshUntil is before storedAt');
    // Dates the service never writes: an entry stored ten years from now would be served fresh until
    // then, and no later import or fill could replace it (newer copies win).
    const later = (ms: number) => new Date(2_000_000 + ms).toISOString();
    expect(bad({ ...line, storedAt: later(3_600_000), freshUntil: later(7_200_000) })).toMatch(/^storedAt is in the future/);
    expect(bad({ ...line, storedAt: later(60_000), freshUntil: later(120_000) })).toBe('entry'); // clock skew between hosts
    expect(bad({ ...line, freshUntil: later(366 * 24 * 3_600_000) })).toMatch(/^freshUntil is more than 365 days after storedAt/);
  });

  it('refuses a stored value this version cannot read', () => {
    expect(toEntryLine(key, 'not json', 1, 0)).toBeNull();
    expect(toEntryLine(key, '{"v":2}', 1, 0)).toBeNull();
  });
});
