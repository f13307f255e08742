import { LoggerService } from '@nestjs/common';
import cluster from 'node:cluster';
import pino, { Logger } from 'pino';
import { LogLevel } from '../config/configuration';

let destinationOverride: pino.DestinationStream | undefined;

/** `user:password@` in a URL of any scheme: a Redis URL, or a NOMINATIM_URL behind basic auth. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s"]*:)[^\s"/]+@/gi;

/**
 * Masks the password of every URL in a log line: `redis://user:secret@host` → `redis://user:***@host`.
 * A quote ends the match, so a JSON line stays valid; the last `@` of the authority wins, as in URL
 * parsing, so a raw `@` inside a password is masked too.
 */
function maskUrlPasswords(line: string): string {
  // It runs on every line written (one per request): a line without '://' has no URL to mask.
  return line.includes('://') ? line.replace(URL_PASSWORD, '$1***@') : line;
}

/**
 * A mask for these secrets (the bearer tokens) wherever they appear in a log line: as they are,
 * percent-encoded (in any case: a query string logged at debug) or JSON-escaped. A client that
 * puts ADMIN_TOKEN in a query string is refused, but the query is logged at debug.
 */
function secretMask(secrets: readonly string[]): (line: string) => string {
  if (secrets.length === 0) return (line) => line;
  const char = (c: string) => {
    const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
    const escaped = JSON.stringify(c).slice(1, -1).replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
    return `(?:${escaped}|%${hex})`;
  };
  const re = new RegExp(secrets.map((s) => [...s].map(char).join('')).join('|'), 'gi');
  return (line) => line.replace(re, '***');
}

let second = NaN;
let secondPrefix = '';

/**
 * pino's isoTime without a `Date#toISOString` per line (~7 µs here, ~4 % of a cache hit's CPU at one
 * line per request): the date and time up to the second are formatted once a second, the
 * milliseconds appended. The same text as pino.stdTimeFunctions.isoTime.
 */
export function isoTime(): string {
  const now = Date.now();
  const ms = now % 1000;
  if (now - ms !== second) {
    second = now - ms;
    secondPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

/**
 * Sends the log lines of the apps built from now on to `stream` instead of stdout (`undefined` goes
 * back to stdout). For tests that assert on log lines; production never calls it.
 */
export function setLogDestination(stream: pino.DestinationStream | undefined): void {
  destinationOverride = stream;
}

/**
 * One pino logger for the process: JSON lines on stdout, written asynchronously so logging never
 * blocks the hit path (lines written while a write is in progress are batched into the next one).
 * Every line passes through the URL password mask, and the mask of `secrets` (the bearer tokens),
 * just before it is written, whatever field the secret hides in (message, error, stack, query).
 */
export function createAppLogger(level: LogLevel, destination?: pino.DestinationStream, secrets: readonly string[] = []): Logger {
  const maskSecrets = secretMask(secrets);
  return pino(
    {
      level,
      // In a WEB_CONCURRENCY group every line says which worker wrote it.
      base: cluster.isWorker ? { app: 'places-cache', worker: cluster.worker?.id } : { app: 'places-cache' },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: (line) => maskSecrets(maskUrlPasswords(line)) },
    },
    destination ?? destinationOverride ?? batchedDestination(1),
  );
}

/**
 * pino's own asynchronous destination, batching: each write is an fs.write through the thread pool,
 * and one per request line cost a cache hit about a sixth of its CPU (docs/benchmark.md). Lines are
 * handed over 4 KiB at a time, or every 50 ms (periodicFlush), so a quiet instance's start-up and Redis
 * warnings are not held back; flushSync (see flushLogger) writes what is held at exit.
 *
 * In sonic-boom's buffer mode, each line turned into bytes as it comes: in its text mode every line
 * appended to the held string measures that whole string's UTF-8 length again (flattening it), about
 * 2 µs a line against 1 µs here (a ~230-byte request line, 4 KiB batches), 1–4 % of a cache hit's
 * throughput (docs/benchmark.md).
 */
export function batchedDestination(dest: number | string): pino.DestinationStream {
  const boom = pino.destination({ dest, sync: false, minLength: 4096, periodicFlush: 50, contentMode: 'buffer' });
  const writeBytes = boom.write.bind(boom) as unknown as (data: Buffer) => boolean;
  // pino hands its destination strings; buffer mode takes bytes.
  boom.write = (data: string | Buffer) => writeBytes(typeof data === 'string' ? Buffer.from(data) : data);
  return boom;
}

/** The fields of the one line per request (see FrontDoor), in the order they are written. */
export interface RequestLine {
  reqId: string;
  method: string | undefined;
  route: string;
  status: number;
  ms: number;
  cache?: unknown;
  qhash?: string;
}

/** Characters JSON.stringify writes as they are: a string of only these needs no escaping. */
const PLAIN_JSON = /^[\w .:@/*+-]*$/;

function jsonString(s: string): string {
  return PLAIN_JSON.test(s) ? `"${s}"` : JSON.stringify(s);
}

function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/**
 * `JSON.stringify(line)` without its braces, byte for byte, written field by field: JSON.stringify
 * of this object measured ~2.7 µs of a ~75 µs cache hit here (3.7 % of its CPU); the fields are a
 * checked request id, a method, fixed labels, numbers and a hash, which seldom need escaping.
 */
export function requestLineFields(line: RequestLine): string {
  let s = `"reqId":${jsonString(line.reqId)}`;
  if (line.method !== undefined) s += `,"method":${jsonString(line.method)}`;
  s += `,"route":${jsonString(line.route)},"status":${jsonNumber(line.status)},"ms":${jsonNumber(line.ms)}`;
  if (line.cache !== undefined) s += `,"cache":${typeof line.cache === 'string' ? jsonString(line.cache) : JSON.stringify(line.cache)}`;
  if (line.qhash !== undefined) s += `,"qhash":${jsonString(line.qhash)}`;
  return s;
}

/**
 * Writes request lines at info level as `logger.info(line, 'request')` would, byte for byte (level,
 * time, the logger's bindings, the fields, msg), without pino's generic serialiser and the URL mask:
 * they cost ~7 µs of a ~100 µs cache hit. The mask has nothing to do here: no field can hold a URL
 * (the request id is checked, the route is a fixed label, the query is only a hash). The caller
 * checks the level; a line with the query in it (debug) goes through pino.
 */
export function requestLineWriter(logger: Logger): (line: RequestLine) => void {
  const stream = (logger as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym];
  const bindings = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym];
  return (line) => stream.write(`{"level":"info"${isoTime()}${bindings},${requestLineFields(line)},"msg":"request"}\n`);
}

/** The parts of pino's asynchronous destination (sonic-boom) that the shutdown relies on. */
interface SettlingStream {
  flush?: (cb: (err?: Error) => void) => void;
  flushSync?: () => void;
  /** sonic-boom: an asynchronous write is under way (fixed since sonic-boom 1; pinned by batched-destination.spec). */
  _writing?: boolean;
  /** sonic-boom: bytes written to it and not yet handed to the operating system. */
  _len?: number;
  /** sonic-boom reads it at each write, so setting it makes every later write synchronous. */
  sync?: boolean;
  /** sonic-boom emits 'write' with the bytes each write handed over. */
  on?: (event: 'write', listener: (n: number) => void) => unknown;
  off?: (event: 'write', listener: (n: number) => void) => unknown;
}

function destinationOf(logger: Logger): SettlingStream | undefined {
  return (logger as unknown as Record<symbol, SettlingStream | undefined>)[pino.symbols.streamSym];
}

/**
 * Writes out whatever the logger still holds, synchronously: the process's exit handler calls it
 * (pino's own exit hook does too, but only when the process ends through process.exit). It cannot
 * wait for an asynchronous write already under way: settleLogger, earlier in the shutdown, sees that none is.
 */
export function flushLogger(logger: Logger): void {
  try {
    destinationOf(logger)?.flushSync?.();
  } catch {
    // Not open yet, already closed, or stdout gone: nothing more can be written anyway.
  }
}

/**
 * The last asynchronous step of a shutdown: waits until every line so far is written and no write is
 * under way, then makes the destination write synchronously. Why: sonic-boom's flushSync writes the
 * lines it holds at once, past an asynchronous write still in the thread pool, which then lands after
 * them or not at all once the process exits (a CI run's log ended with "HTTP server drained" after
 * "Exiting with code 0"). Gives up after `timeoutMs` (stdout blocked): the shutdown must still end.
 */
export async function settleLogger(logger: Logger, timeoutMs = 1000): Promise<void> {
  const stream = destinationOf(logger);
  const flush = stream?.flush;
  if (stream === undefined || typeof flush !== 'function') return;
  const deadline = Date.now() + timeoutMs;
  // One flush writes up to the batch size and calls back once that write is done; a periodic flush may
  // start another write before the callback: so until nothing is held and nothing is under way.
  let bytesWritten = 0;
  const onWrite = (n: number) => (bytesWritten += n);
  stream.on?.('write', onWrite);
  try {
    while ((stream._writing === true || (stream._len ?? 0) > 0) && Date.now() < deadline) {
      const before = bytesWritten;
      const written = new Promise<void>((resolve) => {
        try {
          flush.call(stream, () => resolve());
        } catch {
          resolve(); // destroyed or not open: nothing more to wait for
        }
      });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))));
      await Promise.race([written, late]);
      clearTimeout(timer);
      // A flush that ended having written nothing: the destination refuses (stdout closed, EPIPE).
      if (stream._writing !== true && bytesWritten === before) break;
    }
  } finally {
    stream.off?.('write', onWrite);
  }
  if (stream._writing !== true) stream.sync = true;
}

/** Nest's LoggerService on top of pino, so framework and application messages share one format. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.write('info', message, context);
  }
  error(message: unknown, stackOrContext?: string, context?: string): void {
    const ctx = context ?? (stackOrContext && !stackOrContext.includes('\n') ? stackOrContext : undefined);
    const stack = stackOrContext?.includes('\n') ? stackOrContext : undefined;
    if (message instanceof Error) this.logger.error({ context: ctx, err: message }, maskUrlPasswords(message.message));
    else this.logger.error({ context: ctx, stack }, stringify(message));
  }
  warn(message: unknown, context?: string): void {
    this.write('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.write('trace', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.write('fatal', message, context);
  }

  private write(level: 'info' | 'warn' | 'debug' | 'trace' | 'fatal', message: unknown, context?: string): void {
    if (!this.logger.isLevelEnabled(level)) return;
    this.logger[level]({ context }, stringify(message));
  }
}

function stringify(message: unknown): string {
  return typeof message === 'string' ? message : JSON.stringify(message);
}
