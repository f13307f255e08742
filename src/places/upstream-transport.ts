import http from 'node:http';
import https from 'node:https';

/** The part of node:http axios calls as its `transport` (the http adapter's `transport.request`). */
export interface Transport {
  request(options: http.RequestOptions, callback: (res: http.IncomingMessage) => void): http.ClientRequest;
}

export interface UpstreamTransportOptions {
  /** Most sockets open to the upstream at once (requests beyond wait in the agent's queue). */
  maxSockets: number;
  /** Idle keep-alive sockets kept for the next requests. */
  maxFreeSockets: number;
}

/**
 * Keep-alive agents of our own for the upstream, and per request a transport that reports when the
 * request has been written to its socket. The pacer counts spacing from that moment (a new
 * connection or a busy event loop between a slot and the write would otherwise let two requests
 * reach the upstream closer than their slots). Axios takes it as the request config's `transport`,
 * so the client stays on @nestjs/axios HttpService.
 */
export class UpstreamTransport {
  /** For the request config (axios's `httpAgent` / `httpsAgent`): axios keeps choosing between them and any proxy. */
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;

  constructor(options: UpstreamTransportOptions) {
    // LIFO: the most recently used socket is the one least likely to have been closed by the upstream.
    // Idle sockets are unref'd by the agent: they never hold the process open, and in-flight calls
    // are left to finish on shutdown (the server drains them).
    const common = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxFreeSockets, scheduling: 'lifo' as const };
    this.httpAgent = new http.Agent(common);
    this.httpsAgent = new https.Agent(common);
  }

  /**
   * A transport for one request: `onWritten` is called once, when the request has left for the
   * upstream (its 'finish'), or when it failed before that (so that a waiting pacer is never held).
   */
  forRequest(onWritten: () => void): Transport {
    return {
      request: (options, callback) => {
        const req = (options.protocol === 'https:' ? https : http).request(options, callback);
        req.once('finish', onWritten);
        req.once('error', onWritten);
        req.once('close', onWritten);
        return req;
      },
    };
  }
}
