import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES } from './openapi-examples';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures', 'nominatim');
const fixture = (file: string): string => readFileSync(join(FIXTURES, file), 'utf8');
const json = (file: string): unknown => JSON.parse(fixture(file));

/** The documentation's examples are the recorded Nominatim answers (test/fixtures/nominatim), not made up. */
describe('OpenAPI examples', () => {
  it('are the recorded Nominatim answers', () => {
    expect(EXAMPLES.searchJson).toEqual(json('search-q-json.json'));
    expect(EXAMPLES.searchJsonV2).toEqual(json('search-default-format.json'));
    expect(EXAMPLES.searchGeoJson).toEqual(json('search-q-geojson.json'));
    expect(EXAMPLES.searchGeocodeJson).toEqual(json('search-q-geocodejson.json'));
    expect(EXAMPLES.searchXml).toBe(fixture('search-q-xml.xml'));
    expect(EXAMPLES.reverseJsonV2).toEqual(json('reverse-jsonv2.json'));
    expect(EXAMPLES.reverseXml).toBe(fixture('reverse-xml.xml'));
    expect(EXAMPLES.unableToGeocode).toEqual(json('reverse-nomatch-json.json'));
    expect(EXAMPLES.lookupJson).toEqual(json('lookup-json.json'));
    expect(EXAMPLES.status).toEqual(json('status-json.json'));
    expect(EXAMPLES.nominatimError).toEqual(json('search-q-and-structured-json.json'));
    expect(EXAMPLES.nominatimErrorXml).toBe(fixture('search-missing-q-xml.xml'));
  });

  // Swagger UI shows an example's keys in the order given: that of the recorded answer, as clients get it.
  it('keep the recorded key order of the place answers derived from one another', () => {
    expect(JSON.stringify(EXAMPLES.searchJson)).toBe(fixture('search-q-json.json'));
    expect(JSON.stringify(EXAMPLES.searchJsonV2)).toBe(fixture('search-default-format.json'));
    expect(JSON.stringify(EXAMPLES.reverseJsonV2)).toBe(fixture('reverse-jsonv2.json'));
  });

  it('wrap the recorded search answer for /api', () => {
    expect(EXAMPLES.api).toEqual({ cache: false, data: json('search-q-json.json') });
    expect(EXAMPLES.searchJsonp).toBe(`handleResults(${fixture('search-q-json.json')})`);
  });
});
