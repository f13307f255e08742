/**
 * When requests reach an upstream's port, as the kernel saw them on the loopback interface (tcpdump's
 * packet timestamps), not as the upstream's own event loop read them. On this shared 2-core machine a
 * process can wait milliseconds for a core, so a fake's own clock reads some arrivals late, and the one
 * after then looks closer than it was sent; the capture's timestamp is taken as the packet is sent.
 *
 * Needs tcpdump and the right to capture (root); startWireArrivals resolves to null without them, and
 * the caller falls back to the upstream's own arrival times.
 */
import { spawn } from 'node:child_process';
import { hasCommand } from './procs';

export interface WireArrivals {
  /** Stops the capture: the arrival time of every captured request (ms since the first one's second, µs resolution), in order, and what the kernel dropped. */
  stop(): Promise<{ arrivalsMs: number[]; dropped: number }>;
}

/** The BPF filter: packets to `port` whose TCP payload starts with `GET /sea` (a /search request's first packet). */
function filterFor(port: number): string {
  const payload = 'tcp[((tcp[12:1] & 0xf0) >> 2)';
  return `tcp dst port ${port} and ${payload}:4] = 0x47455420 and ${payload} + 4:4] = 0x2f736561`;
}

export async function startWireArrivals(port: number): Promise<WireArrivals | null> {
  if (!hasCommand('tcpdump')) return null;
  const child = spawn('tcpdump', ['-i', 'lo', '-nn', '-l', '-tt', '-q', '--immediate-mode', filterFor(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8');
  const listening = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    child.stderr.on('data', (s: string) => {
      err += s;
      if (/listening on lo/.test(err)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!listening) {
    child.kill('SIGKILL');
    return null;
  }
  return {
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => {
          const stamps = out
            .split('\n')
            .map((line) => /^(\d+)\.(\d+) IP /.exec(line))
            .filter((m): m is RegExpExecArray => m !== null);
          // Seconds since the epoch lose the microseconds in a double's millisecond count: relative to the first second.
          const base = stamps.length > 0 ? Number(stamps[0][1]) : 0;
          const arrivalsMs = stamps.map((m) => (Number(m[1]) - base) * 1000 + Number(`0.${m[2]}`) * 1000);
          const dropped = Number(/(\d+) packets dropped by kernel/.exec(err)?.[1] ?? NaN);
          resolve({ arrivalsMs, dropped });
        });
        // SIGINT: tcpdump flushes what it captured and prints its counts.
        child.kill('SIGINT');
      }),
  };
}
