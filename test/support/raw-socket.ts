import net from 'node:net';

export interface RawReply {
  /** Status of the (last) response, or 0 when the connection ended without one. */
  status: number;
  /** Header block of that response, lower-cased names. */
  headers: Record<string, string>;
  /** Everything the server sent. */
  raw: Buffer;
  /** Set when the socket failed (reset, timeout) rather than closing after an answer. */
  error?: string;
}

/**
 * Writes `request` byte for byte to 127.0.0.1:`port` and collects the answer until the server closes
 * the connection. Nothing is validated or encoded on the way: invalid UTF-8, control characters,
 * absolute-form targets and oversized heads all reach the server as written. Send `Connection: close`
 * (or rely on the server closing after an error) so that the answer ends.
 */
export function rawRequest(port: number, request: Buffer | string, timeoutMs = 5000): Promise<RawReply> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    let settled = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseHead(Buffer.concat(chunks)), ...(error === undefined ? {} : { error }) });
    };
    const timer = setTimeout(() => finish(`no end within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => {
      // The server may answer (431, 400) and close before it has read everything: that is not a failure.
      socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request, () => undefined);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (e: NodeJS.ErrnoException) => {
      // A reset after a complete answer (the server closed with our bytes unread) still counts as the answer.
      finish(chunks.length > 0 && e.code === 'ECONNRESET' ? undefined : e.code ?? e.message);
    });
  });
}

/** Status and headers of the last response head in `raw` (skips 1xx interim answers). */
function parseHead(raw: Buffer): { status: number; headers: Record<string, string>; raw: Buffer } {
  const text = raw.toString('latin1');
  let status = 0;
  let headers: Record<string, string> = {};
  const re = /HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const code = Number(m[1]);
    if (status !== 0 && status >= 200) break;
    status = code;
    headers = {};
    for (const line of m[2].split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    if (code >= 200) break;
  }
  return { status, headers, raw };
}
