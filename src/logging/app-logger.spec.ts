import { createAppLogger, flushLogger, PinoNestLogger } from './app-logger';

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
