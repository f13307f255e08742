import type { IncomingMessage } from 'node:http';

/**
 * The address to rate-limit. Behind one trusted proxy (Heroku's router) the client is the LAST
 * X-Forwarded-For entry: the router appends what it saw, while earlier entries are whatever the
 * client claimed.
 */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const value = Array.isArray(xff) ? xff[xff.length - 1] : xff;
    if (value) {
      const last = value.slice(value.lastIndexOf(',') + 1).trim();
      if (last) return last;
    }
  }
  return req.socket.remoteAddress ?? 'unknown';
}
