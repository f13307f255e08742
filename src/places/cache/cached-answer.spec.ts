import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { answerFieldsProblem, ASYNC_GZIP_MIN_BYTES, CachedAnswer, gzipOptionsFor, storableContentType } from './cached-answer';

const FIXTURES = join(__dirname, '../../../test/fixtures/nominatim');

/** A /search answer of about `bytes`: the recorded one repeated with different ids, names and coordinates. */
function answerOf(bytes: number): Buffer {
  const [place] = JSON.parse(readFileSync(join(FIXTURES, 'search-q-jsonv2-addressdetails.json'), 'utf8')) as Array<Record<string, unknown>>;
  const places: unknown[] = [];
  for (let i = 0; JSON.stringify(places).length < bytes; i++) {
    places.push({ ...place, place_id: 1000 + i, display_name: `${String(place.display_name)} ${i}`, lat: String(48 + i / 997) });
  }
  return Buffer.from(JSON.stringify(places));
}

describe('gzipOptionsFor', () => {
  it('gives a window that covers the whole input, up to zlib\'s largest, and a hash table in zlib\'s proportion', () => {
    for (const length of [0, 1, 250, 251, 1000, 5085, 16_384, 32_506, 32_507, 100_000, 10_000_000]) {
      const { windowBits, memLevel } = gzipOptionsFor(length);
      expect({ length, windowBits: Math.max(9, Math.min(15, windowBits!)) }).toEqual({ length, windowBits });
      // deflate reaches back at most window - 262 bytes
      if (windowBits! < 15) expect(2 ** windowBits! - 262).toBeGreaterThanOrEqual(length);
      if (windowBits! > 9) expect(2 ** (windowBits! - 1) - 262).toBeLessThan(length);
      expect(memLevel).toBe(windowBits! - 7);
    }
  });

  it('compresses recorded and synthetic answers to the size the default options give, and back', () => {
    const recorded = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readFileSync(join(FIXTURES, f)));
    for (const body of [...recorded, answerOf(5_000), answerOf(20_000), answerOf(100_000)]) {
      const fitted = gzipSync(body, gzipOptionsFor(body.length));
      expect(gunzipSync(fitted).equals(body)).toBe(true);
      expect({ bytes: body.length, gz: fitted.length }).toEqual({ bytes: body.length, gz: gzipSync(body).length });
    }
  });
});

const latin1 = (s: string) => Buffer.from(s, 'latin1');

describe(CachedAnswer.name, () => {
  const T0 = 1_000_000;

  it('stores a body worth compressing as gzip and reads back the same bytes, which it serves as gzip as stored', () => {
    const body = answerOf(5_000);
    const a = new CachedAnswer(200, 'application/json; charset=utf-8', body, T0, T0 + 60_000, T0 + 120_000, false);
    const stored = a.toStored(1024);
    expect(stored.z).toBe(true);
    expect(stored.b.length).toBeLessThan(body.length / 3);
    const back = CachedAnswer.fromStored(JSON.parse(JSON.stringify(stored)) as typeof stored, T0 + 120_000)!;
    expect(back.body.equals(body)).toBe(true);
    expect(back.gzip(1024)).toBe(a.gzip(1024));
    expect(gunzipSync(latin1(back.gzip(1024)!)).equals(body)).toBe(true);
    expect(gunzipSync(latin1(back.apiHitGzip(1024)!)).toString()).toBe(`{"cache":true,"data":${body.toString()}}`);
    expect(gunzipSync(latin1(back.apiMissGzip(1024)!)).toString()).toBe(`{"cache":false,"data":${body.toString()}}`);
  });

  it('compresses a large body off the event loop: served plain until its gzip is ready, stored as gzip after the wait', async () => {
    const body = Buffer.concat(Array.from({ length: Math.ceil((ASYNC_GZIP_MIN_BYTES * 4) / 5_000) }, () => answerOf(5_000)));
    const a = new CachedAnswer(200, 'application/json; charset=utf-8', body, T0, T0 + 60_000, T0 + 120_000, false);
    expect(a.gzip(1024)).toBeNull();
    expect(a.apiHitGzip(1024)).toBeNull();
    expect(a.apiMissGzip(1024)).toBeNull();
    const compressing = a.compressing(1024);
    expect(compressing).toBeInstanceOf(Promise);
    await compressing;
    expect(gunzipSync(Buffer.from(a.gzip(1024)!, 'latin1')).equals(body)).toBe(true);
    expect(a.compressing(1024)).toBeUndefined();
    const stored = a.toStored(1024);
    expect(stored.z).toBe(true);
    expect(gunzipSync(Buffer.from(stored.b, 'base64')).equals(body)).toBe(true);
    // The /api wrappers are spliced around the stored gzip member: no compression of their own.
    expect(gunzipSync(Buffer.from(a.apiHitGzip(1024)!, 'latin1')).toString()).toBe(`{"cache":true,"data":${body.toString()}}`);
    expect(gunzipSync(Buffer.from(a.apiMissGzip(1024)!, 'latin1')).toString()).toBe(`{"cache":false,"data":${body.toString()}}`);
  });

  it('compresses a small body at once, with nothing to wait for', () => {
    const a = new CachedAnswer(200, 'application/json', answerOf(5_000), T0, T0 + 1, T0 + 2, false);
    expect(a.compressing(1024)).toBeUndefined();
    expect(a.gzip(1024)).not.toBeNull();
    expect(a.apiHitGzip(1024)).not.toBeNull();
  });

  it('keeps a body below the threshold as text', () => {
    const body = Buffer.from('[]');
    const stored = new CachedAnswer(200, 'application/json', body, T0, T0 + 1, T0 + 2, true).toStored(1024);
    expect([stored.z, stored.b]).toEqual([false, '[]']);
  });

  it('reads an entry stored before the spliceable form, and stores it again in that form', () => {
    const body = answerOf(3_000);
    const old = { v: 1 as const, s: 200, t: 'application/json', b: gzipSync(body).toString('base64'), z: true, at: T0, fu: T0 + 1, e: false };
    const back = CachedAnswer.fromStored(old, T0 + 2)!;
    expect(back.body.equals(body)).toBe(true);
    const again = back.toStored(1024);
    expect([again.z, again.f]).toEqual([true, 1]);
    expect(gunzipSync(Buffer.from(again.b, 'base64')).equals(body)).toBe(true);
  });

  it('reads back nothing it could not write: a Content-Type Node refuses, a status without a body, a broken gzip', () => {
    const good = { v: 1 as const, s: 200, t: 'application/json; charset=utf-8', b: '[]', z: false, at: T0, fu: T0 + 1, e: false };
    expect(CachedAnswer.fromStored(good, T0 + 2)).not.toBeNull();
    // Each of these reached writeHead (which throws, outside any promise) when an imported or foreign entry held it.
    for (const t of ['application/json; charset=€', 'a\u0000b', 'text/plain\r\nX-Injected: 1', '', ' application/json', 'x'.repeat(201)]) {
      expect([t, CachedAnswer.fromStored({ ...good, t }, T0 + 2)]).toEqual([t, null]);
    }
    for (const s of [101, 204, 205, 304, 199, 600, 200.5, NaN]) expect([s, CachedAnswer.fromStored({ ...good, s }, T0 + 2)]).toEqual([s, null]);
    expect(CachedAnswer.fromStored({ ...good, b: 42 } as never, T0 + 2)).toBeNull();
    expect(CachedAnswer.fromStored({ ...good, at: 'then' } as never, T0 + 2)).toBeNull();
    expect(CachedAnswer.fromStored({ ...good, z: true, b: Buffer.from('not gzip').toString('base64') }, T0 + 2)).toBeNull();
    expect(answerFieldsProblem(200, 'text/xml; charset=utf-8')).toBeNull();
    expect(answerFieldsProblem(200, 'application/json; charset=€')).toMatch(/content-type/);
  });

  it('keeps a fresh answer with a Content-Type that reads back: the upstream\'s when it does, else Nominatim\'s', () => {
    const nominatims = 'application/json; charset=utf-8';
    expect(storableContentType('application/json;charset=UTF-8', nominatims)).toBe('application/json;charset=UTF-8');
    for (const received of [`application/json; profile="${'p'.repeat(200)}"`, 'application/json; charset=utf-8; x=\u00e9']) {
      expect(storableContentType(received, nominatims)).toBe(nominatims);
      expect(storableContentType(received, undefined)).toBe('application/json');
      const stored = new CachedAnswer(200, storableContentType(received, nominatims), Buffer.from('[]'), T0, T0 + 1, T0 + 2, true).toStored(1024);
      expect(CachedAnswer.fromStored(stored, T0 + 2)?.contentType).toBe(nominatims);
    }
  });

  it('does not splice a value marked spliceable that is not', () => {
    const body = answerOf(3_000);
    const marked = { v: 1 as const, s: 200, t: 'application/json', b: gzipSync(body).toString('base64'), z: true, f: 1 as const, at: T0, fu: T0 + 1, e: false };
    const back = CachedAnswer.fromStored(marked, T0 + 2)!;
    expect(gunzipSync(Buffer.from(back.apiHitGzip(1024)!, 'latin1')).toString()).toBe(`{"cache":true,"data":${body.toString()}}`);
  });
});
