import { CLOCK_DRIFT_ALLOWANCE, RedisClock } from './redis-clock';

describe(RedisClock.name, () => {
  // Redis's clock is 1,000,000 ms ahead of ours in these examples.
  const OFFSET = 1_000_000;

  it('places a slot within the round trip that granted it, narrowed by the most precise reading', () => {
    const clock = new RedisClock();
    // A precise reading: sent at 100, answered at 100.2, Redis said 1,000,100.1.
    clock.sample(OFFSET + 100.1, 100, 100.2);
    // A slow round trip (100 ms) for a slot 50 ms after the script ran at Redis time 1,000,150.
    const [earliest, latest] = clock.locate(OFFSET + 200, OFFSET + 150, 50, 110, 210);
    expect(earliest).toBeGreaterThanOrEqual(160 - 0.001);
    expect(latest).toBeLessThanOrEqual(260);
    // The precise reading puts it at 200 ± (0.1 + aging).
    const aging = (210 - 100.2) * CLOCK_DRIFT_ALLOWANCE;
    expect(earliest).toBeCloseTo(200 - 0.1 - aging, 6);
    expect(latest).toBeCloseTo(200 + 0.1 + aging, 6);
  });

  it('trusts the round trip alone when the stored offset no longer fits (a clock step)', () => {
    const clock = new RedisClock();
    clock.sample(OFFSET + 100, 99.9, 100.1);
    // Redis's clock stepped 500 ms back: the reading and the round trip disagree.
    expect(clock.locate(OFFSET - 500 + 300, OFFSET - 500 + 250, 50, 250, 252)).toEqual([300 - 0.001, 302]);
  });

  it('narrows a window later with a better reading, and never widens it', () => {
    const clock = new RedisClock();
    const [earliest, latest] = clock.locate(OFFSET + 300, OFFSET + 105, 195, 100, 110); // ±5 ms
    expect(latest - earliest).toBeCloseTo(10, 3);
    clock.sample(OFFSET + 200.05, 200, 200.1); // ±0.05 ms
    const [low, high] = clock.narrow(OFFSET + 300, earliest, latest, 250);
    expect(high - low).toBeLessThan(1);
    expect(low).toBeGreaterThanOrEqual(earliest);
    expect(high).toBeLessThanOrEqual(latest);
    expect(new RedisClock().narrow(OFFSET + 300, earliest, latest, 250)).toEqual([earliest, latest]);
  });

  it('keeps the more precise of two readings until age makes the newer one better', () => {
    const clock = new RedisClock();
    const first = clock.sample(OFFSET + 100, 99.9, 100.1); // ±0.1
    expect(clock.sample(OFFSET + 105, 104, 106)).toBe(first); // ±1, newer but worse
    // 1000 ms later the first has aged to ±5.1: a ±1 reading wins.
    expect(clock.sample(OFFSET + 1100, 1099, 1101)).toMatchObject({ errorMs: 1, at: 1101 });
  });
});
