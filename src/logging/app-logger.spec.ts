import pino from 'pino';
import { createAppLogger, flushLogger, isoTime, PinoNestLogger, RequestLine, requestLineFields, requestLineWriter } from './app-logger';

describe(createAppLogger.name, () => {
  const capture = () => {
    const lines: string[] = [];
    return { lines, stream: { write: (s: string) => void lines.push(s) } };
  };

  it('masks a Redis password wherever it hides in the line, and the line stays JSON', () => {
    const { lines, stream } = capture();
    const logger = createAppLogger('info', stream);
    const url = 'rediss://default:p4ss@word@redis.example:6380/0';
    logger.info(`connecting to ${url}`);
    logger.warn({ target: url, note: 'contact ops@example.org' }, 'object field');
    logger.error({ err: new Error(`connect to ${url} failed`) }, 'error object');
    new PinoNestLogger(logger).error(new Error(`boom at redis://:hunter2@h:1`), 'Ctx');
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).not.toMatch(/p4ss|word@redis|hunter2/);
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(JSON.parse(lines[0]).msg).toBe('connecting to rediss://default:***@redis.example:6380/0');
    expect(JSON.parse(lines[1])).toMatchObject({ target: 'rediss://default:***@redis.example:6380/0', note: 'contact ops@example.org' });
    expect(JSON.parse(lines[2]).err.stack).toContain('connect to rediss://default:***@redis.example:6380/0 failed');
    expect(JSON.parse(lines[3])).toMatchObject({ level: 'error', context: 'Ctx', msg: 'boom at redis://:***@h:1' });
  });

  it('masks other URLs with a password too (a Nominatim behind basic auth), and leaves URLs without one alone', () => {
    const { lines, stream } = capture();
    const logger = createAppLogger('info', stream);
    logger.info('Upstream https://geo:t0ps3cret@nominatim.internal/nominatim at most 1 request(s)/s');
    logger.info('Upstream https://nominatim.openstreetmap.org and redis://127.0.0.1:6379, mail ops@example.org');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual([
      'Upstream https://geo:***@nominatim.internal/nominatim at most 1 request(s)/s',
      'Upstream https://nominatim.openstreetmap.org and redis://127.0.0.1:6379, mail ops@example.org',
    ]);
  });

  it('masks the bearer tokens wherever a careless client put them: a query logged at debug, raw, percent-encoded or JSON-escaped', () => {
    const { lines, stream } = capture();
    const admin = '0123456789abcdef0123';
    const metrics = 'Tok+en/with"quote\\16';
    const logger = createAppLogger('debug', stream, [admin, metrics]);
    logger.info({ route: '/admin/*', query: `prefix=places:v1:&access_token=${admin}` }, 'request');
    logger.info({ route: '/metrics', query: `token=${encodeURIComponent(metrics)}` }, 'request');
    logger.info({ route: '/metrics', query: `token=${encodeURIComponent(metrics).toLowerCase()}` }, 'request');
    logger.debug(`given ${metrics} and ${admin.toUpperCase()}`);
    logger.info({ query: 'q=berlin' }, 'untouched');
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expect(() => JSON.parse(line)).not.toThrow();
      expect(line.toLowerCase()).not.toContain(admin);
      expect(line.toLowerCase()).not.toContain('en/with');
      expect(line.toLowerCase()).not.toContain('en%2fwith');
    }
    expect(lines.map((l) => JSON.parse(l).query ?? JSON.parse(l).msg)).toEqual([
      'prefix=places:v1:&access_token=***',
      'token=***',
      'token=***',
      'given *** and ***',
      'q=berlin',
    ]);
  });

  it("stamps each line with pino's ISO time, formatted once a second", () => {
    jest.useFakeTimers();
    try {
      for (const at of ['2026-11-28T05:00:00.000Z', '2026-11-28T05:00:00.007Z', '2026-11-28T05:00:00.042Z', '2026-11-28T05:00:00.999Z', '2026-11-28T05:00:01.000Z', '2026-12-31T23:59:59.123Z', '2027-01-01T00:00:00.001Z']) {
        jest.setSystemTime(Date.parse(at));
        expect(isoTime()).toBe(`,"time":"${at}"`);
        expect(isoTime()).toBe(pino.stdTimeFunctions.isoTime());
      }
      const { lines, stream } = capture();
      createAppLogger('info', stream).info('stamped');
      expect(JSON.parse(lines[0]).time).toBe('2027-01-01T00:00:00.001Z');
    } finally {
      jest.useRealTimers();
    }
  });

  it('writes a request line byte for byte as pino would', () => {
    jest.useFakeTimers({ now: Date.parse('2026-11-28T05:00:00.250Z') });
    try {
      const { lines, stream } = capture();
      const logger = createAppLogger('info', stream);
      const write = requestLineWriter(logger);
      const entries = [
        { reqId: 'c0ffee00-1111-4222-8333-444455556666', method: 'GET', route: '/api', status: 200, ms: 0.42, cache: 'HIT', qhash: 'AbC-_dEf0123456z' },
        { reqId: 'client.id:7@x', method: 'HEAD', route: '/search', status: 304, ms: 12 },
        { reqId: 'r', method: undefined, route: 'other', status: 499, ms: 1.5, cache: ['MISS'] },
      ];
      for (const entry of entries) {
        logger.info(entry, 'request');
        write(entry);
      }
      expect(lines).toHaveLength(6);
      for (let i = 0; i < lines.length; i += 2) expect(lines[i + 1]).toBe(lines[i]);
      expect(JSON.parse(lines[0])).toEqual({ level: 'info', time: '2026-11-28T05:00:00.250Z', app: 'places-cache', ...entries[0], msg: 'request' });
    } finally {
      jest.useRealTimers();
    }
  });

  it('writes the fields of a request line as JSON.stringify does, whatever characters they hold', () => {
    const odd = ['', 'a"b', 'back\\slash', 'tab\tnew\nline', '\u0000\u001f\u007f', 'naïve ünïcode €', '\ud800 lone surrogate', 'x</script>', 'a b.c:d@e/f*g+h-i_j'];
    const lines: RequestLine[] = [
      { reqId: 'c0ffee00-1111-4222-8333-444455556666', method: 'GET', route: '/api', status: 200, ms: 0.42, cache: 'HIT', qhash: 'AbC-_dEf0123456z' },
      { reqId: 'r', method: undefined, route: 'other', status: 499, ms: Number.NaN, cache: ['MISS', 'x"y'] },
      { reqId: 'r', method: 'GET', route: '/api', status: 200, ms: 1e21, cache: 3 },
      { reqId: 'r', method: 'GET', route: '/api', status: 200, ms: -0, cache: null },
      ...odd.map((v) => ({ reqId: v, method: v, route: v, status: 200, ms: 5e-7, cache: v, qhash: v })),
    ];
    for (const line of lines) expect(requestLineFields(line)).toBe(JSON.stringify(line).slice(1, -1));
  });

  it('writes only what LOG_LEVEL lets through', () => {
    const { lines, stream } = capture();
    const logger = createAppLogger('warn', stream);
    logger.info('hidden');
    logger.debug('hidden');
    logger.warn('shown');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['shown']);
  });

  it('flushes a destination that can flush, and ignores one that cannot', () => {
    const flushSync = jest.fn();
    flushLogger(createAppLogger('info', { write: () => undefined, flushSync } as never));
    expect(flushSync).toHaveBeenCalledTimes(1);
    expect(() => flushLogger(createAppLogger('info', { write: () => undefined }))).not.toThrow();
    const broken = { write: () => undefined, flushSync: () => { throw new Error('sonic boom is not ready yet'); } };
    expect(() => flushLogger(createAppLogger('info', broken as never))).not.toThrow();
  });
});
