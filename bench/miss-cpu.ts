/**
 * What one miss costs the service, builds side by side: CPU µs, Redis commands and (with
 * `--callgrind`) user-space instructions per miss, for distinct questions that miss L1 and L2 at
 * NOMINATIM_MAX_RPS=1000 against the fake upstream answering at once (the load of bench (g)).
 *
 *   node -r @swc-node/register bench/miss-cpu.ts [--rounds=3] [--misses=3000] [--concurrency=64] [--profile] [--callgrind] NAME=DIST_DIR …
 *
 * Each DIST_DIR is a copy of a build (e.g. `cp -r dist .tmp/builds/old`); rounds alternate the
 * builds (old, new, old, new, …) so a change in the machine's load hits each alike, and the median
 * per build is printed. `--profile` writes a V8 CPU profile per run (bench/profile-summary.ts reads it);
 * `--syscalls` counts system calls with strace (MISS_CPU_STRACE_RAW=1 prints its table); `--callgrind`
 * counts instructions (then 400 misses at most, after 800 to warm up). The second build of a round
 * tends to measure lower (up to ~10 %): compare with the order reversed too.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FakeNominatim } from '../test/support/fake-nominatim';
import { startRedis } from '../test/support/redis-server';
import { drive } from './lib/load';
import { ROOT, SERVICE_ENV, startService, Target } from './lib/procs';

const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const ROUNDS = arg('rounds', 3);
const MISSES = arg('misses', 3000);
const CONCURRENCY = arg('concurrency', 64);
const PROFILE = process.argv.includes('--profile');
const CALLGRIND = process.argv.includes('--callgrind');
/** `--syscalls`: counts the service's system calls during the misses (strace -c), e.g. a write per Redis round trip. */
const SYSCALLS = process.argv.includes('--syscalls');
const builds = process.argv
  .slice(2)
  .filter((a) => !a.startsWith('--'))
  .map((a) => {
    const [name, dir] = a.split('=');
    return { name, mainJs: join(resolve(dir), 'main.js') };
  });
const WORK = join(ROOT, '.tmp', 'miss-cpu', String(process.pid));
const VGDB_PREFIX = join(WORK, 'vgdb');
const log = (msg: string) => process.stderr.write(`[miss-cpu] ${msg}\n`);
let seq = 0;
const fresh = (n: number) => Array.from({ length: n }, () => `/search?q=${encodeURIComponent(`miss cpu ${process.pid} ${++seq} street`)}&format=json`);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];

function callgrind(args: string[]): string {
  // vgdb names its files after USER and HOST: the service's environment (procs.ts) has no USER and HOST=127.0.0.1.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', HOST: SERVICE_ENV.HOST };
  return execFileSync('callgrind_control', [`--vgdb-prefix=${VGDB_PREFIX}`, ...args], { encoding: 'utf8', env });
}

/** Starts `strace -c` on every thread of `pid`; the function it resolves stops it and gives the calls per miss that matter. */
async function traced(pid: number): Promise<(misses: number) => Promise<string>> {
  const child = spawn('strace', ['-c', '-f', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr.on('data', (c: Buffer) => (text += c.toString()));
  await new Promise((ok) => setTimeout(ok, 1000)); // attached
  return async (misses) => {
    const exited = new Promise((ok) => child.once('exit', ok));
    child.kill('SIGINT');
    await exited;
    if (process.env.MISS_CPU_STRACE_RAW) log(text);
    const rows = [...text.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/gm)].map((m) => [m[2], Number(m[1]) / misses] as const);
    return rows
      .filter(([, v]) => v >= 0.05)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ');
  };
}

async function main(): Promise<void> {
  if (builds.length === 0) throw new Error('name at least one build: NAME=DIST_DIR');
  mkdirSync(WORK, { recursive: true });
  const redis = await startRedis();
  const fake = new FakeNominatim({ padTo: 5000, fixtures: false });
  await fake.start();
  const results = new Map<string, { cpu: number[]; cmds: number[]; instr: number[] }>(builds.map((b) => [b.name, { cpu: [], cmds: [], instr: [] }]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const b of builds) {
        const out = join(WORK, `${b.name}-${r}.callgrind`);
        const t: Target = await startService(b.name, {
          mainJs: b.mainJs,
          redisUrl: redis.url,
          nominatimUrl: fake.url,
          logFile: '/dev/null',
          // Under valgrind (about 50 times slower) a Redis reply can take longer than the default op timeout.
          env: { NOMINATIM_MAX_RPS: '1000', ...(CALLGRIND ? { REDIS_OP_TIMEOUT_MS: '5000' } : {}) },
          nodeArgs: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(WORK, 'profiles', `${b.name}-${r}`)}`] : [],
          wrapper: CALLGRIND ? ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--vgdb-prefix=${VGDB_PREFIX}`, `--callgrind-out-file=${out}`] : undefined,
          readyTimeoutMs: CALLGRIND ? 180_000 : 30_000,
        });
        try {
          const misses = CALLGRIND ? Math.min(MISSES, 400) : MISSES;
          await drive(t.url, fresh(CALLGRIND ? 800 : 1000), CONCURRENCY); // JIT warm-up
          const cmd0 = await redis.commandCalls();
          const cpu0 = await t.cpuMicros();
          if (CALLGRIND) callgrind(['-i', 'on', String(t.pid)]);
          const strace = SYSCALLS ? await traced(t.pid) : undefined;
          const answers = await drive(t.url, fresh(misses), CONCURRENCY);
          if (CALLGRIND) callgrind(['-d', String(t.pid)]);
          const syscallNote = strace === undefined ? '' : `; system calls per miss: ${await strace(misses)}`;
          const cpu = ((await t.cpuMicros()) - cpu0) / misses;
          const cmd1 = await redis.commandCalls();
          const bad = answers.filter((a) => a.status !== 200 || a.headers['x-cache'] !== 'MISS').length;
          if (bad > 0) {
            const seen = answers.filter((a) => a.status !== 200 || a.headers['x-cache'] !== 'MISS').map((a) => `${a.status} ${String(a.headers['x-cache'])} ${a.body.toString().slice(0, 120)}`);
            throw new Error(`${b.name}: ${bad} answers not a 200 MISS, e.g. ${seen.slice(0, 3).join(' | ')}`);
          }
          // `info` is the question itself (commandCalls asks it once per call).
          const perCmd = Object.entries(cmd1)
            .map(([k, v]) => [k, (v - (cmd0[k] ?? 0) - (k === 'info' ? 1 : 0)) / misses] as const)
            .filter(([, v]) => v > 0);
          const cmds = perCmd.reduce((a, [, v]) => a + v, 0);
          const res = results.get(b.name)!;
          res.cpu.push(cpu);
          res.cmds.push(cmds);
          let instrNote = '';
          if (CALLGRIND) {
            let text = '';
            for (let i = 0; i < 600 && !/^summary: \d+$/m.test(text); i++) {
              await new Promise((ok) => setTimeout(ok, 100));
              try {
                text = readFileSync(`${out}.1`, 'utf8');
              } catch {
                // not written yet
              }
            }
            const m = /^summary: (\d+)$/m.exec(text);
            if (!m) throw new Error(`no callgrind summary in ${out}.1 (${readdirSync(WORK).join(', ')})`);
            res.instr.push(Number(m[1]) / misses);
            instrNote = `, ${Math.round(Number(m[1]) / misses)} instructions`;
          }
          log(
            `round ${r + 1} ${b.name}: ${cpu.toFixed(0)} µs CPU${instrNote} per miss; Redis ${cmds.toFixed(2)} commands ` +
              `(${perCmd.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})${syscallNote}`,
          );
        } finally {
          await t.stop();
        }
      }
    }
  } finally {
    await fake.stop();
    await redis.stop();
  }
  for (const [name, r] of results) {
    const instr = r.instr.length ? `; instructions per miss median ${Math.round(median(r.instr))} (${r.instr.map(Math.round).join(', ')})` : '';
    log(`${name}: CPU µs per miss median ${median(r.cpu).toFixed(0)} (${r.cpu.map((c) => c.toFixed(0)).join(', ')}); Redis commands ${median(r.cmds).toFixed(2)}${instr}`);
  }
}

main().catch((e: unknown) => {
  log(String((e as Error).stack ?? e));
  process.exit(1);
});
