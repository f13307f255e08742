import { maxHeaderSize, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody } from '../common/error-writer';

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/**
 * The request target in origin-form (`/path?query`). RFC 9112 §3.2.2 makes servers accept the
 * absolute-form (`GET http://host/search?q=x HTTP/1.1`); for an origin server that is not a proxy the
 * scheme and host in it mean nothing, so only the path and query are kept — input never names a host
 * we act on. Express routes on the parsed path while the controller and the hit path read the raw
 * target, so both must see the same form. Other forms (`*`, junk) are left for Express to refuse.
 */
export function originForm(target: string): string {
  // A fragment is never part of a request target (only a broken or hostile client sends one); Express
  // would route without it while the raw target kept it.
  const hash = target.indexOf('#');
  const t = hash === -1 ? target : target.slice(0, hash);
  if (t.charCodeAt(0) === 0x2f /* / */) return t;
  const m = ABSOLUTE_FORM.exec(t);
  if (m === null) return t === '' ? '/' : t;
  const rest = t.slice(m[0].length);
  return rest.charCodeAt(0) === 0x2f ? rest : `/${rest}`;
}

const TUNNEL_REFUSED = JSON.stringify(errorBody(405, 'CONNECT is not supported'));

/**
 * Answers a CONNECT (a proxy tunnel request, which Node hands to the server's 'connect' listeners
 * instead of 'request'): 405, then close. Without a listener Node closes the socket with no answer.
 */
export function refuseTunnel(socket: Duplex): void {
  socket.on('error', () => socket.destroy());
  socket.end(
    'HTTP/1.1 405 Method Not Allowed\r\n' +
      'Allow: GET, HEAD, OPTIONS\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(TUNNEL_REFUSED)}\r\n` +
      'Connection: close\r\n\r\n' +
      TUNNEL_REFUSED,
  );
}

/** Room for the headers beside a request target of MAX_URL_BYTES. */
const HEADER_ROOM = 8192;

/**
 * Node's parser refuses a request line and headers over its maxHeaderSize (16 KiB) with 431, before
 * the front door could answer a long target with 414 or accept it: with MAX_URL_BYTES above ~8 KiB,
 * targets the setting allows would get 431. The server's limit is raised to the target plus 8 KiB
 * of headers when that is more; with the default MAX_URL_BYTES it stays Node's.
 */
export function applyTargetLimit(server: Server, maxUrlBytes: number): void {
  // Read by the server for each new connection's parser (lib/_http_server.js), like the options field.
  (server as Server & { maxHeaderSize?: number }).maxHeaderSize = Math.max(maxHeaderSize, maxUrlBytes + HEADER_ROOM);
}
