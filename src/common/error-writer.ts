import { STATUS_CODES, type ServerResponse } from 'node:http';

/** The gateway's one JSON error shape: `{statusCode, error, message, code?}`. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  code?: string;
  [more: string]: unknown;
}

export function errorBody(status: number, message: string, code?: string): ErrorBody {
  const body: ErrorBody = { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message };
  if (code !== undefined) body.code = code;
  return body;
}

/**
 * Writes a JSON error: the one writer of error bodies, for the front door, the answer writer and the
 * exception filter alike. Errors are never cached; 429 and 503 say when to come back.
 */
export function writeError(res: ServerResponse, body: ErrorBody, retryAfterSeconds?: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.statusCode = body.statusCode;
  if (retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(retryAfterSeconds));
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
