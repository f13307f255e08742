/**
 * A steady, bounded stream of requests from a few concurrent clients: each client alternates a "hit"
 * (one of a few hot questions asked before) and a "miss" (a question never asked before), with a short
 * pause between requests. Every answer is recorded with its timing and X-Cache.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { track } from './leftovers';

export interface Sample {
  client: number;
  kind: 'hit' | 'miss';
  path: string;
  /** Date.now() when the request was sent and when its body was read */
  start: number;
  end: number;
  ms: number;
  /** 0 when the request failed without an HTTP answer (see error) */
  status: number;
  xCache: string | null;
  error?: string;
}

export interface TrafficOptions {
  clients?: number;
  /** paths asked again and again (they should be cached before the stream starts) */
  hotPaths: string[];
  /** builds the path of the n-th distinct miss of a client */
  missPath: (client: number, n: number) => string;
  pauseMs?: number;
  /** a request without an answer after this long is recorded as failed */
  requestTimeoutMs?: number;
  /** the stream stops by itself after this long, whatever happens */
  maxDurationMs?: number;
}

export interface Traffic {
  readonly samples: Sample[];
  /** Event-loop stalls seen while the stream ran (this process runs both the app and the clients). */
  readonly stalls: Stall[];
  /** Stops sending and resolves with every sample once the requests in flight are answered. */
  stop(): Promise<Sample[]>;
}

export async function timedGet(url: string, timeoutMs = 10_000, headers: Record<string, string> = {}) {
  const start = Date.now();
  const t0 = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers });
    const body = await res.text();
    return { start, end: Date.now(), ms: performance.now() - t0, status: res.status, headers: res.headers, body };
  } catch (e) {
    return { start, end: Date.now(), ms: performance.now() - t0, status: 0, headers: new Headers(), body: '', error: (e as Error).message };
  }
}

export function startTraffic(baseUrl: string, options: TrafficOptions): Traffic {
  const clients = options.clients ?? 4;
  const pauseMs = options.pauseMs ?? 10;
  const deadline = Date.now() + (options.maxDurationMs ?? 30_000);
  const samples: Sample[] = [];
  let running = true;
  const lag = watchEventLoop();

  const client = async (id: number): Promise<void> => {
    for (let i = 0; running && Date.now() < deadline; i++) {
      const kind = i % 2 === 0 ? 'hit' : 'miss';
      const path =
        kind === 'hit' ? options.hotPaths[(id + i) % options.hotPaths.length] : options.missPath(id, Math.floor(i / 2));
      const r = await timedGet(`${baseUrl}${path}`, options.requestTimeoutMs ?? 10_000);
      samples.push({
        client: id,
        kind,
        path,
        start: r.start,
        end: r.end,
        ms: r.ms,
        status: r.status,
        xCache: r.headers.get('x-cache'),
        ...(r.error !== undefined ? { error: r.error } : {}),
      });
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const done = Promise.all(Array.from({ length: clients }, (_, id) => client(id)));
  const stop = async (): Promise<Sample[]> => {
    forget();
    running = false;
    await done;
    lag.stop();
    return samples;
  };
  const forget = track('traffic', 'a request stream', async () => {
    await stop();
  });
  return { samples, stalls: lag.stalls, stop };
}

/** A short, readable account of samples for assertion messages. */
export function describeSamples(samples: Sample[]): string {
  return samples
    .slice(0, 20)
    .map((s) => `${s.kind} ${s.path} ${s.status} ${s.xCache ?? '-'} ${s.ms.toFixed(0)}ms${s.error ? ` (${s.error})` : ''}`)
    .join('\n');
}

/** A stretch of time during which the event loop ran nothing else (timers fired this much late). */
export interface Stall {
  /** Date.now() when it ended */
  end: number;
  ms: number;
}

/**
 * Records event-loop stalls of 20 ms or more with a 5 ms ticker. The app and the test clients share
 * one process: on a loaded machine a request can be slow because the whole process was not scheduled,
 * which is not the app waiting on Redis. Reported with slow samples so a failure says which it was.
 */
export function watchEventLoop(): { stalls: Stall[]; stop(): void } {
  const stalls: Stall[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - 5;
    if (late >= 20) stalls.push({ end: Date.now(), ms: late });
    last = now;
  }, 5);
  // A monitor: it must never be what keeps the process alive (a test that fails never stops it).
  timer.unref();
  return { stalls, stop: () => clearInterval(timer) };
}

/**
 * The longest this process's event loop was late while watched, in ms (`stop()` returns it). A fake
 * upstream in this process stamps an arrival when the loop gets to it: one request stamped late and the
 * next on time read closer together than they reached the socket, by up to this much. Spacing checks
 * that read the fake's stamps allow for it, so a loaded machine does not read as two requests too close.
 */
export function watchObserverLag(): { stop(): number } {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  return {
    stop: () => {
      delay.disable();
      return delay.max / 1e6;
    },
  };
}

/** Total event-loop stall time that overlaps [start, end]. */
export function stalledDuring(stalls: Stall[], start: number, end: number): number {
  let total = 0;
  for (const s of stalls) {
    const from = Math.max(start, s.end - s.ms);
    const to = Math.min(end, s.end);
    if (to > from) total += to - from;
  }
  return total;
}

export interface Measured<T> {
  result: T;
  /** how long `work` took */
  ms: number;
  /** how much of that this whole process was stalled (event-loop stalls of 20 ms or more) */
  stalledMs: number;
  /** ms less stalledMs: the time a timing assertion may hold the code under test to */
  ownMs: number;
  /** for assertion messages */
  detail: string;
}

/**
 * Times `work` and the event-loop stalls during it. On a loaded machine this process (app, fake
 * upstream and clients alike) can go unscheduled for a while: that time is not the code under test
 * waiting, so timing assertions compare `ownMs`.
 */
export async function measure<T>(work: () => Promise<T>): Promise<Measured<T>> {
  const lag = watchEventLoop();
  const start = Date.now();
  const t0 = performance.now();
  try {
    const result = await work();
    const ms = performance.now() - t0;
    const stalledMs = stalledDuring(lag.stalls, start, Date.now());
    return { result, ms, stalledMs, ownMs: ms - stalledMs, detail: `${ms.toFixed(0)} ms, of which ${stalledMs.toFixed(0)} ms stalled` };
  } finally {
    lag.stop();
  }
}
