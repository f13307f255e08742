/**
 * Accept-Encoding as RFC 9110 section 12.5.3 reads it, for the one coding we serve: is gzip
 * acceptable, and at least as welcome as no coding ("identity")?
 *
 * - `gzip` (or its alias `x-gzip`) with q > 0 says yes, `gzip;q=0` says no, whatever else is listed;
 * - without a gzip entry, `*` decides (`*;q=0` excludes it); any other token (`nogzip`, `br`) is not gzip;
 * - identity takes its own entry's weight, else that of `*`, else the lowest weight listed (as the
 *   `negotiator` package reads it), so `gzip;q=0.5, identity` prefers no coding; ties go to gzip;
 * - an entry whose weight is not a valid qvalue (`q=2`, `q=high`) is ignored;
 * - no header, or an empty one: no coding (we do not compress unasked).
 */
export function acceptsGzipEncoding(header: string | undefined): boolean {
  if (header === undefined) return false;
  let known = memo.get(header);
  if (known === undefined) {
    known = parse(header);
    if (header.length <= MEMO_KEY_CHARS) {
      if (memo.size >= MEMO_ENTRIES) memo.clear();
      memo.set(header, known);
    }
  }
  return known;
}

/** Clients send a handful of distinct values: each is parsed once, not on every hit. */
const memo = new Map<string, boolean>();
const MEMO_ENTRIES = 256;
const MEMO_KEY_CHARS = 256;

const ENTRY = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*((?:;[ \t]*[^;]*)*)$/;
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

function parse(header: string): boolean {
  let gzip: number | undefined;
  let star: number | undefined;
  let identity: number | undefined;
  let lowest = 1;
  for (const raw of header.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = ENTRY.exec(entry);
    if (m === null) continue;
    const q = weight(m[2]);
    if (q === undefined) continue;
    lowest = Math.min(lowest, q);
    const coding = m[1].toLowerCase();
    if (coding === 'gzip' || coding === 'x-gzip') gzip ??= q;
    else if (coding === '*') star ??= q;
    else if (coding === 'identity') identity ??= q;
  }
  const g = gzip ?? star ?? 0;
  return g > 0 && g >= (identity ?? star ?? lowest);
}

/** The q of `;q=…` parameters (1 without one), or undefined when it is not a qvalue. */
function weight(params: string): number | undefined {
  let q = 1;
  for (const param of params.split(';')) {
    const p = param.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    // Only q is defined for Accept-Encoding; other parameters do not change the weight.
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'q') continue;
    const value = p.slice(eq + 1).trim();
    if (!QVALUE.test(value)) return undefined;
    q = Number(value);
  }
  return q;
}
