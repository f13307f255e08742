import { snapPoint } from '../src/places/nominatim/reverse-snap';
import { RunningApp, useE2e } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';
import { rawGet } from './support/raw-http';
import { RedisProcess } from './support/redis-server';

/** Issue 20: REVERSE_SNAP_METERS, on (100 m) and off (the default), against real Redis and the fake. */
describe('reverse snapping (e2e)', () => {
  let fake: FakeNominatim;
  let redis: RedisProcess;
  let snapping: RunningApp;
  let exact: RunningApp;

  useE2e({}, async (e2e) => {
    ({ fake, redis } = e2e);
    snapping = await e2e.startApp({ REVERSE_SNAP_METERS: '100' });
    // A second key space (another Redis database) so that the two apps cannot share entries.
    exact = await e2e.startApp({ REDIS_URL: `${redis.url}/1` });
  });

  // Two points about 3 m apart, in one 100 m cell.
  const A = 'lat=52.51631&lon=13.37771';
  const B = 'lat=52.51633&lon=13.37774';

  it('on: points a few metres apart share one answer, asked upstream for the cell centre', async () => {
    const before = fake.count('/reverse');
    const first = await rawGet(`${snapping.url}/reverse?${A}&format=json`);
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(fake.count('/reverse')).toBe(before + 1);
    const asked = fake.requests[fake.requests.length - 1].query;
    const centre = snapPoint({ lat: 52.51631, lon: 13.37771 }, 100);
    expect(Number(asked.get('lat'))).toBe(centre.lat);
    expect(Number(asked.get('lon'))).toBe(centre.lon);

    const second = await rawGet(`${snapping.url}/reverse?${B}&format=json`);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body.equals(first.body)).toBe(true);
    expect(fake.count('/reverse')).toBe(before + 1);
  });

  it('on: zoom and the other parameters stay in the key', async () => {
    const before = fake.count('/reverse');
    const zoomed = await rawGet(`${snapping.url}/reverse?${B}&format=json&zoom=10`);
    expect(zoomed.headers['x-cache']).toBe('MISS');
    const other = await rawGet(`${snapping.url}/reverse?${B}&format=jsonv2`);
    expect(other.headers['x-cache']).toBe('MISS');
    expect(fake.count('/reverse')).toBe(before + 2);
    expect(fake.requests[fake.requests.length - 2].query.get('zoom')).toBe('10');
  });

  it('on: a point outside the cell is another entry; invalid coordinates get Nominatim\'s 400 as before', async () => {
    const far = await rawGet(`${snapping.url}/reverse?lat=52.5180&lon=13.3777&format=json`);
    expect(far.headers['x-cache']).toBe('MISS');
    const bad = await rawGet(`${snapping.url}/reverse?lat=north&lon=13.4&format=json`);
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).toBe('{"error":{"code":400,"message":"Parameter \'lat\' must be a number."}}');
  });

  it('off (default): each point is its own question, asked as given', async () => {
    const before = fake.count('/reverse');
    expect((await rawGet(`${exact.url}/reverse?${A}&format=json`)).headers['x-cache']).toBe('MISS');
    expect(fake.requests[fake.requests.length - 1].query.get('lat')).toBe('52.51631');
    expect((await rawGet(`${exact.url}/reverse?${B}&format=json`)).headers['x-cache']).toBe('MISS');
    expect(fake.count('/reverse')).toBe(before + 2);
  });
});
