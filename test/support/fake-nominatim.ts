/**
 * A fake Nominatim 5.1 HTTP server for e2e tests and the benchmark.
 *
 * It answers the requests recorded in test/fixtures/nominatim/INDEX.md byte for byte with the recorded
 * body, status and Content-Type, and every other request from a small built-in gazetteer, rendered
 * the way Nominatim 5.1 renders it (field order, lat/lon as Python float strings, bounding boxes with
 * 7 decimals, extratags/namedetails as Postgres jsonb text, XML through ElementTree conventions).
 *
 * Standalone: `node -r @swc-node/register test/support/fake-nominatim.ts --port 7070 --latency 300`
 */
import { readFileSync } from 'node:fs';
import http, { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { track } from './leftovers';

const HOST = '127.0.0.1';
const FIXTURE_DIR = join(__dirname, '..', 'fixtures', 'nominatim');

const CT_TEXT = 'text/plain; charset=utf-8';
const CT_XML = 'text/xml; charset=utf-8';
const CT_JSON = 'application/json; charset=utf-8';
const CT_JSONP = 'application/javascript; charset=utf-8';

const LICENCE = 'Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright';
const OSM_TYPE_NAME = { N: 'node', W: 'way', R: 'relation' } as const;

/** Nominatim 5.x server_glue: `max(1, min(50, limit))`. */
const MAX_LIMIT = 50;
const LOOKUP_MAX_COUNT = 50;
/** Reverse geocoding gives up when the nearest place is further away than this (degrees). */
const REVERSE_MAX_DISTANCE = 2;

/* ------------------------------------------------------------------------------------------------
 * Public types
 * ---------------------------------------------------------------------------------------------- */

/** One request as the fake saw it arrive. */
export interface FakeRequest {
  method: string;
  /** Path without the query string, e.g. `/search`. */
  path: string;
  query: URLSearchParams;
  /** `req.url` as received (path and query string). */
  rawUrl: string;
  headers: IncomingHttpHeaders;
  userAgent: string | undefined;
  /** Date.now() at arrival. */
  arrivedAt: number;
  /** performance.now() at arrival, for sub-millisecond spacing checks. */
  startedAtHr: number;
  /** performance.now() when the answer began to go out (after the delay); unset until then. */
  answeredAtHr?: number;
  /**
   * For the 'huge' and 'drip' modes: bytes of the answer (headers included) the socket took so far, and
   * whether the whole answer went out. A client that cuts the answer off leaves `completed` false.
   */
  bytesSent?: number;
  completed?: boolean;
}

/**
 * The most of `requests` the fake held at once, from arrival to the answer going out. A request not
 * answered yet is not counted, so this never overstates how many overlapped.
 */
export function mostInFlight(requests: readonly FakeRequest[]): number {
  const events = requests.flatMap((r) => [
    { at: r.startedAtHr, delta: 1 },
    { at: r.answeredAtHr ?? r.startedAtHr, delta: -1 },
  ]);
  // At equal times an answer goes before an arrival: back-to-back requests did not overlap.
  events.sort((x, y) => x.at - y.at || x.delta - y.delta);
  let now = 0;
  let most = 0;
  for (const e of events) most = Math.max(most, (now += e.delta));
  return most;
}

/** A canned HTTP answer, a request that never answers, a connection reset, or a hostile upstream. */
export type FakeFailure =
  | { status: number; body?: string | Buffer | object; headers?: Record<string, string> }
  | 'timeout'
  | 'reset'
  | HostileMode;

/**
 * Answers a misbehaving server (or something in front of it) gives with a 200:
 * - html: a proxy's HTML error page;
 * - truncated: the normal answer (its Content-Type too), cut to half its bytes, as a complete HTTP message;
 * - malformed-xml: an XML answer whose tags do not nest;
 * - huge: a valid JSON array of `bytes` bytes, streamed chunked as fast as the client reads it;
 * - drip: the normal answer, `chunkBytes` at a time every `intervalMs`;
 * - switching-protocols: a final 101 (something in front of the server upgrading the connection), left open.
 */
export type HostileMode =
  | { mode: 'html' }
  | { mode: 'truncated' }
  | { mode: 'malformed-xml' }
  | { mode: 'huge'; bytes: number }
  | { mode: 'drip'; intervalMs: number; chunkBytes?: number }
  | { mode: 'switching-protocols' };

const HTML_ERROR_PAGE =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n' +
  '<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

/** A complete answer as the fake would send it. */
export interface FakeResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** Replaces all routing and failure logic; it must answer `res` itself. */
export type FakeHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  entry: FakeRequest,
) => void | Promise<void>;

export interface FakeNominatimOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  latencyMs?: number;
  latencyFn?: ((req: FakeRequest) => number) | null;
  padTo?: number | null;
  resultCount?: number | null;
  fixtures?: boolean;
  /** Called as each request arrives, before it is answered (the Docker checks' bridge counts with it). */
  onArrival?: (request: FakeRequest) => void;
}

/* ------------------------------------------------------------------------------------------------
 * Gazetteer
 * ---------------------------------------------------------------------------------------------- */

type Names = Record<string, string>;
type OsmType = 'N' | 'W' | 'R';
/** [lon, lat] */
type Coord = [number, number];

interface AddressRow {
  /** Key in the typed address (`city`, `road`, `postcode`, …). */
  label: string;
  names: Names;
  rankAddress: number;
  cls: string;
  type: string;
  adminLevel?: number;
  placeId?: number;
}

interface Place {
  placeId: number;
  osmType: OsmType;
  osmId: number;
  cls: string;
  type: string;
  rankSearch: number;
  rankAddress: number;
  addresstype: string;
  adminLevel: number;
  names: Names;
  centroid: Coord;
  line?: Coord[];
  /** [minlat, maxlat, minlon, maxlon] */
  bbox: [number, number, number, number];
  countryCode: string;
  extratags: Names | null;
  /** The place itself first, then its parents from the most specific to the country. */
  address: AddressRow[];
}

const COUNTRY_NAMES: Record<string, Names> = {
  de: { name: 'Deutschland', 'name:de': 'Deutschland', 'name:en': 'Germany', 'name:fr': 'Allemagne', 'name:ru': 'Германия' },
  ch: { name: 'Schweiz/Suisse/Svizzera/Svizra', 'name:de': 'Schweiz', 'name:en': 'Switzerland', 'name:fr': 'Suisse', 'name:it': 'Svizzera' },
  us: { name: 'United States', 'name:de': 'Vereinigte Staaten', 'name:en': 'United States', 'name:fr': 'États-Unis' },
  br: { name: 'Brasil', 'name:de': 'Brasilien', 'name:en': 'Brazil', 'name:pt': 'Brasil' },
  jp: { name: '日本', 'name:de': 'Japan', 'name:en': 'Japan', 'name:ja': '日本' },
  ru: { name: 'Россия', 'name:de': 'Russland', 'name:en': 'Russia', 'name:ru': 'Россия' },
  pl: { name: 'Polska', 'name:de': 'Polen', 'name:en': 'Poland', 'name:pl': 'Polska' },
  is: { name: 'Ísland', 'name:de': 'Island', 'name:en': 'Iceland', 'name:is': 'Ísland' },
  fr: { name: 'France', 'name:de': 'Frankreich', 'name:en': 'France', 'name:fr': 'France' },
};

const n = (names: Names | string): Names => (typeof names === 'string' ? { name: names } : names);
const row = (label: string, rankAddress: number, names: Names | string, cls = 'place', type = label): AddressRow => ({
  label,
  rankAddress,
  names: n(names),
  cls,
  type,
});
const adminRow = (label: string, rankAddress: number, adminLevel: number, names: Names | string): AddressRow => ({
  ...row(label, rankAddress, names, 'boundary', 'administrative'),
  adminLevel,
});
const postcodeRow = (code: string): AddressRow => row('postcode', 5, { ref: code }, 'place', 'postcode');
const countryRow = (cc: string): AddressRow => row('country', 4, COUNTRY_NAMES[cc], 'place', 'country');

interface PlaceSpec {
  placeId: number;
  osm: `${OsmType}${number}`;
  cls: string;
  type: string;
  rank: [number, number];
  addresstype: string;
  names: Names;
  /** [lon, lat] */
  at?: Coord;
  line?: Coord[];
  bbox?: [number, number, number, number];
  cc: string;
  adminLevel?: number;
  extratags?: Names | null;
  parents: AddressRow[];
}

/** Nominatim's place_node_fuzzy_area(): the box a place node gets, by search rank. */
function nodeRadius(rankSearch: number, cls: string): number {
  if (cls !== 'place') return 0.0001;
  if (rankSearch <= 4) return 5;
  if (rankSearch <= 8) return 1.8;
  if (rankSearch <= 12) return 0.6;
  if (rankSearch <= 17) return 0.16;
  if (rankSearch <= 18) return 0.08;
  if (rankSearch <= 19) return 0.04;
  if (rankSearch <= 20) return 0.02;
  if (rankSearch <= 21) return 0.01;
  return 0.0001;
}

function lineCentroid(line: Coord[]): Coord {
  let total = 0;
  let x = 0;
  let y = 0;
  for (let i = 1; i < line.length; i++) {
    const [ax, ay] = line[i - 1];
    const [bx, by] = line[i];
    const len = Math.hypot(bx - ax, by - ay);
    total += len;
    x += ((ax + bx) / 2) * len;
    y += ((ay + by) / 2) * len;
  }
  return total > 0 ? [x / total, y / total] : line[0];
}

function buildPlace(spec: PlaceSpec): Place {
  const osmType = spec.osm[0] as OsmType;
  const centroid = spec.at ?? lineCentroid(spec.line ?? []);
  let bbox = spec.bbox;
  if (!bbox && spec.line) {
    const lats = spec.line.map((c) => c[1]);
    const lons = spec.line.map((c) => c[0]);
    bbox = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  }
  if (!bbox) {
    const r = nodeRadius(spec.rank[0], spec.cls);
    bbox = [centroid[1] - r, centroid[1] + r, centroid[0] - r, centroid[0] + r];
  }
  const adminLevel = spec.adminLevel ?? 15;
  const self: AddressRow = {
    label: spec.addresstype,
    rankAddress: spec.rank[1],
    names: spec.names,
    cls: spec.cls,
    type: spec.type,
    placeId: spec.placeId,
    ...(spec.cls === 'boundary' && adminLevel < 15 ? { adminLevel } : {}),
  };
  return {
    placeId: spec.placeId,
    osmType,
    osmId: Number(spec.osm.slice(1)),
    cls: spec.cls,
    type: spec.type,
    rankSearch: spec.rank[0],
    rankAddress: spec.rank[1],
    addresstype: spec.addresstype,
    adminLevel,
    names: spec.names,
    centroid,
    line: spec.line,
    bbox,
    countryCode: spec.cc,
    extratags: spec.extratags === undefined ? null : spec.extratags,
    address: [self, ...spec.parents],
  };
}

const BERLIN: Names = { name: 'Berlin', 'name:de': 'Berlin', 'name:en': 'Berlin', 'name:ru': 'Берлин' };
const ZURICH: Names = { name: 'Zürich', 'name:de': 'Zürich', 'name:en': 'Zurich', 'name:fr': 'Zurich', 'name:it': 'Zurigo' };
const SAN_FRANCISCO: Names = { name: 'San Francisco', 'name:de': 'San Francisco', 'name:ru': 'Сан-Франциско', 'name:zh': '旧金山' };
const CALIFORNIA: Names = { name: 'California', 'name:de': 'Kalifornien', 'name:en': 'California', 'name:es': 'California' };
const ZURICH_PARENTS = [
  adminRow('county', 12, 6, 'Bezirk Zürich'),
  adminRow('state', 8, 4, { name: 'Zürich', 'name:en': 'Zurich', 'name:fr': 'Zurich', 'name:it': 'Zurigo' }),
];
const SF_PARENTS = [adminRow('state', 8, 4, CALIFORNIA)];

/** The extract: the places the fixtures were recorded from (Berlin, Zürich, San Francisco) and more. */
const PLACE_SPECS: PlaceSpec[] = [
  {
    placeId: 100002, osm: 'N1', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: SAN_FRANCISCO, at: [-122.4193286, 37.7792588], cc: 'us',
    extratags: { population: '808437', wikidata: 'Q62' },
    parents: [...SF_PARENTS, countryRow('us')],
  },
  {
    placeId: 100003, osm: 'W100', cls: 'highway', type: 'primary', rank: [26, 26], addresstype: 'road',
    names: { name: 'Market Street' }, line: [[-122.3948, 37.7946], [-122.4078, 37.7845], [-122.433, 37.767]], cc: 'us',
    extratags: { lanes: '4', oneway: 'no' },
    parents: [row('city', 16, SAN_FRANCISCO), ...SF_PARENTS, postcodeRow('94103'), countryRow('us')],
  },
  {
    placeId: 100004, osm: 'W101', cls: 'man_made', type: 'bridge', rank: [30, 30], addresstype: 'man_made',
    names: { name: 'Golden Gate Bridge', 'name:de': 'Golden Gate Bridge', 'name:es': 'Puente Golden Gate' },
    line: [[-122.4783, 37.808], [-122.4787, 37.8324]], cc: 'us',
    extratags: { wikidata: 'Q44440', wikipedia: 'en:Golden Gate Bridge' },
    parents: [row('city', 16, SAN_FRANCISCO), ...SF_PARENTS, postcodeRow('94129'), countryRow('us')],
  },
  {
    placeId: 100005, osm: 'N3', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: ZURICH, at: [8.5410422, 47.3744489], cc: 'ch',
    extratags: { population: '421878', wikidata: 'Q72' },
    parents: [...ZURICH_PARENTS, postcodeRow('8001'), countryRow('ch')],
  },
  {
    placeId: 100006, osm: 'W200', cls: 'highway', type: 'secondary', rank: [26, 26], addresstype: 'road',
    names: { name: 'Unter den Linden' }, at: [13.386348724546961, 52.51692844995686],
    line: [[13.3777, 52.5163], [13.395, 52.5175]], cc: 'de',
    extratags: { lanes: '4', maxspeed: '50' },
    parents: [row('suburb', 20, 'Mitte'), row('city', 16, BERLIN), postcodeRow('10117'), countryRow('de')],
  },
  {
    placeId: 100007, osm: 'W300', cls: 'highway', type: 'pedestrian', rank: [26, 26], addresstype: 'road',
    names: { name: 'Bahnhofstrasse' }, line: [[8.5389, 47.3667], [8.5393, 47.3725], [8.5399, 47.3779]], cc: 'ch',
    extratags: { surface: 'paved' },
    parents: [row('suburb', 20, 'Lindenhof'), row('city', 16, ZURICH), ...ZURICH_PARENTS, postcodeRow('8001'), countryRow('ch')],
  },
  {
    placeId: 100008, osm: 'N2', cls: 'place', type: 'city', rank: [15, 16], addresstype: 'city',
    names: BERLIN, at: [13.3888599, 52.5170365], cc: 'de',
    extratags: { capital: 'yes', population: '3677472' },
    parents: [postcodeRow('10117'), countryRow('de')],
  },
  {
    placeId: 100009, osm: 'N4', cls: 'railway', type: 'station', rank: [30, 30], addresstype: 'railway',
    names: { name: 'Zürich HB', 'name:en': 'Zurich Main Station', official_name: 'Zürich Hauptbahnhof' },
    at: [8.5401012, 47.3781763], cc: 'ch',
    extratags: { operator: 'SBB', wheelchair: 'yes' },
    parents: [row('road', 26, 'Bahnhofplatz', 'highway', 'pedestrian'), row('suburb', 20, 'City'), row('city', 16, ZURICH),
      ...ZURICH_PARENTS, postcodeRow('8001'), countryRow('ch')],
  },
  {
    placeId: 100010, osm: 'R3', cls: 'boundary', type: 'administrative', rank: [4, 4], addresstype: 'country',
    names: COUNTRY_NAMES.de, at: [10.4478313, 51.1638175], bbox: [47.2701114, 55.099161, 5.8663153, 15.0419319],
    cc: 'de', adminLevel: 2, extratags: { 'ISO3166-1': 'DE', wikidata: 'Q183' },
    parents: [],
  },
  {
    placeId: 100011, osm: 'N5', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: { name: 'São Paulo', 'name:en': 'São Paulo', 'name:ja': 'サンパウロ', 'name:ru': 'Сан-Паулу' },
    at: [-46.6333824, -23.5506507], cc: 'br', extratags: { population: '11451245' },
    parents: [adminRow('state', 8, 4, 'São Paulo'), adminRow('region', 6, 3, 'Região Sudeste'), countryRow('br')],
  },
  {
    placeId: 100012, osm: 'R4', cls: 'boundary', type: 'administrative', rank: [8, 8], addresstype: 'province',
    names: { name: '東京都', 'name:de': 'Tokio', 'name:en': 'Tokyo', 'name:ja': '東京都', 'name:ru': 'Токио', 'name:ja-Latn': 'Tōkyō-to' },
    at: [139.7638947, 35.6768601], bbox: [20.2145811, 35.8984245, 135.8536855, 154.205541], cc: 'jp', adminLevel: 4,
    extratags: { wikidata: 'Q1490' },
    parents: [countryRow('jp')],
  },
  {
    placeId: 100013, osm: 'N6', cls: 'place', type: 'city', rank: [15, 16], addresstype: 'city',
    names: { name: 'Москва', 'name:de': 'Moskau', 'name:en': 'Moscow', 'name:fr': 'Moscou', 'name:ru': 'Москва' },
    at: [37.6174782, 55.7505412], cc: 'ru', extratags: { capital: 'yes', population: '13010112' },
    parents: [
      adminRow('state', 8, 4, { name: 'Москва', 'name:de': 'Moskau', 'name:en': 'Moscow', 'name:ru': 'Москва' }),
      adminRow('region', 6, 3, { name: 'Центральный федеральный округ', 'name:de': 'Föderationskreis Zentralrussland', 'name:en': 'Central Federal District' }),
      countryRow('ru'),
    ],
  },
  {
    placeId: 100014, osm: 'N7', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: { name: 'Kraków', 'name:de': 'Krakau', 'name:en': 'Kraków', 'name:la': 'Cracovia', 'name:ru': 'Краков' },
    at: [19.9368564, 50.0619474], cc: 'pl', extratags: { population: '804237' },
    parents: [
      adminRow('state', 8, 4, { name: 'województwo małopolskie', 'name:de': 'Woiwodschaft Kleinpolen', 'name:en': 'Lesser Poland Voivodeship' }),
      postcodeRow('31-005'),
      countryRow('pl'),
    ],
  },
  {
    placeId: 100015, osm: 'N8', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: { name: 'Reykjavík', 'name:de': 'Reykjavík', 'name:en': 'Reykjavik', 'name:ru': 'Рейкьявик' },
    at: [-21.9422367, 64.145981], cc: 'is', extratags: { capital: 'yes' },
    parents: [adminRow('state', 8, 5, { name: 'Höfuðborgarsvæðið', 'name:en': 'Capital Region' }), postcodeRow('101'), countryRow('is')],
  },
  {
    placeId: 100016, osm: 'N9', cls: 'place', type: 'city', rank: [15, 16], addresstype: 'city',
    names: { name: 'Paris', 'name:de': 'Paris', 'name:en': 'Paris', 'name:ja': 'パリ', 'name:ru': 'Париж' },
    at: [2.3483915, 48.8534951], cc: 'fr', extratags: { capital: 'yes', population: '2133111' },
    parents: [adminRow('state', 8, 4, 'Île-de-France'), postcodeRow('75004'), countryRow('fr')],
  },
  {
    placeId: 100017, osm: 'N10', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: { name: 'München', 'name:de': 'München', 'name:en': 'Munich', 'name:it': 'Monaco di Baviera', 'name:ru': 'Мюнхен' },
    at: [11.5753822, 48.1371079], cc: 'de', extratags: { population: '1512491' },
    parents: [adminRow('state', 8, 4, { name: 'Bayern', 'name:de': 'Bayern', 'name:en': 'Bavaria' }), postcodeRow('80331'), countryRow('de')],
  },
  {
    placeId: 100018, osm: 'N11', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: { name: 'Springfield' }, at: [-89.6439575, 39.7990175], cc: 'us', extratags: { capital: '4' },
    parents: [adminRow('county', 12, 6, 'Sangamon County'), adminRow('state', 8, 4, 'Illinois'), countryRow('us')],
  },
  {
    placeId: 100019, osm: 'N12', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: { name: 'Springfield' }, at: [-72.5886727, 42.1018764], cc: 'us', extratags: null,
    parents: [adminRow('county', 12, 6, 'Hampden County'), adminRow('state', 8, 4, 'Massachusetts'), countryRow('us')],
  },
  {
    placeId: 100020, osm: 'N13', cls: 'place', type: 'city', rank: [16, 16], addresstype: 'city',
    names: { name: 'Springfield' }, at: [-93.2922715, 37.2081729], cc: 'us', extratags: null,
    parents: [adminRow('county', 12, 6, 'Greene County'), adminRow('state', 8, 4, 'Missouri'), countryRow('us')],
  },
];
const PLACES: Place[] = PLACE_SPECS.map(buildPlace);

/* ------------------------------------------------------------------------------------------------
 * Formatting helpers: Python/Postgres conventions in TypeScript
 * ---------------------------------------------------------------------------------------------- */

/** Python's repr(float). */
function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Object.is(x, -0)) return '-0.0';
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    const [mantissa, exp] = x.toExponential().split('e');
    const e = Number(exp);
    return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  if (Number.isInteger(x)) return x.toFixed(1);
  return String(x);
}

const fixed7 = (x: number): string => x.toFixed(7);
const J = (s: string): string => JSON.stringify(s);

/** Postgres jsonb key order: shorter keys first, then bytewise. */
function jsonbOrder(obj: Names): Array<[string, string]> {
  return Object.entries(obj).sort(([a], [b]) => {
    const la = Buffer.byteLength(a);
    const lb = Buffer.byteLength(b);
    if (la !== lb) return la - lb;
    return Buffer.compare(Buffer.from(a), Buffer.from(b));
  });
}

/** json.dumps(dict, ensure_ascii=False): `{"k": "v", "k2": "v2"}`. */
function pyDict(entries: Array<[string, string]> | null): string {
  if (entries === null) return 'null';
  return `{${entries.map(([k, v]) => `${J(k)}: ${J(v)}`).join(', ')}}`;
}

/** urllib.parse.urlencode (quote_plus). */
function pyUrlencode(parts: Array<[string, string]>): string {
  const q = (s: string): string =>
    encodeURIComponent(s)
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replace(/%20/g, '+');
  return parts.map(([k, v]) => `${q(k)}=${q(v)}`).join('&');
}

/** ElementTree attribute escaping. */
function xmlAttr(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
    .replace(/\t/g, '&#09;');
}

/** ElementTree text escaping. */
function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One ElementTree element: `<tag a="b" />` when empty, like ET.tostring(). */
function xmlElement(tag: string, attrs: Array<[string, string]>, inner = ''): string {
  const a = attrs.map(([k, v]) => ` ${k}="${xmlAttr(v)}"`).join('');
  return inner === '' ? `<${tag}${a} />` : `<${tag}${a}>${inner}</${tag}>`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** strftime('%a, %d %b %Y %H:%M:%S +00:00') in UTC. */
function xmlTimestamp(d = new Date()): string {
  const p = (v: number): string => String(v).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +00:00`;
}

/** Nominatim's Point.to_geojson(): note the spaces. */
const pointGeojson = ([lon, lat]: Coord): string => `{"type": "Point","coordinates": [${pyFloat(lon)}, ${pyFloat(lat)}]}`;

/* ------------------------------------------------------------------------------------------------
 * Localisation (Nominatim's Locales)
 * ---------------------------------------------------------------------------------------------- */

function parseLanguages(accept: string): string[] {
  const langs: Array<[string, number]> = [];
  for (const desc of accept.split(',')) {
    const m = /^\s*([a-z_-]+)(?:;\s*q\s*=\s*([01](?:\.\d+)?))?\s*$/i.exec(desc);
    if (m) langs.push([m[1], m[2] === undefined ? 1 : Number(m[2])]);
  }
  langs.sort((a, b) => b[1] - a[1]);
  const out: string[] = [];
  // Locales.from_accept_languages: a region variant adds its language unless that was asked for itself.
  for (const [lang] of langs) {
    out.push(lang);
    const dash = lang.indexOf('-');
    if (dash !== -1 && langs.every(([l]) => l !== lang.slice(0, dash))) out.push(lang.slice(0, dash));
  }
  return out;
}

function nameTags(langs: string[]): string[] {
  const tags: string[] = [];
  const addLang = (...keys: string[]): void => {
    for (const lang of langs) for (const k of keys) tags.push(`${k}:${lang}`, `_place_${k}:${lang}`);
  };
  const add = (...keys: string[]): void => {
    for (const k of keys) tags.push(k, `_place_${k}`);
  };
  addLang('name');
  add('name', 'brand');
  addLang('official_name', 'short_name');
  add('official_name', 'short_name', 'ref');
  return tags;
}

function localName(names: Names, tags: string[]): string {
  for (const t of tags) if (names[t] !== undefined) return names[t];
  const values = Object.values(names);
  return values.length ? values[0] : '';
}

/* ------------------------------------------------------------------------------------------------
 * Results and their rendering
 * ---------------------------------------------------------------------------------------------- */

interface Result {
  place: Place;
  placeId: number;
  osmId: number;
  centroid: Coord;
  localName: string;
  displayName: string;
  /** Localised local names of the address rows, parallel to place.address. */
  rowNames: string[];
  /** Degrees, reverse only. */
  distance?: number;
}

function localize(place: Place, langs: string[], centroid = place.centroid, distance?: number): Result {
  const tags = nameTags(langs);
  const rowNames = place.address.map((r) => localName(r.names, tags));
  const label: string[] = [];
  for (const name of rowNames) if (name && label[label.length - 1] !== name) label.push(name);
  return {
    place,
    placeId: place.placeId,
    osmId: place.osmId,
    centroid,
    localName: localName(place.names, tags),
    displayName: label.join(', '),
    rowNames,
    distance,
  };
}

const importanceOf = (p: Place): number => 0.40001 - p.rankSearch / 75;

function extratagsOf(p: Place): Array<[string, string]> | null {
  const tags = p.extratags ? jsonbOrder(p.extratags) : null;
  if (p.cls === 'boundary' && p.type === 'administrative' && p.adminLevel < 15) {
    return [...(tags ?? []), ['admin_level', String(p.adminLevel)]];
  }
  return tags;
}

/** Label → local name, first wins; country_code is appended by the callers. */
function typedAddress(r: Result): Array<[string, string]> {
  const parts = new Map<string, string>();
  r.place.address.forEach((line, i) => {
    const name = r.rowNames[i];
    if (name && !parts.has(line.label)) parts.set(line.label, name);
  });
  return [...parts.entries()];
}

const GEOCODEJSON_RANKS: Record<number, string> = {
  3: 'locality', 4: 'country', 5: 'state', 6: 'state', 7: 'state', 8: 'state', 9: 'state',
  10: 'county', 11: 'county', 12: 'county', 13: 'city', 14: 'city', 15: 'city', 16: 'city',
  17: 'district', 18: 'district', 19: 'district', 20: 'district', 21: 'district',
  22: 'locality', 23: 'locality', 24: 'locality', 25: 'street', 26: 'street', 27: 'street', 28: 'house',
};

type GeometryKind = 'geojson' | 'kml' | 'svg' | 'text';

interface FormatOptions {
  addressdetails: boolean;
  extratags: boolean;
  namedetails: boolean;
  geometry: GeometryKind | null;
  /** geocodejson `query`; undefined omits it. */
  query?: string;
  /** XML root attributes after timestamp and attribution. */
  xmlExtra: Array<[string, string]>;
}

function geometryCoords(p: Place): { kind: 'Point' | 'LineString' | 'Polygon'; coords: Coord[] } {
  if (p.osmType === 'R') {
    const [minlat, maxlat, minlon, maxlon] = p.bbox;
    return { kind: 'Polygon', coords: [[minlon, minlat], [maxlon, minlat], [maxlon, maxlat], [minlon, maxlat], [minlon, minlat]] };
  }
  if (p.line) return { kind: 'LineString', coords: p.line };
  return { kind: 'Point', coords: [p.centroid] };
}

/** Geometry as PostGIS would output it (ST_AsGeoJSON, ST_AsKML, ST_AsSVG, ST_AsText). */
function renderGeometry(p: Place, kind: GeometryKind): string {
  const g = geometryCoords(p);
  const num = (v: number): string => String(v);
  switch (kind) {
    case 'geojson': {
      const list = g.coords.map(([x, y]) => `[${num(x)},${num(y)}]`).join(',');
      if (g.kind === 'Point') return `{"type":"Point","coordinates":[${num(g.coords[0][0])},${num(g.coords[0][1])}]}`;
      if (g.kind === 'LineString') return `{"type":"LineString","coordinates":[${list}]}`;
      return `{"type":"Polygon","coordinates":[[${list}]]}`;
    }
    case 'kml': {
      const list = g.coords.map(([x, y]) => `${num(x)},${num(y)}`).join(' ');
      if (g.kind === 'Point') return `<Point><coordinates>${list}</coordinates></Point>`;
      if (g.kind === 'LineString') return `<LineString><coordinates>${list}</coordinates></LineString>`;
      return `<Polygon><outerBoundaryIs><LinearRing><coordinates>${list}</coordinates></LinearRing></outerBoundaryIs></Polygon>`;
    }
    case 'svg': {
      if (g.kind === 'Point') return `cx="${num(g.coords[0][0])}" cy="${num(-g.coords[0][1])}"`;
      const path = g.coords.map(([x, y], i) => `${i === 0 ? 'M' : i === 1 ? 'L' : ''} ${num(x)} ${num(-y)}`.trim()).join(' ');
      return g.kind === 'Polygon' ? `${path} Z` : path;
    }
    case 'text': {
      const list = g.coords.map(([x, y]) => `${num(x)} ${num(y)}`).join(',');
      if (g.kind === 'Point') return `POINT(${list})`;
      if (g.kind === 'LineString') return `LINESTRING(${list})`;
      return `POLYGON((${list}))`;
    }
  }
}

function jsonObject(r: Result, o: FormatOptions, classLabel: 'class' | 'category'): string {
  const p = r.place;
  const parts = [
    `"place_id":${r.placeId}`,
    `"licence":${J(LICENCE)}`,
    `"osm_type":${J(OSM_TYPE_NAME[p.osmType])}`,
    `"osm_id":${r.osmId}`,
    `"lat":${J(pyFloat(r.centroid[1]))}`,
    `"lon":${J(pyFloat(r.centroid[0]))}`,
    `${J(classLabel)}:${J(p.cls)}`,
    `"type":${J(p.type)}`,
    `"place_rank":${p.rankSearch}`,
    `"importance":${pyFloat(importanceOf(p))}`,
    `"addresstype":${J(p.addresstype)}`,
    `"name":${J(r.localName)}`,
    `"display_name":${J(r.displayName)}`,
  ];
  if (o.addressdetails) parts.push(`"address":{${addressJson(r)}}`);
  if (o.extratags) parts.push(`"extratags":${pyDict(extratagsOf(p))}`);
  if (o.namedetails) parts.push(`"namedetails":${pyDict(jsonbOrder(p.names))}`);
  const [minlat, maxlat, minlon, maxlon] = p.bbox;
  parts.push(`"boundingbox":[${[minlat, maxlat, minlon, maxlon].map((v) => J(fixed7(v))).join(',')}]`);
  if (o.geometry === 'text') parts.push(`"geotext":${J(renderGeometry(p, 'text'))}`);
  if (o.geometry === 'kml') parts.push(`"geokml":${J(renderGeometry(p, 'kml'))}`);
  if (o.geometry === 'geojson') parts.push(`"geojson":${renderGeometry(p, 'geojson')}`);
  if (o.geometry === 'svg') parts.push(`"svg":${J(renderGeometry(p, 'svg'))}`);
  return `{${parts.join(',')}}`;
}

function addressJson(r: Result): string {
  const parts = typedAddress(r).map(([k, v]) => `${J(k)}:${J(v)}`);
  parts.push(`"country_code":${J(r.place.countryCode)}`);
  return parts.join(',');
}

function formatJson(results: Result[], o: FormatOptions, simple: boolean, classLabel: 'class' | 'category'): string {
  if (simple) return results.length ? jsonObject(results[0], o, classLabel) : '{"error":"Unable to geocode"}';
  return `[${results.map((r) => jsonObject(r, o, classLabel)).join(',')}]`;
}

function formatGeojson(results: Result[], o: FormatOptions, simple: boolean): string {
  if (simple && !results.length) return '{"error":"Unable to geocode"}';
  const features = results.map((r) => {
    const p = r.place;
    const props = [
      `"place_id":${r.placeId}`,
      `"osm_type":${J(OSM_TYPE_NAME[p.osmType])}`,
      `"osm_id":${r.osmId}`,
      `"place_rank":${p.rankSearch}`,
      `"category":${J(p.cls)}`,
      `"type":${J(p.type)}`,
      `"importance":${pyFloat(importanceOf(p))}`,
      `"addresstype":${J(p.addresstype)}`,
      `"name":${J(r.localName)}`,
      `"display_name":${J(r.displayName)}`,
    ];
    if (o.addressdetails) props.push(`"address":{${addressJson(r)}}`);
    if (o.extratags) props.push(`"extratags":${pyDict(extratagsOf(p))}`);
    if (o.namedetails) props.push(`"namedetails":${pyDict(jsonbOrder(p.names))}`);
    const [minlat, maxlat, minlon, maxlon] = p.bbox;
    const bbox = [minlon, minlat, maxlon, maxlat].map(fixed7).join(',');
    const geometry = o.geometry === 'geojson' ? renderGeometry(p, 'geojson') : pointGeojson(r.centroid);
    return `{"type":"Feature","properties":{${props.join(',')}},"bbox":[${bbox}],"geometry":${geometry}}`;
  });
  return `{"type":"FeatureCollection","licence":${J(LICENCE)},"features":[${features.join(',')}]}`;
}

function formatGeocodejson(results: Result[], o: FormatOptions, simple: boolean): string {
  if (simple && !results.length) return '{"error":"Unable to geocode"}';
  const header = [`"version":"0.1.0"`, `"attribution":${J(LICENCE)}`, `"licence":"ODbL"`];
  if (o.query !== undefined) header.push(`"query":${J(o.query)}`);
  const features = results.map((r) => {
    const p = r.place;
    const g = [
      `"place_id":${r.placeId}`,
      `"osm_type":${J(OSM_TYPE_NAME[p.osmType])}`,
      `"osm_id":${r.osmId}`,
      `"osm_key":${J(p.cls)}`,
      `"osm_value":${J(p.type)}`,
      `"type":${J(GEOCODEJSON_RANKS[Math.max(3, Math.min(28, p.rankAddress))])}`,
    ];
    if (r.distance !== undefined) g.push(`"accuracy":${Math.trunc(r.distance)}`);
    g.push(`"label":${J(r.displayName)}`);
    if (r.localName) g.push(`"name":${J(r.localName)}`);
    if (o.addressdetails) {
      const extra = new Map<string, string>();
      p.address.forEach((line, i) => {
        const name = r.rowNames[i];
        if (!name) return;
        if (line.type === 'postcode') g.push(`"postcode":${J(name)}`);
        else if (line.placeId !== p.placeId && line.rankAddress >= 4 && line.rankAddress < 28) {
          const key = GEOCODEJSON_RANKS[line.rankAddress];
          if (!extra.has(key)) extra.set(key, name);
        }
      });
      for (const [k, v] of extra) g.push(`${J(k)}:${J(v)}`);
      g.push(`"country_code":${J(p.countryCode)}`);
      const admin = p.address
        .map((line, i) => [line, r.rowNames[i]] as const)
        .filter(([line, name]) => name && line.adminLevel !== undefined && line.adminLevel < 15)
        .map(([line, name]) => `"level${line.adminLevel}":${J(name)}`);
      g.push(`"admin":{${admin.join(',')}}`);
    }
    if (o.extratags) g.push(`"extra":${pyDict(extratagsOf(p))}`);
    const geometry = o.geometry === 'geojson' ? renderGeometry(p, 'geojson') : pointGeojson(r.centroid);
    return `{"type":"Feature","properties":{"geocoding":{${g.join(',')}}},"geometry":${geometry}}`;
  });
  return `{"type":"FeatureCollection","geocoding":{${header.join(',')}},"features":[${features.join(',')}]}`;
}

function formatXml(results: Result[], o: FormatOptions, simple: boolean, rootTag: string): string {
  const rootAttrs: Array<[string, string]> = [['timestamp', xmlTimestamp()], ['attribution', LICENCE], ...o.xmlExtra];
  let inner = '';
  if (simple && !results.length) inner += '<error>Unable to geocode</error>';
  for (const r of results) {
    const p = r.place;
    const [minlat, maxlat, minlon, maxlon] = p.bbox;
    const attrs: Array<[string, string]> = [
      ['place_id', String(r.placeId)],
      ['osm_type', OSM_TYPE_NAME[p.osmType]],
      ['osm_id', String(r.osmId)],
    ];
    if (p.names.ref !== undefined) attrs.push(['ref', p.names.ref]);
    else if (r.localName) attrs.push(['ref', r.localName]);
    attrs.push(
      ['lat', fixed7(r.centroid[1])],
      ['lon', fixed7(r.centroid[0])],
      ['boundingbox', [minlat, maxlat, minlon, maxlon].map(fixed7).join(',')],
      ['place_rank', String(p.rankSearch)],
      ['address_rank', String(p.rankAddress)],
    );
    if (o.geometry === 'text') attrs.push(['geotext', renderGeometry(p, 'text')]);
    if (o.geometry === 'svg') attrs.push(['geosvg', renderGeometry(p, 'svg')]);
    if (o.geometry === 'geojson') attrs.push(['geojson', renderGeometry(p, 'geojson')]);
    const kml = o.geometry === 'kml' ? `<geokml>${renderGeometry(p, 'kml')}</geokml>` : '';

    let details = '';
    if (o.addressdetails) {
      const address = typedAddress(r).map(([k, v]) => `<${k}>${xmlText(v)}</${k}>`);
      address.push(`<country_code>${xmlText(p.countryCode)}</country_code>`);
      details += simple ? `<addressparts>${address.join('')}</addressparts>` : address.join('');
    }
    if (o.extratags) {
      const tags = (extratagsOf(p) ?? []).map(([k, v]) => xmlElement('tag', [['key', k], ['value', v]]));
      details += xmlElement('extratags', [], tags.join(''));
    }
    if (o.namedetails) {
      const names = jsonbOrder(p.names).map(([k, v]) => `<name desc="${xmlAttr(k)}">${xmlText(v)}</name>`);
      details += xmlElement('namedetails', [], names.join(''));
    }

    if (simple) {
      inner += xmlElement('result', attrs, xmlText(r.displayName)) + kml + details;
    } else {
      attrs.push(['display_name', r.displayName], ['class', p.cls], ['type', p.type], ['importance', pyFloat(importanceOf(p))]);
      inner += xmlElement('place', attrs, kml + details);
    }
  }
  return `<?xml version="1.0" encoding="UTF-8" ?>\n${xmlElement(rootTag, rootAttrs, inner)}`;
}

/* ------------------------------------------------------------------------------------------------
 * Request parameters and errors, as Nominatim's ASGI adaptor handles them
 * ---------------------------------------------------------------------------------------------- */

class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

class Params {
  contentType = CT_TEXT;

  constructor(
    private readonly query: URLSearchParams,
    private readonly headers: IncomingHttpHeaders,
  ) {}

  get(name: string): string | undefined {
    const all = this.query.getAll(name);
    return all.length ? all[all.length - 1] : undefined;
  }

  header(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  fail(message: string, status = 400): never {
    throw new ApiError(status, message);
  }

  getInt(name: string, def?: number): number {
    const v = this.get(name);
    if (v === undefined) {
      if (def !== undefined) return def;
      this.fail(`Parameter '${name}' missing.`);
    }
    // Python's int(): surrounding whitespace, a sign and digit-separating underscores are fine.
    if (!/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(v)) this.fail(`Parameter '${name}' must be a number.`);
    return Number(v.replace(/_/g, ''));
  }

  getFloat(name: string, def?: number): number {
    const v = this.get(name);
    if (v === undefined) {
      if (def !== undefined) return def;
      this.fail(`Parameter '${name}' missing.`);
    }
    const s = v.trim().replace(/(\d)_(?=\d)/g, '$1');
    if (!/^[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)$/i.test(s)) this.fail(`Parameter '${name}' must be a number.`);
    const f = Number(s);
    if (!Number.isFinite(f)) this.fail(`Parameter '${name}' must be a number.`);
    return f;
  }

  getBool(name: string, def: boolean): boolean {
    const v = this.get(name);
    return v === undefined ? def : v !== '0';
  }

  languages(): string[] {
    return parseLanguages(this.get('accept-language') || this.header('accept-language') || '');
  }
}

const FORMATS = ['xml', 'geojson', 'geocodejson', 'json', 'jsonv2'];

function parseFormat(params: Params, allowed: string[], def: string): string {
  const fmt = params.get('format') ?? def;
  if (!allowed.includes(fmt)) params.fail(`Parameter 'format' must be one of: ${allowed.join(', ')}`);
  params.contentType = fmt === 'xml' ? CT_XML : fmt === 'text' ? CT_TEXT : CT_JSON;
  return fmt;
}

function parseGeometry(params: Params, fmt: string): GeometryKind | null {
  const chosen: GeometryKind[] = [];
  if (params.getBool('polygon_geojson', false)) chosen.push('geojson');
  if (fmt !== 'geojson' && fmt !== 'geocodejson') {
    if (params.getBool('polygon_text', false)) chosen.push('text');
    if (params.getBool('polygon_kml', false)) chosen.push('kml');
    if (params.getBool('polygon_svg', false)) chosen.push('svg');
  }
  if (chosen.length > 1) params.fail('Too many polygon output options selected.');
  params.getFloat('polygon_threshold', 0);
  return chosen[0] ?? null;
}

function formatError(contentType: string, status: number, msg: string): string {
  if (contentType === CT_XML) {
    return `<?xml version="1.0" encoding="UTF-8" ?>
                   <error>
                     <code>${status}</code>
                     <message>${msg}</message>
                   </error>
                `;
  }
  if (contentType === CT_JSON) return `{"error":{"code":${status},"message":"${msg}"}}`;
  return `ERROR ${status}: ${msg}`;
}

/* ------------------------------------------------------------------------------------------------
 * Search, reverse, lookup on the gazetteer
 * ---------------------------------------------------------------------------------------------- */

const fold = (s: string): string => s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().trim();

const allNames = (names: Names): string[] => Object.values(names).map(fold);

function matchesAny(needle: string, haystack: string[]): boolean {
  const f = fold(needle);
  return f !== '' && haystack.some((h) => h.includes(f));
}

const STRUCTURED_FIELDS = ['amenity', 'street', 'city', 'county', 'state', 'postalcode', 'country'] as const;
type StructuredField = (typeof STRUCTURED_FIELDS)[number];
const FIELD_LABELS: Record<StructuredField, string[]> = {
  amenity: [],
  street: ['road'],
  city: ['city', 'town', 'village', 'municipality', 'hamlet'],
  county: ['county'],
  state: ['state', 'province', 'region'],
  postalcode: ['postcode'],
  country: ['country'],
};

function rowMatches(field: StructuredField, value: string, line: AddressRow, place: Place): boolean {
  if (field === 'country' && fold(value) === place.countryCode) return true;
  return FIELD_LABELS[field].includes(line.label) && matchesAny(value, allNames(line.names));
}

function structuredMatch(place: Place, fields: Array<[StructuredField, string]>): boolean {
  const self = place.address[0];
  // The most specific field names the kind of place wanted: a street search finds streets.
  const [mostSpecific, value] = fields[0];
  if (mostSpecific === 'amenity') {
    if (place.rankAddress < 28 || !matchesAny(value, allNames(place.names))) return false;
  } else if (mostSpecific !== 'postalcode' && !rowMatches(mostSpecific, value, self, place)) {
    return false;
  }
  return fields.slice(1).every(([f, v]) => place.address.some((line) => rowMatches(f, v, line, place)));
}

function freeTextMatch(place: Place, q: string): boolean {
  const parts = q.split(',').map((s) => s.trim()).filter(Boolean);
  if (!parts.length || !matchesAny(parts[0], allNames(place.names))) return false;
  const context = place.address.flatMap((line) => allNames(line.names)).concat(place.countryCode);
  return parts.slice(1).every((part) => matchesAny(part, context));
}

function distanceToSegment([px, py]: Coord, [ax, ay]: Coord, [bx, by]: Coord): { d: number; at: Coord } {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2));
  const at: Coord = [ax + t * dx, ay + t * dy];
  return { d: Math.hypot(px - at[0], py - at[1]), at };
}

/** Nominatim's REVERSE_MAX_RANKS: zoom → highest address rank returned. */
const REVERSE_MAX_RANKS = [2, 2, 2, 4, 4, 8, 10, 10, 12, 12, 16, 17, 18, 19, 22, 25, 26, 27, 30];

function reverseLookup(lat: number, lon: number, maxRank: number): { place: Place; centroid: Coord; distance: number } | null {
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  const point: Coord = [lon, lat];
  let best: { place: Place; centroid: Coord; distance: number } | null = null;
  for (const place of PLACES) {
    if (place.osmType === 'R' || place.rankAddress > maxRank) continue;
    let candidate: { place: Place; centroid: Coord; distance: number };
    if (place.line) {
      let nearest = { d: Infinity, at: place.centroid };
      for (let i = 1; i < place.line.length; i++) {
        const s = distanceToSegment(point, place.line[i - 1], place.line[i]);
        if (s.d < nearest.d) nearest = s;
      }
      // Like PostGIS ST_ClosestPoint: a street answers with the point on it nearest to the query.
      candidate = { place, centroid: nearest.at, distance: nearest.d };
    } else {
      candidate = { place, centroid: place.centroid, distance: Math.hypot(lon - place.centroid[0], lat - place.centroid[1]) };
    }
    if (candidate.distance > REVERSE_MAX_DISTANCE) continue;
    if (!best || candidate.distance < best.distance ||
        (candidate.distance === best.distance && place.rankAddress > best.place.rankAddress)) {
      best = candidate;
    }
  }
  if (best) return best;
  // Nothing close: fall back to the smallest area that contains the point (a country, a province).
  const areas = PLACES.filter((p) => {
    const [minlat, maxlat, minlon, maxlon] = p.bbox;
    return p.osmType === 'R' && p.rankAddress <= maxRank && lat >= minlat && lat <= maxlat && lon >= minlon && lon <= maxlon;
  }).sort((a, b) => (a.bbox[1] - a.bbox[0]) * (a.bbox[3] - a.bbox[2]) - (b.bbox[1] - b.bbox[0]) * (b.bbox[3] - b.bbox[2]));
  return areas.length ? { place: areas[0], centroid: areas[0].centroid, distance: 0 } : null;
}

/* ------------------------------------------------------------------------------------------------
 * Recorded fixtures
 * ---------------------------------------------------------------------------------------------- */

/** One recorded answer from test/fixtures/nominatim/INDEX.md. */
export interface FakeFixture {
  file: string;
  /** The request as written in INDEX.md, e.g. `/search?q=Berlin&format=json`. */
  request: string;
  /** The extra request header, e.g. `Accept-Language: en`, or undefined. */
  header: string | undefined;
  key: string;
  languages: string;
  status: number;
  contentType: string;
  body: Buffer;
}

const ENDPOINT_BY_PATH: Record<string, string> = {
  '/': 'search',
  '/search': 'search',
  '/search.php': 'search',
  '/reverse': 'reverse',
  '/reverse.php': 'reverse',
  '/lookup': 'lookup',
  '/lookup.php': 'lookup',
  '/status': 'status',
  '/status.php': 'status',
  '/details': 'details',
  '/details.php': 'details',
};

/** Endpoint plus the parameter set, order-insensitive, so `?format=json&q=x` finds `?q=x&format=json`. */
function requestKey(endpoint: string, query: URLSearchParams): string {
  const pairs = [...query.entries()].sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : av > bv ? 1 : 0) : a < b ? -1 : 1));
  return `${endpoint}?${JSON.stringify(pairs)}`;
}

let fixtureCache: FakeFixture[] | undefined;

/** The recorded answers listed in test/fixtures/nominatim/INDEX.md. */
export function loadFixtures(): FakeFixture[] {
  if (fixtureCache) return fixtureCache;
  const index = readFileSync(join(FIXTURE_DIR, 'INDEX.md'), 'utf8');
  const fixtures: FakeFixture[] = [];
  for (const line of index.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 8 || !cells[2].startsWith('`/')) continue;
    const [, file, request, header, status, contentType, bytes] = cells;
    const url = new URL(request.replace(/`/g, ''), 'http://127.0.0.1');
    const body = readFileSync(join(FIXTURE_DIR, file));
    if (body.length !== Number(bytes)) throw new Error(`fixture ${file}: ${body.length} bytes, INDEX.md says ${bytes}`);
    const lang = /^accept-language:\s*(.+)$/i.exec(header);
    fixtures.push({
      file,
      request: request.replace(/`/g, ''),
      header: lang ? header : undefined,
      key: requestKey(ENDPOINT_BY_PATH[url.pathname], url.searchParams),
      languages: parseLanguages(lang ? lang[1] : '').join(','),
      status: Number(status),
      contentType,
      body,
    });
  }
  fixtureCache = fixtures;
  return fixtures;
}

/* ------------------------------------------------------------------------------------------------
 * The server
 * ---------------------------------------------------------------------------------------------- */

/**
 * A JSON array of at least `bytes` bytes (up to 64 KiB more), in chunks made on demand. The places
 * differ (ids, coordinates, names), so that it compresses as a real answer does, not as one repeated line.
 */
function* hugeJson(bytes: number): Generator<Buffer> {
  yield Buffer.from('[');
  let sent = 1;
  let id = 0;
  while (sent < bytes) {
    let chunk = '';
    while (chunk.length < 65536) {
      id++;
      const lat = (47 + ((id * 7919) % 100000) / 13171).toFixed(7);
      const lon = (8 + ((id * 104729) % 100000) / 9973).toFixed(7);
      chunk += `{"place_id":${100000 + id},"licence":"Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright","osm_type":"node","osm_id":${(id * 2654435761) % 4294967296},"lat":"${lat}","lon":"${lon}","class":"place","type":"house","display_name":"${id % 997} Hauptstraße, ${(id * 31) % 9000 + 1000} Ort ${(id * 17) % 5003}, Schweiz"},`;
    }
    const buffer = Buffer.from(chunk);
    yield buffer;
    sent += buffer.length;
  }
  yield Buffer.from('{"place_id":0}]');
}

export class FakeNominatim {
  /** Delay before every answer (ms). Settable at any time. */
  latencyMs: number;
  /** When set, decides the delay per request instead of latencyMs. */
  latencyFn: ((req: FakeRequest) => number) | null;
  /** Grow every non-empty search answer to at least this many bytes (more results, fresh ids). */
  padTo: number | null;
  /** Make every non-empty search answer exactly this many results (fresh ids), ignoring limit. */
  resultCount: number | null;
  /** Answer the recorded requests with the recorded bodies (default). Off: always use the gazetteer. */
  fixtures: boolean;

  /** Every request, in arrival order. */
  readonly requests: FakeRequest[] = [];

  private readonly options: Required<FakeNominatimOptions>;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private failQueue: FakeFailure[] = [];
  private persistentFailure: FakeFailure | null = null;
  private handler: FakeHandler | null = null;
  private baseUrl: string | undefined;
  private forget: () => void = () => undefined;

  constructor(options: FakeNominatimOptions = {}) {
    this.options = {
      port: options.port ?? 0,
      latencyMs: options.latencyMs ?? 0,
      latencyFn: options.latencyFn ?? null,
      padTo: options.padTo ?? null,
      resultCount: options.resultCount ?? null,
      fixtures: options.fixtures ?? true,
      onArrival: options.onArrival ?? (() => undefined),
    };
    this.latencyMs = this.options.latencyMs;
    this.latencyFn = this.options.latencyFn;
    this.padTo = this.options.padTo;
    this.resultCount = this.options.resultCount;
    this.fixtures = this.options.fixtures;
  }

  /** The base URL (`http://127.0.0.1:PORT`) once started. */
  get url(): string {
    if (!this.baseUrl) throw new Error('FakeNominatim is not started');
    return this.baseUrl;
  }

  async start(): Promise<string> {
    if (this.baseUrl) return this.baseUrl;
    loadFixtures();
    const server = http.createServer((req, res) => this.onRequest(req, res));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.baseUrl = `http://${HOST}:${port}`;
    this.forget = track('upstream', `the fake Nominatim on port ${port}`, () => this.stop());
    return this.baseUrl;
  }

  /** Closes the listener and every connection, held ('timeout') and delayed requests included. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.forget();
    this.server = undefined;
    this.baseUrl = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** The next `n` requests (any path) fail this way; queued before failAll's mode. */
  failNext(n: number, failure: FakeFailure): void {
    for (let i = 0; i < n; i++) this.failQueue.push(failure);
  }

  /** Every request fails this way until called with null. */
  failAll(failure: FakeFailure | null): void {
    this.persistentFailure = failure;
  }

  /** Takes over every request (after latency); null restores normal behaviour. */
  setHandler(fn: FakeHandler | null): void {
    this.handler = fn;
  }

  /** Number of logged requests whose path starts with `pathPrefix` (all when omitted). */
  count(pathPrefix?: string): number {
    return pathPrefix === undefined ? this.requests.length : this.requests.filter((r) => r.path.startsWith(pathPrefix)).length;
  }

  /** Clears the log, failure modes and handler, and restores latency/padding to the constructor options. */
  reset(): void {
    this.requests.length = 0;
    this.failQueue = [];
    this.persistentFailure = null;
    this.handler = null;
    this.latencyMs = this.options.latencyMs;
    this.latencyFn = this.options.latencyFn;
    this.padTo = this.options.padTo;
    this.resultCount = this.options.resultCount;
    this.fixtures = this.options.fixtures;
  }

  /** The answer a normal request gets (fixture or gazetteer); handlers can use it to delegate. */
  buildResponse(entry: Pick<FakeRequest, 'method' | 'path' | 'query' | 'headers'>): FakeResponse {
    const endpoint = ENDPOINT_BY_PATH[entry.path];
    if (!endpoint) return this.plain(404, 'Not Found');
    if (entry.method !== 'GET' && entry.method !== 'HEAD') return this.plain(405, 'Method Not Allowed');

    const params = new Params(entry.query, entry.headers);
    const padding = endpoint === 'search' && (this.padTo !== null || this.resultCount !== null);
    if (this.fixtures && !padding) {
      const key = requestKey(endpoint, entry.query);
      const languages = params.languages().join(',');
      const fixture = loadFixtures().find((f) => f.key === key && f.languages === languages);
      if (fixture) return { status: fixture.status, headers: this.headers(fixture.contentType), body: fixture.body };
    }

    try {
      const host = entry.headers.host ?? `${HOST}:${this.server ? (this.server.address() as AddressInfo).port : 0}`;
      const { body, status } = this.answer(endpoint, params, `http://${host}`);
      return this.jsonp(params, status, body);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return { status: err.status, headers: this.headers(params.contentType), body: formatError(params.contentType, err.status, err.message) };
    }
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://${HOST}`);
    const entry: FakeRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      rawUrl: req.url ?? '/',
      headers: req.headers,
      userAgent: req.headers['user-agent'],
      arrivedAt: Date.now(),
      startedAtHr: performance.now(),
    };
    this.requests.push(entry);
    this.options.onArrival(entry);
    // Decided on arrival, so "the next n requests" means arrival order even with latency.
    const handler = this.handler;
    const failure = this.failQueue.length ? this.failQueue.shift()! : this.persistentFailure;
    const delay = Math.max(0, this.latencyFn ? this.latencyFn(entry) : this.latencyMs);
    // A plain answer is built on arrival too, so that it leaves `delay` after the request came in, as a
    // server's latency is counted: building it takes a millisecond or two, which would otherwise be
    // added to every delay (and, in the benchmark, spent in the process that also runs the clients).
    let answer: FakeResponse | undefined;
    try {
      if (!handler && !failure) answer = this.buildResponse(entry);
    } catch (err) {
      this.crash(res, err);
      return;
    }

    const run = (): void => {
      if (res.destroyed) return;
      entry.answeredAtHr = performance.now();
      try {
        if (handler) {
          Promise.resolve(handler(req, res, entry)).catch((err: unknown) => this.crash(res, err));
        } else if (failure) {
          this.fail(req, res, failure, entry);
        } else {
          this.send(req, res, answer!);
        }
      } catch (err) {
        this.crash(res, err);
      }
    };
    if (delay > 0) this.at(entry.startedAtHr + delay, run);
    else run();
  }

  /**
   * Runs `fn` once performance.now() reaches `due`. Node counts a timer from the event loop's cached
   * clock, in whole milliseconds, which can be a millisecond or more behind the moment the request
   * arrived: a timer that fires early is set again for what is left, so that the answer never leaves
   * before its latency has passed.
   */
  private at(due: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const left = due - performance.now();
      if (left > 0) this.at(due, fn);
      else fn();
    }, Math.max(0, Math.ceil(due - performance.now())));
    this.timers.add(timer);
  }

  private fail(req: IncomingMessage, res: ServerResponse, failure: FakeFailure, entry: FakeRequest): void {
    if (failure === 'timeout') return; // held open until stop() destroys the socket
    if (failure === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if ('mode' in failure) {
      this.hostile(req, res, failure, entry);
      return;
    }
    let body: string | Buffer;
    let contentType = CT_TEXT;
    if (failure.body === undefined) body = `${failure.status} ${http.STATUS_CODES[failure.status] ?? ''}`.trim();
    else if (typeof failure.body === 'string' || Buffer.isBuffer(failure.body)) body = failure.body;
    else {
      body = JSON.stringify(failure.body);
      contentType = CT_JSON;
    }
    this.send(req, res, { status: failure.status, headers: { ...this.headers(contentType), ...failure.headers }, body });
  }

  private hostile(req: IncomingMessage, res: ServerResponse, failure: HostileMode, entry: FakeRequest): void {
    switch (failure.mode) {
      case 'html':
        this.send(req, res, { status: 200, headers: this.headers('text/html; charset=utf-8'), body: HTML_ERROR_PAGE });
        return;
      case 'truncated': {
        const out = this.buildResponse(entry);
        const body = Buffer.from(out.body);
        this.send(req, res, { ...out, body: body.subarray(0, Math.floor(body.length / 2)) });
        return;
      }
      case 'malformed-xml':
        this.send(req, res, {
          status: 200,
          headers: this.headers(CT_XML),
          body: `<?xml version="1.0" encoding="UTF-8" ?>\n<searchresults timestamp="x"><place place_id="1"></searchresults></place>`,
        });
        return;
      case 'huge':
        this.stream(res, entry, hugeJson(failure.bytes), 'application/json; charset=utf-8');
        return;
      case 'drip': {
        const out = this.buildResponse(entry);
        const body = Buffer.from(out.body);
        const size = failure.chunkBytes ?? 1;
        const chunks = function* (): Generator<Buffer> {
          for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
        };
        this.stream(res, entry, chunks(), out.headers['Content-Type'], failure.intervalMs);
        return;
      }
      case 'switching-protocols':
        // Written on the socket: ServerResponse does not send a 101 as a final answer.
        req.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        return;
    }
  }

  /**
   * Writes `chunks` as a chunked 200, waiting for the socket to drain (and `intervalMs`) between
   * chunks, and counts what the socket took in `entry.bytesSent`: a client that stops reading and
   * closes the connection stops the stream there.
   */
  private stream(res: ServerResponse, entry: FakeRequest, chunks: Iterator<Buffer>, contentType: string, intervalMs = 0): void {
    const socket = res.socket!;
    const startBytes = socket.bytesWritten;
    entry.bytesSent = 0;
    entry.completed = false;
    res.writeHead(200, { ...this.headers(contentType), 'Transfer-Encoding': 'chunked' });
    const count = () => {
      entry.bytesSent = socket.bytesWritten - startBytes;
    };
    socket.on('close', count);
    const next = (): void => {
      for (;;) {
        if (res.destroyed || socket.destroyed) return count();
        const chunk = chunks.next();
        if (chunk.done) {
          res.end(() => {
            count();
            entry.completed = true;
          });
          return;
        }
        const more = res.write(chunk.value, count);
        if (intervalMs > 0) {
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            next();
          }, intervalMs);
          this.timers.add(timer);
          return;
        }
        if (!more) {
          res.once('drain', next);
          return;
        }
      }
    };
    next();
  }

  private send(req: IncomingMessage, res: ServerResponse, out: FakeResponse): void {
    const body = typeof out.body === 'string' ? Buffer.from(out.body, 'utf8') : out.body;
    res.writeHead(out.status, { ...out.headers, 'Content-Length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private crash(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = `fake-nominatim error: ${err instanceof Error ? err.stack : String(err)}`;
    res.writeHead(500, this.headers(CT_TEXT));
    res.end(body);
  }

  private headers(contentType: string): Record<string, string> {
    return { 'Content-Type': contentType, 'Access-Control-Allow-Origin': '*' };
  }

  private plain(status: number, text: string): FakeResponse {
    return { status, headers: this.headers(CT_TEXT), body: text };
  }

  private jsonp(params: Params, status: number, body: string): FakeResponse {
    const callback = params.get('json_callback');
    if (params.contentType === CT_JSON && status === 200 && callback !== undefined) {
      // build_response: each dot-separated part must satisfy Python's str.isidentifier().
      if (callback.split('.').some((part) => !/^[\p{XID_Start}_]\p{XID_Continue}*$/u.test(part))) params.fail('Invalid json_callback value');
      return { status, headers: this.headers(CT_JSONP), body: `${callback}(${body})` };
    }
    return { status, headers: this.headers(params.contentType), body };
  }

  private answer(endpoint: string, params: Params, baseUri: string): { status: number; body: string } {
    switch (endpoint) {
      case 'status':
        return this.status(params);
      case 'details':
        return { status: 200, body: this.details(params) };
      case 'reverse':
        return { status: 200, body: this.reverse(params) };
      case 'lookup':
        return { status: 200, body: this.lookup(params) };
      default:
        return { status: 200, body: this.search(params, baseUri) };
    }
  }

  private status(params: Params): { status: number; body: string } {
    const fmt = parseFormat(params, ['text', 'json'], 'text');
    if (fmt === 'text') return { status: 200, body: 'OK' };
    return {
      status: 200,
      body: '{"status":0,"message":"OK","data_updated":"2025-01-01T00:00:00+00:00","software_version":"5.1.0","database_version":"5.1.0-0"}',
    };
  }

  private render(fmt: string, results: Result[], o: FormatOptions, simple: boolean, xmlRoot: string): string {
    switch (fmt) {
      case 'xml':
        return formatXml(results, o, simple, xmlRoot);
      case 'geojson':
        return formatGeojson(results, o, simple);
      case 'geocodejson':
        return formatGeocodejson(results, o, simple);
      case 'json':
        return formatJson(results, o, simple, 'class');
      default:
        return formatJson(results, o, simple, 'category');
    }
  }

  private search(params: Params, baseUri: string): string {
    const fmt = parseFormat(params, FORMATS, 'jsonv2');
    const geometry = parseGeometry(params, fmt);
    // types.format_country: entries of exactly two characters, not stripped, lower-cased.
    const countries = (params.get('countrycodes') ?? '')
      .split(',')
      .filter((c) => [...c].length === 2)
      .map((c) => c.toLowerCase());
    const excluded = (params.get('exclude_place_ids') ?? '')
      .split(/[\s,]+/)
      .filter((s) => /^\d+$/.test(s))
      .map(Number);
    const viewboxParam = params.get('viewbox') || params.get('viewboxlbrt');
    let viewbox: number[] | null = null;
    if (viewboxParam) {
      viewbox = viewboxParam.split(',').map((s) => Number(s.trim()));
      if (viewbox.length !== 4 || viewbox.some((v) => !Number.isFinite(v))) params.fail("Bad parameter 'viewbox'. Expected 4 coordinates.");
    }
    const bounded = params.getBool('bounded', false);
    const dedupe = params.getBool('dedupe', true);
    const limit = Math.max(1, Math.min(MAX_LIMIT, params.getInt('limit', 10)));
    const maxResults = dedupe ? limit + Math.min(10, limit) : limit;
    const featureType = params.get('featureType') ?? '';
    const rankRange: Record<string, [number, number]> = { country: [4, 4], state: [8, 8], city: [14, 16], settlement: [8, 20] };
    const [minRank, maxRank] = rankRange[featureType] ?? [0, 30];

    const q = params.get('q');
    const structured: Array<[StructuredField, string]> = [];
    for (const key of STRUCTURED_FIELDS) {
      const v = params.get(key);
      if (v) structured.push([key, v]);
    }
    let query: string;
    let candidates: Place[];
    if (q !== undefined) {
      if (structured.length) {
        params.fail(
          'Structured query parameters(amenity, street, city, county, state, postalcode, country) ' +
            "cannot be used together with 'q' parameter.",
        );
      }
      query = q;
      candidates = q.trim() ? PLACES.filter((p) => freeTextMatch(p, q)) : [];
    } else {
      if (!structured.length) params.fail('Nothing to search for.');
      query = structured.map(([, v]) => v).join(', ');
      candidates = PLACES.filter((p) => structuredMatch(p, structured));
    }

    const langs = params.languages();
    let results = candidates
      .filter((p) => !countries.length || countries.includes(p.countryCode))
      .filter((p) => !excluded.includes(p.placeId))
      .filter((p) => p.rankAddress >= minRank && p.rankAddress <= maxRank)
      .filter((p) => {
        if (!viewbox || !bounded) return true;
        const [x1, y1, x2, y2] = viewbox;
        const [lon, lat] = p.centroid;
        return lon >= Math.min(x1, x2) && lon <= Math.max(x1, x2) && lat >= Math.min(y1, y2) && lat <= Math.max(y1, y2);
      })
      .sort((a, b) => importanceOf(b) - importanceOf(a) || a.placeId - b.placeId)
      .slice(0, limit)
      .map((p) => localize(p, langs));

    const options: FormatOptions = {
      addressdetails: params.getBool('addressdetails', false),
      extratags: params.getBool('extratags', false),
      namedetails: params.getBool('namedetails', false),
      geometry,
      query,
      xmlExtra: [],
    };
    const render = (list: Result[]): string => {
      if (fmt === 'xml') {
        const parts: Array<[string, string]> = [...structured, ...(q !== undefined ? [['q', q] as [string, string]] : [])];
        if (geometry) parts.push([`polygon_${geometry}`, '1']);
        parts.push(['addressdetails', '1']);
        if (options.namedetails) parts.push(['namedetails', '1']);
        if (options.extratags) parts.push(['extratags', '1']);
        if (maxResults !== 10) parts.push(['limit', String(maxResults)]);
        if (countries.length) parts.push(['countrycodes', countries.join(',')]);
        const exclude = [...list.map((r) => String(r.placeId)), ...excluded.map(String)].join(',');
        parts.push(['exclude_place_ids', exclude]);
        const viewboxText = viewbox ? viewbox.map((c) => String(Number(c.toPrecision(7)))).join(',') : '';
        if (viewbox) parts.push(['viewbox', viewboxText]);
        if (bounded) parts.push(['bounded', '1']);
        if (!dedupe) parts.push(['dedupe', '0']);
        if (featureType in rankRange) parts.push(['featureType', featureType]);
        parts.push(['format', 'xml']);
        options.xmlExtra = [['querystring', query], ['more_url', `${baseUri}/search?${pyUrlencode(parts)}`]];
        if (exclude) options.xmlExtra.push(['exclude_place_ids', exclude]);
        if (viewbox) options.xmlExtra.push(['viewbox', viewboxText]);
      }
      return this.render(fmt, list, options, false, 'searchresults');
    };

    if (results.length && (this.resultCount !== null || this.padTo !== null)) {
      results = this.pad(results, render);
    }
    return render(results);
  }

  /** Benchmark helper: more results of the same shape, with ids that do not collide. */
  private pad(results: Result[], render: (list: Result[]) => string): Result[] {
    const base = results;
    const clone = (i: number): Result => {
      const r = base[i % base.length];
      const k = Math.floor(i / base.length);
      return k === 0 ? r : { ...r, placeId: r.placeId + 1_000_000 * k, osmId: r.osmId + 1_000_000 * k };
    };
    if (this.resultCount !== null) {
      return Array.from({ length: Math.max(1, this.resultCount) }, (_, i) => clone(i));
    }
    const target = this.padTo ?? 0;
    const out = [...base];
    let size = Buffer.byteLength(render(out));
    while (size < target && out.length < 10_000) {
      const add = Math.max(1, Math.ceil((target - size) / (size / out.length)));
      for (let j = 0; j < add; j++) out.push(clone(out.length));
      size = Buffer.byteLength(render(out));
    }
    return out;
  }

  private reverse(params: Params): string {
    // Nominatim 5.x: /reverse and /lookup default to xml, /search to jsonv2.
    const fmt = parseFormat(params, FORMATS, 'xml');
    const lon = params.getFloat('lon');
    const lat = params.getFloat('lat');
    const geometry = parseGeometry(params, fmt);
    const zoom = params.getInt('zoom', 18);
    const maxRank = REVERSE_MAX_RANKS[Math.max(0, Math.min(18, zoom))];
    const hit = reverseLookup(lat, lon, maxRank);
    const results = hit ? [localize(hit.place, params.languages(), hit.centroid, hit.distance)] : [];
    const xmlQuery: Array<[string, string]> = [['lat', pyFloat(lat)], ['lon', pyFloat(lon)], ['format', 'xml']];
    const zoomParam = params.get('zoom');
    if (zoomParam) xmlQuery.push(['zoom', zoomParam]);
    const query = fmt === 'xml' ? pyUrlencode(xmlQuery) : '';
    return this.render(fmt, results, {
      addressdetails: params.getBool('addressdetails', true),
      extratags: params.getBool('extratags', false),
      namedetails: params.getBool('namedetails', false),
      geometry,
      query,
      xmlExtra: [['querystring', query]],
    }, true, 'reversegeocode');
  }

  private lookup(params: Params): string {
    const fmt = parseFormat(params, FORMATS, 'xml');
    const geometry = parseGeometry(params, fmt);
    const ids: Array<[OsmType, number]> = [];
    for (const raw of (params.get('osm_ids') ?? '').split(',')) {
      const id = raw.trim();
      if (id.length > 1 && 'RNWrnw'.includes(id[0]) && /^\d+$/.test(id.slice(1))) {
        ids.push([id[0].toUpperCase() as OsmType, Number(id.slice(1))]);
      }
    }
    if (ids.length > LOOKUP_MAX_COUNT) params.fail('Too many object IDs.');
    const langs = params.languages();
    const results = ids
      .map(([t, id]) => PLACES.find((p) => p.osmType === t && p.osmId === id))
      .filter((p): p is Place => p !== undefined)
      .map((p) => localize(p, langs));
    return this.render(fmt, results, {
      addressdetails: params.getBool('addressdetails', true),
      extratags: params.getBool('extratags', false),
      namedetails: params.getBool('namedetails', false),
      geometry,
      xmlExtra: [['querystring', '']],
    }, false, 'searchresults');
  }

  private details(params: Params): string {
    parseFormat(params, ['json'], 'json');
    const placeId = params.getInt('place_id', 0);
    let place: Place | undefined;
    if (placeId) {
      place = PLACES.find((p) => p.placeId === placeId);
    } else {
      const osmtype = params.get('osmtype');
      if (osmtype === undefined) params.fail("Missing ID parameter 'place_id' or 'osmtype'.");
      const osmid = params.getInt('osmid');
      // Nominatim's OsmID: exactly N, W or R (it raises ValueError, a 500, for anything else).
      if (osmtype !== 'N' && osmtype !== 'W' && osmtype !== 'R') params.fail(`Illegal OSM type '${osmtype}'. Must be one of N, W, R.`, 500);
      const cls = params.get('class');
      place = PLACES.find((p) => p.osmType === osmtype && p.osmId === osmid && (cls === undefined || p.cls === cls));
    }
    if (!place) params.fail('No place with that OSM ID found.', 404);

    const r = localize(place, params.languages());
    const postcode = place.address.find((line) => line.type === 'postcode');
    const centroid = pointGeojson(place.centroid);
    const geometry = params.getBool('polygon_geojson', false) ? renderGeometry(place, 'geojson') : centroid;
    const parts = [
      `"place_id":${place.placeId}`,
      `"osm_type":${J(place.osmType)}`,
      `"osm_id":${place.osmId}`,
      `"category":${J(place.cls)}`,
      `"type":${J(place.type)}`,
      `"admin_level":${place.adminLevel}`,
      `"localname":${J(r.localName)}`,
      `"names":${pyDict(jsonbOrder(place.names))}`,
      `"addresstags":{}`,
      ...(postcode ? [`"calculated_postcode":${J(postcode.names.ref)}`] : []),
      `"country_code":${J(place.countryCode)}`,
      `"indexed_date":"2025-01-01T00:00:00+00:00"`,
      `"calculated_importance":${pyFloat(importanceOf(place))}`,
      `"extratags":${pyDict(extratagsOf(place) ?? [])}`,
      `"rank_address":${place.rankAddress}`,
      `"rank_search":${place.rankSearch}`,
      `"isarea":${place.osmType === 'R'}`,
      `"centroid":${centroid}`,
      `"geometry":${geometry}`,
    ];
    if (params.getBool('addressdetails', false)) {
      const rows = place.address.map((line, i) => {
        const f = [`"localname":${J(r.rowNames[i])}`];
        if (line.placeId !== undefined) f.push(`"place_id":${line.placeId}`);
        f.push(`"class":${J(line.cls)}`, `"type":${J(line.type)}`);
        if (line.adminLevel !== undefined) f.push(`"admin_level":${line.adminLevel}`);
        f.push(`"rank_address":${line.rankAddress}`, '"distance":0.0', `"isaddress":true`);
        return `{${f.join(',')}}`;
      });
      parts.push(`"address":[${rows.join(',')}]`);
    }
    return `{${parts.join(',')}}`;
  }
}

/* ------------------------------------------------------------------------------------------------
 * Standalone
 * ---------------------------------------------------------------------------------------------- */

function parseArgs(argv: string[]): FakeNominatimOptions {
  const opts: FakeNominatimOptions = {};
  const num = (flag: string, value: string | undefined): number => {
    const v = Number(value);
    if (value === undefined || !Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a non-negative number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--port':
        opts.port = num(flag, argv[++i]);
        break;
      case '--latency':
        opts.latencyMs = num(flag, argv[++i]);
        break;
      case '--pad-to':
        opts.padTo = num(flag, argv[++i]);
        break;
      case '--result-count':
        opts.resultCount = num(flag, argv[++i]);
        break;
      case '--no-fixtures':
        opts.fixtures = false;
        break;
      default:
        throw new Error(
          `unknown option ${flag}\nusage: fake-nominatim [--port N] [--latency MS] [--pad-to BYTES] [--result-count N] [--no-fixtures]`,
        );
    }
  }
  return opts;
}

async function main(): Promise<void> {
  const fake = new FakeNominatim(parseArgs(process.argv.slice(2)));
  const url = await fake.start();
  process.stdout.write(`${url}\n`);
  const shutdown = (): void => {
    void fake.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
