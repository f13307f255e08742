/** Parameter groups several endpoints share (server_glue.py, types.py), and the canonical output they fill. */
import { LAYERS, MAX_VALUE_LENGTH, POLYGON_OUTPUT_MAX_TYPES, ResponseFormat } from './nominatim-params';
import { asciiDigits, BAD_CHARS, CATEGORY, codePointCount, compareDigits, compareOsmIds, digitString, floatString, HAS_DIGIT, HEMISPHERE, IDENTIFIER, normaliseText, normaliseTextKeeping, PY_SPACE, pyFloat, pyFloatOrInfinite, pyStrip } from './python-values';

// ---------------------------------------------------------------------------------------------------------
// Shared parameter groups

/** parse_geometry_details: counts the polygon outputs, then reads polygon_threshold. */
export function geometry(p: Map<string, string>, fmt: ResponseFormat, out: Out): string | undefined {
  // geojson/geocodejson read only polygon_geojson; the other three are ignored there.
  const names =
    fmt === 'geojson' || fmt === 'geocodejson'
      ? ['polygon_geojson']
      : ['polygon_geojson', 'polygon_text', 'polygon_kml', 'polygon_svg'];
  let selected: string | undefined;
  let count = 0;
  for (const name of names) {
    if (bool(p.get(name), false)) {
      selected = name;
      count++;
    }
  }
  if (count > POLYGON_OUTPUT_MAX_TYPES) return 'Too many polygon output options selected.';

  const threshold = p.get('polygon_threshold');
  let thresholdValue = 0;
  if (threshold !== undefined) {
    const n = pyFloat(threshold);
    if (n === undefined) return mustBeNumber('polygon_threshold');
    thresholdValue = n;
  }
  if (selected !== undefined) {
    out.set(selected, '1');
    // Simplification only applies to an output geometry, and only when positive.
    if (thresholdValue > 0) out.set('polygon_threshold', floatString(thresholdValue));
  }
  return undefined;
}

/** addressdetails (default 0 for search, 1 for reverse/lookup), extratags, namedetails always explicit. */
export function outputDetails(p: Map<string, string>, out: Out, addressDefault: boolean): void {
  out.set('addressdetails', bool(p.get('addressdetails'), addressDefault) ? '1' : '0');
  out.set('extratags', bool(p.get('extratags'), false) ? '1' : '0');
  out.set('namedetails', bool(p.get('namedetails'), false) ? '1' : '0');
  // Newer Nominatim versions; false is their default, so only a true value is forwarded.
  if (bool(p.get('entrances'), false)) out.set('entrances', '1');
  if (bool(p.get('transliterate'), false)) out.set('transliterate', '1');
}

/**
 * server_glue.get_layers: `getattr(DataLayer, s.upper())` for each comma-separated entry, not stripped.
 * Nominatim crashes (500) on an unknown name (` poi` included); we answer a 400 instead of sending it upstream.
 */
export function layers(value: string | undefined, out: Out): string | undefined {
  if (value === undefined) return undefined;
  const set = new Set<string>();
  for (const entry of value.split(',')) {
    const name = entry.toUpperCase();
    if (!LAYERS.has(name)) return "Parameter 'layer' must be a comma-separated list of: address, poi, railway, natural, manmade.";
    set.add(name.toLowerCase());
  }
  out.set('layer', [...set].sort().join(','));
  return undefined;
}

/** asgi_adaptor.get_bool: only the exact value '0' is false (' 0' is true); absent gives the default. */
export function bool(value: string | undefined, fallback: boolean): boolean {
  return value === undefined ? fallback : value !== '0';
}

/**
 * types.format_country: entries of exactly two characters (not stripped: ` de` is ignored), lower-cased;
 * others ignored. Sorted and de-duplicated: the list is a filter, its order does not matter.
 */
export function countryCodes(value: string | undefined): string {
  if (!value) return '';
  const set = new Set<string>();
  for (const cc of value.split(',')) {
    if (cc.length >= 2 && cc.length <= 4 && codePointCount(cc) === 2) set.add(cc.toLowerCase());
  }
  return [...set].sort().join(',');
}

/**
 * format_excluded (5.1): entries stripped, empty ones ignored, the rest must be place IDs (digits).
 * OSM IDs (N123, W…, R…) are accepted too: newer Nominatim versions take them, an older one answers its
 * own 400. Returns the sorted, de-duplicated list, or undefined when an entry is neither.
 */
export function placeIds(value: string): string | undefined {
  const numeric = new Set<string>();
  const osm = new Set<string>();
  for (const entry of value.split(',')) {
    // format_excluded strips each entry.
    const id = pyStrip(entry);
    if (id === '') continue;
    const digits = digitString(id);
    if (digits !== undefined) {
      numeric.add(digits);
      continue;
    }
    const type = id[0].toUpperCase();
    const osmDigits = id.length > 1 && (type === 'N' || type === 'W' || type === 'R') ? digitString(id.slice(1)) : undefined;
    if (osmDigits === undefined) return undefined;
    osm.add(type + osmDigits);
  }
  return [...[...numeric].sort(compareDigits), ...[...osm].sort(compareOsmIds)].join(',');
}

/** Bbox.from_param: four floats, clamped to the world, any two opposite corners; written min/min/max/max. */
export function bbox(value: string): { value: string; error?: undefined } | { value?: undefined; error: string } {
  const parts = value.split(',');
  if (parts.length !== 4) return { error: 'Bounding box parameter needs 4 coordinates.' };
  const c: number[] = [];
  for (const part of parts) {
    const n = pyFloatOrInfinite(part);
    if (n === undefined || !Number.isFinite(n)) return { error: 'Bounding box parameter needs to be numbers.' };
    c.push(n);
  }
  const x1 = Math.min(180, Math.max(-180, c[0]));
  const x2 = Math.min(180, Math.max(-180, c[2]));
  const y1 = Math.min(90, Math.max(-90, c[1]));
  const y2 = Math.min(90, Math.max(-90, c[3]));
  if (x1 === x2 || y1 === y2) return { error: 'Bounding box with invalid parameters.' };
  return {
    value: [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)].map(floatString).join(','),
  };
}

/**
 * server_glue.get_accepted_languages: the parameter if non-empty, else the header (absent -> omitted, so
 * upstream's DEFAULT_LANGUAGE applies). The value is keyed as the language list Nominatim derives from it.
 */
export function acceptLanguage(param: string | undefined, header: string | undefined): string | undefined {
  if (param) return languageList(param);
  // The header is not a parameter: oversized or broken ones are ignored rather than answered with a 400.
  // A tab is not broken there: RFC 9110 lets a list put one around its commas, and Nominatim's \s reads it.
  // Read as a space (the same to LANGUAGE_RANGE): a header naming no language is kept as sent, and with
  // a tab it would be a key whose accept-language parameter is a 400 (import reads keys back).
  const spaced = header?.replace(/\t/g, ' ');
  if (spaced && spaced.length <= MAX_VALUE_LENGTH && !BAD_CHARS.test(spaced)) return languageList(spaced);
  return undefined;
}

/** localization.Locales.from_accept_languages: `\s*([a-z_-]+)(?:;\s*q\s*=\s*([01](?:\.\d+)?))?\s*`, re.I. */
// Python's \s (PY_SPACE), not JavaScript's: `de\ufeff` matches no range for Nominatim.
const LANGUAGE_RANGE = new RegExp(`^${PY_SPACE}*([a-z_-]+)(?:;${PY_SPACE}*q${PY_SPACE}*=${PY_SPACE}*([01](?:\\.\\p{Nd}+)?))?${PY_SPACE}*$`, 'iu');

/**
 * The list Locales.from_accept_languages builds (case kept: it looks names up as `name:<lang>`, so `DE`
 * is not `de`), written back comma-separated: Nominatim reads that list back as the same list. A value
 * in which no part parses is kept as sent (Nominatim then localises nothing, unlike an absent one).
 */
function languageList(value: string): string {
  const candidates: Array<[string, number]> = [];
  for (const desc of value.split(',')) {
    const m = LANGUAGE_RANGE.exec(desc);
    if (m) candidates.push([m[1], m[2] === undefined ? 1 : Number(asciiDigits(m[2]))]);
  }
  if (candidates.length === 0) return value;
  candidates.sort((a, b) => b[1] - a[1]);
  const languages: string[] = [];
  for (const [lid] of candidates) {
    languages.push(lid);
    const dash = lid.indexOf('-');
    if (dash !== -1 && candidates.every((c) => c[0] !== lid.slice(0, dash))) languages.push(lid.slice(0, dash));
  }
  return languages.join(',');
}

/** Free text of a structured field; a value of spaces only still counts upstream, kept as one space. */
export function freeText(rawValue: string): string {
  const t = normaliseText(rawValue);
  return t === '' ? ' ' : t;
}

/** What of a q keeps its case: a `[class=type]`, and with a digit in q, a lone hemisphere letter. */
const CATEGORY_KEPT = new RegExp(CATEGORY.source, 'gu');
const CATEGORY_OR_HEMISPHERE_KEPT = new RegExp(`${CATEGORY.source}|${HEMISPHERE.source}`, 'gu');

/**
 * q: normaliseText (case does not matter to Nominatim's search itself), except for what Nominatim reads
 * case-sensitively before searching, kept as written: a `[class=type]` category, and a lone N/S/E/W
 * of a coordinate ("52.5N 13.4E" is a coordinate, "52.5n 13.4e" a text search; each its own key).
 */
export function searchText(rawValue: string): string {
  return normaliseTextKeeping(rawValue, HAS_DIGIT.test(rawValue) ? CATEGORY_OR_HEMISPHERE_KEPT : CATEGORY_KEPT);
}

/** build_response: each dot-separated part must be a Python identifier, at any length (MAX_VALUE_LENGTH bounds it). */
export function validCallback(value: string): boolean {
  for (const part of value.split('.')) if (!IDENTIFIER.test(part)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Output

/** The canonical parameters: set by name, encoded sorted by name. */
export class Out {
  private readonly values = new Map<string, string>();

  set(name: string, value: string): void {
    this.values.set(name, value);
  }

  encode(): string {
    const names = [...this.values.keys()].sort();
    let s = '';
    for (const name of names) {
      if (s !== '') s += '&';
      s += `${encodeURIComponent(name)}=${encodeURIComponent(this.values.get(name) as string)}`;
    }
    return s;
  }
}

export function mustBeNumber(name: string): string {
  return `Parameter '${name}' must be a number.`;
}
