/**
 * Example answers shown in the OpenAPI document: real Nominatim 5.1 answers, recorded for the test
 * fixtures (test/fixtures/nominatim/INDEX.md), so the documentation shows exactly what clients get.
 */
const LICENCE = 'Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright';

const BERLIN = {
  place_id: 100008,
  licence: LICENCE,
  osm_type: 'node',
  osm_id: 2,
  lat: '52.5170365',
  lon: '13.3888599',
  class: 'place',
  type: 'city',
  place_rank: 15,
  importance: 0.20000999999999997,
  addresstype: 'city',
  name: 'Berlin',
  display_name: 'Berlin, 10117, Deutschland',
  boundingbox: ['52.3570365', '52.6770365', '13.2288599', '13.5488599'],
};

/** A place as format=jsonv2 renders it: format=json's, with `class` called `category`, in the same place. */
const asJsonV2 = (place: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(place).map(([key, value]) => [key === 'class' ? 'category' : key, value]));

const UNTER_DEN_LINDEN_ADDRESS = {
  road: 'Unter den Linden',
  suburb: 'Mitte',
  city: 'Berlin',
  postcode: '10117',
  country: 'Deutschland',
  country_code: 'de',
};

/** Way 200 as /lookup answers it (format=json); /reverse, asked at lat=52.5163&lon=13.3777, answered that point as lat/lon. */
const UNTER_DEN_LINDEN = {
  place_id: 100006,
  licence: LICENCE,
  osm_type: 'way',
  osm_id: 200,
  lat: '52.51692844995686',
  lon: '13.386348724546961',
  class: 'highway',
  type: 'secondary',
  place_rank: 26,
  importance: 0.0533433333333333,
  addresstype: 'road',
  name: 'Unter den Linden',
  display_name: 'Unter den Linden, Mitte, Berlin, 10117, Deutschland',
  address: UNTER_DEN_LINDEN_ADDRESS,
  boundingbox: ['52.5163000', '52.5175000', '13.3777000', '13.3950000'],
};

export const EXAMPLES = {
  api: { cache: false, data: [BERLIN] },
  searchJson: [BERLIN],
  searchJsonV2: [asJsonV2(BERLIN)],
  searchGeoJson: {
    type: 'FeatureCollection',
    licence: LICENCE,
    features: [
      {
        type: 'Feature',
        properties: {
          place_id: 100008,
          osm_type: 'node',
          osm_id: 2,
          place_rank: 15,
          category: 'place',
          type: 'city',
          importance: 0.20000999999999997,
          addresstype: 'city',
          name: 'Berlin',
          display_name: 'Berlin, 10117, Deutschland',
        },
        bbox: [13.2288599, 52.3570365, 13.5488599, 52.6770365],
        geometry: { type: 'Point', coordinates: [13.3888599, 52.5170365] },
      },
    ],
  },
  searchGeocodeJson: {
    type: 'FeatureCollection',
    geocoding: { version: '0.1.0', attribution: LICENCE, licence: 'ODbL', query: 'Berlin' },
    features: [
      {
        type: 'Feature',
        properties: {
          geocoding: {
            place_id: 100008,
            osm_type: 'node',
            osm_id: 2,
            osm_key: 'place',
            osm_value: 'city',
            type: 'city',
            label: 'Berlin, 10117, Deutschland',
            name: 'Berlin',
            postcode: '10117',
            country: 'Deutschland',
            country_code: 'de',
            admin: {},
          },
        },
        geometry: { type: 'Point', coordinates: [13.3888599, 52.5170365] },
      },
    ],
  },
  searchXml:
    '<?xml version="1.0" encoding="UTF-8" ?>\n' +
    `<searchresults timestamp="Fri, 27 Nov 2026 23:02:49 +00:00" attribution="${LICENCE}" querystring="Berlin" ` +
    'more_url="http://127.0.0.1:18800/search?q=Berlin&amp;addressdetails=1&amp;limit=20&amp;exclude_place_ids=100008&amp;format=xml" ' +
    'exclude_place_ids="100008"><place place_id="100008" osm_type="node" osm_id="2" ref="Berlin" lat="52.5170365" ' +
    'lon="13.3888599" boundingbox="52.3570365,52.6770365,13.2288599,13.5488599" place_rank="15" address_rank="16" ' +
    'display_name="Berlin, 10117, Deutschland" class="place" type="city" importance="0.20000999999999997" /></searchresults>',
  searchJsonp: `handleResults(${JSON.stringify([BERLIN])})`,
  reverseJsonV2: { ...asJsonV2(UNTER_DEN_LINDEN), lat: '52.5163', lon: '13.3777' },
  reverseXml:
    '<?xml version="1.0" encoding="UTF-8" ?>\n' +
    `<reversegeocode timestamp="Fri, 27 Nov 2026 23:02:52 +00:00" attribution="${LICENCE}" ` +
    'querystring="lat=52.5163&amp;lon=13.3777&amp;format=xml"><result place_id="100006" osm_type="way" osm_id="200" ' +
    'ref="Unter den Linden" lat="52.5163000" lon="13.3777000" boundingbox="52.5163000,52.5175000,13.3777000,13.3950000" ' +
    'place_rank="26" address_rank="26">Unter den Linden, Mitte, Berlin, 10117, Deutschland</result><addressparts>' +
    '<road>Unter den Linden</road><suburb>Mitte</suburb><city>Berlin</city><postcode>10117</postcode>' +
    '<country>Deutschland</country><country_code>de</country_code></addressparts></reversegeocode>',
  unableToGeocode: { error: 'Unable to geocode' },
  lookupJson: [
    { ...BERLIN, address: { city: 'Berlin', postcode: '10117', country: 'Deutschland', country_code: 'de' } },
    UNTER_DEN_LINDEN,
  ],
  status: { status: 0, message: 'OK', data_updated: '2025-01-01T00:00:00+00:00', software_version: '5.1.0', database_version: '5.1.0-0' },
  details: {
    place_id: 100008,
    osm_type: 'N',
    osm_id: 2,
    category: 'place',
    type: 'city',
    admin_level: 4,
    localname: 'Berlin',
    names: { name: 'Berlin', 'name:de': 'Berlin', 'name:en': 'Berlin', 'name:ru': 'Берлин' },
    addresstags: {},
    calculated_postcode: '10117',
    country_code: 'de',
    indexed_date: '2025-01-01T00:00:00+00:00',
    calculated_importance: 0.20000999999999997,
    extratags: { capital: 'yes', population: '3677472' },
    rank_address: 16,
    rank_search: 15,
    isarea: false,
    centroid: { type: 'Point', coordinates: [13.3888599, 52.5170365] },
    geometry: { type: 'Point', coordinates: [13.3888599, 52.5170365] },
  },
  nominatimError: {
    error: {
      code: 400,
      message:
        'Structured query parameters(amenity, street, city, county, state, postalcode, country) cannot be used ' +
        "together with 'q' parameter.",
    },
  },
  nominatimErrorXml:
    '<?xml version="1.0" encoding="UTF-8" ?>\n' +
    '                   <error>\n' +
    '                     <code>400</code>\n' +
    '                     <message>Nothing to search for.</message>\n' +
    '                   </error>\n' +
    '                ',
  formatError: "ERROR 400: Parameter 'format' must be one of: xml, geojson, geocodejson, json, jsonv2",
  reverseMissingLat: { error: { code: 400, message: "Parameter 'lat' missing." } },
  detailsNotFound: { error: { code: 404, message: 'No place with that OSM ID found.' } },
  tooManyIds: { error: { code: 400, message: 'Too many object IDs.' } },
} as const;
