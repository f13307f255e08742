/**
 * What a test file started (apps, fake upstreams, redis-servers) and has not stopped yet. A test that
 * fails skips the cleanup at its end: an app left running keeps its HTTP server open and its Redis
 * clients reconnecting for ever, and Jest (in band on two cores) then never exits. test/support/jest-setup.ts
 * stops whatever is left after each file's own hooks, failed or not.
 */
export type LeftoverKind = 'traffic' | 'upstream' | 'app' | 'client' | 'redis';

interface Leftover {
  kind: LeftoverKind;
  what: string;
  stop: () => Promise<void>;
}

const open = new Set<Leftover>();

/** Registers something to stop if the file ends with it still running; the returned function forgets it. */
export function track(kind: LeftoverKind, what: string, stop: () => Promise<void>): () => void {
  const entry: Leftover = { kind, what, stop };
  open.add(entry);
  return () => open.delete(entry);
}

/**
 * Stops everything still registered: request streams first, then fake upstreams (an app's requests
 * waiting on one then end at once instead of holding the app's drain), then apps, then the tests' own
 * Redis clients, then redis-servers.
 * Resolves with what it stopped.
 */
export async function stopLeftovers(): Promise<string[]> {
  const stopped: string[] = [];
  for (const kind of ['traffic', 'upstream', 'app', 'client', 'redis'] as const) {
    const entries = [...open].filter((e) => e.kind === kind);
    await Promise.all(
      entries.map(async (e) => {
        open.delete(e);
        stopped.push(e.what);
        await e.stop().catch((error: unknown) => console.warn(`stopping ${e.what} failed: ${String(error)}`));
      }),
    );
  }
  return stopped;
}
