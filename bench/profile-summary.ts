/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --only=a --profile`, written to
 * .tmp/bench/profiles/): self time per function, and inclusive time of the functions whose name
 * matches a filter.
 *
 *   node -r @swc-node/register bench/profile-summary.ts <file.cpuprofile> [top=40] [filter regex]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, filter] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary <file.cpuprofile> [top] [filter]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Self time per node from the samples and their time deltas (µs).
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const label = (n: Node) => {
  const url = n.callFrame.url.replace(/^.*\/(node_modules\/)?/, (m) => (m.includes('node_modules') ? 'nm:' : ''));
  return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
};

const self = new Map<string, number>();
for (const [id, us] of selfUs) {
  const key = label(byId.get(id)!);
  self.set(key, (self.get(key) ?? 0) + us);
}
const top = Number(topArg ?? 40);
const idle = [...self.entries()].filter(([k]) => /^\((idle|program|garbage collector)\)/.test(k));
console.log(`total ${(total / 1000).toFixed(0)} ms sampled; ${idle.map(([k, v]) => `${k.split(' ')[0]} ${((100 * v) / total).toFixed(1)} %`).join(', ')}`);
console.log('\nself time');
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * v) / total).toFixed(2).padStart(6)} %  ${k}`);
}

if (filter) {
  // Inclusive time: a sample counts once for every distinct matching function on its stack.
  const re = new RegExp(filter);
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = label(byId.get(cur)!);
      if (re.test(key) && !seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + us);
      }
    }
  }
  console.log(`\ninclusive time of /${filter}/`);
  for (const [k, v] of [...inclusive.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * v) / total).toFixed(2).padStart(6)} %  ${k}`);
  }
}
