import { UpstreamStatus } from './upstream-status';

describe(UpstreamStatus.name, () => {
  const pacer = { cooldownRemainingMs: () => 0, waiting: 0 };
  let status: UpstreamStatus;

  beforeEach(() => {
    pacer.cooldownRemainingMs = () => 0;
    pacer.waiting = 0;
    status = new UpstreamStatus(pacer);
  });

  it('is unknown before any upstream call', () => {
    expect(status.snapshot()).toEqual({
      state: 'unknown',
      lastCall: null,
      lastSuccessAt: null,
      consecutiveFailures: 0,
      coolDownRemainingMs: 0,
      queued: 0,
    });
  });

  it('is ok after an answered call, including a 4xx (the client asked something wrong)', () => {
    status.record('search', 400, 12.4, 1000);
    expect(status.snapshot()).toMatchObject({
      state: 'ok',
      lastCall: { endpoint: 'search', status: 400, durationMs: 12, at: 1000 },
      lastSuccessAt: 1000,
      consecutiveFailures: 0,
    });
  });

  it('counts failures in a row and forgets them after a success', () => {
    status.record('search', 200, 5, 1000);
    status.record('search', 'timeout', 2000, 2000);
    status.record('reverse', 502, 30, 3000);
    expect(status.snapshot()).toMatchObject({
      state: 'failing',
      lastCall: { endpoint: 'reverse', status: 502 },
      lastSuccessAt: 1000,
      consecutiveFailures: 2,
    });
    status.record('lookup', 200, 8, 4000);
    expect(status.snapshot()).toMatchObject({ state: 'ok', lastSuccessAt: 4000, consecutiveFailures: 0 });
  });

  it('reports the pacer cool-down and queue before anything else', () => {
    status.record('search', 429, 10, 1000);
    pacer.cooldownRemainingMs = () => 4200;
    pacer.waiting = 3;
    expect(status.snapshot()).toMatchObject({ state: 'cooling_down', coolDownRemainingMs: 4200, queued: 3, consecutiveFailures: 1 });
  });

  it('is failing after a 200 not in the format asked for, ok after one cut off for its size', () => {
    status.record('search', 'invalid', 5, 1000);
    expect(status.snapshot()).toMatchObject({ state: 'failing', lastSuccessAt: null, consecutiveFailures: 1 });
    status.record('search', 'too_large', 9, 2000);
    expect(status.snapshot()).toMatchObject({ state: 'ok', lastSuccessAt: 2000, consecutiveFailures: 0, lastCall: { status: 'too_large' } });
  });

  it('is failing after a redirect', () => {
    status.record('search', 200, 5, 1000);
    status.record('search', 301, 7, 2000);
    expect(status.snapshot()).toMatchObject({ state: 'failing', lastSuccessAt: 1000, consecutiveFailures: 1, lastCall: { status: 301 } });
  });
});
