import { CRASH_WINDOW_MS, CrashBudget, MAX_CRASHES, runningWorkers } from './web-cluster';

describe(CrashBudget.name, () => {
  it('replaces crashed workers up to MAX_CRASHES within the window, then gives up', () => {
    const budget = new CrashBudget();
    const t0 = 1_000_000;
    for (let i = 0; i < MAX_CRASHES; i++) expect(budget.allowRestart(t0 + i)).toBe(true);
    expect(budget.allowRestart(t0 + MAX_CRASHES)).toBe(false);
  });

  it('forgets crashes older than the window: a worker that dies now and then is always replaced', () => {
    const budget = new CrashBudget(2, 1000);
    expect(budget.allowRestart(0)).toBe(true);
    expect(budget.allowRestart(500)).toBe(true);
    expect(budget.allowRestart(1001)).toBe(true); // the crash at 0 has left the window
    expect(budget.allowRestart(1200)).toBe(false); // 500, 1001, 1200
    expect(budget.allowRestart(1200 + CRASH_WINDOW_MS)).toBe(true);
  });
});

describe(runningWorkers.name, () => {
  it('leaves out a worker that has exited but is still listed (its IPC channel not yet closed)', () => {
    const worker = (dead: boolean) => ({ isDead: () => dead });
    const [a, b, c] = [worker(false), worker(true), worker(false)];
    expect(runningWorkers({ 1: a, 2: b, 3: c, 4: undefined })).toEqual([a, c]);
    expect(runningWorkers({ 2: b })).toEqual([]);
    expect(runningWorkers(undefined)).toEqual([]);
  });
});
