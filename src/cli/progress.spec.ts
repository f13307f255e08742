import { bar, etaSeconds, formatDuration, Progress, progressText } from './progress';

describe('warm progress', () => {
  it('formats durations, the ETA and the bar', () => {
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(3720)).toBe('1h02m');
    expect(formatDuration(undefined)).toBe('?');
    expect(etaSeconds(25, 100, 50)).toBe(150);
    expect(etaSeconds(25, undefined, 50)).toBeUndefined();
    expect(bar(1, 4, 8)).toBe('[##------]');
  });

  it('says lines done, the counts, the rate and the time left', () => {
    expect(progressText({ asked: 10, cached: 10, failed: 2, blank: 3 }, 100, 25)).toBe(
      '25/100 lines (25%) asked 10, cached 10, failed 2, 1.00/s, ETA 1m15s',
    );
    expect(progressText({ asked: 1, cached: 0, failed: 0, blank: 0 }, undefined, 2)).toBe('1 lines asked 1, cached 0, failed 0, 0.50/s, ETA ?');
  });

  it('prints a line per interval off a terminal, and redraws a bar in place on one', () => {
    const lines: string[] = [];
    const plain = new Progress({ write: (t: string) => lines.push(t), isTTY: false }, 10, 60_000);
    const counts = { asked: 1, cached: 0, failed: 0, blank: 0 };
    plain.update(counts);
    plain.update(counts); // within the interval: nothing
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warm: 1\/10 lines \(10%\) .*\n$/);

    const tty: string[] = [];
    const onTerminal = new Progress({ write: (t: string) => tty.push(t), isTTY: true, columns: 120 }, 10, 60_000);
    onTerminal.update(counts);
    expect(tty[0]).toMatch(/^\r\[##-{22}\] 1\/10 lines/);
    expect(onTerminal.finish(counts)).toMatch(/^warm: done in \S+: 1 questions, asked 1, already cached 0, failed 0$/);
  });
});
