import { randomBytes } from 'node:crypto';
import { crc32, gunzipSync, gzipSync } from 'node:zlib';
import { crc32Combine, gunzipMember, gzipSize, looksSpliceable, spliceableGzip, spliceGzip, splicePiece } from './gzip-splice';

const latin1 = (s: string) => Buffer.from(s, 'latin1');

describe('gzip-splice', () => {
  const bodies = [
    Buffer.alloc(0),
    Buffer.from('[]'),
    Buffer.from('[{"place_id":1,"display_name":"Berlin, Deutschland","lat":"52.5","lon":"13.4"}]'),
    Buffer.from(JSON.stringify(Array.from({ length: 80 }, (_, i) => ({ place_id: i, name: `Straße ${i}`, lat: String(48 + i / 7) })))),
    randomBytes(70_000),
  ];

  it('combines CRC-32s as the CRC of the concatenation', () => {
    for (const a of bodies) {
      for (const b of bodies) {
        expect(crc32Combine(crc32(a), crc32(b), b.length)).toBe(crc32(Buffer.concat([a, b])));
      }
    }
  });

  it('makes a gzip member any gunzip reads back, that says its size and is recognised as spliceable', () => {
    for (const body of bodies) {
      const gz = spliceableGzip(body);
      expect(gunzipSync(latin1(gz)).equals(body)).toBe(true);
      expect(gunzipMember(gz).equals(body)).toBe(true);
      expect(gzipSize(gz)).toBe(body.length);
      expect(looksSpliceable(gz)).toBe(true);
    }
  });

  it('does not take an ordinary gzip member for a spliceable one', () => {
    for (const body of bodies) expect(looksSpliceable(gzipSync(body).toString('latin1'))).toBe(false);
    expect(looksSpliceable('')).toBe(false);
  });

  it('splices pieces around a member into one member of the whole, without compressing the body again', () => {
    const hit = splicePiece('{"cache":true,"data":', false);
    const end = splicePiece('}', true);
    for (const body of bodies) {
      const gz = spliceableGzip(body);
      const spliced = spliceGzip(hit, gz, end);
      // the body's deflate blocks are in it as they are
      expect(spliced.includes(gz.slice(10, gz.length - 10))).toBe(true);
      const whole = gunzipSync(latin1(spliced));
      expect(whole.equals(Buffer.concat([Buffer.from('{"cache":true,"data":'), body, Buffer.from('}')]))).toBe(true);
      expect(gzipSize(spliced)).toBe(whole.length);
    }
  });

  it('is cheaper on the hit path than compressing the wrapper (copy and CRC combination only)', () => {
    const hit = splicePiece('{"cache":true,"data":', false);
    const end = splicePiece('}', true);
    const body = bodies[3];
    const gz = spliceableGzip(body);
    const wrapper = Buffer.concat([Buffer.from('{"cache":true,"data":'), body, Buffer.from('}')]);
    const time = (fn: () => unknown) => {
      const t = performance.now();
      for (let i = 0; i < 500; i++) fn();
      return performance.now() - t;
    };
    // alternated, best of three each: a busy machine slows both alike
    const splice: number[] = [];
    const compress: number[] = [];
    for (let r = 0; r < 3; r++) {
      splice.push(time(() => spliceGzip(hit, gz, end)));
      compress.push(time(() => gzipSync(wrapper)));
    }
    expect(Math.min(...splice)).toBeLessThan(Math.min(...compress));
  });
});
