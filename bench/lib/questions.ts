/**
 * Request streams: a seeded PRNG (runs are reproducible), a Zipf sampler, and the "noisy" spellings
 * of one question that a canonicalising cache must recognise as the same question: letter case,
 * surrounding and repeated spaces, '+' or %20 for a space, parameter order, parameter-name case,
 * leading zeros in numbers, parameters Nominatim ignores.
 */

/** mulberry32: small, fast, good enough to shuffle a benchmark. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ranks 0..n-1 with P(k) ∝ 1/(k+1)^s. */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s);
  return () => {
    const u = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Place names the fake Nominatim knows (most give non-empty answers) and a few it does not. */
export const PLACE_NAMES = [
  'Berlin', 'Paris', 'München', 'Kraków', 'Reykjavík', 'Springfield', 'Zürich', 'San Francisco', 'Market Street',
  'Golden Gate Bridge', 'Unter den Linden', 'Bahnhofstrasse', 'Zürich HB', 'São Paulo', 'Tokyo', 'Moscow',
  'Deutschland', 'Munich', 'Cracow', 'Atlantis',
] as const;

/** One question of the noisy stream: /search?q=<name>&format=json&limit=<limit>. */
export interface Question {
  id: number;
  name: string;
  limit: number;
}

/** names × limits 1..n, enough to make `count` distinct questions. */
export function questions(count: number): Question[] {
  const perName = Math.ceil(count / PLACE_NAMES.length);
  const out: Question[] = [];
  for (let limit = 1; limit <= perName && out.length < count; limit++) {
    for (const name of PLACE_NAMES) {
      if (out.length === count) break;
      out.push({ id: out.length, name, limit });
    }
  }
  return out;
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)];

function spellText(name: string, random: () => number): string {
  const cased = pick(random, [
    (s: string) => s,
    (s: string) => s.toLowerCase(),
    (s: string) => s.toUpperCase(),
    (s: string) => [...s].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join(''),
  ])(name);
  return pick(random, [
    (s: string) => s,
    (s: string) => `  ${s} `,
    (s: string) => s.replace(/ /g, '   '),
    (s: string) => ` ${s.replace(/ /g, '  ')}  `,
  ])(cased);
}

function encodeText(text: string, random: () => number): string {
  const e = encodeURIComponent(text);
  return random() < 0.5 ? e : e.replace(/%20/g, '+');
}

/** One spelling of `q`: the service must map every spelling of a question to one cache key. */
export function noisyPath(q: Question, random: () => number): string {
  // Names exactly as Nominatim spells them (it reads them case-sensitively); a name given twice keeps
  // its last value there, so the pair stays together through the shuffle below.
  const twice = (name: string, value: string) => (random() < 0.25 ? `${name}=0&${name}=${value}` : `${name}=${value}`);
  const params = [
    twice('q', encodeText(spellText(q.name, random), random)),
    twice('format', 'json'),
    twice('limit', pick(random, [String(q.limit), String(q.limit), `0${q.limit}`, `%20${q.limit}`])),
  ];
  // Parameters the canonicaliser drops (unknown, or never forwarded).
  if (random() < 0.2) params.push(pick(random, ['utm_source=newsletter', 'email=someone%40example.org', 'debug=0']));
  for (let i = params.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [params[i], params[j]] = [params[j], params[i]];
  }
  return `/search?${params.join('&')}`;
}

/** The naive baseline only knows /api?q=: the same q spelling, its other parameters dropped. */
export function naivePathOf(noisy: string): string {
  const params = new URLSearchParams(noisy.slice(noisy.indexOf('?') + 1));
  let q = '';
  for (const [k, v] of params) if (k.toLowerCase() === 'q') q = v;
  return `/api?q=${encodeURIComponent(q)}`;
}
