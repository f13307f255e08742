import { answerKeyParts } from './answer-keys';

/**
 * How the service's keys are named in Redis. On one Redis they are the keys themselves (no hash tags:
 * a single Redis needs none, and entries stay readable by an instance of any version). On a Redis Cluster, keys one script or pipeline uses together must
 * hash to one slot, so they carry a hash tag (the part between the first `{` and the next `}`):
 *
 * - an answer `places:v1:search:q=berlin` is stored as `places:v1:search:{q=berlin}`: the tag is the
 *   question, so answers spread over every master, and the fill lock `places:v1:lock:` + that name
 *   shares its answer's slot (its SET NX and the GET behind it go to one node, in order);
 * - the pacer's next-slot and cool-down keys share the tag `{pacer}` (one Lua script reads both);
 * - a client's rate-limit counter and block keys share the client's hash.
 *
 * Canonical keys (the ones L1, logs, X-Cache-Key and the purge API use) never contain braces: queries
 * are percent-encoded and long ones hashed to base64url.
 */
export class RedisKeys {
  constructor(readonly cluster: boolean) {}

  /** Redis name of an answer's canonical key `places:v1:<endpoint>:<rest>`. */
  answer(key: string): string {
    if (!this.cluster) return key;
    const at = endpointEnd(key);
    return at < 0 ? key : `${key.slice(0, at)}{${key.slice(at)}}`;
  }

  /** The canonical key of an answer's Redis name (the inverse of `answer`). */
  canonical(name: string): string {
    if (!this.cluster) return name;
    const at = endpointEnd(name);
    if (at < 0 || name[at] !== '{' || !name.endsWith('}')) return name;
    return `${name.slice(0, at)}${name.slice(at + 1, -1)}`;
  }

  /** Wraps `part` in a hash tag in cluster mode: keys built around the same tagged part share a slot. */
  tag(part: string): string {
    return this.cluster ? `{${part}}` : part;
  }

  /**
   * SCAN MATCH glob (escaped) for answer names whose canonical key starts with `prefix`. In cluster
   * mode a prefix that reaches into the question (`places:v1:search:q=ber`) matches after the brace.
   * The glob may match more than asked; callers check `canonical(name).startsWith(prefix)`.
   */
  matchFor(prefix: string): string {
    const at = endpointEnd(prefix);
    if (!this.cluster || at < 0) return `${escapeGlob(prefix)}*`;
    return `${escapeGlob(prefix.slice(0, at))}{${escapeGlob(prefix.slice(at))}*`;
  }
}

/** Index just past `places:v1:<endpoint>:`, or -1. */
function endpointEnd(key: string): number {
  return answerKeyParts(key)?.at ?? -1;
}

/** SCAN's MATCH is a glob: the prefix must match itself only (braces are literal in Redis globs). */
export function escapeGlob(s: string): string {
  return s.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}
