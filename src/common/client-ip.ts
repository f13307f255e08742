import type { IncomingMessage } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

/** Longest client key kept from an X-Forwarded-For entry that is no address (the hit limiter keeps 100 000 of them). */
const MAX_KEY_LENGTH = 64;
const PORT = /^:\d{1,5}$/;

/**
 * The client to rate-limit. Behind one trusted proxy (Heroku's router) it is the LAST X-Forwarded-For
 * entry: the router appends what it saw, while earlier entries are whatever the client claimed.
 * Otherwise it is the TCP peer. Either way one client has one key, however its address is written
 * (see clientKey).
 */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const value = Array.isArray(xff) ? xff[xff.length - 1] : xff;
    if (value) {
      const last = value.slice(value.lastIndexOf(',') + 1).trim();
      if (last) return clientKey(last);
    }
  }
  const peer = req.socket.remoteAddress;
  return peer === undefined ? 'unknown' : clientKey(peer);
}

/**
 * One key per client, whatever the spelling: an IPv4 address as itself, also when it comes
 * IPv4-mapped (`::ffff:203.0.113.9`, what a dual-stack socket reports) or with a port (some proxies
 * append `address:port`); an IPv6 address by its /64 (`2001:db8:0:0::/64`), without
 * brackets, port or zone id. A /64 is the smallest block an end site is given (RFC 6177) and its
 * hosts pick their own addresses in it (privacy addresses change by themselves), so counting single
 * IPv6 addresses would give one client 2^64 allowances. Anything else is kept as it is, shortened.
 */
function clientKey(entry: string): string {
  if (isIPv4(entry)) return entry;
  // What a dual-stack socket reports for every IPv4 client.
  if (entry.startsWith('::ffff:') && isIPv4(entry.slice(7))) return entry.slice(7);
  const address = bare(entry);
  if (address === undefined) return entry.slice(0, MAX_KEY_LENGTH);
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return entry.slice(0, MAX_KEY_LENGTH);
  const g = groupsOf(address);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  return `${g[0].toString(16)}:${g[1].toString(16)}:${g[2].toString(16)}:${g[3].toString(16)}::/64`;
}

/** The address in `[v6]`, `[v6]:port`, `v4:port` or `v6%zone`; undefined when brackets or port are malformed. */
function bare(entry: string): string | undefined {
  let address = entry;
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    const rest = address.slice(end + 1);
    if (end === -1 || (rest !== '' && !PORT.test(rest))) return undefined;
    address = address.slice(1, end);
  } else {
    const colon = address.indexOf(':');
    if (colon !== -1 && colon === address.lastIndexOf(':')) {
      if (!PORT.test(address.slice(colon))) return undefined;
      address = address.slice(0, colon);
    }
  }
  const zone = address.indexOf('%');
  return zone === -1 ? address : address.slice(0, zone);
}

/** The eight 16-bit groups of a valid IPv6 address (zero runs expanded, a trailing dotted IPv4 as two groups). */
function groupsOf(address: string): number[] {
  let hex = address;
  const dot = hex.indexOf('.');
  if (dot !== -1) {
    const colon = hex.lastIndexOf(':');
    const [a, b, c, d] = hex.slice(colon + 1).split('.').map(Number);
    hex = `${hex.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const gap = hex.indexOf('::');
  const split = (s: string) => (s === '' ? [] : s.split(':'));
  const head = split(gap === -1 ? hex : hex.slice(0, gap));
  const tail = gap === -1 ? [] : split(hex.slice(gap + 2));
  const zeros: string[] = Array(8 - head.length - tail.length).fill('0');
  return [...head, ...zeros, ...tail].map((g) => parseInt(g, 16));
}
