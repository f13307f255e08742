/** Nominatim's 400 bodies, per output format, and /api's JSON 400. */
import { errorBody } from '../../common/error-writer';
import { CanonicalResult, CT_JSON, CT_TEXT, CT_XML, ErrorShape } from './nominatim-params';

/** v1/format.py _format_error, byte for byte (Nominatim does not escape; we do, which only matters for '"\<&>'). */
export function fail(shape: ErrorShape, msg: string, status = 400): CanonicalResult {
  if (shape === 'xml') {
    const m = msg.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    return {
      ok: false,
      error: {
        status,
        contentType: CT_XML,
        body:
          '<?xml version="1.0" encoding="UTF-8" ?>\n' +
          '                   <error>\n' +
          `                     <code>${status}</code>\n` +
          `                     <message>${m}</message>\n` +
          '                   </error>\n' +
          '                ',
      },
    };
  }
  if (shape === 'json') {
    const m = JSON.stringify(msg).slice(1, -1);
    return { ok: false, error: { status, contentType: CT_JSON, body: `{"error":{"code":${status},"message":"${m}"}}` } };
  }
  return { ok: false, error: { status, contentType: CT_TEXT, body: `ERROR ${status}: ${msg}` } };
}

export function apiFail(message: string): CanonicalResult {
  return {
    ok: false,
    error: { status: 400, contentType: CT_JSON, body: JSON.stringify(errorBody(400, message)) },
  };
}
