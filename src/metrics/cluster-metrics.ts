import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { AggregatorRegistry, Registry } from 'prom-client';

/*
 * /metrics for a process group (WEB_CONCURRENCY > 1): whichever worker is scraped asks the primary, the
 * primary collects every worker's registry as JSON and sums them (prom-client's AggregatorRegistry:
 * counters and histograms add up; process metrics use their own rule), and the scraped worker answers
 * with that text. prom-client's own cluster support only reads its global registry; ours is per app.
 */

const SCRAPE = 'places-cache:scrape';
const COLLECT = 'places-cache:collect';
const COLLECTED = 'places-cache:collected';
const SCRAPED = 'places-cache:scraped';
/** A worker that does not answer within this is left out of the sum rather than holding the scrape. */
const COLLECT_TIMEOUT_MS = 3000;

interface Message {
  type?: unknown;
  id?: unknown;
  metrics?: unknown;
  text?: unknown;
  error?: unknown;
}

let nextId = 0;

/** True in a forked worker of the group (the only place where the group's sum is asked for). */
export function inWorkerGroup(): boolean {
  return cluster.isWorker && typeof process.send === 'function';
}

/** Worker side: answers the primary's collect requests with this registry. Returns the unsubscribe. */
export function serveClusterCollect(registry: Registry): () => void {
  const onMessage = (msg: Message): void => {
    if (msg?.type !== COLLECT) return;
    void registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: COLLECTED, id: msg.id, metrics }),
      (e: unknown) => process.send?.({ type: COLLECTED, id: msg.id, error: String(e) }),
    );
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}

/** Worker side: the whole group's metrics text, through the primary. */
export function scrapeCluster(timeoutMs = COLLECT_TIMEOUT_MS * 2): Promise<string> {
  const id = `${process.pid}:${++nextId}`;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error(`the primary did not answer the metrics scrape within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (msg: Message): void => {
      if (msg?.type !== SCRAPED || msg.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      if (typeof msg.text === 'string') resolve(msg.text);
      else reject(new Error(`metrics scrape failed in the primary: ${String(msg.error)}`));
    };
    process.on('message', onMessage);
    process.send!({ type: SCRAPE, id });
  });
}

/** Primary side: answers workers' scrape requests with the sum over every live worker. */
export function relayClusterScrapes(workers: () => Worker[]): (worker: Worker, msg: Message) => void {
  return (asker, msg) => {
    if (msg?.type !== SCRAPE) return;
    void collectAll(workers()).then(
      async (all) => AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics(),
    ).then(
      (text) => asker.isConnected() && asker.send({ type: SCRAPED, id: msg.id, text }),
      (e: unknown) => asker.isConnected() && asker.send({ type: SCRAPED, id: msg.id, error: String(e) }),
    );
  };
}

function collectAll(workers: Worker[]): Promise<unknown[]> {
  const id = `primary:${++nextId}`;
  const live = workers.filter((w) => w.isConnected());
  return Promise.all(
    live.map(
      (w) =>
        new Promise<unknown>((resolve) => {
          const done = (value: unknown): void => {
            clearTimeout(timer);
            w.off('message', onMessage);
            resolve(value);
          };
          const timer = setTimeout(() => done(null), COLLECT_TIMEOUT_MS);
          const onMessage = (msg: Message): void => {
            if (msg?.type === COLLECTED && msg.id === id) done(Array.isArray(msg.metrics) ? msg.metrics : null);
          };
          w.on('message', onMessage);
          w.send({ type: COLLECT, id });
        }),
    ),
  ).then((all) => all.filter((m) => m !== null));
}
