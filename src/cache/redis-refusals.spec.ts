import { RedisRefusals } from './redis-refusals';

describe(RedisRefusals.name, () => {
  const WINDOW = 30_000;
  let now: number;
  let lines: Array<[string, string]>;
  let refusals: RedisRefusals;
  const oom = { kind: 'OOM', text: "OOM command not allowed when used memory > 'maxmemory'." };
  const noperm = { kind: 'NOPERM', text: "NOPERM this user has no permissions to run the 'evalsha' command" };

  beforeEach(() => {
    now = 1_000_000;
    lines = [];
    const logger = { warn: (m: string) => lines.push(['warn', m]), log: (m: string) => lines.push(['info', m]) };
    refusals = new RedisRefusals(logger, WINDOW, () => now);
  });

  afterEach(() => refusals.stop());

  it('logs the first refusal of a kind at once, at warn, then counts the others without a line', () => {
    refusals.note(oom, 'set');
    for (let i = 0; i < 50; i++) refusals.note(oom, 'fill-lock acquire');
    expect(lines).toHaveLength(1);
    expect(lines[0][0]).toBe('warn');
    expect(lines[0][1]).toMatch(/^Redis refused set: OOM command not allowed .*maxmemory-policy.*once per 30 s$/);
  });

  it('logs each kind on its own', () => {
    refusals.note(oom, 'set');
    refusals.note(noperm, 'pacer acquire');
    refusals.note(noperm, 'pacer acquire');
    expect(lines.map(([, m]) => /refused [^:]+: (\w+)/.exec(m)?.[1])).toEqual(['OOM', 'NOPERM']);
  });

  it('reports the number refused meanwhile once per window, then that the kind stopped', () => {
    refusals.note(oom, 'set');
    now += 1000;
    for (let i = 0; i < 9; i++) refusals.note(oom, 'fill-lock acquire');
    now = 1_000_000 + WINDOW;
    refusals.report();
    expect(lines[1]).toEqual(['warn', `Redis refused 9 more commands with OOM in the last 30 s (set, fill-lock acquire): ${oom.text}`]);
    now += WINDOW;
    refusals.report();
    expect(lines[2]).toEqual(['info', 'Redis has refused nothing with OOM for 30 s (10 refused since 1970-01-01T00:16:40.000Z)']);
    // a new episode starts with a line of its own again
    refusals.note(oom, 'set');
    expect(lines).toHaveLength(4);
  });

  it('lists the kinds refused within the window, most recent first, and none once it has passed', () => {
    expect(refusals.recent()).toEqual([]);
    refusals.note(oom, 'set');
    now += 5000;
    refusals.note(noperm, 'pacer acquire');
    refusals.note(oom, 'fill-lock acquire');
    now += 500;
    expect(refusals.recent()).toEqual([
      { kind: 'OOM', count: 2, ops: ['set', 'fill-lock acquire'], text: oom.text, lastSecondsAgo: 0.5 },
      { kind: 'NOPERM', count: 1, ops: ['pacer acquire'], text: noperm.text, lastSecondsAgo: 0.5 },
    ]);
    now += WINDOW - 500;
    expect(refusals.recent()).toEqual([]);
  });
});
