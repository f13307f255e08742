import NodeGeocoder from 'node-geocoder';
import { RunningApp, useE2e } from './support/app-harness';
import { FakeNominatim } from './support/fake-nominatim';

/**
 * A real, unmodified Nominatim client from the npm registry, node-geocoder 4.x (provider
 * 'openstreetmap'), pointed at places-cache instead of Nominatim by its `osmServer` option.
 *
 * What it sends (node_modules/node-geocoder/lib/geocoder/openstreetmapgeocoder.js and
 * lib/httpadapter/fetchadapter.js): GET `<osmServer>/search?osmServer=<osmServer>&q=…&addressdetails=1&format=json`
 * and `<osmServer>/reverse?osmServer=…&lat=…&lon=…&format=json&addressdetails=1`, plus `accept-language`
 * when `language` is set; node-fetch with a browser-like User-Agent, `Accept-Encoding: gzip,deflate`.
 * Its own options leak into the query (`osmServer=`): a junk parameter we must drop.
 *
 * Caveat of the library: the constructor writes the endpoint onto the shared prototype, so the last
 * geocoder built decides the server for all of them. Each call below builds its geocoder right
 * before it and awaits it before building the next.
 */
describe('node-geocoder through places-cache (e2e)', () => {
  let fake: FakeNominatim;
  let svc: RunningApp;

  useE2e({}, async (e2e) => {
    ({ fake } = e2e);
    svc = await e2e.startApp();
  });

  const geocoderAt = (osmServer: string, language?: string) => NodeGeocoder({ provider: 'openstreetmap', osmServer, language });
  const raw = (entries: NodeGeocoder.Entry[]): unknown => (entries as NodeGeocoder.Entry[] & { raw: unknown }).raw;

  /**
   * Runs `call` directly against the fake, then twice through us: the answers (formatted entries and
   * the raw upstream JSON) are equal, the first call through us goes upstream once, the second not at all.
   */
  async function sameThroughUs(
    call: (g: NodeGeocoder.Geocoder) => Promise<NodeGeocoder.Entry[]>,
    language?: string,
  ): Promise<NodeGeocoder.Entry[]> {
    const direct = await call(geocoderAt(fake.url, language));
    const before = fake.count();
    const first = await call(geocoderAt(svc.url, language));
    expect(fake.count()).toBe(before + 1);
    const forwarded = fake.requests[fake.requests.length - 1];
    expect(forwarded.query.has('osmServer')).toBe(false);
    expect(forwarded.query.get('format')).toBe('json');
    expect(forwarded.query.get('addressdetails')).toBe('1');
    const second = await call(geocoderAt(svc.url, language));
    expect(fake.count()).toBe(before + 1);

    expect(first).toEqual(direct);
    expect(second).toEqual(direct);
    expect(raw(first)).toEqual(raw(direct));
    expect(raw(second)).toEqual(raw(direct));
    return direct;
  }

  it('geocode: the same entries as from Nominatim directly, the second call from the cache', async () => {
    const entries = await sameThroughUs((g) => g.geocode('Berlin'));
    expect(entries.length).toBeGreaterThan(0);
    expect(entries[0].city).toBe('Berlin');
    expect(entries[0].countryCode).toBe('DE');
  });

  it.each(['Zürich', 'Москва', 'São Paulo', '東京都'])('geocode of a non-ASCII place: %s', async (place) => {
    const entries = await sameThroughUs((g) => g.geocode(place));
    expect(entries.length).toBeGreaterThan(0);
    expect(entries[0].formattedAddress).toContain(place);
  });

  it('geocode with a language: its own cache entry, with names in that language', async () => {
    const de = await sameThroughUs((g) => g.geocode('Moscow'), 'de');
    const en = await sameThroughUs((g) => g.geocode('Moscow'), 'en');
    expect(de[0].formattedAddress).toContain('Moskau');
    expect(en[0].formattedAddress).toContain('Moscow');
  });

  it('geocode of a structured query (object form)', async () => {
    const entries = await sameThroughUs((g) => g.geocode({ city: 'Berlin', street: 'Unter den Linden' } as NodeGeocoder.Query));
    expect(entries[0].streetName).toBe('Unter den Linden');
  });

  it('geocode without a result: [] both ways, and cached', async () => {
    const entries = await sameThroughUs((g) => g.geocode('Atlantis Nowhere'));
    expect(entries).toEqual([]);
  });

  it('reverse: the same entry as from Nominatim directly, the second call from the cache', async () => {
    const entries = await sameThroughUs((g) => g.reverse({ lat: 52.5163, lon: 13.3777 }));
    expect(entries).toHaveLength(1);
    expect(entries[0].countryCode).toBe('DE');
  });

  it('reverse onto a non-ASCII place', async () => {
    const entries = await sameThroughUs((g) => g.reverse({ lat: 55.7505412, lon: 37.6174782 }));
    expect(entries[0].formattedAddress).toContain('Москва');
  });

  it('reverse without a result: the same "Unable to geocode" error both ways, and cached', async () => {
    const call = (base: string) => geocoderAt(base).reverse({ lat: -70, lon: 0 });
    await expect(call(fake.url)).rejects.toThrow('Unable to geocode');
    const before = fake.count();
    await expect(call(svc.url)).rejects.toThrow('Unable to geocode');
    expect(fake.count()).toBe(before + 1);
    await expect(call(svc.url)).rejects.toThrow('Unable to geocode');
    expect(fake.count()).toBe(before + 1);
  });
});
