import { CanonicalResult } from './nominatim/nominatim-request';
import { canonicaliseRoute, PlaceRoute } from './place-routes';
import { Question } from './exchange';

/**
 * Bounds of the memo: one entry per 16 KiB of L1 (at least 4096). Its entries (a target and its canonical
 * request) cost memory outside L1_MAX_BYTES, so it keeps the recently asked targets rather than one per
 * L1 answer; a target it has forgotten is canonicalised again, a few microseconds.
 */
const MEMO_MIN_ENTRIES = 4096;
const MEMO_MAX_ENTRIES = 131_072;
const MEMO_KEY_CHARS = 300;

export function memoEntries(l1MaxBytes: number): number {
  return Math.min(MEMO_MAX_ENTRIES, Math.max(MEMO_MIN_ENTRIES, Math.floor(l1MaxBytes / 16384)));
}

/** A Map that forgets everything when full: enough for memos whose hot entries come straight back. */
export function remember<V>(memo: Map<string, V>, key: string, value: V, entries: number): V {
  if (key.length <= MEMO_KEY_CHARS) {
    if (memo.size >= entries) memo.clear();
    memo.set(key, value);
  }
  return value;
}

/**
 * The pipeline's first step: a request's canonical question, canonicalised once. canonicaliseRoute is
 * pure, so a valid target seen recently is not canonicalised again (most hits are for a few popular
 * questions); an invalid one is, and its error is returned.
 */
export class Questions {
  private readonly memo = new Map<string, Question>();

  constructor(
    private readonly entries: number,
    /** REVERSE_SNAP_METERS: a reverse question is keyed and asked for its cell (0: off) */
    private readonly reverseSnapMeters = 0,
  ) {}

  of(route: PlaceRoute, target: string, query: string, lang: string | undefined): Question | CanonicalResult & { ok: false } {
    const key = lang === undefined ? target : `${target}\n${lang}`;
    const known = this.memo.get(key);
    if (known !== undefined) return known;
    const c = canonicaliseRoute(route, query, lang, this.reverseSnapMeters);
    if (!c.ok) return c;
    const question: Question = { request: c.request };
    return c.request.cacheable ? remember(this.memo, key, question, this.entries) : question;
  }
}
