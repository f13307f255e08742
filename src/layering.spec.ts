import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = __dirname;

/**
 * The layers of src, lowest first: a file may import from its own layer or a lower one, never from a
 * higher one. The longest matching folder decides a file's layer; files directly in src (bootstrap,
 * the root module) are the top.
 */
const LAYERS: Array<[folder: string, rank: number]> = [
  ['config', 0],
  ['common', 1],
  ['logging', 1],
  ['metrics', 1],
  ['cache', 2],
  ['throttle', 2],
  // The feature: Nominatim's rules know nothing of the cache; the cache knows Nominatim's requests;
  // the pipeline, exchange, decisions, controller and module use both.
  ['places/nominatim', 3.0],
  ['places/dto', 3.1],
  ['places/cache', 3.1],
  ['places', 3.2],
  ['health', 4],
  ['admin', 4],
  ['http', 4],
  ['dashboard', 4],
  ['cluster', 4],
  // The command line builds the whole application (app.module) as the bootstrap files do.
  ['cli', 5],
  ['', 5],
];

function layerOf(file: string): { folder: string; rank: number } {
  const rel = relative(SRC, file).split('\\').join('/');
  let best: [string, number] = ['', 5];
  for (const [folder, rank] of LAYERS) {
    if (folder === '' ? !rel.includes('/') : rel.startsWith(`${folder}/`)) {
      if (folder.length >= best[0].length) best = [folder, rank];
    }
  }
  return { folder: best[0] || 'src', rank: best[1] };
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.spec.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The src files `file` imports (relative specifiers: `import`, `export … from`, `import()`, `require`). */
export function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(SPECIFIER)) {
    const base = resolve(dirname(file), m[1]);
    for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
      if (candidate.endsWith('.ts') && exists(candidate)) {
        found.add(candidate);
        break;
      }
    }
  }
  return [...found];
}

function exists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Upward imports: from a file to one in a higher layer. */
export function upwardImports(graph: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [file, imports] of graph) {
    const from = layerOf(file);
    for (const target of imports) {
      const to = layerOf(target);
      if (to.rank > from.rank) bad.push(`${relative(SRC, file)} (${from.folder}) imports ${relative(SRC, target)} (${to.folder})`);
    }
  }
  return bad;
}

/** Every import circle, each as the files along it (depth-first search; a back edge closes a circle). */
export function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      const s = state.get(next);
      if (s === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative(SRC, f)));
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

function graphOf(files: string[], override?: { file: string; text: string }): Map<string, string[]> {
  return new Map(files.map((f) => [f, importsOf(f, override?.file === f ? override.text : undefined)]));
}

describe('layering of src (source files; specs may reach across to test what they test)', () => {
  const files = sourceFiles(SRC);
  const graph = graphOf(files);

  it('finds the source files and their imports', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(graph.get(join(SRC, 'places/place-pipeline.ts'))).toEqual(expect.arrayContaining([join(SRC, 'places/cache/fills.ts')]));
  });

  it('ranks every folder of src (a new folder must be given its layer here)', () => {
    const folders = new Set(files.map((f) => dirname(relative(SRC, f)).split('\\').join('/')).filter((d) => d !== '.'));
    const unranked = [...folders].filter((d) => !LAYERS.some(([folder]) => folder !== '' && (d === folder || d.startsWith(`${folder}/`))));
    expect(unranked).toEqual([]);
  });

  it('has no import from a lower layer into a higher one (config, common, logging, metrics know nothing of places)', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  it('has no import circle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('has no source file over 500 lines', () => {
    const long = files.map((f) => [relative(SRC, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 500);
    expect(long).toEqual([]);
  });

  it('would see an upward import and a circle', () => {
    const metrics = join(SRC, 'metrics/metrics.service.ts');
    const upward = graphOf(files, { file: metrics, text: `${readFileSync(metrics, 'utf8')}\nimport { Exchange } from '../places/exchange';\n` });
    expect(upwardImports(upward)).toEqual(['metrics/metrics.service.ts (metrics) imports places/exchange.ts (places)']);
    const exchange = join(SRC, 'places/exchange.ts');
    const circle = graphOf(files, { file: exchange, text: `${readFileSync(exchange, 'utf8')}\nimport { PlacePipeline } from './place-pipeline';\n` });
    expect(cycles(circle).some((c) => c.includes('places/exchange.ts') && c.includes('places/place-pipeline.ts'))).toBe(true);
  });
});
