import { withoutCredentials } from './env-parsers';

export interface RedisConnection {
  /** Full URL handed to node-redis (password included; never log it, use `safeUrl`). */
  url: string;
  /** The same URL with any password replaced by `***`: the only form that may be logged. */
  safeUrl: string;
  tls: boolean;
}

/**
 * Turns REDIS_URL / REDIS_TLS_URL into a connection, or `null` for the in-memory mode.
 * Accepted forms: unset (in-memory), a bare host or host:port (`redis`, `localhost:6380`, the
 * docker-compose form → redis://host:6379), or a full redis:// or rediss:// URL (the Heroku form).
 * Heroku's older plans expose REDIS_TLS_URL beside REDIS_URL; the TLS one wins.
 */
export function resolveRedisConnection(
  redisUrl: string | undefined,
  redisTlsUrl: string | undefined,
): RedisConnection | null {
  const chosen = (redisTlsUrl?.trim() || redisUrl?.trim()) ?? '';
  if (chosen === '') return null;
  const name = redisTlsUrl?.trim() ? 'REDIS_TLS_URL' : 'REDIS_URL';

  let url: URL;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(chosen)) {
    try {
      url = new URL(chosen);
    } catch {
      throw new Error(`${name} is not a valid URL (accepts a host, host:port, redis://… or rediss://…)`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new Error(`${name} must use redis:// or rediss:// (got ${url.protocol}//)`);
    }
  } else {
    if (!/^(\[[0-9a-f:]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(chosen)) {
      throw new Error(`${name} must be a host, host:port, redis://… or rediss://… URL (got "${withoutCredentials(chosen)}")`);
    }
    try {
      url = new URL(`redis://${chosen}`);
    } catch {
      throw new Error(`${name} has an invalid port (got "${withoutCredentials(chosen)}")`);
    }
  }
  if (url.hostname === '') throw new Error(`${name} has no host`);
  if (url.port !== '' && (Number(url.port) < 1 || Number(url.port) > 65535)) {
    throw new Error(`${name} has an invalid port`);
  }
  if (url.port === '') url.port = '6379';
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new Error(`${name} database must be a number (got "${db}")`);

  const full = url.toString().replace(/\/$/, '');
  const masked = new URL(full);
  if (masked.password) masked.password = '***';
  return { url: full, safeUrl: masked.toString().replace(/\/$/, ''), tls: url.protocol === 'rediss:' };
}
