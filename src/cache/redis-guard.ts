import { ErrorReply } from 'redis';

/** Raised instead of waiting on a Redis that is down, frozen or still connecting: the caller fails open. */
export class RedisUnavailableError extends Error {
  /** `cause`: the error the Redis call failed with, when one did (what /health/ready names it by). */
  constructor(reason: string, options?: ErrorOptions) {
    super(`Redis unavailable: ${reason}`, options);
    this.name = 'RedisUnavailableError';
  }
}

/**
 * Runs one Redis call within REDIS_OP_TIMEOUT_MS, rejecting instead of waiting longer. The app passes
 * RedisConnectionService.run, so a timeout seen by one caller makes every caller skip Redis for a while.
 */
export type RedisGuard = <T>(op: string, call: () => Promise<T>) => Promise<T>;

/** Redis answered a command with an error: it is reachable, but will not do what was asked. */
export interface RedisRefusal {
  /** The error's first word: `OOM`, `NOPERM`, `READONLY`, `MISCONF`, … (`ERR` when there is none). */
  kind: string;
  /** Redis's message, first line, quoted names other than plain words masked (see safeReplyText). */
  text: string;
}

/** What a Redis refusal means, for the kinds an operator can do something about. */
const HINTS: Record<string, string> = {
  OOM: 'Redis is at maxmemory and its maxmemory-policy evicts nothing, e.g. noeviction; use allkeys-lru',
  NOPERM: "the Redis user's ACL lacks a command or channel the service needs",
  MISCONF: 'Redis cannot save to disk and stops writes (stop-writes-on-bgsave-error)',
  READONLY: 'the node behind REDIS_URL is a read-only replica (a failover or maintenance)',
  LOADING: 'Redis is still loading its data set',
  BUSY: 'Redis is busy running a script',
};

/**
 * A cluster's passing states: a slot without a master (readiness reports it as cluster_fail from
 * CLUSTER INFO, and it ends when the slot is served again), a slot being moved (the client follows
 * MOVED and ASK; TRYAGAIN ends with the move), a replica cut off from its master. Nothing an operator
 * must act on, so they do not hold readiness degraded for a refusal window after they end.
 */
const PASSING_STATES = new Set(['CLUSTERDOWN', 'TRYAGAIN', 'MOVED', 'ASK', 'MASTERDOWN']);

/** The refusal an error is, or undefined when it is none (a timeout, a closed connection, a cluster's passing state, …). */
export function redisRefusal(error: unknown): RedisRefusal | undefined {
  if (!(error instanceof ErrorReply)) return undefined;
  const kind = /^[A-Z][A-Z_]{1,31}(?=\s|$)/.exec(error.message)?.[0] ?? 'ERR';
  if (PASSING_STATES.has(kind)) return undefined;
  return { kind, text: safeReplyText(error.message) };
}

/**
 * Whether a call through RedisConnectionService.run failed because Redis refused it: the connection
 * has logged (once per kind and 30 s) and counted it, so the caller adds no line of its own.
 */
export function refusedByRedis(error: unknown): boolean {
  return error instanceof RedisUnavailableError && redisRefusal(error.cause) !== undefined;
}

/** A short explanation of a refusal's kind for logs and /health/ready, or '' for an unknown kind. */
export function refusalHint(kind: string): string {
  return HINTS[kind] ?? '';
}

/**
 * Redis's error text without what came from a request: Redis 7.2+ quotes the key or channel an ACL
 * refused (`… access the 'places:v1:search:…' key`), and `ERR unknown command` quotes the arguments,
 * and our keys hold the question. A quoted word that cannot be one of them (a command or setting name:
 * letters, digits, `_ | . -`, no `:`) stays; anything else quoted becomes `'…'`. First line, 200 chars.
 */
export function safeReplyText(message: string): string {
  const line = message.split(/\r?\n/, 1)[0];
  return line.replace(/'[^']*'|"[^"]*"/g, (quoted) => (/^.[\w|.-]{0,40}.$/.test(quoted) ? quoted : `${quoted[0]}…${quoted[0]}`)).slice(0, 200);
}
