/**
 * The processes under test. Every server is its own child process, so its CPU time is its own:
 * the service (`node dist/main.js`, production mode) is read from /proc/<pid>/stat, the baselines
 * answer an IPC message with their own `process.cpuUsage()`.
 */
import { ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test/support/redis-server';
import type { ChildMessage } from '../baselines/child';

export const ROOT = join(__dirname, '..', '..');

export interface Target {
  readonly name: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly pid: number;
  /** Cumulative user + system CPU time of the server process, µs. */
  cpuMicros(): Promise<number>;
  /** Resident memory of the server, when it is more than the process `pid` (a WEB_CONCURRENCY group). */
  rssBytes?(): number;
  stop(): Promise<void>;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** CPU time the whole machine spent busy (all cores, everything but idle and iowait), µs. */
export function machineBusyMicros(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal (guest time is inside user)
  return ((total - fields[3] - fields[4]) * 1e6) / CLK_TCK;
}

/** Resident set size of a process, bytes. */
export function procRssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) * 1024;
}

/** The fields of /proc/<pid>/stat after "(comm)": index 0 is field 3 (state), 11 utime, 12 stime, 13 cutime, 14 cstime. */
function statFields(pid: number | 'self'): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of a process (all its threads), µs; resolution 1/CLK_TCK s. */
export function procCpuMicros(pid: number): number {
  const fields = statFields(pid);
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

/** `pid` and its running children (a WEB_CONCURRENCY primary and its workers). */
function processTree(pid: number): number[] {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
  return [pid, ...children.flatMap(processTree)];
}

/** CPU time of this process's children that have ended and been waited for (the wrk runs), µs. */
export function reapedChildrenCpuMicros(): number {
  const fields = statFields('self');
  return ((Number(fields[13]) + Number(fields[14])) * 1e6) / CLK_TCK;
}

/** Whether `name` is a command on PATH. */
export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    live.delete(child);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      live.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function exitNote(child: ChildProcess, log: string): Promise<never> {
  return new Promise((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`exited (${signal ?? code}) before it was ready; see ${log}`)));
  });
}

export interface ServiceOptions {
  /** The built entry point (a private snapshot of dist/, see run.ts). */
  mainJs: string;
  redisUrl: string;
  nominatimUrl: string;
  logFile: string;
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** A command the service runs under, e.g. ['valgrind', '--tool=callgrind', …] (it must exec node in its own process). */
  wrapper?: string[];
  /** How long to wait for it to be ready (default 30 s). */
  readyTimeoutMs?: number;
}

/**
 * The production settings the benchmark runs the service with. The per-client rate limits stay on
 * (their cost is part of the hit path) with allowances no benchmark client reaches: every request
 * here comes from one address.
 */
export const SERVICE_ENV: Readonly<Record<string, string>> = {
  NODE_ENV: 'production',
  LOG_LEVEL: 'info',
  HOST: '127.0.0.1',
  NOMINATIM_USER_AGENT: 'places-cache-bench/1.0 (bench@places-cache.test)',
  RATE_LIMIT_ENABLED: 'true',
  RATE_LIMIT_HITS: '100000000',
  RATE_LIMIT_MISSES: '1000000',
};

/**
 * Starts `node dist/main.js` with a clean environment (nothing inherited that could point it at
 * another Redis or Nominatim), its stdout/stderr (one JSON log line per request) appended to logFile.
 * Resolves once it answers HTTP and reports Redis connected in /metrics.
 */
export async function startService(name: string, opts: ServiceOptions): Promise<Target> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    ...SERVICE_ENV,
    PORT: String(port),
    REDIS_URL: opts.redisUrl,
    NOMINATIM_URL: opts.nominatimUrl,
    ...opts.env,
  };
  // A WEB_CONCURRENCY group: the primary's own /proc figures leave its workers out.
  const workers = Number(opts.env?.WEB_CONCURRENCY ?? 1);
  const fd = openSync(opts.logFile, 'a');
  const [command, ...args] = [...(opts.wrapper ?? []), process.execPath, ...(opts.nodeArgs ?? []), opts.mainJs];
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  const url = `http://127.0.0.1:${port}`;
  const target: Target = {
    name,
    url,
    pid: child.pid ?? -1,
    cpuMicros: async () => (workers > 1 ? processTree(child.pid ?? -1) : [child.pid ?? -1]).reduce((a, pid) => a + procCpuMicros(pid), 0),
    rssBytes: workers > 1 ? () => processTree(child.pid ?? -1).reduce((a, pid) => a + procRssBytes(pid), 0) : undefined,
    stop: () => stopChild(child),
  };
  try {
    await Promise.race([waitForRedisConnected(url, opts.readyTimeoutMs ?? 30_000 * workers, workers), exitNote(child, opts.logFile)]);
  } catch (e) {
    await target.stop();
    throw new Error(`service ${name}: ${(e as Error).message}`, { cause: e });
  }
  return target;
}

async function waitForRedisConnected(url: string, timeoutMs: number, workers: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      // A group's places_redis_connected is the lowest of the workers that answered the scrape, and
      // places_workers how many did: every worker is up and connected.
      const text = await (await fetch(`${url}/metrics`)).text();
      if (new RegExp(`^places_workers ${workers}$`, 'm').test(text) && /^places_redis_connected 1$/m.test(text)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready (Redis connected) within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export type BaselineName = 'naive' | 'floor' | 'fastify' | 'raw';

/** Forks bench/baselines/<name>.ts (through @swc-node/register) and waits for its "ready". */
export async function startBaseline(
  name: BaselineName,
  env: Record<string, string>,
  logFile: string,
  label: string = name,
  opts: { wrapper?: string[]; readyTimeoutMs?: number } = {},
): Promise<Target> {
  const fd = openSync(logFile, 'a');
  const file = join(ROOT, 'bench', 'baselines', `${name}.ts`);
  const childEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production', ...env };
  // Under a wrapper (valgrind) node is spawned as fork would, with the IPC channel as fd 3.
  const child = opts.wrapper
    ? spawn(opts.wrapper[0], [...opts.wrapper.slice(1), process.execPath, '-r', '@swc-node/register', file], {
        cwd: ROOT,
        env: childEnv,
        stdio: ['ignore', fd, fd, 'ipc'],
      })
    : fork(file, [], { cwd: ROOT, execArgv: ['-r', '@swc-node/register'], env: childEnv, stdio: ['ignore', fd, fd, 'ipc'] });
  closeSync(fd);
  live.add(child);
  const ready = new Promise<number>((resolve) => {
    const onMessage = (m: ChildMessage) => {
      if (m.type !== 'ready') return;
      child.off('message', onMessage);
      resolve(m.port);
    };
    child.on('message', onMessage);
  });
  let port: number;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready within ${opts.readyTimeoutMs ?? 30_000} ms; see ${logFile}`)), opts.readyTimeoutMs ?? 30_000);
  });
  try {
    port = await Promise.race([ready, exitNote(child, logFile), late]);
  } catch (e) {
    await stopChild(child, 3000);
    throw new Error(`baseline ${name}: ${(e as Error).message}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  const cpuMicros = () =>
    new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no cpu reply`)), 5000);
      const onMessage = (m: ChildMessage) => {
        if (m.type !== 'cpu') return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(m.user + m.system);
      };
      child.on('message', onMessage);
      child.send({ type: 'cpu' });
    });
  return { name: label, url: `http://127.0.0.1:${port}`, pid: child.pid ?? -1, cpuMicros, stop: () => stopChild(child, 3000) };
}
