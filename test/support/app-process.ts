import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { BuiltApp } from './build-app';
import { track } from './leftovers';

/** The User-Agent every test app sends upstream unless a test names its own. */
export const TEST_USER_AGENT = 'places-cache-tests/1.0 (tests@places-cache.test)';

/** A line the app logged (pino JSON): the fields every line has, and whatever else it carries. */
export interface LogRecord {
  level: string;
  msg: string;
  context?: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited */
  at: number;
}

export interface SpawnAppOptions {
  /** The test's own variables, over the base environment (see spawnApp). */
  env?: Record<string, string>;
  /** A script of the build other than its main.js (e.g. 'cli.js'), from the same directory. */
  script?: string;
  /** Arguments after the script. */
  args?: string[];
  /** Node's own flags, before the script (e.g. npmStartFlags()). */
  nodeFlags?: string[];
  cwd?: string;
  /** Text written to the process's stdin, which is then closed; without it, stdin is /dev/null. */
  input?: string;
}

export interface AppProcess {
  child: ChildProcess;
  /** What it wrote to stdout so far (the app logs there). */
  stdout(): string;
  stderr(): string;
  /** stdout and stderr together, in the order they arrived. */
  output(): string;
  /** The JSON lines of stdout so far, parsed; any other line (and one not finished yet) is skipped. */
  lines<T = LogRecord>(): T[];
  /**
   * Resolves once the process has exited and its output is all read (so output() is complete);
   * rejects if it could not be started.
   */
  exited: Promise<Exit>;
  /**
   * Polls `check` every `stepMs` until it returns true. Fails, with what the process wrote, if the
   * process exits first or `timeoutMs` passes: `what` names the awaited state in that message.
   */
  until(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number, stepMs?: number): Promise<void>;
  /** Sends `signal` unless the process has exited already, and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs a build of the app (buildApp()'s, or `{ main, env: {} }` for one that finds node_modules by
 * itself, as dist/ does) as a process of its own: `node [nodeFlags] main.js [args]`.
 *
 * Its environment is only PATH, the build's, loopback-only defaults and `env`: nothing from the shell
 * (a REDIS_URL, a LOG_LEVEL) reaches what a test runs. The process is registered as a leftover, so that
 * a test that fails before stopping it does not leave it running (see leftovers.ts).
 */
export function spawnApp(build: Pick<BuiltApp, 'main' | 'env'>, options: SpawnAppOptions = {}): AppProcess {
  const script = options.script === undefined ? build.main : join(dirname(build.main), options.script);
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), script, ...(options.args ?? [])], {
    cwd: options.cwd,
    env: {
      PATH: process.env.PATH ?? '',
      ...build.env,
      HOST: '127.0.0.1',
      // Nobody listens there: a process that is not given a fake upstream never asks the real Nominatim.
      NOMINATIM_URL: 'http://127.0.0.1:9',
      NOMINATIM_USER_AGENT: TEST_USER_AGENT,
      ...options.env,
    },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const name = basename(script);

  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (text: string) => {
    stdout += text;
    output += text;
  });
  child.stderr!.on('data', (text: string) => {
    stderr += text;
    output += text;
  });
  if (options.input !== undefined) child.stdin!.end(options.input);

  let startError: Error | undefined;
  let exitedAt: number | undefined;
  // The exit itself, for stop(): 'close' may wait longer, for processes it forked that share its output.
  const exitEvent = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exitedAt = Date.now();
      resolve();
    });
    child.once('error', () => resolve());
  });
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', (error) => {
      startError = error;
      reject(error);
    });
    child.once('close', (code, signal) => resolve({ code, signal, at: exitedAt ?? Date.now() }));
  });
  // Whoever awaits `exited` sees a failure to start; nobody else needs to.
  exited.catch(() => undefined);

  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (!hasExited() && startError === undefined) child.kill(signal);
    await exitEvent;
  };
  const forget = track('app', `${name} (pid ${child.pid})`, () => stop());
  void exitEvent.then(forget);

  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    lines: <T>() => jsonLines(stdout) as T[],
    exited,
    async until(check, what, timeoutMs, stepMs = 100) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (startError) throw new Error(`waiting for ${what}: ${name} could not be started: ${startError.message}`);
        if (hasExited()) {
          const how = child.signalCode ?? `code ${child.exitCode}`;
          throw new Error(`waiting for ${what}: ${name} exited with ${how} first. It wrote:\n${output}`);
        }
        if (await check()) return;
        if (Date.now() > deadline) throw new Error(`waiting for ${what}: not within ${timeoutMs} ms. ${name} wrote:\n${output}`);
        await new Promise((r) => setTimeout(r, stepMs));
      }
    },
    stop,
  };
}

function jsonLines(text: string): unknown[] {
  return text.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as unknown];
    } catch {
      return []; // not JSON after all, or the first part of a line still being written
    }
  });
}

/**
 * The node flags `npm start` runs the service with (package.json's start script, `exec node FLAGS
 * dist/main.js`), so that a test runs a build as production does.
 */
export function npmStartFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  if (words[0] !== 'exec' || words[1] !== 'node' || words.at(-1) !== 'dist/main.js') {
    throw new Error(`package.json's start script is no longer "exec node FLAGS dist/main.js": ${pkg.scripts.start}`);
  }
  return words.slice(2, -1);
}
