/**
 * The fake Nominatim in a process of its own, for measurements of when requests arrive at the
 * upstream: a fake that shares its event loop with the load it is measured under reads arrivals late,
 * and two read together look closer than they were sent (bench (g): gaps of 12–15 ms, each right after
 * one of 30+ ms, at a 20 ms spacing). Here the fake does nothing else, at a raised priority.
 *
 * The driver forks this file (IPC): the child starts a FakeNominatim, announces its URL, and answers
 * `arrivals` with the paths and arrival times (ms, the child's own clock) of the requests it received
 * from a given index on.
 */
import { ChildProcess, fork } from 'node:child_process';
import { setPriority } from 'node:os';
import { FakeNominatim } from '../../test/support/fake-nominatim';

export interface Arrival {
  path: string;
  /** performance.now() in the fake's process when the request arrived, ms */
  atMs: number;
}

type ToChild = { type: 'arrivals'; from: number } | { type: 'count' };
type FromChild = { type: 'ready'; url: string } | { type: 'arrivals'; arrivals: Arrival[] } | { type: 'count'; count: number };

export interface FakeProcess {
  readonly url: string;
  /** requests received so far (an index for `arrivals`) */
  count(): Promise<number>;
  arrivals(from: number): Promise<Arrival[]>;
  stop(): Promise<void>;
}

export async function startFakeProcess(padTo: number): Promise<FakeProcess> {
  const child = fork(__filename, [], {
    execArgv: ['-r', '@swc-node/register'],
    env: { ...process.env, FAKE_PAD_TO: String(padTo) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T extends FromChild['type']>(type: T) =>
    new Promise<Extract<FromChild, { type: T }>>((resolve, reject) => {
      const onMessage = (m: FromChild) => {
        if (m.type !== type) return;
        cleanup();
        resolve(m as Extract<FromChild, { type: T }>);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`the fake's process exited (${code}) before answering ${type}`));
      };
      const cleanup = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  const ask = <T extends FromChild['type']>(m: ToChild & { type: T }) => {
    const answer = next(m.type);
    child.send(m);
    return answer;
  };
  const { url } = await next('ready');
  // A real upstream runs on machines of its own and reads a request when it arrives; on this shared
  // 2-core machine the fake's process would otherwise wait for a core behind the service and the load,
  // and timestamp arrivals milliseconds late. Raising its priority needs root (CI has it); without,
  // the arrival times are only less exact.
  try {
    setPriority(child.pid!, -10);
  } catch {
    // not permitted: keep the default priority
  }
  return {
    url,
    count: async () => (await ask({ type: 'count' })).count,
    arrivals: async (from) => (await ask({ type: 'arrivals', from })).arrivals,
    stop: () => stop(child),
  };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function serve(): Promise<void> {
  const fake = new FakeNominatim({ padTo: Number(process.env.FAKE_PAD_TO), fixtures: false });
  const url = await fake.start();
  const send = (m: FromChild) => process.send?.(m);
  process.on('message', (m: ToChild) => {
    if (m.type === 'count') send({ type: 'count', count: fake.requests.length });
    else send({ type: 'arrivals', arrivals: fake.requests.slice(m.from).map((r) => ({ path: r.path, atMs: r.startedAtHr })) });
  });
  // The driver going away (or stopping it) ends the fake.
  const end = () => void fake.stop().finally(() => process.exit(0));
  process.on('disconnect', end);
  process.on('SIGTERM', end);
  send({ type: 'ready', url });
}

if (require.main === module) void serve();
