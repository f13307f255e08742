import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CachedAnswer, StoredAnswer } from './cached-answer';
import { L1Cache } from './l1-cache';
import { heapWarning, stringBytes } from './l1-memory';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** What the heap and memory outside it (Buffers' backing stores) hold now, after full collections. */
function held(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** A JSON answer of about `bytes`, distinct for each `i`, shaped as Nominatim's jsonv2. */
function answerBody(i: number, bytes: number): Buffer {
  const places: unknown[] = [];
  for (let n = 0; JSON.stringify(places).length < bytes; n++) {
    places.push({
      place_id: 100_000 + i * 7 + n,
      licence: 'Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright',
      osm_type: 'way',
      osm_id: 2_000_000 + i,
      lat: String(48 + ((i * 37) % 1000) / 997),
      lon: String(11 + ((i * 53) % 1000) / 991),
      category: 'highway',
      type: 'residential',
      place_rank: 26,
      importance: 0.0533,
      addresstype: 'road',
      name: `Street ${i}`,
      display_name: `Street ${i}, Quarter ${n}, Munich, Bavaria, 80331, Germany`,
      boundingbox: ['48.1351', '48.1371', '11.5810', '11.5830'],
    });
  }
  return Buffer.from(JSON.stringify(places));
}

const T0 = Date.now();
const keyOf = (i: number) => `places:v1:search:addressdetails=0&extratags=0&format=json&limit=10&namedetails=0&q=${i}%20main%20street%20springfield`;

/** `n` distinct answers of about `bytes` in their stored form (compressed from `compressMinBytes`), as Redis holds them. */
function storedAnswers(n: number, bytes: number, compressMinBytes: number): StoredAnswer[] {
  return Array.from({ length: n }, (_, i) =>
    new CachedAnswer(200, 'application/json; charset=utf-8', answerBody(i, bytes), T0, T0 + 3_600_000, T0 + 90_000_000, false).toStored(compressMinBytes),
  );
}

/**
 * Fills an L1 with the `stored` answers; what it counts and what memory really grew by. `plain`: as
 * fills from upstream (each keeps its plain copy while there is room), else as reads from Redis (the
 * compact form only). `stored` is held before and after alike, so it is not part of what grew.
 */
function fill(stored: StoredAnswer[], opts: { compressMinBytes: number; plain: boolean }): { counted: number; real: number; entries: number; copies: number } {
  const n = stored.length;
  const l1 = new L1Cache(1024 ** 3, opts.compressMinBytes);
  const before = held();
  for (let i = 0; i < n; i++) {
    const a = CachedAnswer.fromStored(stored[i], T0 + 90_000_000)!;
    if (opts.plain) void a.body;
    // A new key string, as each request's canonical key is: the L1 is what keeps it.
    l1.set(keyOf(i), a, T0);
  }
  const real = held() - before;
  const result = { counted: l1.bytes, real, entries: l1.entries, copies: l1.plainCopies };
  // (`stored` is still in use here, so its collection does not hide what the L1 took)
  expect(stored).toHaveLength(n);
  l1.clear();
  return result;
}

describe('L1 memory accounting', () => {
  // The count must cover what memory really grows by (else L1_MAX_BYTES does not bound the process),
  // and not overstate it much (else the L1 holds fewer answers than its budget allows).
  it.each([
    ['gzip members of ~1 KB answers', 1000, 256, false],
    ['gzip members and plain copies of ~3 KB answers', 3000, 256, true],
    ['uncompressed ~500 B answers', 500, 1024, false],
  ])('counts %s at what they hold, or a little more', (_what, bytes, compressMinBytes, plain) => {
    // heapUsed after two full collections still moves with whatever else the worker holds at that moment
    // (seen in full runs on a loaded machine, both ways): the median of three fills, and 3 % of slack, far
    // below what an uncounted key or Buffer header (tens of per cent) would take.
    // The answers are made (JSON, gzip) once for the three fills: making them is most of the time, and
    // each fill still starts from the same stored forms with a new L1 and new answers read from them.
    const stored = storedAnswers(10_000, bytes, compressMinBytes);
    const runs = [1, 2, 3].map(() => fill(stored, { compressMinBytes, plain }));
    const { counted, entries, copies } = runs[0];
    const real = runs.map((r) => r.real).sort((a, b) => a - b)[1];
    expect(runs.map((r) => r.counted)).toEqual([counted, counted, counted]);
    expect([entries, copies]).toEqual([10_000, plain ? 10_000 : 0]);
    expect({ perEntryCounted: Math.round(counted / entries), covers: counted >= real * 0.97 }).toEqual({
      perEntryCounted: Math.round(counted / entries),
      covers: true,
    });
    expect({ perEntryReal: Math.round(real / entries), overstated: counted >= real * 1.35 }).toEqual({ perEntryReal: Math.round(real / entries), overstated: false });
  });

  it('counts a latin1 string at its V8 size', () => {
    expect(stringBytes('')).toBe(16);
    expect(stringBytes('a'.repeat(9))).toBe(32);
    expect(stringBytes('é', false)).toBe(24);
  });
});

describe(heapWarning.name, () => {
  it('warns when the L1 may take more than half the heap, and names the variable', () => {
    expect(heapWarning(64 * 1024 ** 2, 256 * 1024 ** 2)).toBeUndefined();
    expect(heapWarning(128 * 1024 ** 2, 256 * 1024 ** 2)).toBeUndefined();
    expect(heapWarning(129 * 1024 ** 2, 256 * 1024 ** 2)).toMatch(/^L1_MAX_BYTES \(129 MiB\) is more than half the V8 heap limit \(256 MiB\)/);
  });
});

/** The heap flags that keep RSS near what L1_MAX_BYTES counts, as each way of running the service sets them. */
describe('heap flags of npm start, the image and docker-compose.yml', () => {
  const read = (file: string) => readFileSync(join(__dirname, '../../..', file), 'utf8');

  it("are one set: the image's NODE_OPTIONS are npm start's flags, and compose's default for NODE_OPTIONS is the image's", () => {
    const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
    const startFlags = start.split(' ').filter((w) => /^--max-(old|semi)-space-size=/.test(w));
    expect(startFlags).toHaveLength(2);
    const image = /^ENV NODE_OPTIONS="([^"]+)"$/m.exec(read('Dockerfile'))?.[1];
    expect(image).toBe(startFlags.join(' '));
    // `:-`: unset or empty in the shell and .env alike is the image's; a bare pass-through would
    // hand the container an empty NODE_OPTIONS (no heap flags) whenever it is unset.
    const compose = read('docker-compose.yml');
    const defaults = [...compose.matchAll(/^ +NODE_OPTIONS: \$\{NODE_OPTIONS:-([^}]*)\}$/gm)].map((m) => m[1]);
    expect(defaults).toEqual([image]);
    expect(compose).not.toMatch(/^ +NODE_OPTIONS:(?! \$\{NODE_OPTIONS:-)/m);
  });

  it('reach every service built from the image: NODE_OPTIONS is in the settings each of them merges', () => {
    const compose = read('docker-compose.yml');
    const settings = /^x-settings: &settings\n((?: +.*\n)+)/m.exec(compose)?.[1] ?? '';
    expect(settings).toMatch(/^ +NODE_OPTIONS: /m);
    const services = compose.split(/^ {2}(?=[a-z][a-z0-9-]*:)/m).filter((s) => /^ {4}build: \.$/m.test(s));
    expect(services.map((s) => s.split(':')[0])).toEqual(['web', 'web-cluster']);
    for (const s of services) expect([s.split(':')[0], /^ {6}<<: \*settings$/m.test(s)]).toEqual([s.split(':')[0], true]);
  });
});
