import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { AppConfig } from '../config/configuration';

export type ClientErrorReason = 'timeout' | 'headers_too_large' | 'bad_request' | 'reset';

/** What Node itself answers to each client error when no 'clientError' listener is set (lib/_http_server.js). */
const ANSWERS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
};
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

export function clientErrorReason(code: string | undefined): ClientErrorReason {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'timeout';
    case 'HPE_HEADER_OVERFLOW':
      return 'headers_too_large';
    case 'ECONNRESET':
      return 'reset';
    default:
      return 'bad_request';
  }
}

/**
 * How long a client may take, set on the HTTP server before it listens. Node's own defaults let a
 * slowloris connection (headers sent a byte at a time) live 60 s and a slow body 300 s, and its check
 * for them runs every 30 s on top (a connection was seen held 90 s and 307 s). A client past
 * headersTimeout or requestTimeout gets Node's 408 and its connection is closed; every such client
 * error is counted by reason, and otherwise answered as Node answers it.
 */
export function applyServerTimeouts(
  server: Server,
  config: Pick<AppConfig, 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'>,
  count: (reason: ClientErrorReason) => void,
): void {
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  // Read when the server starts listening: the check runs often enough for a cut-off close to the bound.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = checkingIntervalMs(config.headersTimeoutMs);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    count(clientErrorReason(err.code));
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (socket.writable && (inFlight == null || inFlight.headersSent !== true)) {
      socket.write((err.code !== undefined && ANSWERS[err.code]) || BAD_REQUEST);
    }
    socket.destroy(err);
  });
}

/** A tenth of the headers timeout, between 100 ms and 1 s (Node's default is 30 s). */
export function checkingIntervalMs(headersTimeoutMs: number): number {
  return Math.min(1000, Math.max(100, Math.floor(headersTimeoutMs / 10)));
}
