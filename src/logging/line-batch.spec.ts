import { LineBatch } from './line-batch';

describe(LineBatch.name, () => {
  const target = () => {
    const writes: string[] = [];
    return { writes, flushSync: jest.fn(), write: (s: string) => void writes.push(s) };
  };

  afterEach(() => jest.useRealTimers());

  it('holds short lines for at most maxDelayMs, then writes them at once, in order', () => {
    jest.useFakeTimers();
    const t = target();
    const batch = new LineBatch(t, 100, 50);
    batch.write('a\n');
    batch.write('b\n');
    jest.advanceTimersByTime(49);
    expect(t.writes).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(t.writes).toEqual(['a\nb\n']);
    jest.advanceTimersByTime(1000);
    expect(t.writes).toEqual(['a\nb\n']);
  });

  it('writes as soon as minChars have gathered', () => {
    jest.useFakeTimers();
    const t = target();
    const batch = new LineBatch(t, 10, 50);
    batch.write('12345\n');
    batch.write('67890\n');
    expect(t.writes).toEqual(['12345\n67890\n']);
    batch.write('x\n');
    jest.advanceTimersByTime(50);
    expect(t.writes).toEqual(['12345\n67890\n', 'x\n']);
  });

  it('hands over what it holds before flushing the target', () => {
    const t = target();
    const batch = new LineBatch(t);
    batch.write('last words\n');
    batch.flushSync();
    expect(t.writes).toEqual(['last words\n']);
    expect(t.flushSync).toHaveBeenCalledTimes(1);
    const done = jest.fn();
    batch.write('more\n');
    batch.flush(done);
    expect(t.writes).toEqual(['last words\n', 'more\n']);
    expect(done).toHaveBeenCalledTimes(1);
  });
});
