import { pyFloat } from './python-values';
import { snapPoint, snapReverseQuery } from './reverse-snap';

/** Great-circle distance in metres (haversine). */
function meters(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const r = (d: number) => (d * Math.PI) / 180;
  const h = Math.sin(r(b.lat - a.lat) / 2) ** 2 + Math.cos(r(a.lat)) * Math.cos(r(b.lat)) * Math.sin(r(b.lon - a.lon) / 2) ** 2;
  return 2 * 6_371_008.8 * Math.asin(Math.sqrt(h));
}

describe('snapPoint', () => {
  it('leaves the point alone at 0 m and outside the world', () => {
    expect(snapPoint({ lat: 52.5163, lon: 13.3777 }, 0)).toEqual({ lat: 52.5163, lon: 13.3777 });
    expect(snapPoint({ lat: 200, lon: 0 }, 50)).toEqual({ lat: 200, lon: 0 });
    expect(snapPoint({ lat: 0, lon: -181 }, 50)).toEqual({ lat: 0, lon: -181 });
  });

  it('gives points a few metres apart one centre, and that centre within the cell', () => {
    const a = { lat: 52.51631, lon: 13.37771 };
    const b = { lat: 52.51633, lon: 13.37774 }; // ~3 m away
    const sa = snapPoint(a, 100);
    expect(sa).toEqual(snapPoint(b, 100));
    expect(meters(a, sa)).toBeLessThanOrEqual(100 * Math.SQRT1_2 + 1);
    expect(sa).not.toEqual(a);
  });

  it.each([0, 45, 60, 80])('makes cells about the size asked at latitude %d', (lat) => {
    for (const size of [25, 100, 1000]) {
      const c = snapPoint({ lat, lon: 10 }, size);
      // The neighbouring cells east and north: their centres are about `size` away.
      const east = snapPoint({ lat: c.lat, lon: c.lon + size / (111_195 * Math.cos((lat * Math.PI) / 180)) }, size);
      const north = snapPoint({ lat: c.lat + size / 111_195, lon: c.lon }, size);
      expect(meters(c, east) / size).toBeGreaterThan(0.9);
      expect(meters(c, east) / size).toBeLessThan(1.1);
      expect(meters(c, north) / size).toBeGreaterThan(0.9);
      expect(meters(c, north) / size).toBeLessThan(1.1);
    }
  });

  it('keeps every point within its cell: never more than ~0.71 × size from the centre', () => {
    for (let i = 0; i < 2000; i++) {
      const p = { lat: -89 + ((i * 7919) % 17800) / 100, lon: -180 + ((i * 104729) % 36000) / 100 };
      expect(meters(p, snapPoint(p, 50))).toBeLessThanOrEqual(50 * Math.SQRT1_2 + 0.5);
    }
  });
});

describe('snapReverseQuery', () => {
  it('rewrites the last lat and lon, and nothing else', () => {
    const params = new URLSearchParams('lat=1&lat=52.51631&lon=13.37771&zoom=10&format=json');
    snapReverseQuery(params, 100, pyFloat);
    const s = snapPoint({ lat: 52.51631, lon: 13.37771 }, 100);
    expect(params.getAll('lat')).toEqual([String(s.lat)]);
    expect(params.get('lon')).toBe(String(s.lon));
    expect(params.get('zoom')).toBe('10');
    expect(params.get('format')).toBe('json');
  });

  it('leaves what Nominatim would refuse for validation to answer', () => {
    for (const q of ['lat=north&lon=13.4', 'lon=13.4', 'lat=52.5&lon=nan', 'lat=52.5&lon=']) {
      const params = new URLSearchParams(q);
      snapReverseQuery(params, 100, pyFloat);
      expect(params.toString()).toBe(new URLSearchParams(q).toString());
    }
  });

  it('does nothing at 0 m', () => {
    const params = new URLSearchParams('lat=52.51631&lon=13.37771');
    snapReverseQuery(params, 0, pyFloat);
    expect(params.toString()).toBe('lat=52.51631&lon=13.37771');
  });
});
