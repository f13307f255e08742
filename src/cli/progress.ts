/** What a warm run has done so far. */
export interface WarmCounts {
  /** questions sent upstream and stored */
  asked: number;
  /** already cached and fresh (or filled meanwhile by another instance) */
  cached: number;
  failed: number;
  /** empty and comment lines: no question, but lines of the file (the ETA's total counts lines) */
  blank: number;
}

const done = (c: WarmCounts) => c.asked + c.cached + c.failed + c.blank;

/** `1h02m`, `3m05s`, `42s`; `?` when unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Seconds left at the rate so far; undefined when the total or the rate is unknown. */
export function etaSeconds(done: number, total: number | undefined, elapsedSeconds: number): number | undefined {
  if (total === undefined || done === 0 || elapsedSeconds <= 0) return undefined;
  return ((total - done) * elapsedSeconds) / done;
}

/** `[#########-----------]` for done/total, `width` characters between the brackets. */
export function bar(done: number, total: number, width: number): string {
  const filled = total <= 0 ? width : Math.min(width, Math.floor((done / total) * width));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** One progress report: done/total, the three counts, the rate and the time left. */
export function progressText(c: WarmCounts, total: number | undefined, elapsedSeconds: number): string {
  const n = done(c);
  const rate = elapsedSeconds > 0 ? n / elapsedSeconds : 0;
  const of = total === undefined ? `${n} lines` : `${n}/${total} lines (${total === 0 ? 100 : Math.floor((n / total) * 100)}%)`;
  return (
    `${of} asked ${c.asked}, cached ${c.cached}, failed ${c.failed}, ` +
    `${rate.toFixed(rate < 10 ? 2 : 0)}/s, ETA ${formatDuration(etaSeconds(n, total, elapsedSeconds))}`
  );
}

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Shows a warm run's progress on standard error: on a terminal a bar redrawn in place (at most every
 * 200 ms), elsewhere (a log, a pipe, `heroku run`) one line every `everyMs`.
 */
export class Progress {
  private readonly started = performance.now();
  private lastShown = -Infinity;
  private drawn = false;

  constructor(
    private readonly out: ProgressOutput,
    private readonly total: number | undefined,
    private readonly everyMs: number,
  ) {}

  private elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  update(counts: WarmCounts): void {
    const now = performance.now();
    if (now - this.lastShown < (this.out.isTTY ? 200 : this.everyMs)) return;
    this.lastShown = now;
    this.show(counts);
  }

  private show(counts: WarmCounts): void {
    const text = progressText(counts, this.total, this.elapsed());
    if (!this.out.isTTY) {
      this.out.write(`warm: ${text}\n`);
      return;
    }
    const line = this.total === undefined ? text : `${bar(done(counts), this.total, 24)} ${text}`;
    this.out.write(`\r${line.slice(0, Math.max(20, (this.out.columns ?? 100) - 1))}\x1b[K`);
    this.drawn = true;
  }

  /** A line printed while the bar is shown (a failure): the bar is redrawn after it. */
  note(text: string, counts: WarmCounts): void {
    this.out.write(`${this.drawn ? '\r\x1b[K' : ''}${text}\n`);
    if (this.drawn) this.show(counts);
  }

  finish(counts: WarmCounts): string {
    if (this.drawn) this.out.write('\r\x1b[K');
    const s = this.elapsed();
    return `warm: done in ${formatDuration(s)}: ${counts.asked + counts.cached + counts.failed} questions, asked ${counts.asked}, already cached ${counts.cached}, failed ${counts.failed}`;
  }
}
