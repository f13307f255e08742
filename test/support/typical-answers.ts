/**
 * Distinct answers of the size Nominatim gives for a typical question, for memory tests and the
 * bench's L1 capacity scenario: /search jsonv2 arrays of 1-4 places, between `min` and `max` bytes of
 * JSON, each with its own ids, names and coordinates (so each compresses as a real one does, not as a
 * repeat of the one before), written to Redis in the service's own form.
 */
import type { RedisClientType } from 'redis';
import { CachedAnswer } from '../../src/places/cache/cached-answer';
import { canonicaliseRoute } from '../../src/places/place-routes';

const STREETS = ['Hauptstraße', 'Rue de la Paix', 'Main Street', 'Via Roma', 'Calle Mayor', 'Kerkstraat', 'Ulica Długa', 'High Street'];
const CITIES = ['München, Bayern, 80331', 'Paris, Île-de-France, 75002', 'Springfield, Illinois, 62701', 'Roma, Lazio, 00184', 'Madrid, Comunidad de Madrid, 28013'];

/** The /api question of answer `i`. */
export function typicalQuestion(i: number): string {
  return `${i} ${STREETS[i % STREETS.length]} ${CITIES[i % CITIES.length].split(',')[0]}`;
}

export function typicalApiPath(i: number): string {
  return `/api?q=${encodeURIComponent(typicalQuestion(i))}`;
}

/** Answer `i`: between `min` and `max` bytes (spread evenly over i), distinct from every other. */
export function typicalAnswer(i: number, min = 500, max = 1500): Buffer {
  const target = min + ((i * 7919) % (max - min + 1));
  const places: Array<Record<string, unknown>> = [];
  let json = '[]';
  for (let n = 0; n < 50; n++) {
    const street = STREETS[(i + n) % STREETS.length];
    const city = CITIES[(i + 2 * n) % CITIES.length];
    places.push({
      place_id: 100_000 + i * 13 + n,
      licence: 'Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright',
      osm_type: n % 2 ? 'node' : 'way',
      osm_id: 20_000_000 + i * 17 + n,
      lat: (48 + ((i * 37 + n) % 10_000) / 9_973).toFixed(7),
      lon: (11 + ((i * 53 + n) % 10_000) / 9_967).toFixed(7),
      category: n % 2 ? 'place' : 'highway',
      type: n % 2 ? 'house' : 'residential',
      place_rank: 26 + (n % 4),
      importance: Number((0.05 + ((i + n) % 100) / 1000).toFixed(8)),
      addresstype: n % 2 ? 'place' : 'road',
      name: `${street} ${i % 200}`,
      display_name: `${(i % 200) + n}, ${street}, ${city}, ${['Deutschland', 'France', 'United States', 'Italia', 'España'][(i + n) % 5]}`,
      boundingbox: [(48.1 + n / 100).toFixed(7), (48.2 + n / 100).toFixed(7), (11.5 + i / 1e6).toFixed(7), (11.6 + i / 1e6).toFixed(7)],
    });
    json = JSON.stringify(places);
    // a place is ~420 bytes: stop at the one that comes nearest
    if (Buffer.byteLength(json) >= target - 210) break;
  }
  return Buffer.from(json);
}

export interface TypicalPolicy {
  ttlSeconds: number;
  keepSeconds: number;
  compressMinBytes: number;
}

/** Writes answers `from`..`to`-1 for their /api questions, as the service stores them. */
export async function seedTypical(redis: RedisClientType, from: number, to: number, policy: TypicalPolicy): Promise<void> {
  for (let start = from; start < to; start += 2000) {
    const multi = redis.multi();
    const now = Date.now();
    for (let i = start; i < Math.min(to, start + 2000); i++) {
      const c = canonicaliseRoute({ variant: 'api' }, `q=${encodeURIComponent(typicalQuestion(i))}`, undefined);
      if (!c.ok) throw new Error(`question ${i} is not valid`);
      const freshUntil = now + policy.ttlSeconds * 1000;
      const staleUntil = freshUntil + policy.keepSeconds * 1000;
      const answer = new CachedAnswer(200, 'application/json; charset=utf-8', typicalAnswer(i), now, freshUntil, staleUntil, false);
      multi.set(c.request.key, JSON.stringify(answer.toStored(policy.compressMinBytes)), { PX: staleUntil - now });
    }
    await multi.exec();
  }
}
