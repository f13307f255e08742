import { pacingWindow, PacingWindow, slotRate, windowFor } from './pacing-arithmetic';

/**
 * The closest two starts can come, whatever instance made them: one caller late by the whole
 * allowance, the next on time. Infinity-late (timer mode) has no such bound: 0.
 */
function closestStartsUs(window: PacingWindow): number {
  return Number.isFinite(window.lateUs) ? Math.max(0, window.slotIntervalUs - window.lateUs) : 0;
}

describe('pacingWindow', () => {
  it('keeps the public server 1 s apart: strict, a 50 ms guard, a late caller gives its slot up', () => {
    const w = pacingWindow(1);
    expect(w).toEqual({
      mode: 'strict',
      minIntervalUs: 1_000_000,
      guardUs: 50_000,
      slotIntervalUs: 1_050_000,
      lateUs: 50_000,
      localGapUs: 1_000_000,
      waitsForSend: true,
    });
    expect(closestStartsUs(w)).toBe(1_000_000);
  });

  it('caps the guard at 50 ms for slow rates and takes 5 % of the interval below that', () => {
    expect(pacingWindow(0.1).guardUs).toBe(50_000);
    expect(pacingWindow(0.1).slotIntervalUs).toBe(10_050_000);
    expect(pacingWindow(2).guardUs).toBe(25_000);
    expect(pacingWindow(20).guardUs).toBe(2_500);
  });

  it('is strict up to 20/s: no start ever closer than the interval asked for', () => {
    for (const rps of [0.01, 0.5, 1, 5, 10, 20]) {
      const w = pacingWindow(rps);
      expect(w.mode).toBe('strict');
      expect(closestStartsUs(w)).toBeGreaterThanOrEqual(w.minIntervalUs);
      expect(w.localGapUs).toBeGreaterThanOrEqual(w.minIntervalUs);
    }
  });

  it('between 20/s and 100/s allows a small lateness: 50/s gives 47.6 slots/s, starts at least 19 ms apart', () => {
    const w = pacingWindow(50);
    expect(w).toMatchObject({ mode: 'allowance', minIntervalUs: 20_000, guardUs: 1_000, slotIntervalUs: 21_000, lateUs: 2_000, localGapUs: 19_000 });
    expect(slotRate(w)).toBeGreaterThanOrEqual(45);
    expect(closestStartsUs(w)).toBe(19_000);
    for (const rps of [21, 33, 50, 80, 100]) {
      const x = pacingWindow(rps);
      expect(x.mode).toBe('allowance');
      // 90 % of the rate asked for, and never closer than 90 % of the interval (network jitter aside).
      expect(slotRate(x)).toBeGreaterThanOrEqual(0.9 * rps);
      expect(closestStartsUs(x)).toBeGreaterThanOrEqual(0.9 * x.minIntervalUs);
      expect(x.lateUs).toBeGreaterThan(x.guardUs);
    }
  });

  it('above 100/s uses plain timers: slots shared, no guard, no give-up, no local gap: the whole rate', () => {
    const w = pacingWindow(1000);
    expect(w).toMatchObject({ mode: 'timer', minIntervalUs: 1000, guardUs: 0, slotIntervalUs: 1000, lateUs: Infinity, localGapUs: 0, waitsForSend: false });
    expect(slotRate(w)).toBe(1000);
    expect(slotRate(pacingWindow(101))).toBeCloseTo(101, 2); // slots are whole µs
    expect(closestStartsUs(w)).toBe(0);
    expect(pacingWindow(101).mode).toBe('timer');
  });

  it('has no 10 ms floor on the guard (which capped 1000/s at about 90/s)', () => {
    for (const rps of [50, 100, 200, 1000]) expect(slotRate(pacingWindow(rps))).toBeGreaterThanOrEqual(0.95 * rps - 1e-9);
  });

  it('takes a guard given explicitly, and the same window from the interval', () => {
    expect(pacingWindow(5, 30_000)).toMatchObject({ guardUs: 30_000, slotIntervalUs: 230_000, lateUs: 30_000, localGapUs: 200_000 });
    expect(pacingWindow(10, 0)).toMatchObject({ guardUs: 0, slotIntervalUs: 100_000, lateUs: 0, localGapUs: 100_000 });
    expect(windowFor(20_000)).toEqual(pacingWindow(50));
  });

  it('refuses rates and guards that make no sense', () => {
    for (const bad of [0, -1, NaN, Infinity]) expect(() => pacingWindow(bad)).toThrow(RangeError);
    expect(() => pacingWindow(1, -1)).toThrow(RangeError);
    expect(() => windowFor(0)).toThrow(RangeError);
  });
});
