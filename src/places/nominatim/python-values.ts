/**
 * Text and numbers read the way Nominatim's Python frontend reads them (str methods, int(), float()),
 * with the character classes the canonicaliser refuses or normalises. Pure.
 */
import { MAX_TEXT_LENGTH } from './nominatim-params';

// ---------------------------------------------------------------------------------------------------------
// Character classes (all linear, no nested quantifiers that can backtrack)

const ASCII_PRINTABLE = /^[\x20-\x7e]*$/;
/** C0/C1 controls, DEL, U+FFFD (what a decoder leaves of invalid UTF-8) and lone surrogates. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
export const BAD_CHARS = /[\u0000-\u001f\u007f-\u009f\ufffd]|\p{Cs}/u;
/**
 * The whitespace of Python's str.strip(), str.isspace() and `re`'s \s on str (the C0/C1 separators
 * Python also counts are refused earlier). Not JavaScript's \s: that also holds U+FEFF, which Python
 * keeps (`int('\ufeff1')` fails) and Nominatim's ICU rules delete ("ber\ufefflin" is "berlin").
 */
const PY_SPACE_CHARS = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
export const PY_SPACE = `[${PY_SPACE_CHARS}]`;
const WHITESPACE_RUN = new RegExp(`${PY_SPACE}+`, 'g');
const ASCII_DIGITS = /^[0-9]+$/;
const UNICODE_DIGIT = /\p{Nd}/u;
const UNICODE_DIGITS_G = /\p{Nd}/gu;
const PY_INT = /^[+-]?[0-9](?:_?[0-9])*$/;
const PY_FLOAT =
  /^[+-]?(?:inf|infinity|nan|(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?)$/i;
const PY_NOT_FINITE = /^[+-]?(?:inf|infinity|nan)$/i;
/** Python str.isidentifier(): XID_Start or '_', then XID_Continue. */
export const IDENTIFIER = /^[\p{XID_Start}_]\p{XID_Continue}*$/u;
/**
 * A hemisphere letter standing alone (not inside a word, no accent on it). helpers.COORD_REGEX reads
 * only upper-case N/S/E/W: "52.5 N 13.4 E" is a coordinate to Nominatim, "52.5 n 13.4 e" a text search.
 */
export const HEMISPHERE = /(?<![\p{L}\p{M}])[NSEWnsew](?![\p{L}\p{M}])/u;
/** helpers.CATEGORY_REGEX's `[class=type]`, which Nominatim takes as written (OSM tags are case-sensitive). */
export const CATEGORY = /\[[a-zA-Z_]+=[a-zA-Z_]+\]/u;
/** Everything helpers.COORD_REGEX can consume; a q made only of these may be a bare coordinate. */
export const COORDINATE_ONLY = new RegExp(`^[\\p{Nd}.,+\\-°′'"″NSEW[\\]${PY_SPACE_CHARS}]*$`, 'u');
export const HAS_DIGIT = /\p{Nd}/u;

// ---------------------------------------------------------------------------------------------------------
// Public helpers

/**
 * Trim, collapse inner whitespace to one space, case-fold (toLowerCase). No Unicode normalisation: Nominatim
 * does none before its ICU rules, which delete a combining mark but keep a composed letter ('u\u0308' is
 * read 'u', '\u00fc' stays '\u00fc'), so NFD and NFC spellings are different questions to it.
 */
export function normaliseText(s: string): string {
  return foldCase(pyStrip(s).replace(WHITESPACE_RUN, ' '));
}

/**
 * normaliseText, except that what `kept` (a global pattern) matches keeps its letter case: the parts of
 * a text Nominatim reads case-sensitively. The parts between are folded as normaliseText folds.
 */
export function normaliseTextKeeping(s: string, kept: RegExp): string {
  const t = pyStrip(s).replace(WHITESPACE_RUN, ' ');
  let out = '';
  let from = 0;
  for (const m of t.matchAll(kept)) {
    out += foldCase(t.slice(from, m.index)) + m[0];
    from = m.index + m[0].length;
  }
  return from === 0 ? foldCase(t) : out + foldCase(t.slice(from));
}

/**
 * toLowerCase, except for U+212A KELVIN SIGN, the one character outside ASCII that it turns into an ASCII
 * letter: folded, `[\u212A=x]` (a text search to Nominatim, whose CATEGORY_REGEX is ASCII) would become the
 * category `[k=x]`, sharing that category's key and sent upstream as it.
 */
function foldCase(s: string): string {
  return s.includes('\u212A') ? s.split('\u212A').map((part) => part.toLowerCase()).join('\u212A') : s.toLowerCase();
}

// ---------------------------------------------------------------------------------------------------------
// Numbers, parsed like Python's int() and float() (underscores between digits, any Unicode decimal digit)

/** Python int() (asgi_adaptor.get_int): returns the canonical decimal string (sign, no leading zeros), any size. */
export function pyInt(value: string): string | undefined {
  const s = asciiDigits(pyStrip(value));
  if (!PY_INT.test(s)) return undefined;
  const negative = s[0] === '-';
  const digits = s.replace(/^[+-]/, '').replace(/_/g, '').replace(/^0+(?=.)/, '');
  return negative && digits !== '0' ? `-${digits}` : digits;
}

/** Python float() without nan/inf (get_float rejects those): a finite number or undefined. */
export function pyFloat(value: string): number | undefined {
  const n = pyFloatOrInfinite(value);
  return n !== undefined && Number.isFinite(n) ? n : undefined;
}

export function pyFloatOrInfinite(value: string): number | undefined {
  const s = asciiDigits(pyStrip(value));
  if (!PY_FLOAT.test(s)) return undefined;
  if (PY_NOT_FINITE.test(s)) return Number.NaN;
  const n = Number(s.replace(/_/g, ''));
  return Number.isNaN(n) ? undefined : n;
}

const PY_SPACE_CHAR = new RegExp(`^${PY_SPACE}$`);

/**
 * Python's str.strip() (what int() and float() skip too): PY_SPACE at either end. Index scans, not a
 * `\s+$` pattern, which retries a long inner run of spaces from each of its characters.
 */
export function pyStrip(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && PY_SPACE_CHAR.test(value[start])) start++;
  while (end > start && PY_SPACE_CHAR.test(value[end - 1])) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/** Shortest round-trip form; Python's float() reads it back to the same value. */
export function floatString(n: number): string {
  return n === 0 ? '0' : String(n);
}

/** Clamp a canonical integer string without converting huge values. */
export function clampInt(n: string, min: number, max: number): number {
  if (n.length > 15) return n[0] === '-' ? min : max;
  return Math.min(max, Math.max(min, Number(n)));
}

/** str.isdigit() then int(): digits only (any script), as a canonical string without leading zeros. */
export function digitString(value: string): string | undefined {
  if (ASCII_DIGITS.test(value)) return value.replace(/^0+(?=.)/, '');
  if (value === '' || ASCII_PRINTABLE.test(value)) return undefined;
  const s = asciiDigits(value);
  return ASCII_DIGITS.test(s) ? s.replace(/^0+(?=.)/, '') : undefined;
}

/** Replaces every Unicode decimal digit by its ASCII digit (Python's int()/float() accept them all). */
export function asciiDigits(s: string): string {
  if (ASCII_PRINTABLE.test(s)) return s;
  return s.replace(UNICODE_DIGITS_G, (d) => String(unicodeDigitValue(d.codePointAt(0) as number)));
}

/** Decimal digits come in runs of ten starting at zero; the value is the offset in the run. */
function unicodeDigitValue(cp: number): number {
  let start = cp;
  while (start > 0 && cp - start < 100 && UNICODE_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}

export function compareDigits(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

export function compareOsmIds(a: string, b: string): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : compareDigits(a.slice(1), b.slice(1));
}

export function codePointCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

/** More than MAX_TEXT_LENGTH characters (code points); the UTF-16 length is an upper bound for the cheap test. */
export function tooLongText(s: string): boolean {
  return s.length > MAX_TEXT_LENGTH && codePointCount(s) > MAX_TEXT_LENGTH;
}
