/**
 * The client's request directives (RFC 9111 section 5.2.1) and what they allow a cached answer to be
 * used for. Pure: the cache-aside service asks `judge` about the copy it found.
 */

export interface RequestDirectives {
  /** no-cache (or Pragma: no-cache without Cache-Control): ask upstream, then replace the entry */
  noCache: boolean;
  /** no-store: do not keep the answer (a stored one may still be used) */
  noStore: boolean;
  /** only-if-cached: never ask upstream; 504 when nothing usable is stored */
  onlyIfCached: boolean;
  /** max-age=N: no copy older than N seconds */
  maxAge?: number;
  /** max-stale[=N]: a copy stale by at most N seconds (Infinity without a value) is acceptable */
  maxStale?: number;
  /** min-fresh=N: a copy must stay fresh for at least N more seconds */
  minFresh?: number;
}

/** RFC 9111 1.2.2: a delta-seconds past what we can represent is taken as 2^31. */
const DELTA_SECONDS_MAX = 2 ** 31;
const DELTA_SECONDS = /^[0-9]+$/;
/**
 * The parts of a directive (RFC 9110 5.6.2, 5.6.4). Each pattern is one character class; the whitespace
 * between parts is trimmed. One pattern with `\s*` on both sides of an optional part would backtrack
 * through a long run of spaces in time quadratic in its length: a request header stalling the event loop.
 */
const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
const BARE_VALUE = /^[^\s,;"]*$/;
const LINE_TERMINATORS = '\n\r\u2028\u2029';

type Header = string | string[] | undefined;

/**
 * The directives that change what the cache does, or undefined when there are none (no header, or
 * only directives without a request meaning, such as `public`). Unknown directives are ignored and a
 * directive with a malformed value is ignored, as RFC 9111 5.2 lets a cache do.
 */
export function parseRequestDirectives(cacheControl: Header, pragma: Header): RequestDirectives | undefined {
  const d: RequestDirectives = { noCache: false, noStore: false, onlyIfCached: false };
  let any = false;
  const cc = join(cacheControl);
  if (cc !== undefined) {
    for (const part of splitList(cc)) {
      const directive = parseDirective(part);
      if (directive === undefined) continue;
      const { name, value } = directive;
      switch (name) {
        case 'no-cache':
          d.noCache = any = true;
          break;
        case 'no-store':
          d.noStore = any = true;
          break;
        case 'only-if-cached':
          d.onlyIfCached = any = true;
          break;
        case 'max-age':
        case 'min-fresh': {
          const n = deltaSeconds(value);
          if (n === undefined) break;
          if (name === 'max-age') d.maxAge = n;
          else d.minFresh = n;
          any = true;
          break;
        }
        case 'max-stale': {
          const n = value === undefined || value === '' ? Infinity : deltaSeconds(value);
          if (n === undefined) break;
          d.maxStale = n;
          any = true;
          break;
        }
        default:
          break;
      }
    }
    return any ? d : undefined;
  }
  // RFC 9111 5.4: Pragma: no-cache only counts when there is no Cache-Control.
  const p = join(pragma);
  if (p !== undefined && splitList(p).some((x) => x.trim().toLowerCase() === 'no-cache')) {
    d.noCache = true;
    return d;
  }
  return undefined;
}

type Usability = 'fresh' | 'stale' | 'unusable';

/**
 * Whether a stored copy may answer a request with these directives (RFC 9111 4.2 and 5.2.1): `fresh`,
 * `stale` (stale, within max-stale), or `unusable` (go upstream, or 504 for only-if-cached).
 */
export function judge(copy: { storedAt: number; freshUntil: number }, now: number, d: RequestDirectives): Usability {
  if (d.noCache) return 'unusable';
  const ageSeconds = Math.max(0, Math.floor((now - copy.storedAt) / 1000));
  if (d.maxAge !== undefined && ageSeconds > d.maxAge) return 'unusable';
  const freshForMs = copy.freshUntil - now;
  if (d.minFresh !== undefined && freshForMs < d.minFresh * 1000) return 'unusable';
  if (freshForMs > 0) return 'fresh';
  if (d.maxStale !== undefined && -freshForMs <= d.maxStale * 1000) return 'stale';
  return 'unusable';
}

/**
 * One list member: token, optionally `=` and a token or quoted-string, with whitespace around each
 * (`\s`, as String.prototype.trim reads it); undefined when it is not that. The name comes back in
 * lower case, a quoted value unquoted; a bare `name=` has the value ''.
 */
function parseDirective(part: string): { name: string; value: string | undefined } | undefined {
  const s = part.trim();
  const name = NAME.exec(s)?.[0];
  if (name === undefined) return undefined;
  const rest = s.slice(name.length).trimStart();
  if (rest === '') return { name: name.toLowerCase(), value: undefined };
  if (rest[0] !== '=') return undefined;
  const v = rest.slice(1).trimStart();
  if (v[0] !== '"') return BARE_VALUE.test(v) ? { name: name.toLowerCase(), value: v } : undefined;
  // The string is trimmed, so its closing quote must be its last character.
  const end = closingQuote(v);
  if (end !== v.length - 1) return undefined;
  return { name: name.toLowerCase(), value: v.slice(1, end).replace(/\\(.)/g, '$1') };
}

/**
 * The index of the quote that closes the quoted-string `s` starts with, or -1. A backslash escapes
 * any character but a line terminator (which makes the string malformed).
 */
function closingQuote(s: string): number {
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '"') return i;
    if (c === '\\') {
      if (i + 1 === s.length || LINE_TERMINATORS.includes(s[i + 1])) return -1;
      i++;
    }
  }
  return -1;
}

function deltaSeconds(value: string | undefined): number | undefined {
  if (value === undefined || !DELTA_SECONDS.test(value)) return undefined;
  const n = Number(value);
  return n > DELTA_SECONDS_MAX ? DELTA_SECONDS_MAX : n;
}

function join(h: Header): string | undefined {
  return Array.isArray(h) ? (h.length > 0 ? h.join(',') : undefined) : h;
}

/** Splits a comma-separated list, keeping commas inside quoted strings. */
function splitList(s: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}
