import { HitRateLimiter } from './hit-rate-limiter';

describe(HitRateLimiter.name, () => {
  const WINDOW = 60_000;
  const T0 = 1_000_000 * WINDOW;

  it('allows `limit` hits per client and window, then says how long until the window ends', () => {
    const limiter = new HitRateLimiter(3, WINDOW);
    expect([1, 2, 3].map(() => limiter.take('a', T0))).toEqual([0, 0, 0]);
    expect(limiter.take('a', T0 + 15_500)).toBe(45);
    expect(limiter.take('b', T0 + 15_500)).toBe(0);
    // A new window forgets every count.
    expect(limiter.take('a', T0 + WINDOW)).toBe(0);
    expect(limiter.clients).toBe(1);
  });

  it('stays closed under a flood of client keys: memory bounded, the least recently seen forgotten first', () => {
    const limiter = new HitRateLimiter(5, WINDOW, 1_000);
    for (let i = 0; i < 5; i++) expect(limiter.take('heavy', T0)).toBe(0);
    expect(limiter.take('heavy', T0)).toBeGreaterThan(0);

    // 20x the capacity in distinct keys; the heavy client keeps asking meanwhile and stays refused.
    let forgedRefused = 0;
    let heavyAllowed = 0;
    let mostClients = 0;
    for (let i = 0; i < 20_000; i++) {
      if (limiter.take(`forged-${i}`, T0) > 0) forgedRefused++;
      if (i % 500 === 0 && limiter.take('heavy', T0) === 0) heavyAllowed++;
      mostClients = Math.max(mostClients, limiter.clients);
    }
    expect({ forgedRefused, heavyAllowed, mostClients }).toEqual({ forgedRefused: 0, heavyAllowed: 0, mostClients: 1_000 });
    expect(limiter.take('heavy', T0)).toBeGreaterThan(0);

    // A client that arrives once the table is full is counted like any other: never let through unlimited.
    for (let i = 0; i < 5; i++) expect(limiter.take('newcomer', T0)).toBe(0);
    expect(limiter.take('newcomer', T0)).toBeGreaterThan(0);

    // The forgotten are the least recently seen: the first forged keys, not the recent ones.
    for (let i = 0; i < 4; i++) limiter.take('forged-19999', T0);
    expect(limiter.take('forged-19999', T0)).toBeGreaterThan(0);
    expect(limiter.take('forged-0', T0)).toBe(0);
  });
});
