import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';

/** The part of node:http axios calls as its `transport` (the http adapter's `transport.request`). */
interface Transport {
  request(options: http.RequestOptions, callback: (res: http.IncomingMessage) => void): http.ClientRequest;
}

/**
 * A transport for one upstream request that reports when the request has been written to its socket
 * (its 'finish'), or has failed before that (`written` false), so that a pacer waiting for it is never held. The pacer
 * counts spacing from that moment: a new connection or a busy event loop between a slot and the write
 * would otherwise let two requests reach the upstream closer than their slots. Axios takes it as the
 * request config's `transport` (the client stays on @nestjs/axios HttpService) and still chooses the
 * agent: Node's global agent keeps connections alive and has no socket limit.
 *
 * A 101 Switching Protocols (the one final 1xx; the others are informational and Node waits past
 * them) is handed to axios as the response it is, its connection closed: Node would otherwise end the
 * request with neither a response nor an error, and the call would wait for its timeout. Its status
 * is then judged as any other that is not an answer (upstream-verdict.ts).
 */
export function signallingTransport(onSent: (written: boolean) => void): Transport {
  return {
    request: (options, callback) => {
      const req = (options.protocol === 'https:' ? https : http).request(options, callback);
      req.once('upgrade', (res: http.IncomingMessage, socket: Duplex) => {
        socket.destroy();
        res.push(null);
        callback(res);
      });
      req.once('finish', () => onSent(true));
      req.once('error', () => onSent(false));
      req.once('close', () => onSent(false));
      return req;
    },
  };
}
